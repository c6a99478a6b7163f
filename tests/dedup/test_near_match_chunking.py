"""Which earlier text a near drop names (and its score) does not depend on where chunks end.

Random corpora of clusters of close variants (a few words replaced, inserted or deleted), in Latin and in
Chinese script, decided with chunks of 1 (one row at a time, the reference), 3, 17 and 4,096 rows. Before rows
with a match waited for the earlier rows of their chunk (``NearDedup.waiting``), 12 of 60 such corpora named
another match at some chunk size.
"""
from __future__ import annotations

import random

import pytest
import torch

import torchdataguard as tdg
import torchdataguard.dedup.near_wait as near_wait


def corpus(seed: int, zh: bool):
    rng = random.Random(seed)
    vocab = [chr(0x4E00 + i) for i in range(300)] if zh else [f"w{i}" for i in range(300)]
    docs = []
    for _ in range(60):
        base = [rng.choice(vocab) for _ in range(rng.randint(6, 60))]
        docs.append(base)
        for _ in range(rng.randint(0, 6)):
            v = list(base)
            for _ in range(rng.randint(0, 3)):
                k, r = rng.randrange(len(v)), rng.random()
                if r < 0.4:
                    v[k] = rng.choice(vocab)
                elif r < 0.7:
                    v.insert(k, rng.choice(vocab))
                elif len(v) > 2:
                    del v[k]
            docs.append(v)
    rng.shuffle(docs)
    return [{"id": i, "text": ("" if zh else " ").join(d)} for i, d in enumerate(docs)]


def decisions(recs, chunk):
    g = tdg.Guard([tdg.NearDedup()], id_field="id", chunk_size=chunk, progress=False, device="cpu")
    return [(ex.id, None if d is None else (d.reason, d.matched, round(d.score, 9))) for ex, d, _ in g.process(recs)]


@pytest.mark.parametrize("zh", [False, True], ids=["latin", "chinese"])
def test_the_match_named_does_not_depend_on_chunking(zh):
    drops = 0
    for seed in range(20):
        recs = corpus(seed, zh)
        want = decisions(recs, 1)
        drops += sum(d is not None for _, d in want)
        for chunk in (3, 17, 4096):
            assert decisions(recs, chunk) == want, (seed, chunk)
    assert drops > 1000  # the corpora hold many near-duplicates


def sequential_waits(hit, edges, n):
    """The rule row by row, in stream order: a row waits when it could match an earlier row that is without a
    match or waits itself."""
    wait = [False] * n
    for j in range(n):
        wait[j] = any((not hit[i]) or wait[i] for i in range(j) if (i, j) in edges)
    return wait


@pytest.mark.parametrize("seed", range(40))
def test_resolve_waits_equals_the_rule_applied_row_by_row(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    if seed % 4 == 0:  # a long chain: row i could match row i - 1 only, the first row without a match
        edges = {(i - 1, i) for i in range(1, n)}
        hit = [False] + [True] * (n - 1)
    else:
        p = rng.choice([0.02, 0.1, 0.3])
        edges = {(i, j) for j in range(n) for i in range(j) if rng.random() < p}
        hit = [rng.random() < rng.choice([0.2, 0.5, 0.9]) for _ in range(n)]
    a = torch.tensor([e[0] for e in sorted(edges)], dtype=torch.int64)
    b = torch.tensor([e[1] for e in sorted(edges)], dtype=torch.int64)

    def blocked(blockers):
        out = torch.zeros(n, dtype=torch.bool)
        out[b[blockers[a]]] = True
        return out

    got = near_wait.resolve_waits(torch.tensor(hit), blocked).tolist()
    want = sequential_waits(hit, edges, n)
    for j in range(n):  # rows without a match wait exactly when blocked by an earlier undecided row
        assert got[j] == want[j], (j, hit, sorted(edges))
    if seed % 4 == 0:
        assert all(got[1:])  # the whole chain waits


def test_a_waiting_row_is_never_matched_to_a_later_row():
    """Every near drop names an earlier row (ids are stream positions here)."""
    for seed in range(10):
        for zh in (False, True):
            for rid, d in decisions(corpus(seed, zh), 4096):
                if d is not None:
                    assert d[1] < rid
