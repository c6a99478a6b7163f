"""Paced chunks of wrapped streams (torchdataguard/data/pacing.py): small first, then sized to a time budget in
DataLoader workers and grown to the cap in the main process; decisions are those of fixed chunks."""
from __future__ import annotations

import itertools
import os
import random
from typing import Any, Dict, List

import pytest
from torch.utils.data import DataLoader, IterableDataset

import torchdataguard as tdg
from torchdataguard.data.pacing import FIRST, GROWTH, ChunkPacer

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _clock(times: List[float]):
    it = iter(times)
    return lambda: next(it)


def test_pacer_sizes_chunks_to_the_budget_within_growth_bounds():
    # chunk k takes durations[k] seconds
    durations = [0.001, 0.5, 0.05, 0.2]
    ticks = list(itertools.chain.from_iterable((10.0 * i, 10.0 * i + d) for i, d in enumerate(durations)))
    p = ChunkPacer(100_000, budget=0.05, clock=_clock(ticks))
    sizes = [p.size]
    for _ in durations:
        n = p.size
        p.start()
        p.done(n)
        sizes.append(p.size)
    # 64 in 1 ms -> 3,200 wanted, capped at 4x (256); 256 in 0.5 s -> 25.6 wanted, floored at 256/4 = 64;
    # 64 in 50 ms -> 64; 64 in 0.2 s -> 16 wanted, but never below FIRST
    assert sizes == [FIRST, FIRST * GROWTH, FIRST, FIRST, FIRST]


def test_pacer_uses_the_records_a_chunk_really_had_and_respects_the_cap():
    ticks = [0.0, 0.01, 1.0, 1.001]
    p = ChunkPacer(300, budget=0.05, clock=_clock(ticks))
    p.start()
    p.done(40)  # a chunk cut early (by characters): 40 records in 10 ms -> 200 wanted, at most 4 x 40 = 160
    assert p.size == 160
    p.start()
    p.done(160)  # 160 in 1 ms -> 8,000 wanted: 640 by growth, 300 by the cap
    assert p.size == 300


def test_pacer_without_budget_ramps_to_the_cap_and_small_caps_hold():
    p = ChunkPacer(16384, budget=None)
    sizes = [p.size]
    while sizes[-1] < 16384:
        p.start()
        p.done(p.size)
        sizes.append(p.size)
    assert sizes == [64, 256, 1024, 4096, 16384]
    assert ChunkPacer(10, budget=None).size == 10
    q = ChunkPacer(10, budget=0.05, clock=_clock([0.0, 5.0]))
    q.start()
    q.done(10)
    assert q.size == 10  # slow, but never below the cap when the cap is under FIRST


@pytest.mark.parametrize("kwargs", [{"cap": 0, "budget": None}, {"cap": 10, "budget": 0}, {"cap": 10, "budget": -1.0}])
def test_pacer_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError, match="cap=|budget="):
        ChunkPacer(**kwargs)


class _Stream(IterableDataset):
    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        self.rows = rows

    def __iter__(self):
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        return iter(self.rows[w::n])


def _rows(n: int, seed: int = 0) -> List[Dict[str, Any]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) for _ in range(n)]
    rows = []
    for i in range(n):
        # every fifth record copies an earlier one (exact), every seventh an earlier one with a word changed
        if i % 5 == 4:
            text = base[rng.randrange(i)]
        elif i % 7 == 6:
            w = base[rng.randrange(i)].split()
            w[0] = "changed"
            text = " ".join(w)
        else:
            text = base[i]
        rows.append({"id": i, "text": text})
    return rows


def _chunks_seen(guard: Any) -> List[int]:
    """Record the size of every chunk the guard decides (in the main process, also for workers' requests)."""
    sizes: List[int] = []
    decide = guard.decide

    def recording(plan, *args, **kwargs):
        sizes.append(len(plan.examples))
        return decide(plan, *args, **kwargs)

    guard.decide = recording
    return sizes


def _guard(**kw) -> Any:
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False, id_field="id", **kw)


def test_main_process_stream_ramps_its_chunks_and_decides_as_fixed_chunks():
    rows = _rows(6000)
    auto = _guard()
    sizes = _chunks_seen(auto)
    kept_auto = [r["id"] for r in auto.wrap(_Stream(rows))]
    assert sizes == [64, 256, 1024, 4096, 6000 - 64 - 256 - 1024 - 4096]
    fixed = _guard(chunk_size=16384)
    fixed_sizes = _chunks_seen(fixed)
    kept_fixed = [r["id"] for r in fixed.wrap(_Stream(rows))]
    assert fixed_sizes == [6000]
    assert kept_auto == kept_fixed
    assert 0 < len(kept_auto) < len(rows)  # the stream had duplicates to drop
    assert auto.report()["dropped_by_reason"] == fixed.report()["dropped_by_reason"]


def test_a_number_fixes_every_chunk_of_a_stream():
    g = _guard(chunk_size=500)
    sizes = _chunks_seen(g)
    list(g.wrap(_Stream(_rows(1700))))
    assert sizes == [500, 500, 500, 200]


def test_dataloader_worker_chunks_start_small_and_stay_within_growth_bounds():
    rows = _rows(5000, seed=1)
    g = _guard()
    sizes = _chunks_seen(g)
    loader = DataLoader(g.wrap(_Stream(rows)), batch_size=32, num_workers=1, collate_fn=lambda b: b)
    kept = [r["id"] for batch in loader for r in batch]
    g.close()
    assert sizes[0] == FIRST
    assert sum(sizes) == len(rows)
    # every chunk but the stream's last remainder follows the pacer's bounds
    for prev, cur in zip(sizes, sizes[1:-1]):
        assert max(FIRST, prev // GROWTH) <= cur <= prev * GROWTH
    ref = _guard(chunk_size=16384)
    assert kept == [r["id"] for r in ref.wrap(_Stream(rows))]  # one worker: the same decisions as one chunk


def test_hugging_face_streams_keep_their_map_batches_as_chunks():
    datasets = pytest.importorskip("datasets")
    rows = _rows(2500, seed=2)
    ds = datasets.IterableDataset.from_generator(lambda: iter(rows))
    g = _guard()
    sizes = _chunks_seen(g)
    kept = [r["id"] for r in g.wrap(ds)]
    assert sizes == [1024, 1024, 452]  # guard.chunk_size records a map batch, each decided whole
    assert kept == [r["id"] for r in _guard(chunk_size=16384).wrap(_Stream(rows))]
