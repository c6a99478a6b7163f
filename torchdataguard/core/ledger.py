"""The ledger: every example the pipeline has seen is kept, or dropped with a reason.

Invariant: ``kept + dropped == seen`` at all times. An example met again (a later epoch: the same id and
the same content fingerprint) replays its first decision and is counted under ``replayed``, never twice; a
record that reuses an id with other content is another example (counted under ``ids/reused``).
"""
from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, IO, List, Optional

import torch

from ..errors import StateError
from .memo import DROPPED, KEPT, DecisionMemo
from .stage import Drop, Example

__all__ = ["DecisionMemo", "Ledger", "QuarantineSink", "json_line", "to_jsonable"]

#: counter of examples that reused the id of an earlier example with other content (each is its own example)
REUSED_ID = "ids/reused"


def json_line(obj: Any) -> str:
    """One JSON line, UTF-8 where possible; strings with lone surrogates are written as escapes."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    return line


def to_jsonable(obj: Any) -> Any:
    """Best-effort conversion of a record to JSON-able values (tensors to lists, bytes to text)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="replace")
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        try:
            return obj.item()
        except Exception:  # noqa: BLE001 - fall through to repr
            pass
    return repr(obj)


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


class _Reservoir:
    """A bounded, seeded sample of a score's values plus exact running min, max, mean and count."""

    def __init__(self, cap: int = 5000, seed: int = 0) -> None:
        self.cap = cap
        self.values: List[float] = []
        self.n = 0
        self.total = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self._rng = random.Random(seed)

    def add(self, v: float) -> None:
        if not math.isfinite(v):
            return
        self.n += 1
        self.total += v
        self.lo = min(self.lo, v)
        self.hi = max(self.hi, v)
        if len(self.values) < self.cap:
            self.values.append(v)
        else:
            j = self._rng.randrange(self.n)
            if j < self.cap:
                self.values[j] = v

    def summary(self) -> Dict[str, Any]:
        if not self.n:
            return {"count": 0}
        vals = sorted(self.values)

        def q(p: float) -> float:
            return vals[min(len(vals) - 1, int(p * (len(vals) - 1) + 0.5))]

        return {"count": self.n, "min": self.lo, "max": self.hi, "mean": self.total / self.n,
                "p05": q(0.05), "p25": q(0.25), "p50": q(0.5), "p75": q(0.75), "p95": q(0.95)}

    def to_json(self) -> Dict[str, Any]:
        return {"cap": self.cap, "values": self.values, "n": self.n, "total": self.total,
                "lo": self.lo if self.n else None, "hi": self.hi if self.n else None}

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "_Reservoir":
        r = cls(d.get("cap", 5000))
        r.values = list(d.get("values", []))
        r.n = int(d.get("n", 0))
        r.total = float(d.get("total", 0.0))
        r.lo = d["lo"] if d.get("lo") is not None else math.inf
        r.hi = d["hi"] if d.get("hi") is not None else -math.inf
        return r


