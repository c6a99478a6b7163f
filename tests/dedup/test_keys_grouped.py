"""A chunk of many documents is keyed KEY_GROUP documents at a time (bounded signature arrays) with the same keys
as one pass over the whole chunk."""
from __future__ import annotations

import random

import numpy as np
import pytest

from torchdataguard.dedup import keys_numpy
from torchdataguard.dedup.hashing import text_shingle_hashes
from torchdataguard.dedup.keys_numpy import grouped_numpy_keys, numpy_keys

LIMITS = (12, 14, 17)


def _texts(n: int, seed: int = 0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)]
    # 1 to 40 words: single-shingle, exact-set and LSH documents, with repeats
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 40))) for _ in range(n)]


@pytest.mark.parametrize("group", [7, 64, 1000])
def test_grouped_keys_equal_one_pass(monkeypatch, group):
    texts = _texts(1003)
    h, d = text_shingle_hashes(texts, 5)
    whole = numpy_keys(h, d, len(texts), 128, 1, LIMITS)
    monkeypatch.setattr(keys_numpy, "KEY_GROUP", group)
    grouped = grouped_numpy_keys(h, d, len(texts), 128, 1, LIMITS)
    for a, b in zip(whole, grouped):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_documents_without_shingles_and_unordered_input_are_keyed_alike(monkeypatch):
    texts = _texts(50, seed=3)
    h, d = text_shingle_hashes(texts, 5)
    keep = d < 20  # documents 20-59 (of 60) get no shingle: size 0, invalid
    whole = numpy_keys(h[keep], d[keep], 60, 128, 1, LIMITS)
    monkeypatch.setattr(keys_numpy, "KEY_GROUP", 8)
    for a, b in zip(whole, grouped_numpy_keys(h[keep], d[keep], 60, 128, 1, LIMITS)):
        assert np.array_equal(a, b)
    o = np.random.default_rng(0).permutation(h.size)  # not in runs by document: sorted first
    for a, b in zip(numpy_keys(h[o], d[o], 50, 128, 1, LIMITS), grouped_numpy_keys(h[o], d[o], 50, 128, 1, LIMITS)):
        assert np.array_equal(a, b)
