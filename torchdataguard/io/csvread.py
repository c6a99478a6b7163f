"""Reading a CSV file for ``torchdataguard scan``: a header row, then one record per row.

A row with more or fewer cells than the header is a bad record (``invalid/ragged_row``); a column with no name
is named by its position (``column_3``, see :func:`_name_columns`); invalid UTF-8 in a
cell is handed on as bytes (the guard drops its text as ``invalid/not_utf8``); a UTF-8 byte order mark before
the header is skipped. A cell over :func:`csv_field_limit` and a quoted cell left open to the end of the file
(the csv module would read every row after it into that cell) raise :class:`csv.Error`, which the caller
reports as a damaged file; the row holding the open quote is not yielded.
"""
from __future__ import annotations

import csv
import io
import warnings
from typing import IO, Any, Callable, FrozenSet, Iterator, List, Optional, Tuple

from ..core.plan import BadRecord
from ..core.textcheck import looks_like_data
from ..errors import GuardInputError

__all__ = ["csv_field_limit", "read_csv"]


def csv_field_limit(max_chars: int) -> int:
    """The largest CSV cell read: four times ``max_chars`` and never below the csv module's default (131,072).

    A text cell up to ``max_chars`` is read and judged (one over it is dropped as ``invalid/too_long``);
    a cell over this limit is a file fault. The bound keeps one row's memory finite.
    """
    return max(131072, 4 * int(max_chars))


def read_csv(path: str, max_chars: int, open_binary: Callable[[str], IO[bytes]], *,
             delimiter: Optional[str] = None) -> Iterator[Any]:
    """Yield the records of the CSV file ``path`` (opened by ``open_binary``: plain or compressed).

    ``delimiter`` (``"\\t"`` for a ``.tsv``): the cell separator, else ``,`` or the one a one-column header shows
    (see :func:`_other_separator`). Until 2026-12-07 a ``.tsv`` was read as commas first, and a header with a comma
    in a name (``body, raw``) split there, so its rows were ragged and dropped."""
    limit = csv_field_limit(max_chars)
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, limit))  # process-wide: raised while this reader runs, then restored
    try:
        with open_binary(path) as fh:
            text = _LastRow(io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline=""))
            rows = csv.reader(text, delimiter=delimiter or ",")
            text.delimiter = delimiter or ","
            held: Any = None  # each record waits for the next row: the last one is yielded once its quotes close
            try:
                header: Optional[List[str]] = next(rows, None)
                if header is None:
                    return
                sep = _other_separator(header) if delimiter is None else None
                if sep is not None and len(next(csv.reader(text.lines, delimiter=sep))) < 2:
                    sep = None  # the separator is inside a quoted name: a one-column file
                if sep is not None:  # a ';' (tab, '|') separated file saved as .csv: read it with its separator
                    header = next(csv.reader(text.lines, delimiter=sep))
                    rows = csv.reader(text, delimiter=sep)
                    text.delimiter = sep
                    shown = [h if not looks_like_data(h) else "<hidden: looks like data>" for h in header[:8]]
                    warnings.warn(f"{path}: the CSV header is one column holding {sep!r} ({len(header)} names): read "
                                  f"as a {sep!r}-separated file, with the columns {shown}", UserWarning,
                                  stacklevel=2)
                text.new_row()
                header, unnamed = _name_columns(path, header)
                width = len(header)
                for row in rows:
                    text.new_row()
                    if not row:
                        continue  # a blank line
                    if held is not None:
                        yield held
                    if len(row) != width:
                        held = BadRecord("ragged_row", f"line {rows.line_num} ({len(row)} cells, the header has {width})")
                    elif unnamed:  # an empty cell of an unnamed column is left out (Excel's blank columns)
                        held = {k: _fix(v) for k, v in zip(header, row) if v or k not in unnamed}
                    else:
                        held = {k: _fix(v) for k, v in zip(header, row)}
                text.check_closed(rows.line_num)
                if held is not None:
                    yield held
            except csv.Error as exc:
                if held is not None and "never closed" not in str(exc):
                    yield held  # complete: the fault is in a later row
                raise csv.Error(f"{exc} at line {rows.line_num} (cells are read up to csv_field_limit("
                                f"max_chars={max_chars:,}) = {limit:,} characters; raise --max-chars)"
                                if "field limit" in str(exc) else str(exc) if "never closed" in str(exc)
                                else f"{exc} at line {rows.line_num}") from None
    finally:
        csv.field_size_limit(old)


