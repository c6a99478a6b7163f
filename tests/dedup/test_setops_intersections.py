"""Exact set intersections on the CPU: the dense path (short sets) and the one-sort hash path (long ones) equal
a brute-force count, and the hash path falls back to the exact two-key sort when two different (pair, value)
entries share a hash."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from torchdataguard.dedup import setops
from torchdataguard.dedup.setops import intersections


def _sets(rng, n, universe):
    vals, off = [], [0]
    for _ in range(n):
        s = sorted(rng.sample(universe, rng.randint(0, 12)))
        vals += s
        off.append(len(vals))
    return torch.tensor(vals, dtype=torch.int64), torch.tensor(off, dtype=torch.int64)


def _brute(a_vals, a_off, a_idx, b_vals, b_off, b_idx):
    out = []
    for i, j in zip(a_idx.tolist(), b_idx.tolist()):
        A = set(a_vals[a_off[i]:a_off[i + 1]].tolist())
        B = set(b_vals[b_off[j]:b_off[j + 1]].tolist())
        out.append(len(A & B))
    return out


@pytest.mark.parametrize("dense_width", [64, 0], ids=["dense", "hash"])
def test_intersections_equal_a_brute_force_count(monkeypatch, dense_width):
    """Sets of up to 12 values (the largest int64, which the dense path pads rows with, among them): with
    ``DENSE_WIDTH`` 64 every batch takes the dense path, with 0 the hash path."""
    monkeypatch.setattr(setops, "DENSE_WIDTH", dense_width)
    rng = random.Random(0)
    universe = [rng.getrandbits(64) - 2**63 for _ in range(40)] + [-2**63, 2**63 - 1, 0, -1]
    av, ao = _sets(rng, 300, universe)
    bv, bo = _sets(rng, 200, universe)
    assert intersections(av, ao, torch.tensor([0]), bv, bo, torch.tensor([0])).tolist() == _brute(
        av, ao, torch.tensor([0]), bv, bo, torch.tensor([0]))
    a_idx = torch.tensor([rng.randrange(300) for _ in range(2000)])
    b_idx = torch.tensor([rng.randrange(200) for _ in range(2000)])
    got = intersections(av, ao, a_idx, bv, bo, b_idx)
    assert got.dtype == torch.int64 and got.tolist() == _brute(av, ao, a_idx, bv, bo, b_idx)


def test_a_hash_collision_falls_back_to_the_exact_sort(monkeypatch):
    rng = random.Random(1)
    universe = list(range(-20, 20))
    av, ao = _sets(rng, 50, universe)
    a_idx = torch.tensor([rng.randrange(50) for _ in range(300)])
    b_idx = torch.tensor([rng.randrange(50) for _ in range(300)])
    want = _brute(av, ao, a_idx, av, ao, b_idx)
    calls = []

    def few_hashes(x):  # 8 hash values: different entries collide all the time
        calls.append(1)
        return x & np.uint64(7)

    monkeypatch.setattr(setops, "np_mix64", few_hashes)
    monkeypatch.setattr(setops, "DENSE_WIDTH", 0)
    assert setops._intersections_by_hash(np.array([1, 9]), np.array([0, 0]), 1) is None  # 1 and 9 collide
    assert intersections(av, ao, a_idx, av, ao, b_idx).tolist() == want and calls


def test_prefix_positions_with_late_values_keep_what_the_sorted_order_keeps():
    """With some values marked late, each set's prefix is cut in the order (not late, then late; ascending
    within each): the positions kept equal those of the stable two-key sort this replaced."""
    from torchdataguard.dedup.setops import prefix_lengths, prefix_positions, segment_positions

    def by_sorting(vals, starts, lens, threshold, late):
        plen = prefix_lengths(lens, threshold)
        pos, owner = segment_positions(starts, lens)
        if not bool(late(vals[pos]).any()):
            return segment_positions(starts, plen)
        o = torch.argsort(owner * 2 + late(vals[pos]).to(torch.int64), stable=True)
        pos, owner = pos[o], owner[o]
        keep = torch.arange(pos.numel()) - (torch.cumsum(lens, 0) - lens)[owner] < plen[owner]
        return pos[keep], owner[keep]

    rng = random.Random(2)
    for _ in range(1500):
        n = rng.randint(1, 25)
        lens = torch.tensor([rng.randint(0, 12) for _ in range(n)])
        vals = torch.randint(0, 40, (int(lens.sum()) + 5,))
        starts = torch.tensor([rng.randint(0, 5) for _ in range(n)]) + torch.cumsum(lens, 0) - lens
        marked = torch.tensor(rng.sample(range(40), rng.randint(1, 20)))
        threshold = rng.choice([0.5, 0.8, 0.9, 1.0])
        got = prefix_positions(vals, starts, lens, threshold, lambda v: torch.isin(v, marked))
        want = by_sorting(vals, starts, lens, threshold, lambda v: torch.isin(v, marked))
        assert sorted(zip(*(t.tolist() for t in got))) == sorted(zip(*(t.tolist() for t in want)))


def test_sets_of_narrower_integers_are_counted_as_before():
    """The hash path read the values' bytes as 64-bit integers: int32 sets raised a NumPy ValueError (or, for an
    odd count, a broadcast error); they take the exact sort, as they did before the hash path existed."""
    rng = random.Random(2)
    universe = list(range(-30, 30))
    for dtype in (torch.int32, torch.int16, torch.uint8):
        av, ao = _sets(rng, 40, [u for u in universe if dtype != torch.uint8 or u >= 0])
        av = av.to(dtype)
        a_idx = torch.tensor([rng.randrange(40) for _ in range(101)])
        b_idx = torch.tensor([rng.randrange(40) for _ in range(101)])
        assert intersections(av, ao, a_idx, av, ao, b_idx).tolist() == _brute(av, ao, a_idx, av, ao, b_idx)


def test_dense_intersections_of_empty_sets_and_an_empty_pool():
    """Pairs with an empty set count 0, also when every set is empty (nothing to gather from)."""
    none = torch.zeros(0, dtype=torch.int64)
    off = torch.zeros(4, dtype=torch.int64)
    assert intersections(none, off, torch.tensor([0, 2]), none, off, torch.tensor([1, 1])).tolist() == [0, 0]
    av, ao = torch.tensor([2**63 - 1]), torch.tensor([0, 0, 1])
    assert intersections(av, ao, torch.tensor([0, 1, 1]), av, ao, torch.tensor([1, 0, 1])).tolist() == [0, 0, 1]


def test_segment_positions_equal_repeat_interleave():
    """Owners counted from the segment ends (empty segments first, inside and last) equal repeat_interleave."""
    from torchdataguard.dedup.setops import segment_owner, segment_positions

    rng = random.Random(3)
    for _ in range(300):
        lens = torch.tensor([rng.choice([0, 0, 1, 2, 5]) for _ in range(rng.randint(1, 12))])
        starts = torch.tensor([rng.randint(0, 50) for _ in range(lens.numel())])
        owner = torch.repeat_interleave(torch.arange(lens.numel()), lens)
        pos = torch.cat([torch.arange(s, s + n) for s, n in zip(starts.tolist(), lens.tolist())])
        got_pos, got_owner = segment_positions(starts, lens)
        assert got_owner.tolist() == owner.tolist() == segment_owner(lens).tolist()
        assert got_pos.tolist() == pos.tolist()
