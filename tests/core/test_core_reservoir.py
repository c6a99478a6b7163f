"""Reservoir.add_many and Ledger.add_scores (a chunk's scores added a score at a time) give exactly what adding
each value, example by example, gives: the same count, sum, bounds, sample and reservoir seeds."""
from __future__ import annotations

import math
import random

from torchdataguard.core.ledger import Ledger
from torchdataguard.core.reservoir import Reservoir
from torchdataguard.core.stage import Example


def _one_by_one(cap, seed, batches):
    r = Reservoir(cap, seed=seed)
    for b in batches:
        for v in b:
            r.add(v)
    return r


def _in_batches(cap, seed, batches):
    r = Reservoir(cap, seed=seed)
    for b in batches:
        r.add_many(list(b))
    return r


def _same(a: Reservoir, b: Reservoir) -> None:
    assert a.state_dict() == b.state_dict()
    assert repr(a.total) == repr(b.total) and repr(a.lo) == repr(b.lo) and repr(a.hi) == repr(b.hi)  # -0.0 vs 0.0
    assert a._rng.getstate() == b._rng.getstate()  # the same draws: later values replace the same slots


def test_add_many_is_add_of_each_value_in_order() -> None:
    rng = random.Random(7)
    for cap in (1, 5, 50):
        # sums whose rounding depends on the order (1e16 + 1 ...), equal bounds of both signs of zero, and batches
        # that fill the sample, straddle its end and lie beyond it
        vals = [rng.choice([0.0, -0.0, 1e16, 1.0, -1e16, 0.1, rng.random(), -rng.random()]) for _ in range(400)]
        cuts = sorted(rng.sample(range(1, len(vals)), 25))
        batches = [vals[a:b] for a, b in zip([0] + cuts, cuts + [len(vals)])]
        _same(_one_by_one(cap, 3, batches), _in_batches(cap, 3, batches))


def test_add_many_skips_nan_and_infinities_as_add_does() -> None:
    batches = [[1.0, math.nan, 2.0], [math.inf, -3.0], [1e308, 1e308, 5.0], [4.0, -math.inf]]
    _same(_one_by_one(3, 0, batches), _in_batches(3, 0, batches))


def test_ledger_chunk_scores_equal_record_by_record() -> None:
    rng = random.Random(1)
    exs = []
    for i in range(300):
        # runs of key orders (the same keys in another order too), and a key first met late
        keys = ["c", "d", "a"] if i % 7 == 0 else ["b", "a", "c"] if i % 11 == 0 else ["a", "b", "c"]
        exs.append(Example(i, "t", "t", scores={k: rng.choice([rng.random(), 0.0, -0.0, 3]) for k in keys}))
    one = Ledger(score_sample=40)
    for ex in exs:
        one.record(ex, None)
    chunk = Ledger(score_sample=40)
    for lo in range(0, 300, 64):
        part = exs[lo:lo + 64]
        chunk.record_chunk(part, [None] * len(part), [0] * len(part), [None] * len(part), [0] * len(part))
    assert list(one.scores) == list(chunk.scores)  # made in the same order (their seeds)
    for k in one.scores:
        _same(one.scores[k], chunk.scores[k])
    assert one.summary()["scores"] == chunk.summary()["scores"]


def test_add_many_draws_as_randrange_does() -> None:
    # past the sample's end every value draws a slot: the draws are Random.randrange's, value by value
    for cap in (1, 3, 1000):
        vals = [float(i) for i in range(5000)]
        a = Reservoir(cap, seed=11)
        a.add_many(vals)
        rng = random.Random(11)
        sample = vals[:cap]
        for n, v in enumerate(vals[cap:], cap + 1):
            j = rng.randrange(n)
            if j < cap:
                sample[j] = v
        assert a.values == sample and a._rng.getstate() == rng.getstate()


class _FailingSink:
    """A quarantine whose second write fails (a full disk)."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, ex, drop, withhold=False) -> None:
        self.writes += 1
        if self.writes == 2:
            raise OSError("disk full")


def test_a_failing_row_keeps_the_scores_of_the_rows_counted_before_it() -> None:
    from torchdataguard.core.stage import Drop

    exs = [Example(i, "t", "t", scores={"s": float(i)}) for i in range(6)]
    drops = [None, Drop("x/y"), None, Drop("x/y"), None, Drop("x/y")]
    one = Ledger(quarantine=_FailingSink())
    try:
        for ex, d in zip(exs, drops):
            one.record(ex, d)
    except OSError:
        pass
    chunk = Ledger(quarantine=_FailingSink())
    try:
        chunk.record_chunk(exs, [None] * 6, [0] * 6, drops, [0] * 6)
    except OSError:
        pass
    assert one.seen == chunk.seen == 4
    assert one.scores["s"].state_dict() == chunk.scores["s"].state_dict()  # rows 0-3, the failing one too
