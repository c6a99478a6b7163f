"""The vectorised hash tables and densification: NumPy (CPU) and torch paths against plain references."""
import random

import numpy as np
import pytest
import torch

from torchdataguard.dedup import minhash, probing
from torchdataguard.dedup.minhash import EMPTY, densify, densify_numpy, densify_torch, minhash_bins


def _reference_densify(sig: torch.Tensor, num_perm: int, seed: int) -> torch.Tensor:
    """One probe at a time, as the densification is defined."""
    probes = minhash.probe_table(num_perm, seed)
    out = sig.clone()
    for d in range(sig.shape[0]):
        filled = [b for b in range(num_perm) if int(sig[d, b]) != EMPTY]
        if not filled:
            continue
        for b in range(num_perm):
            if int(sig[d, b]) != EMPTY:
                continue
            src = next((int(p) for p in probes[b].tolist() if int(sig[d, int(p)]) != EMPTY), filled[0])
            out[d, b] = sig[d, src]
    return out


@pytest.mark.parametrize("num_perm", [8, 64, 128])
def test_densify_paths_match_the_probe_by_probe_definition(num_perm):
    g = torch.Generator().manual_seed(num_perm)
    n = 60
    k = torch.randint(1, 3 * num_perm, (n,), generator=g)
    k[:4] = torch.tensor([1, 2, 12, num_perm // 3])
    doc = torch.repeat_interleave(torch.arange(n), k)
    h = torch.randint(-2**62, 2**62, (doc.numel(),), generator=g)
    _, sig = minhash_bins(h, doc, n, num_perm, 1)
    sig[5] = EMPTY  # a document without shingles stays empty
    ref = _reference_densify(sig, num_perm, 1)
    assert torch.equal(densify(sig, num_perm, 1), ref)
    assert torch.equal(densify_torch(sig, num_perm, 1), ref)
    assert torch.equal(torch.from_numpy(densify_numpy(sig.numpy(), num_perm, 1)), ref)
    assert bool((ref[5] == EMPTY).all()) and not bool((ref[torch.arange(n) != 5] == EMPTY).any())


def _chains_ok(table: np.ndarray, homes: np.ndarray, values: np.ndarray) -> bool:
    """Every value sits in its chain: all slots from its home to its place are filled."""
    T = table.size
    where = {int(v): i for i, v in enumerate(table.tolist()) if v >= 0}
    for h, v in zip(homes.tolist(), values.tolist()):
        p = where[v]
        span = range(h, p + 1) if p >= h else list(range(h, T)) + list(range(0, p + 1))
        if any(table[s] < 0 for s in span):
            return False
    return True


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_linear_probe_insert_places_every_value_in_its_chain(path, monkeypatch):
    """NumPy arrays take the NumPy implementation, tensors the torch one; the tables answer alike."""
    rng = random.Random(3)
    T = 1031
    kind = (lambda a: torch.as_tensor(a)) if path == "torch" else np.asarray
    table = kind(np.full(T, -1, dtype=np.int32))
    homes, values = [], []
    for chunk in range(6):  # clustered homes, wrapping past the end, up to a load of 0.75
        m = 129
        h = kind(np.array([rng.choice([T - 2, T - 1, 0, 5, rng.randrange(T)]) for _ in range(m)], dtype=np.int64))
        v = kind(np.arange(chunk * m, (chunk + 1) * m, dtype=np.int32))
        probing.linear_probe_insert(table, h, v)
        homes.append(np.asarray(h))
        values.append(np.asarray(v))
    homes_n, values_n = np.concatenate(homes), np.concatenate(values)
    assert sorted(table[table >= 0].tolist()) == values_n.tolist()  # each value exactly once
    assert _chains_ok(np.asarray(table), homes_n, values_n)
    stored = values_n.astype(np.int64) * 7  # what each entry "holds"
    for matches, k in ((probing._matches_numpy, np.asarray), (probing._matches_torch, torch.as_tensor),
                       (probing.chain_matches, kind)):
        q, e = matches(k(np.asarray(table)), k(homes_n), k(stored), 1, k(np.zeros_like(homes_n)), k(stored))
        assert sorted(zip(q.tolist(), e.tolist())) == [(i, i) for i in range(values_n.size)]


@pytest.mark.parametrize("load", [0.3, 0.79, 0.999])
def test_filling_an_empty_table_in_one_pass_keeps_every_chain(load, monkeypatch):
    """``empty=True`` (a table being rebuilt): the values sharing a home (up to 40), homes near the end whose
    places wrap past it, and a nearly full table: each value once, every slot from its home to its place
    filled, and the same lookup answers as the stepwise insert."""
    rng = random.Random(4)
    T = 1031
    m = int(T * load)
    h = np.array([rng.choice([T - 3, T - 1, 0, 7, 7, rng.randrange(T), rng.randrange(T)]) for _ in range(m)])
    v = np.arange(m, dtype=np.int32)
    stepwise = []
    monkeypatch.setattr(probing, "_insert_numpy", lambda *a: stepwise.append(a[1].size) or _real_insert(*a))
    one_pass = np.full(T, -1, dtype=np.int32)
    probing.linear_probe_insert(one_pass, h, v, empty=True)
    assert sorted(one_pass[one_pass >= 0].tolist()) == v.tolist()
    assert _chains_ok(one_pass, h, v)
    assert sum(stepwise) < m  # most values placed in the one pass; those past the end went on stepwise
    if load > 0.9:
        assert stepwise  # some wrapped
    steps = np.full(T, -1, dtype=np.int32)
    _real_insert(steps, h, v)
    stored = v.astype(np.int64) * 7
    on_torch = torch.full((T,), -1, dtype=torch.int32)  # the torch implementation fills its table alike
    probing.linear_probe_insert(on_torch, torch.from_numpy(h), torch.from_numpy(v), empty=True)
    for table in (one_pass, steps, on_torch.numpy()):
        q, e = probing.chain_matches(table, h, stored, 1, np.zeros_like(h), v.astype(np.int64) * 7)
        assert sorted(zip(q.tolist(), e.tolist())) == [(i, i) for i in range(m)]


_real_insert = probing._insert_numpy


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("num_perm,bands", [(128, 16), (96, 32), (64, 4), (128, 64)])
def test_lsh_candidates_are_exactly_the_pairs_sharing_a_band(num_perm, bands, kind, monkeypatch):
    from torchdataguard.dedup import xp
    from torchdataguard.dedup.index import LSHIndex

    if kind == "torch":
        monkeypatch.setenv(xp.ARRAYS_ENV, "torch")
    else:  # the NumPy case also when the whole run forces torch arrays
        monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)
    g = torch.Generator().manual_seed(bands)
    rows = num_perm // bands
    base = torch.randint(0, 16, (40, num_perm), generator=g, dtype=torch.uint8)
    stored = base.clone()
    # near copies: a few values changed, so some bands still agree
    stored[20:] = base[:20]
    stored[20:, ::3] = torch.randint(0, 16, (20, len(range(0, num_perm, 3))), generator=g, dtype=torch.uint8)
    idx = LSHIndex(num_perm, bands)
    for a in range(0, 40, 7):  # several inserts, with table growth on the way
        idx.insert(stored[a:a + 7], list(range(a, min(a + 7, 40))))
    queries = torch.cat([base[:20], torch.randint(0, 16, (5, num_perm), generator=g, dtype=torch.uint8)])
    q, s = idx.candidates(queries)
    got = sorted(zip(q.tolist(), s.tolist()))
    want = sorted((i, j) for i in range(queries.shape[0]) for j in range(40)
                  if any(torch.equal(queries[i, b * rows:(b + 1) * rows], stored[j, b * rows:(b + 1) * rows])
                         for b in range(bands)))
    assert got == want and len(want) >= 20
    assert xp.is_tensor(idx.packed) == (kind == "torch")
    packed = idx.pack(xp.as_device(queries[:20], "cpu"))
    assert (idx.agreement(packed, xp.arange(20, 40, like=packed)).tolist()
            == (queries[:20] == stored[20:]).sum(1).tolist())