class Ledger:
    """Counts and remembers what happened to every example.

    Attributes:
        seen / kept / dropped: examples met for the first time, and their fate.
        replayed: examples met again (a later epoch) whose first decision was replayed.
        by_reason: drops by reason (``duplicate/near``, ``invalid/empty`` ...).
        counts: stage counters (``pii/email`` detections ...), never the detected values.
        matches: ``(id, matched, reason, score)`` for duplicates, up to ``max_matches`` kept in memory.

    Example:
        >>> led = Ledger()
        >>> led.record(Example(0, "a"), None); led.record(Example(1, "a"), Drop("duplicate/exact", matched=0))
        >>> (led.seen, led.kept, led.dropped, dict(led.by_reason))
        (2, 1, 1, {'duplicate/exact': 1})
    """

    def __init__(self, *, quarantine: QuarantineSink | None = None, remember: bool = True,
                 max_matches: int = 100_000, score_sample: int = 2000) -> None:
        self.quarantine = quarantine
        self.remember = remember
        self.max_matches = max_matches
        self.score_sample = score_sample
        self.reset()

    def reset(self) -> None:
        self.seen = 0
        self.kept = 0
        self.dropped = 0
        self.replayed = 0
        self.by_reason: Counter = Counter()
        self.counts: Counter = Counter()
        self.scores: Dict[str, _Reservoir] = {}
        self.matches: List[List[Any]] = []
        self.matches_truncated = 0
        self.memo = DecisionMemo()
        self.busy_seconds = 0.0
        self.started_at = time.time()

    # -- decisions ---------------------------------------------------------------------------------
    def replay(self, id_: Any) -> int:
        """The decision remembered for the first example met under ``id_`` (0 when new), whatever its content."""
        if not self.remember:
            return 0
        return self.memo.get(id_)

    def lookup(self, id_: Any, fingerprint: int) -> int:
        """0 when the example ``(id_, fingerprint)`` is new, else its remembered decision (1 kept, 2 dropped).

        An id met again with another fingerprint (other content) is a new example: it is never given the
        decision of the example that first used the id.
        """
        if not self.remember:
            return 0
        return self.memo.lookup(id_, fingerprint)

    def record(self, ex: Example, drop: Optional[Drop], *, withhold: bool = False) -> None:
        """Account for an example met for the first time (``withhold``: keep its content out of the quarantine)."""
        self.seen += 1
        for k, v in ex.counts.items():
            self.counts[k] += v
        for k, v in ex.scores.items():
            r = self.scores.get(k)
            if r is None:
                r = self.scores[k] = _Reservoir(self.score_sample, seed=len(self.scores))
            r.add(float(v))
        if self.remember and self.memo.set(ex.id, KEPT if drop is None else DROPPED, ex.fingerprint):
            self.counts[REUSED_ID] += 1
        if drop is None:
            self.kept += 1
            return
        self.dropped += 1
        self.by_reason[drop.reason] += 1
        if drop.matched is not None:
            if len(self.matches) < self.max_matches:
                self.matches.append([to_jsonable(ex.id), to_jsonable(drop.matched), drop.reason,
                                     None if drop.score is None else round(float(drop.score), 4)])
            else:
                self.matches_truncated += 1
        if self.quarantine is not None:
            self.quarantine.write(ex, drop, withhold=withhold)

    def record_replay(self) -> None:
        self.replayed += 1

    def add_counts(self, counts: Dict[str, int]) -> None:
        for k, v in counts.items():
            self.counts[k] += v

    # -- reporting ---------------------------------------------------------------------------------
    def check(self) -> None:
        if self.kept + self.dropped != self.seen:
            raise StateError(f"ledger invariant broken: kept {self.kept} + dropped {self.dropped} != seen {self.seen}")

    def summary(self) -> Dict[str, Any]:
        self.check()
        by_stage: Counter = Counter()
        for reason, n in self.by_reason.items():
            by_stage[reason.split("/", 1)[0]] += n
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": self.dropped,
            "replayed": self.replayed,
            "dropped_by_reason": dict(sorted(self.by_reason.items())),
            "dropped_by_stage": dict(sorted(by_stage.items())),
            "counts": dict(sorted(self.counts.items())),
            "scores": {k: v.summary() for k, v in sorted(self.scores.items())},
            "busy_seconds": round(self.busy_seconds, 4),
            "examples_per_second": round(self.seen / self.busy_seconds, 1) if self.busy_seconds > 0 else None,
        }

    def score_values(self) -> Dict[str, List[float]]:
        """The sampled values of every score (for plots)."""
        return {k: list(v.values) for k, v in self.scores.items()}

    # -- state -------------------------------------------------------------------------------------
    def state(self) -> tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
        tensors, meta = self.memo.state()
        meta.update({
            "seen": self.seen, "kept": self.kept, "dropped": self.dropped, "replayed": self.replayed,
            "by_reason": dict(self.by_reason), "counts": dict(self.counts),
            "scores": {k: v.to_json() for k, v in self.scores.items()},
            "matches": self.matches, "matches_truncated": self.matches_truncated,
            "busy_seconds": self.busy_seconds,
        })
        q = self.quarantine
        if q is not None:
            q.flush()
            meta["quarantine"] = {"lines": q.lines, "bytes": q.bytes}
        return tensors, meta

    def load(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        saved_q = meta.get("quarantine")
        if self.quarantine is not None and saved_q:  # the quarantine file goes on where the saved run was
            self.quarantine.resume(int(saved_q["bytes"]), int(saved_q["lines"]))
        self.seen = int(meta["seen"])
        self.kept = int(meta["kept"])
        self.dropped = int(meta["dropped"])
        self.replayed = int(meta.get("replayed", 0))
        self.by_reason = Counter(meta.get("by_reason", {}))
        self.counts = Counter(meta.get("counts", {}))
        self.scores = {k: _Reservoir.from_json(v) for k, v in meta.get("scores", {}).items()}
        self.matches = [list(m) for m in meta.get("matches", [])]
        self.matches_truncated = int(meta.get("matches_truncated", 0))
        self.busy_seconds = float(meta.get("busy_seconds", 0.0))
        self.memo.load(tensors, meta)
        self.check()