class _LastRow:
    """The lines of a CSV file, keeping those of the row being read: the csv module reads a quote left open
    to the end of the file as one cell (the rows after it vanish into it), which only a strict parse of that
    last row tells."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._it = iter(lines)
        self.lines: List[str] = []
        self._fresh = False
        #: the file's cell separator (``,`` unless the header said otherwise: see :func:`_other_separator`)
        self.delimiter = ","

    def __iter__(self) -> "_LastRow":
        return self

    def __next__(self) -> str:
        line = next(self._it)
        if self._fresh:
            self.lines.clear()
            self._fresh = False
        self.lines.append(line)
        return line

    def new_row(self) -> None:
        """The row whose lines were read is done: the next line read starts another."""
        self._fresh = True

    def check_closed(self, line_num: int) -> None:
        """At the end of the file (``line_num`` lines read): raise :class:`csv.Error` if the last row's quote
        was never closed."""
        try:
            for _ in csv.reader(self.lines, strict=True, delimiter=self.delimiter):
                pass
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                start = line_num - len(self.lines) + 1
                n = len(self.lines)
                raise csv.Error(f"a quoted cell opened in the row at line {start:,} is never closed: the {n:,} "
                                f"line{'s' if n != 1 else ''} from there to the end of the file were read as that "
                                f"one cell (the file is truncated, or a quote is missing)") from None


def _name_columns(path: str, header: List[str]) -> Tuple[List[str], FrozenSet[str]]:
    """The header with each unnamed column (an empty or blank name: Excel writes ``id,text,,`` for columns it
    once saw used) named by its position, ``column_3`` (1-based), and the set of those names; a note says so.
    A row's empty cell in such a column is left out of its record, a filled one is kept under that name.
    Until the fifteenth session (2026-12-07) such a header stopped the scan as a damaged file (exit 3).

    Raises:
        GuardInputError: a name given to more than one column (names that look like data are hidden).

    Example:
        >>> _name_columns("x.csv", ["id", "text", ""])  # doctest: +ELLIPSIS
        (['id', 'text', 'column_3'], frozenset({'column_3'}))
    """
    header = list(header)
    unnamed = [i for i, h in enumerate(header) if not h.strip()]
    for i in unnamed:
        header[i] = name = f"column_{i + 1}"
        while header.count(name) > 1:  # a real column already has that name
            header[i] = name = name + "_"
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        shown = [h if not looks_like_data(h) else "<hidden: looks like data>" for h in dup[:8]]
        raise GuardInputError(f"{path}: the CSV header repeats the column names {shown}; each column needs its own "
                              f"name: rename them in the header row (if the file has no header row, add one)")
    if unnamed:
        names = [header[i] for i in unnamed]
        warnings.warn(f"{path}: the CSV header has {len(names)} unnamed column(s), read as {names[:8]}"
                      f"{' ...' if len(names) > 8 else ''} (their empty cells are left out of the records)",
                      UserWarning, stacklevel=3)
    return header, frozenset(header[i] for i in unnamed)


def _other_separator(header: List[str]) -> Optional[str]:
    """The separator of a header read as one column that holds ``;``, a tab or ``|`` (the most frequent of
    them), else ``None``: a file saved with another separator (Excel in many locales writes ``;``).

    Example:
        >>> _other_separator(["id;text;label"]), _other_separator(["id", "text"]), _other_separator(["text"])
        (';', None, None)
    """
    if len(header) != 1:
        return None
    counts = {sep: header[0].count(sep) for sep in (";", "\t", "|")}
    sep = max(counts, key=counts.__getitem__)
    return sep if counts[sep] else None


def _fix(v: str) -> Any:
    """CSV cells with invalid UTF-8 were decoded with surrogateescape: hand them on as bytes."""
    try:
        v.encode("utf-8")
        return v
    except UnicodeEncodeError:
        return v.encode("utf-8", "surrogateescape")
