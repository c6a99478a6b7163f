"""Which earlier text a near drop names (and its score) does not depend on where chunks end.

Random corpora of clusters of close variants (a few words replaced, inserted or deleted), in Latin and in
Chinese script, decided with chunks of 1 (one row at a time, the reference), 3, 17 and 4,096 rows. Before rows
with a match waited for the earlier rows of their chunk (``NearDedup.waiting``), 12 of 60 such corpora named
another match at some chunk size.
"""
from __future__ import annotations

import random

import pytest

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


@pytest.mark.parametrize("passes", [0, 1])
def test_few_passes_fall_back_to_waiting_more(monkeypatch, passes):
    """With the passes cut (0: the fall-back at once), rows wait more often and the answers stay the same."""
    recs = [corpus(seed, False) for seed in (1, 7, 8)]
    want = [decisions(r, 1) for r in recs]
    monkeypatch.setattr(near_wait, "WAIT_PASSES", passes)
    assert [decisions(r, 4096) for r in recs] == want


def test_a_waiting_row_is_never_matched_to_a_later_row():
    """Every near drop names an earlier row (ids are stream positions here)."""
    for seed in range(10):
        for zh in (False, True):
            for rid, d in decisions(corpus(seed, zh), 4096):
                if d is not None:
                    assert d[1] < rid
