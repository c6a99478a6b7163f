"""A score's summary in the ledger: :class:`Reservoir`, a bounded seeded sample plus exact count, sum, min and max."""
from __future__ import annotations

import math
import random
from functools import reduce
from operator import add
from typing import Any, Dict, List, Mapping

__all__ = ["Reservoir"]


class Reservoir:
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
        if v - v != 0.0:  # nan or an infinity (what ``not math.isfinite(v)`` says, without the call)
            return
        n = self.n = self.n + 1
        self.total += v
        if v < self.lo:  # what min() and max() keep (the first of equal values)
            self.lo = v
        if v > self.hi:
            self.hi = v
        values = self.values
        if len(values) < self.cap:
            values.append(v)
        else:
            j = self._rng.randrange(n)
            if j < self.cap:
                values[j] = v

    def add_many(self, vals: List[float]) -> None:
        """:meth:`add` of every value of ``vals`` (floats) in order: the same count, sum, bounds and sample, in C-level
        passes (a chunk's values of one score at once)."""
        if not vals:
            return
        total = reduce(add, vals, self.total)  # the same additions in the same order as add()
        if total - total != 0.0:  # a nan or an infinity among them (or a sum that overflows): one by one
            for v in vals:
                self.add(v)
            return
        self.total = total
        lo, hi = min(vals), max(vals)  # the first of equal values, as add() keeps them
        if lo < self.lo:
            self.lo = lo
        if hi > self.hi:
            self.hi = hi
        values, cap, n = self.values, self.cap, self.n
        room = cap - len(values)
        if len(vals) <= room:
            values.extend(vals)
            self.n = n + len(vals)
            return
        if room > 0:
            values.extend(vals[:room])
            n += room
        # self._rng.randrange(n), as Random draws it (k = n.bit_length() bits until below n), without its
        # argument checks: a third of the cost (a test pins the draws against randrange)
        getrandbits = self._rng.getrandbits
        for v in vals[max(room, 0):]:
            n += 1
            k = n.bit_length()
            j = getrandbits(k)
            while j >= n:
                j = getrandbits(k)
            if j < cap:
                values[j] = v
        self.n = n

    def summary(self) -> Dict[str, Any]:
        if not self.n:
            return {"count": 0}
        vals = sorted(self.values)

        def q(p: float) -> float:
            return vals[min(len(vals) - 1, int(p * (len(vals) - 1) + 0.5))]

        return {"count": self.n, "min": self.lo, "max": self.hi, "mean": self.total / self.n,
                "p05": q(0.05), "p25": q(0.25), "p50": q(0.5), "p75": q(0.75), "p95": q(0.95)}

    def state_dict(self) -> Dict[str, Any]:
        return {"cap": self.cap, "values": self.values, "n": self.n, "total": self.total,
                "lo": self.lo if self.n else None, "hi": self.hi if self.n else None}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.cap = d.get("cap", 5000)
        self.values = list(d.get("values", []))
        self.n = int(d.get("n", 0))
        self.total = float(d.get("total", 0.0))
        self.lo = d["lo"] if d.get("lo") is not None else math.inf
        self.hi = d["hi"] if d.get("hi") is not None else -math.inf
