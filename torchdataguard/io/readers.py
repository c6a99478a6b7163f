"""Streaming readers for ``torchdataguard scan``: JSONL, JSON, CSV, Parquet and saved ``datasets`` folders.

Readers yield records one at a time, so memory is bounded by the index, not by the corpus (a ``.json`` array
is streamed element by element too). A bad *record* becomes a :class:`~torchdataguard.core.plan.BadRecord`,
which the guard drops, counted, instead of stopping the scan:

* ``invalid/not_utf8``, ``invalid/json``: a JSONL line that is not UTF-8 or not JSON (or JSON that Python's
  decoder refuses: nesting past the recursion limit, an integer of more than 4,300 digits);
* ``invalid/not_a_record``: a JSONL line or JSON array element that is an array, a number or a boolean
  (records are objects; a string is a text record);
* ``invalid/ragged_row``: a CSV row with more or fewer cells than the header (its cells cannot be matched
  to the columns, so no column of it can be trusted).

A UTF-8 byte order mark at the start of a JSONL, JSON or CSV file is skipped (and at the start of any JSONL
line: files joined with ``cat``); a UTF-16 or UTF-32 one is refused (:class:`~torchdataguard.errors.ConfigError`
with the command that converts the file).

A compressed file is read by what its first bytes say, else by its name (:mod:`.compressed`: gzip, xz, bzip2, Zstandard).

A bad *file* (a truncated or corrupt ``.gz``/``.xz``/``.bz2``/``.zst``, a failed checksum, JSON that breaks off, a CSV cell over
the field limit or a CSV quote left open to the end of the file, an unreadable Parquet file or saved ``datasets`` folder) raises
:class:`~torchdataguard.errors.GuardInputError` saying what broke and after how many records: the records
before the fault have been yielded, so a scan can report them and mark itself incomplete.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import lzma
import os
import zlib
from typing import Any, Callable, Deque, Iterator, List, Optional, Tuple

from ..core.plan import BadRecord
from ..errors import ConfigError, GuardError, GuardInputError
from .compressed import COMPRESSED_SUFFIXES, compression_of, convert_command, open_binary, zip_refusal
from .csvread import csv_field_limit, read_csv

__all__ = ["count_records", "csv_field_limit", "detect_format", "first_record", "read_records", "resolve_input"]

#: errors that mean the file itself is damaged (not one record): the reader stops with GuardInputError
_FILE_FAULTS = (OSError, EOFError, lzma.LZMAError, zlib.error, csv.Error, UnicodeError)

FORMATS = ("jsonl", "json", "csv", "parquet", "datasets")


def detect_format(path: str) -> str:
    """Guess the input format from the path (``.jsonl``, ``.json``, ``.csv``, ``.parquet`` or a folder)."""
    if os.path.isdir(path):
        if any(os.path.exists(os.path.join(path, f)) for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "datasets"
        raise ConfigError(f"{path!r} is a folder but not a saved datasets folder (no dataset_info.json, state.json "
                          f"or dataset_dict.json); pass a file or the folder written by Dataset.save_to_disk")
    if not os.path.exists(path):
        raise ConfigError(f"input {path!r} does not exist")
    name = path.lower()
    for comp in COMPRESSED_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv"), (".tsv", "csv"),
                     (".tab", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(ext):
            return fmt
    if compression_of(path) == "zip":
        raise zip_refusal(path)
    raise ConfigError(f"cannot tell the format of {path!r}: expected one of .jsonl, .json, .csv, .tsv, .parquet (optionally "
                      f".gz, .xz, .bz2 or .zst) or a saved datasets folder; or pass --format")


def resolve_input(path: str) -> str:
    """``sample:NAME`` names data shipped with the package (``sample:spamassassin``); other paths pass.

    An unknown sample name is a :class:`~torchdataguard.errors.ConfigError` listing the shipped samples.

    Example:
        >>> resolve_input("sample:spam")
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: no shipped sample 'spam' (did you mean sample:spamassassin?); the shipped samples are: sample:spamassassin (6,046 e-mails of the SpamAssassin public corpus: id, group, label, text)
    """
    if path.startswith("sample:"):
        from ..assets import SAMPLE_NOTES, SAMPLES, asset_path

        name = path.split(":", 1)[1]
        if name not in SAMPLES:
            close = [n for n in sorted(SAMPLES) if name and (n.startswith(name.lower()) or name.lower() in n)]
            hint = f" (did you mean sample:{close[0]}?)" if close else ""
            listed = ", ".join(f"sample:{n} ({SAMPLE_NOTES.get(n, SAMPLES[n])})" for n in sorted(SAMPLES))
            raise ConfigError(f"no shipped sample {name!r}{hint}; the shipped samples are: {listed}")
        return asset_path(name)
    stdin = path == "-" and not os.path.isfile(path)
    if stdin or (os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)):
        # a pipe reads once: the record count and the first record (the id field) took what the scan then missed
        # (until 2026-12-07 ``cat x | torchdataguard scan /dev/stdin`` said "the input holds no records", exit 4)
        raise ConfigError(f"input {path!r} is {'standard input' if stdin else 'a pipe or a device, not a file'}: the "
                          f"scan reads its input more than once (to count the records, to find the id field), and a "
                          f"pipe gives its records only once; save them to a file first (e.g. ... > data.jsonl) and "
                          f"scan that; a .gz, .xz, .bz2 or .zst file is read as it is, without zcat")
    return path


def first_record(path: str, fmt: Optional[str] = None, *, split: Optional[str] = None) -> Any:
    """The first record of ``path`` (``None`` when it has none or cannot be read; the scan reports why).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.csv")
        >>> _ = open(p, "w").write("id,text\\n7,hello\\n")
        >>> first_record(p)
        {'id': '7', 'text': 'hello'}
    """
    records = read_records(path, fmt, split=split)
    try:
        return next(records, None)
    except GuardError:
        return None
    finally:
        records.close()


#: byte order marks of the encodings that are not UTF-8 (longest first: UTF-32 LE starts like UTF-16 LE)
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
              (b"\xfe\xff", "UTF-16"))


def _refuse_wide_encoding(path: str) -> None:
    """A text file that starts with a UTF-16 or UTF-32 byte order mark (Excel's "Unicode text", PowerShell's
    ``>``) is refused with the fix: read as UTF-8, each of its lines was dropped as ``invalid/not_utf8`` or
    ``invalid/json``, or a CSV header became column names full of NUL characters."""
    try:
        with _open_binary(path) as fh:
            head = fh.read(4)
    except _FILE_FAULTS:
        return  # the reader reports a damaged file itself
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise ConfigError(f"{path} is {name} text (it starts with the byte order mark {bom.hex(' ').upper()}); "
                              f"the scan reads UTF-8: convert it first, e.g. {convert_command(path, name)}"
                              + (" (in Excel: save as 'CSV UTF-8')" if ".csv" in path.lower() else ""))


def _open_binary(path: str):
    return open_binary(path)  # decompressed by what the first bytes say (see .compressed)


def count_records(path: str, fmt: Optional[str] = None) -> Optional[int]:
    """Number of records, when it is cheap to know (for the progress bar's ETA)."""
    fmt = fmt or detect_format(path)
    try:
        if fmt == "jsonl":
            for end in (b"\n", b"\r"):  # CR-only line ends (old Mac files) are counted when no LF is found
                n = 0
                last = end
                with _open_binary(path) as fh:
                    while True:
                        block = fh.read(1 << 22)
                        if not block:
                            break
                        n += block.count(end)
                        last = block[-1:]
                if n:
                    break
            return n + (0 if last == end else 1)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - only a progress hint; a damaged file is reported by the scan itself
        return None
    return None


def read_records(path: str, fmt: Optional[str] = None, *, split: Optional[str] = None,
                 max_chars: int = 2_000_000, lines: Optional[Deque[Tuple[Any, Optional[str]]]] = None
                 ) -> Iterator[Any]:
    """Yield the records of ``path`` one by one.

    ``lines`` (JSONL only): before each record is yielded, ``(record, source line)`` is appended to it (the
    line without its line end; ``None`` for an invalid line). The scan writes kept records as their source
    lines, so that a record nothing rewrote leaves byte for byte as it came, without a second encoding.

    ``max_chars`` (the guard's limit on a text) bounds what one record may hold: see :func:`csv_field_limit`;
    a ``.json`` element may be up to ``8 * max_chars + 1 MiB`` characters of JSON. A damaged file raises
    :class:`~torchdataguard.errors.GuardInputError` after the records before the fault.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.jsonl")
        >>> _ = open(p, "w").write('{"text": "a"}\\n{"text": "b"}\\n[1, 2]\\n')
        >>> [r["text"] if isinstance(r, dict) else r.reason for r in read_records(p)]
        ['a', 'b', 'not_a_record']
    """
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ConfigError.bad("format", fmt, f"one of {FORMATS}")
    if fmt in ("jsonl", "json", "csv"):
        _refuse_wide_encoding(path)
    if fmt == "jsonl":
        inner = _read_jsonl(path, lines)
    elif fmt == "json":
        inner = _read_json(path, max_chars)
    elif fmt == "csv":
        inner = read_csv(path, max_chars, _open_binary, delimiter="\t" if _is_tsv(path) else None)
    elif fmt == "parquet":
        inner = _read_parquet(path)
    else:
        inner = _read_datasets(path, split)
    n = 0
    try:
        for rec in inner:
            yield rec
            n += 1
    except GuardError:
        raise
    except _FILE_FAULTS as exc:
        raise GuardInputError(f"cannot read {path} to the end: {_describe(exc)} (after {n:,} records); the file is "
                              f"truncated or corrupt: re-create or re-download it") from exc


def _is_tsv(path: str) -> bool:
    """The name says tab-separated (``.tsv``, ``.tab``, compressed or not): read with tabs, never guessed."""
    name = path.lower()
    for comp in COMPRESSED_SUFFIXES:
        name = name[: -len(comp)] if name.endswith(comp) else name
    return name.endswith((".tsv", ".tab"))


def _describe(exc: BaseException) -> str:
    msg = str(exc) or "no details"
    return f"{type(exc).__name__}: {msg}"


def _read_json(path: str, max_chars: int) -> Iterator[Any]:
    from .jsonstream import iter_json_records

    def open_text():
        return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors="strict")

    for i, rec in enumerate(iter_json_records(open_text, name=path, max_item_chars=8 * max_chars + (1 << 20))):
        yield rec if _is_record(rec) else BadRecord("not_a_record", f"element {i}")


