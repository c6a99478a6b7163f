"""The ledger: every example the pipeline has seen is kept, or dropped with a reason.

Invariant: ``kept + dropped == seen`` at all times. An example met again (a later epoch: the same id and
the same content fingerprint) replays its first decision and is counted under ``replayed``, never twice; a
record that reuses an id with other content is another example (counted under ``ids/reused``).
"""
from __future__ import annotations

import time
from collections import Counter
from operator import methodcaller
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import StateError
from .jsonable import to_jsonable
from .memo import DROPPED, KEPT, DecisionMemo
from .reservoir import Reservoir as _Reservoir
from .stage import Drop, Example

if TYPE_CHECKING:  # pragma: no cover
    from .quarantine import QuarantineSink

__all__ = ["Ledger", "Outcome"]

#: what happened to one example: (example, drop or None when kept, replayed)
Outcome = Tuple[Example, Optional[Drop], bool]

#: counter of examples that reused the id of an earlier example with other content (each is its own example)
REUSED_ID = "ids/reused"

_values = methodcaller("values")


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

    def lookup_many(self, ids: Sequence[Any], fingerprints: Sequence[int]) -> List[int]:
        """:meth:`lookup` of several examples (one NumPy pass when the ids are positions)."""
        if not self.remember:
            return [0] * len(ids)
        return self.memo.lookup_many(ids, fingerprints)

    def record(self, ex: Example, drop: Optional[Drop], *, withhold: bool = False, memo: bool = True,
               scores: bool = True) -> None:
        """Account for an example met for the first time (``withhold``: keep its content out of the quarantine;
        ``memo=False``: the caller remembers its decision itself, as :meth:`record_chunk` does for a whole chunk;
        ``scores=False``: the caller adds its scores itself, as :meth:`record_chunk` does for a chunk)."""
        self.seen += 1
        for k, v in ex.counts.items():
            self.counts[k] += v
        if scores:
            for k, v in ex.scores.items():
                r = self.scores.get(k)
                if r is None:
                    r = self.scores[k] = _Reservoir(self.score_sample, seed=len(self.scores))
                r.add(float(v))
        if memo and self.remember and self.memo.set(ex.id, KEPT if drop is None else DROPPED, ex.fingerprint):
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

    def record_chunk(self, exs: Sequence[Example], pre_drop: Sequence[Optional[Tuple[int, Drop]]],
                     replay: Sequence[int], drops: Sequence[Optional[Drop]], steps: Sequence[int], *,
                     dup_of: Optional[Mapping[int, int]] = None, scrub_step: Optional[int] = None) -> List[Outcome]:
        """Account for a decided chunk and return its outcomes; every way of deciding ends here.

        Per example ``i``: ``replay[i]`` is 0 (met for the first time), the remembered decision (``KEPT`` or
        ``DROPPED``: a replay, counted under ``replayed``) or -1 (the same example as row ``dup_of[i]`` of this
        chunk); ``drops[i]`` and ``steps[i]`` are what the index stages decided and at which stage position;
        ``pre_drop[i]`` is the record stage (or validation, step -1) that dropped it in phase one. A replayed
        keep is kept only if no record stage dropped it this time (fail closed).

        The withhold rule: when the guard scrubs personal data at stage position ``scrub_step``, a record
        dropped at or before that position was not scrubbed (or was dropped for what it holds), so the
        quarantine file gets its id and reason without its content.

        Example:
            >>> led = Ledger()
            >>> out = led.record_chunk([Example(0, "a"), Example(1, "a")], [None, None], [0, 0],
            ...                        [None, Drop("duplicate/exact", matched=0)], [-1, 0])
            >>> [(ex.id, d and d.reason, replayed) for ex, d, replayed in out], led.kept, led.dropped
            ([(0, None, False), (1, 'duplicate/exact', False)], 1, 1)
        """
        out: List[Outcome] = []
        first_met: List[int] = []  # rows met for the first time: remembered together, in order, at the end
        scored: List[Mapping[str, Any]] = []  # the scores of the rows counted, in order: added together at the end
        try:
            self._record_rows(exs, pre_drop, replay, drops, steps, dup_of, scrub_step, out, first_met, scored)
        finally:  # also when a row fails (a quarantine write on a full disk): the memo holds every counted row
            if scored:
                self._add_scores(scored)
            if self.remember and first_met:
                reused = self.memo.set_many([exs[i].id for i in first_met],
                                            [KEPT if out[i][1] is None else DROPPED for i in first_met],
                                            [exs[i].fingerprint for i in first_met])
                if any(reused):
                    self.counts[REUSED_ID] += sum(reused)
        return out

    def _record_rows(self, exs: Sequence[Example], pre_drop: Sequence[Optional[Tuple[int, Drop]]],
                     replay: Sequence[int], drops: Sequence[Optional[Drop]], steps: Sequence[int],
                     dup_of: Optional[Mapping[int, int]], scrub_step: Optional[int], out: List[Outcome],
                     first_met: List[int], scored: List[Mapping[str, Any]]) -> None:
        """The row loop of :meth:`record_chunk`: appends to ``out`` and, for rows met for the first time (counted
        here, remembered by the caller), to ``first_met``, and their scores to ``scored`` (added by the caller)."""
        for i, ex in enumerate(exs):
            code = replay[i]
            if code == -1:  # the same example (id and content) as an earlier row of this chunk
                code = KEPT if out[dup_of[i]][1] is None else DROPPED  # type: ignore[index]
            pre = pre_drop[i]
            if code:
                self.replayed += 1
                if code == KEPT and pre is not None:  # fail closed: a record stage dropped it this time
                    out.append((ex, pre[1], True))
                else:
                    out.append((ex, None if code == KEPT else Drop("replayed"), True))
                continue
            drop, step = drops[i], steps[i]
            if drop is None and pre is not None:
                step, drop = pre
            out.append((ex, drop, False))
            first_met.append(i)
            if drop is None and not ex.counts and not ex.scores:  # what record() does for a plain keep
                self.seen += 1
                self.kept += 1
                continue
            withhold = drop is not None and scrub_step is not None and step <= scrub_step
            if ex.scores:
                scored.append(ex.scores)
            self.record(ex, drop, withhold=withhold, memo=False, scores=False)

    def _add_scores(self, scored: Sequence[Mapping[str, Any]]) -> None:
        """Add the scores of several examples, in order: what :meth:`record` does with each one's scores (the same
        reservoirs, made in the same order with the same seeds, fed the same values in the same order), a score at
        a time."""
        cols: Dict[str, List[Any]] = {}  # score -> its values in row order; keys in the order they first appear
        i, n = 0, len(scored)
        while i < n:  # runs of rows with the same scores in the same order (a profile's rules): one column each
            keys = tuple(scored[i])
            j = i + 1
            while j < n and tuple(scored[j]) == keys:
                j += 1
            for k, vals in zip(keys, zip(*map(_values, scored[i:j]))):
                col = cols.get(k)
                if col is None:
                    cols[k] = list(vals)
                else:
                    col.extend(vals)
            i = j
        for k, col in cols.items():
            r = self.scores.get(k)
            if r is None:
                r = self.scores[k] = _Reservoir(self.score_sample, seed=len(self.scores))
            r.add_many(list(map(float, col)))

    def revoke(self, ex: Example, drop: Drop) -> None:
        """Turn an example recorded as kept into a dropped one (it was decided kept but will never be used).

        Its content is written to the quarantine file: a kept example passed every stage, PII scrubbing too.
        """
        self.kept -= 1
        self.dropped += 1
        self.by_reason[drop.reason] += 1
        if self.remember:
            self.memo.set(ex.id, DROPPED, ex.fingerprint)
        if self.quarantine is not None:
            self.quarantine.write(ex, drop)

    def revoke_id(self, id_: Any, drop: Drop) -> bool:
        """Turn the kept example first met under ``id_`` into a dropped one, decided after it was served
        (training dynamics flagging a label issue). Later epochs of a stream replay the drop. Returns False
        (and changes nothing) when the id is unknown or already dropped. The quarantine file gets the id and
        reason with ``record: null`` (the ledger holds ids, not records).

        Example:
            >>> led = Ledger(); led.record(Example(5, "a"), None)
            >>> led.revoke_id(5, Drop("quality/label_issue")), led.kept, led.dropped, led.revoke_id(5, Drop("x"))
            (True, 0, 1, False)
        """
        code, fp = self.memo.first(id_)
        if code != KEPT:
            return False
        self.kept -= 1
        self.dropped += 1
        self.by_reason[drop.reason] += 1
        self.memo.set(id_, DROPPED, fp)
        if self.quarantine is not None:
            self.quarantine.write(Example(id_, None), drop)
        return True

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
    def state_dict(self) -> Dict[str, Any]:
        """``{"tensors": ..., "meta": ...}``: the decisions as NumPy arrays, the counters as JSON (and the quarantine
        position, after flushing the file)."""
        memo = self.memo.state_dict()
        tensors, meta = memo["tensors"], memo["meta"]
        meta.update({
            "seen": self.seen, "kept": self.kept, "dropped": self.dropped, "replayed": self.replayed,
            "by_reason": dict(self.by_reason), "counts": dict(self.counts),
            "scores": {k: v.state_dict() for k, v in self.scores.items()},
            "matches": self.matches, "matches_truncated": self.matches_truncated,
            "busy_seconds": self.busy_seconds,
        })
        q = self.quarantine
        if q is not None:
            q.flush()
            meta["quarantine"] = {"lines": q.lines, "bytes": q.bytes}
        return {"tensors": tensors, "meta": meta}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (checked first by :func:`~torchdataguard.core.guard_state.check_ledger_state`);
        a quarantine file goes on where the saved run left it."""
        tensors, meta = state["tensors"], state["meta"]
        saved_q = meta.get("quarantine")
        if self.quarantine is not None and saved_q:  # the quarantine file goes on where the saved run was
            self.quarantine.resume(int(saved_q["bytes"]), int(saved_q["lines"]))
        self.seen = int(meta["seen"])
        self.kept = int(meta["kept"])
        self.dropped = int(meta["dropped"])
        self.replayed = int(meta.get("replayed", 0))
        self.by_reason = Counter(meta.get("by_reason", {}))
        self.counts = Counter(meta.get("counts", {}))
        self.scores = {}
        for k, v in meta.get("scores", {}).items():
            self.scores[k] = _Reservoir(v.get("cap", 5000))
            self.scores[k].load_state_dict(v)
        self.matches = [list(m) for m in meta.get("matches", [])]
        self.matches_truncated = int(meta.get("matches_truncated", 0))
        self.busy_seconds = float(meta.get("busy_seconds", 0.0))
        self.memo.load_state_dict({"tensors": tensors, "meta": meta})
        self.check()
