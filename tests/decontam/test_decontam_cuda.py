"""Decontamination with the evaluation index on a CUDA device decides exactly as on the CPU (the tensor path of
the bit-set and hash-set query; the CPU takes a NumPy path). Run by benchmarks/gpu_suite.sh (pytest -m gpu)."""
import random

import numpy as np
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.decontam.index import EvalIndex
from torchdataguard.decontam.ngrams import ngram_hashes

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _data(seed=0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)]
    items = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(10, 60))) for _ in range(300)]
    docs = []
    for _ in range(2000):
        w = [rng.choice(vocab) for _ in range(rng.randrange(1, 300))]
        if rng.random() < 0.2:
            it = rng.choice(items).split()
            at = rng.randrange(0, len(w) + 1)
            w[at:at] = it[rng.randrange(0, max(1, len(it) - 13)):][: rng.randrange(13, 40)]
        docs.append(" ".join(w).upper() if rng.random() < 0.1 else " ".join(w))
    return items, docs


def test_query_on_the_device_equals_the_cpu():
    items, docs = _data()
    cpu = EvalIndex.build([items], ngram=8)
    gpu = EvalIndex.build([items], ngram=8, device="cuda")
    h = ngram_hashes(docs, 8).hashes
    q = np.concatenate([h, cpu.hashes.numpy()[::5], np.random.default_rng(0).integers(-2**63, 2**63 - 1, 100_000)])
    rows_c, grams_c = cpu.query(q)
    rows_g, grams_g = gpu.query(q)
    assert rows_c.size > 0 and rows_c.tolist() == rows_g.tolist() and grams_c.tolist() == grams_g.tolist()


def test_guard_decisions_on_the_device_equal_the_cpu():
    items, docs = _data(1)

    def run(device):
        g = tdg.Guard([tdg.Decontaminate({"bench": items}, ngram=8)], device=device, chunk_size=256, progress=False)
        out = [None if d is None else (d.reason, d.matched, d.score) for _, d, _ in g.process(docs)]
        return out, g.report()["contamination"]

    got, rep = run("cuda")
    want, rep_cpu = run("cpu")
    assert any(got) and got == want and rep == rep_cpu
