"""The quarantine file: one JSON line per dropped example (id, reason, matched, and the record unless withheld)."""
from __future__ import annotations

import os
import threading
from typing import IO, Any, Callable, Dict, Optional

from ..errors import StateError
from .jsonable import json_line, to_jsonable
from .stage import Drop, Example

__all__ = ["QuarantineSink"]


class QuarantineSink:
    """Writes dropped records, one JSON object per line: ``{"id", "reason", "matched", "record"}``.

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
        self._fh: Optional[IO[str]] = open(self.path, "a", encoding="utf-8", newline="")
        self._fresh = not append  # empty the file before the first line (unless resumed or appending)
        self.bytes = 0 if self._fresh else os.path.getsize(self.path)
        self.lines = 0 if self._fresh else _count_lines(self.path, self.bytes)
        self._lock = threading.Lock()

    def _start(self) -> None:
        if self._fresh and self._fh is not None:
            self._fh.flush()
            os.truncate(self.path, 0)
            self._fresh = False

    def write(self, ex: Example, drop: Drop, *, withhold: bool = False) -> None:
        row: Dict[str, Any] = {"id": to_jsonable(ex.id), "reason": drop.reason}
        if drop.matched is not None:
            row["matched"] = to_jsonable(drop.matched)
        if drop.score is not None:
            row["score"] = round(float(drop.score), 4)
        if self.include_record:
            if (withhold or drop.reason.startswith("pii/")) and not self.include_pii:
                row["record"] = None
                row["withheld"] = ("may hold personal data (dropped before or by the PII stage); not written "
                                   "(include_pii=True / --dropped-pii writes it)")
            else:
                rec = ex.record if self.record_hook is None else self.record_hook(ex.record)
                row["record"] = to_jsonable(rec)
        line = json_line(row) + "\n"
        with self._lock:
            if self._fh is None:
                raise StateError(f"quarantine sink {self.path} is closed")
            self._start()
            self._fh.write(line)
            self.lines += 1
            self.bytes += len(line.encode("utf-8", "surrogatepass"))

    def resume(self, nbytes: int, nlines: int) -> None:
        """Continue the file a saved run wrote: keep its first ``nbytes`` (``nlines`` lines), drop any later
        lines (their examples are decided again), then append. Raises :class:`StateError` when the file does
        not start with what the saved run wrote."""
        with self._lock:
            problem = self._resume_problem(nbytes, nlines)
            if problem:
                raise StateError(problem)
            os.truncate(self.path, nbytes)
            self._fresh = False
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
            self._fresh = True
            self.bytes = self.lines = 0

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._start()
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._start()
                self._fh.close()
                self._fh = None

    def __getstate__(self):  # the sink lives in the main process only
        raise TypeError("QuarantineSink cannot be pickled: it belongs to the main process")


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


