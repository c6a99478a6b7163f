"""The quarantine file: one JSON line per dropped example (id, reason, matched, and the record unless withheld)."""
from __future__ import annotations

import os
import threading
import weakref
from typing import IO, Any, Callable, Dict, Optional

from ..errors import StateError
from .jsonable import json_line, to_jsonable
from .stage import Drop, Example

__all__ = ["QuarantineSink"]


class QuarantineSink:
    """Writes dropped records, one JSON object per line: ``{"id", "reason", "matched", "record"}``, and
    ``"line"`` (1-based, every line counted) for an input line that could not be read (``Drop.line``).

    The file is opened for appending and emptied only when the first line is written (or it is closed), so
    that a guard resumed from a saved state can first keep the lines of the run that saved it
    (:meth:`resume`). ``lines`` and ``bytes`` count what the file holds.

    Example:
        >>> import tempfile, os, json
        >>> path = os.path.join(tempfile.mkdtemp(), "dropped.jsonl")
        >>> sink = QuarantineSink(path)
        >>> sink.write(Example(3, {"text": "x"}), Drop("duplicate/exact", matched=1))
        >>> sink.close()
        >>> json.loads(open(path).read())["matched"]
        1
    """

    def __init__(self, path: str | os.PathLike, *, include_record: bool = True, include_pii: bool = False,
                 append: bool = False, record_hook: Optional[Callable[[Any], Any]] = None) -> None:
        self.path = os.fspath(path)
        self.include_record = include_record
        #: records dropped *because* they hold personal data (reason ``pii/...``) are withheld unless asked for
        self.include_pii = include_pii
        #: applied to a record before it is written (``hash_ids``: the id field holds the hashed id)
        self.record_hook = record_hook
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        self._f = _File(self.path, open(self.path, "a", encoding="utf-8", newline=""), fresh=not append)
        self.bytes = 0 if self._f.fresh else os.path.getsize(self.path)
        self.lines = 0 if self._f.fresh else _count_lines(self.path, self.bytes)
        self._lock = self._f.lock
        # a guard never closed: the file is flushed and closed when the sink is collected or the interpreter
        # exits (no ResourceWarning, no line left in the buffer); the finalizer holds the file, not the sink.
        # It never empties the file: a sink that wrote nothing (a guard whose load failed) leaves it as it was
        self._closer = weakref.finalize(self, self._f.release)

    @property
    def _fh(self) -> Optional[IO[str]]:
        return self._f.fh

    def _start(self) -> None:
        self._f.start()

    def write(self, ex: Example, drop: Drop, *, withhold: bool = False) -> None:
        row: Dict[str, Any] = {"id": to_jsonable(ex.id), "reason": drop.reason}
        if drop.matched is not None:
            row["matched"] = to_jsonable(drop.matched)
        if drop.score is not None:
            row["score"] = round(float(drop.score), 4)
        if drop.line is not None:
            row["line"] = drop.line
        if self.include_record:
            if (withhold or drop.reason.startswith("pii/")) and not self.include_pii:
                row["record"] = None
                row["withheld"] = ("may hold personal data (dropped before or by the PII stage); not written "
                                   "(include_pii=True / --dropped-pii writes it)")
            else:
                rec = ex.record if self.record_hook is None else self.record_hook(ex.record)
                # a flat dict of str keys and str, int or None values (a JSONL line's usual record) is already
                # what to_jsonable would copy it into: dumped as it is (json.dumps never changes it)
                row["record"] = rec if type(rec) is dict and _plain(rec) else to_jsonable(rec)
        line = json_line(row) + "\n"
        with self._lock:
            if self._fh is None:
                raise StateError(f"quarantine sink {self.path} is closed")
            self._start()
            self._fh.write(line)
            self.lines += 1
            self.bytes += len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))

    def resume(self, nbytes: int, nlines: int) -> None:
        """Continue the file a saved run wrote: keep its first ``nbytes`` (``nlines`` lines), drop any later
        lines (their examples are decided again), then append. Raises :class:`StateError` when the file does
        not start with what the saved run wrote."""
        with self._lock:
            problem = self._resume_problem(nbytes, nlines)
            if problem:
                raise StateError(problem)
            os.truncate(self.path, nbytes)
            self._f.fresh = False
            self.bytes, self.lines = nbytes, nlines

    def check_resume(self, nbytes: int, nlines: int) -> Optional[str]:
        """Why :meth:`resume` would refuse ``(nbytes, nlines)`` (``None`` when it would not); reads, never changes."""
        with self._lock:
            return self._resume_problem(nbytes, nlines)

    def _resume_problem(self, nbytes: int, nlines: int) -> Optional[str]:
        if self._fh is None:
            return f"quarantine sink {self.path} is closed"
        self._fh.flush()
        try:
            size = os.path.getsize(self.path)
        except OSError:  # removed since it was opened
            size = 0
        fix = (f"resume with the quarantine file the saved run wrote (quarantine={self.path!r} is appended to), "
               f"or with quarantine=None")
        if size < nbytes:
            return (f"quarantine file {self.path} holds {size} bytes, but the saved state had written {nbytes} "
                    f"bytes ({nlines} dropped records) to its quarantine file; {fix}")
        if _count_lines(self.path, nbytes) != nlines:
            return (f"quarantine file {self.path} does not start with the {nlines} lines the saved state wrote to "
                    f"its quarantine file (it is another file); {fix}")
        return None

    def restart(self) -> None:
        """Empty the file before the next line (a fresh run with the same guard)."""
        with self._lock:
            self._f.fresh = True
            self.bytes = self.lines = 0

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._start()
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._f.start()  # a fresh sink empties the file, even when closed before writing a line
        self._closer()  # closes once: a later close, collection or exit does nothing

    def __getstate__(self):  # the sink lives in the main process only
        raise TypeError("QuarantineSink cannot be pickled: it belongs to the main process")


class _File:
    """The open quarantine file and whether it is still to be emptied: what the sink's finalizer closes."""

    def __init__(self, path: str, fh: IO[str], *, fresh: bool) -> None:
        self.path = path
        self.fh: Optional[IO[str]] = fh
        self.fresh = fresh  # empty the file before the first line (unless resumed or appending)
        self.lock = threading.Lock()

    def start(self) -> None:
        if self.fresh and self.fh is not None:
            self.fh.flush()
            os.truncate(self.path, 0)
            self.fresh = False

    def release(self) -> None:
        """Flush and close the file (what was written stays; nothing is emptied)."""
        with self.lock:
            if self.fh is not None:
                self.fh.close()
                self.fh = None


_PLAIN = (str, int, type(None))


def _plain(rec: Dict[Any, Any]) -> bool:
    """True when every key of ``rec`` is a str and every value a str, int (bool too) or None, exactly."""
    for k, v in rec.items():
        if type(k) is not str or (type(v) not in _PLAIN and type(v) is not bool):
            return False
    return True


def _count_lines(path: str, nbytes: int) -> int:
    """Newlines among the first ``nbytes`` bytes of ``path``."""
    n = 0
    with open(path, "rb") as fh:
        left = nbytes
        while left > 0:
            block = fh.read(min(left, 1 << 20))
            if not block:
                break
            n += block.count(b"\n")
            left -= len(block)
    return n


