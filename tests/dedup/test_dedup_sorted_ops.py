"""The NumPy shortcuts of the index code give exactly what the torch operations they replace give:
sorted_unique (torch.unique), live_positions (the live entries of a small-set table), and ExactDedup's grouping
of a chunk's digests by their first half (np.unique over whole 16-byte rows)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from torchdataguard.dedup.exact import first_rows
from torchdataguard.dedup.distinct import live_positions, np_distinct, sorted_unique


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 5000])
def test_sorted_unique_is_torch_unique(dtype, n):
    g = torch.Generator().manual_seed(n)
    x = torch.randint(-50, 50 if n < 100 else 2**30, (n,), generator=g).to(dtype)
    if n > 10:
        x[: n // 3] = x[n // 3 : 2 * (n // 3)]  # repeats
    u = sorted_unique(x)
    assert u.dtype == torch.unique(x).dtype and torch.equal(u, torch.unique(x))
    u, c = sorted_unique(x, counts=True)
    ru, rc = torch.unique(x, return_counts=True)
    assert torch.equal(u, ru) and torch.equal(c, rc) and c.dtype == rc.dtype


def test_sorted_unique_leaves_other_tensors_to_torch():
    x = torch.tensor([[3, 1], [3, 1]])
    assert torch.equal(sorted_unique(x), torch.unique(x))
    f = torch.tensor([2.5, 1.0, 2.5])
    assert torch.equal(sorted_unique(f), torch.unique(f))


def _reference(table, dead, also):
    pos = table[table >= 0].to(torch.int64)
    if dead is not None:
        pos = pos[~torch.isin(pos, dead)]
    if also is not None:
        pos = torch.cat([pos, also])
    return torch.unique(pos)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("npool_scale", [1, 10**6])  # a small pool (marked) and a huge one (sorted)
def test_live_positions_are_the_sorted_live_entries(seed, npool_scale):
    g = torch.Generator().manual_seed(seed)
    npool = 3000
    entries = torch.randperm(npool, generator=g)[:900]
    entries = torch.cat([entries, entries[:40]])  # positions re-added after they died: in the table twice
    table = torch.full((1400,), -1, dtype=torch.int32)
    table[torch.randperm(1400, generator=g)[: entries.numel()]] = entries.to(torch.int32)
    dead = torch.unique(entries[40:140]) if seed % 3 else None
    used = set(entries.tolist())
    free = torch.tensor([p for p in range(npool) if p not in used][:50]) if seed % 2 else None
    got = live_positions(table, dead, free, npool * npool_scale if npool_scale > 1 else npool)
    assert got.dtype == torch.int64 and torch.equal(got, _reference(table, dead, free))


def testfirst_rows_of_digests_match_whole_row_grouping():
    rng = np.random.default_rng(0)
    keys = rng.integers(-2**62, 2**62, size=(400, 2))
    keys[100:150] = keys[0:50]  # exact repeats
    keys[200:210, 0] = keys[300:310, 0]  # same first half, another second half: another digest
    rows = np.ascontiguousarray(keys).view(np.dtype((np.void, 16))).ravel()
    _, first, inv = np.unique(rows, return_index=True, return_inverse=True)
    assert first_rows(keys).tolist() == first[inv.ravel()].tolist()
    plain = keys[:190]
    assert first_rows(plain).tolist() == list(range(100)) + list(range(50)) + list(range(150, 190))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64])
def test_np_distinct_is_np_unique(dtype):
    rng = np.random.default_rng(3)
    for shape in [(0,), (1,), (9,), (4, 5), (3000,)]:
        a = rng.integers(0, 200, size=shape).astype(dtype)
        got = np_distinct(a)
        assert got.dtype == np.unique(a).dtype and got.tolist() == np.unique(a).tolist()


def test_keying_non_ascii_text_imports_no_numpy_ma():
    """np.unique imports numpy.ma on its first call (a few ms of every scan); the dedup stages do without it."""
    import subprocess
    import sys

    code = ("import sys, torchdataguard as tdg\n"
            "texts = ['Caf\\u00e9 na\\u00efve \\u00c9t\\u00e9 r\\u00e9sum\\u00e9 text number %d' % i for i in range(50)]\n"
            "texts += ['\\u6570\\u636e\\u53bb\\u91cd\\u6d4b\\u8bd5\\u6587\\u672c%d' % i for i in range(50)]\n"
            "texts += ['zero\\u200bwidth \\u0130stanbul \\uff21\\uff22 %d' % i for i in range(50)]\n"
            "exs = [tdg.Example(i, t, t) for i, t in enumerate(texts)]\n"
            "for st in (tdg.ExactDedup(), tdg.NearDedup()):\n"
            "    assert st.decide(exs, st.keyer()(exs)) == [None] * 150\n"
            "print('numpy.ma' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