def _is_record(v: Any) -> bool:
    """Objects are records and strings are text records; ``null`` is judged by the guard (``invalid/none``)."""
    return v is None or isinstance(v, (dict, str))


def _read_parquet(path: str) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    except pa.ArrowException as exc:
        raise GuardInputError(f"cannot read the Parquet file {path}: {_describe(exc)}") from exc


def _read_datasets(path: str, split: Optional[str]) -> Iterator[Any]:
    import datasets

    try:
        obj = datasets.load_from_disk(path)
    except Exception as exc:  # noqa: BLE001 - any failure of the library to load the folder is a damaged input
        raise GuardInputError(f"cannot load the saved datasets folder {path}: {_describe(exc)}; its state.json, "
                              f"dataset_info.json or data files are damaged: save the dataset again") from exc
    if isinstance(obj, datasets.DatasetDict):
        if split is None:
            if len(obj) != 1:
                raise ConfigError(f"{path!r} holds splits {list(obj)}; pass --split NAME")
            split = next(iter(obj))
        if split not in obj:
            raise ConfigError.bad("split", split, f"one of {list(obj)}")
        obj = obj[split]
    for start in range(0, len(obj), 4096):
        try:
            cols = obj[start : start + 4096]
        except Exception as exc:  # noqa: BLE001 - as above: the data files do not read
            raise GuardInputError(f"cannot read rows {start:,}+ of the saved datasets folder {path}: "
                                  f"{_describe(exc)}") from exc
        n = len(next(iter(cols.values()))) if cols else 0
        for j in range(n):
            yield {k: v[j] for k, v in cols.items()}


