"""Dedup on a CUDA device decides exactly as on the CPU (the torch paths of the tables and densification)."""
import random

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.dedup import probing
from torchdataguard.dedup.minhash import densify, densify_numpy, minhash_bins

from short_texts import sentences

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _texts(n=3000, seed=0):
    rng = random.Random(seed)
    base = list(sentences(1, 30, 2000))
    long = [" ".join(rng.sample(base, 12)) for _ in range(400)]
    out = []
    for _ in range(n):
        r = rng.random()
        if out and r < 0.2:
            w = out[rng.randrange(len(out))].split()
            w[rng.randrange(len(w))] = "changed"
            out.append(" ".join(w))
        else:
            out.append(rng.choice(base) if r < 0.7 else rng.choice(long))
    return out


def _decisions(device, records, chunk_size=256):
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device=device, chunk_size=chunk_size, progress=False)
    return [None if d is None else (d.reason, d.matched, round(d.score, 5)) for _, d, _ in g.process(records)]


def test_text_decisions_equal_cpu():
    texts = _texts()
    got = _decisions("cuda", texts)
    assert got == _decisions("cpu", texts)
    assert sum(d is not None for d in got) > 300


def test_token_id_decisions_equal_cpu():
    g = torch.Generator().manual_seed(0)
    base = torch.randint(1000, 30000, (600, 64), generator=g)
    rows = [{"input_ids": base[i % 600].clone()} for i in range(900)]
    for r in rows[600:]:
        r["input_ids"][torch.randint(0, 64, (2,), generator=g)] = 7
    assert _decisions("cuda", rows) == _decisions("cpu", rows)


def test_densify_on_cuda_equals_numpy():
    g = torch.Generator().manual_seed(1)
    k = torch.randint(1, 300, (500,), generator=g)
    doc = torch.repeat_interleave(torch.arange(500), k)
    h = torch.randint(-2**62, 2**62, (doc.numel(),), generator=g)
    _, sig = minhash_bins(h, doc, 500, 128, 1)
    want = torch.from_numpy(densify_numpy(sig.numpy(), 128, 1))
    assert torch.equal(densify(sig.cuda(), 128, 1).cpu(), want)


def test_probe_tables_on_cuda_find_every_value():
    T = 4099
    table = torch.full((T,), -1, dtype=torch.int32, device="cuda")
    homes = torch.randint(0, 64, (3000,), device="cuda")  # long chains, wrapping claims
    values = torch.arange(3000, dtype=torch.int32, device="cuda")
    probing.linear_probe_insert(table, homes, values)
    assert sorted(table[table >= 0].tolist()) == list(range(3000))
    v = values.to(torch.int64)
    q, e = probing.chain_matches(table, homes, v, 1, torch.zeros_like(homes), v)
    assert sorted(zip(q.tolist(), e.tolist())) == [(i, i) for i in range(3000)]
