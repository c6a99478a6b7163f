"""DecisionMemo.lookup_many / set_many (the ledger's per-chunk NumPy path) answer and store exactly what
lookup / set do one by one, on every kind of id: positions, reused ids, large ids that live in the dict,
unknown fingerprints, bools, strings and NumPy integers."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from torchdataguard.core.memo import DROPPED, KEPT, DecisionMemo


def _state(m: DecisionMemo):
    st = m.state_dict()
    return ({k: v.tolist() for k, v in st["tensors"].items()}, st["meta"])


def _ids(rng: random.Random, n: int, kind: str):
    if kind == "positions":
        start = rng.randrange(0, 5000)
        return list(range(start, start + n))
    if kind == "shuffled":
        return rng.sample(range(0, 3 * n), n)
    if kind == "repeats":  # the same id twice in one batch
        return [rng.randrange(0, n // 2) for _ in range(n)]
    if kind == "large":  # ids far beyond the tensors: the dict
        return [rng.randrange(0, 1 << 40) for _ in range(n)]
    if kind == "mixed":
        return [rng.choice([rng.randrange(0, 200), f"s{rng.randrange(50)}", np.int64(rng.randrange(50)), True,
                            -rng.randrange(1, 5)]) for _ in range(n)]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["positions", "shuffled", "repeats", "large", "mixed"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_batches_equal_one_by_one(kind, seed):
    rng = random.Random(seed)
    one, many = DecisionMemo(), DecisionMemo()
    for _ in range(6):  # several batches, so later ones meet earlier ids (replays, reused ids, growth)
        n = rng.choice([31, 64, 300])
        ids = _ids(rng, n, kind if rng.random() < 0.8 else "positions")
        fps = [rng.choice([0, 7, 8, rng.randrange(1, 1 << 62)]) for _ in ids]
        assert many.lookup_many(ids, fps) == [one.lookup(i, f) for i, f in zip(ids, fps)]
        vals = [rng.choice([KEPT, DROPPED]) for _ in ids]
        assert many.set_many(ids, vals, fps) == [one.set(i, v, f) for i, v, f in zip(ids, vals, fps)]
        assert _state(many) == _state(one)
        assert len(many) == len(one) and many.reused == one.reused


def test_set_many_grows_the_tensors_as_one_by_one():
    one, many = DecisionMemo(), DecisionMemo()
    ids = list(range(0, 100_000, 97)) + [250_000]
    fps = [i + 1 for i in ids]
    many.set_many(ids, [KEPT] * len(ids), fps)
    for i, f in zip(ids, fps):
        one.set(i, KEPT, f)
    assert many._dense.size == one._dense.size
    assert np.array_equal(many._dense_fp, one._dense_fp)


def test_a_failing_row_leaves_every_counted_row_remembered(tmp_path, monkeypatch):
    """A quarantine write that fails in the middle of a chunk (a full disk) propagates, and the rows counted
    before it are remembered too, so the state stays consistent and loads (review finding)."""
    import torchdataguard as tdg
    from torchdataguard.core.quarantine import QuarantineSink

    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, quarantine=str(tmp_path / "q.jsonl"),
                  chunk_size=64)
    texts = [f"t{i % 30}" for i in range(64)]  # 34 duplicates in one chunk
    orig, calls = QuarantineSink.write, [0]

    def failing(self, *a, **k):
        calls[0] += 1
        if calls[0] == 10:
            raise OSError(28, "No space left on device")
        return orig(self, *a, **k)

    monkeypatch.setattr(QuarantineSink, "write", failing)
    with pytest.raises(OSError):
        g.filter(texts)
    monkeypatch.setattr(QuarantineSink, "write", orig)
    led = g.ledger
    assert led.seen > 0 and len(led.memo) == led.seen
    state = g.state_dict()
    state["ledger"]["meta"].pop("quarantine", None)
    tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=64).load_state_dict(state)