class _NotFinite(ValueError):
    """A float literal too large for a float (``1e400``): the record holds ``inf``, so its line is not handed on."""


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf or -inf (a literal never gives NaN)
        raise _NotFinite(text)
    return value


#: the white space JSON allows around a value
_JSON_WS = " \t\n\r"


def _line_decoder(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """``decoder.decode`` for a JSONL line: the same value, or the same :class:`json.JSONDecodeError`.

    A line that starts with its value (the usual shape) is handed to the decoder's scanner at once, and
    what follows the value is checked for white space only; ``decode`` would first match white space with a
    regular expression at both ends (a quarter of the reading time of a line of 5-30 words). A line that
    starts with white space goes to ``decode`` itself.
    """
    scan, decode = decoder.scan_once, decoder.decode

    def loads(line: str) -> Any:
        if line[:1] in _JSON_WS:  # white space first (or an empty line): the decoder's own path
            return decode(line)
        try:
            value, end = scan(line, 0)
        except StopIteration as err:  # no value at the start (what raw_decode raises for it)
            raise json.JSONDecodeError("Expecting value", line, err.value) from None
        if end != len(line) and line[end:].strip(_JSON_WS):
            raise json.JSONDecodeError("Extra data", line, end)
        return value

    return loads


#: the UTF-8 byte order mark, skipped at the start of a JSONL or CSV file
_BOM = b"\xef\xbb\xbf"


def _undecodable(exc: BaseException) -> str:
    """Why Python's JSON decoder gave up on valid-looking JSON (what a message says of it)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply for Python's JSON decoder"
    return f"{exc}".split(";", 1)[0]


def _read_jsonl(path: str, lines: Optional[Deque[Tuple[Any, Optional[str]]]] = None, *,
                _parts: Optional[List[bytes]] = None, _first: int = 1) -> Iterator[Any]:
    # with ``lines``: a float literal that overflows to inf is caught, so that its line is not handed on (the
    # scan writes non-finite floats as strings); such a line is decoded again without the check.
    # ``_parts``: the lines of one file line that holds CR-only line ends (old Mac files), read in its place
    decode = _line_decoder(json.JSONDecoder() if lines is None else json.JSONDecoder(parse_float=_finite_float))
    shift = 0  # lines met as CR-only line ends so far: added to the line numbers named in drops
    with _open_binary(path) if _parts is None else contextlib.nullcontext(_parts) as fh:
        for lineno, raw in enumerate(fh, _first):
            if lineno == 1 and raw.startswith(_BOM):  # a UTF-8 byte order mark (Windows tools write one)
                raw = raw[len(_BOM):]
            if not raw or raw.isspace():  # a blank line (what ``not raw.strip()`` says, without copying the line)
                continue
            rec: Any
            line: Optional[str] = None
            try:
                line = raw.decode("utf-8")
                try:
                    rec = decode(line)
                except _NotFinite:
                    rec, line = json.loads(line), None
                if type(rec) is not dict and not _is_record(rec):
                    rec, line = BadRecord("not_a_record", f"line {lineno + shift}"), None
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if _parts is None and raw.startswith(_BOM):  # files joined with cat: the next one's byte order
                    # mark starts a line (until 2026-12-07 its record was dropped as invalid/json)
                    yield from _read_jsonl(path, lines, _parts=[raw[len(_BOM):]], _first=lineno + shift)
                    continue
                parts = _cr_lines(raw, decode) if _parts is None else None
                if parts is not None:  # CR-only line ends: each part is a line (JSON strings hold no raw CR)
                    yield from _read_jsonl(path, lines, _parts=parts, _first=lineno + shift)
                    shift += len(parts) - 1
                    continue
                why = "not_utf8" if isinstance(exc, UnicodeDecodeError) else "json"
                rec, line = BadRecord(why, f"line {lineno + shift}"), None
            except (ValueError, RecursionError) as exc:  # an integer over 4,300 digits, nesting past the limit
                rec, line = BadRecord("json", f"line {lineno + shift} ({_undecodable(exc)})"), None
            if lines is not None:
                lines.append((rec, None if line is None else line.rstrip("\r\n")))
            yield rec


def _cr_lines(raw: bytes, decode: Callable[[str], Any]) -> Optional[List[bytes]]:
    """The lines of ``raw`` split at CR-only line ends, when it holds some and one of them is JSON, else None
    (a raw CR inside a damaged JSON string leaves the line one invalid line, as before)."""
    parts = raw.rstrip(b"\r\n").split(b"\r")
    if len(parts) > 1:
        for part in parts:
            try:
                decode(part.decode("utf-8"))
                return parts
            except _NotFinite:
                return parts
            except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, ... are ValueErrors
                continue
    return None
