"""NearDedup's CPU keys (NumPy path) against the torch path and against a plain per-document reference.

The keys decide everything near-dedup does (signatures for the LSH index, exact sets for short texts), so the
NumPy path must give the torch path's keys bit for bit, and both must equal the definition computed one
document at a time in plain Python: SplitMix64 of each shingle hash xor the seed, the high 32 bits pick the
bin, the low 32 bits are the value, each bin keeps its minimum; an empty bin takes the value of the first
filled bin of its probe sequence; 4-bit values; sorted distinct sets under ``K3`` shingles.
"""
import random

import numpy as np
import pytest
import torch

from torchdataguard.core.stage import Example
from torchdataguard.dedup import xp
from torchdataguard.dedup.hashing import text_shingle_hashes
from torchdataguard.dedup.keys_numpy import numpy_keys, numpy_shingle_sets
from torchdataguard.dedup.minhash import probe_table
from torchdataguard.dedup.near import NearDedup
from torchdataguard.dedup.near_config import NearDedupConfig
from torchdataguard.dedup.near_keys import keys_from_shingles, torch_keys_from_shingles

from short_texts import sentences
from splitmix_ref import minhash_bins, splitmix
from zh_stream import passages, pieces, short_lines

M64 = (1 << 64) - 1


def _docs(n_en: int = 2400) -> list:
    """Real documents of 1 word to a few hundred words, Chinese passages and pieces, and edge cases."""
    rng = random.Random(13)
    short = list(sentences(1, 40, n_en))
    longer = [" ".join(short[i : i + k]) for i, k in zip(range(0, len(short), 7), [3, 8, 20, 45] * 200)]
    zh = passages() + short_lines() + pieces(passages(), 2, 60)
    one_word = [s.split()[0] for s in short[:200] if s.split()]
    edge = ["", "   ", "!!! ...", "a", "Ａｂｃ，", "数", "x y", "naïve café 東京タワー", "\x00 nul \x00", "ไทย ภาษา"]
    docs = short + longer + zh + one_word + edge * 3
    rng.shuffle(docs)
    return docs


_splitmix = splitmix


def _reference_keys(hashes: np.ndarray, doc: np.ndarray, n: int, cfg: NearDedupConfig):
    """The keys of each document, one at a time (plain Python)."""
    P, seed = cfg.num_perm, cfg.seed
    K, _, K3 = cfg.limits
    probes = probe_table(P, seed).tolist()
    salt = (seed * 0x5851F42D4C957F2D + 0x14057B7EF767814F) & M64
    per_doc = [[] for _ in range(n)]
    for h, d in zip(hashes.view(np.uint64).tolist(), doc.tolist()):
        per_doc[d].append(_splitmix(h ^ salt))
    nib, size, sets = [], [], []
    for xs in per_doc:
        bins, filled = minhash_bins(xs, P)
        distinct = sorted({x - (1 << 64) if x >> 63 else x for x in xs})  # as int64
        cnt = min(len(distinct), K3) if len(filled) < K3 else K3
        size.append(cnt)
        sets.append(distinct if cnt < K3 else [])
        if cnt >= K:
            dense = [bins[b] if bins[b] is not None else
                     bins[next((p for p in probes[b] if bins[p] is not None), filled[0])] for b in range(P)]
            nib.append([v & 15 for v in dense])
        else:
            nib.append([0] * P)
    return nib, size, sets


@pytest.mark.parametrize("kw", [{}, {"text_shingles": "words"}, {"text_shingles": "chars"},
                                {"threshold": 0.7, "num_perm": 64, "seed": 5}])
def test_numpy_keys_equal_the_torch_path_on_real_documents(kw):
    cfg = NearDedup(**kw).cfg
    docs = _docs()
    assert len(docs) > 2500 and any(len(d.split()) > 100 for d in docs)
    for a in range(0, len(docs), 700):
        h, d = text_shingle_hashes(docs[a : a + 700], cfg.ngram, char_ngram=cfg.char_ngram or cfg.ngram,
                                   mode=cfg.text_shingles)
        n = len(docs[a : a + 700])
        got = keys_from_shingles(h, d, n, cfg)
        want = torch_keys_from_shingles(torch.from_numpy(h.view(np.int64)), torch.from_numpy(d), n, cfg)
        for f in ("nib", "valid", "size", "sets", "off"):
            g, w = getattr(got, f), getattr(want, f)
            assert xp.dtype_name(g) == xp.dtype_name(w) and tuple(g.shape) == tuple(w.shape), f
            assert g.tolist() == w.tolist(), f


def test_numpy_keys_equal_the_per_document_definition():
    cfg = NearDedupConfig()
    docs = _docs(600)[:900]
    h, d = text_shingle_hashes(docs, cfg.ngram, char_ngram=cfg.char_ngram)
    nib, size, sets, off = numpy_keys(h, d, len(docs), cfg.num_perm, cfg.seed, cfg.limits)
    r_nib, r_size, r_sets = _reference_keys(h, d, len(docs), cfg)
    assert size.tolist() == r_size
    assert [sets[off[i] : off[i + 1]].tolist() for i in range(len(docs))] == r_sets
    assert nib.tolist() == r_nib
    K, _, K3 = cfg.limits
    assert (size >= K).sum() > 100 and ((size > 0) & (size < K)).sum() > 100  # both kinds of key are covered


def test_numpy_sets_fall_back_when_two_hashes_share_their_top_bits():
    # the two hashes of document 0 differ only in their lowest bit: the one-word sort cannot order them
    x = np.array([7 << 20 | 1, 7 << 20, 3, -5, 7 << 20 | 1], dtype=np.int64)
    doc = np.array([0, 0, 1, 1, 0])
    size, sets, off = numpy_shingle_sets(x, doc, np.array([True, True]), 8)
    assert size.tolist() == [2, 2] and off.tolist() == [0, 2, 4]
    assert sets.tolist() == [7 << 20, 7 << 20 | 1, -5, 3]


def test_keyer_keys_with_text_and_token_rows_mixed():
    stage = NearDedup()
    keyer = stage.keyer()
    texts = list(sentences(3, 30, 60))
    exs = [Example(i, t, t) for i, t in enumerate(texts)]
    exs.append(Example(len(texts), {"input_ids": list(range(40))}, None))
    keys = keyer(exs)
    alone = keyer(exs[:-1])
    assert keys.nib[:-1].tolist() == alone.nib.tolist() and keys.size[:-1].tolist() == alone.size.tolist()
    assert bool(keys.valid[-1]) and int(keys.size[-1]) == stage.cfg.limits[2]
