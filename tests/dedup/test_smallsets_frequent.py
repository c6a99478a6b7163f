"""Short texts that share a frequent shingle (a template) cost linear time and stay exact (issue 13)."""
import random

import pytest

import torchdataguard as tdg
from torchdataguard.dedup import smallsets, xp

from short_texts import jaccard, reference, sentences, shingles


def _vocab():
    return sorted({w for t in sentences(1, 7, 3000) for w in t.lower().split() if w.isalpha()})


def _templated(n, seed=0):
    """Texts built on a few templates with slots (the template's 5-grams are shared by every text of it),
    some repeated with one slot changed (near-duplicates) or with punctuation (same shingles)."""
    rng = random.Random(seed)
    vocab = _vocab()
    heads = ["please reply to this message", "thank you for your order of", "click here to unsubscribe from",
             "your account has been updated by"]
    out = []
    for _ in range(n):
        r = rng.random()
        if out and r < 0.1:
            w = out[rng.randrange(len(out))].split()
            w[-1] = rng.choice(vocab)
            out.append(" ".join(w))
        elif out and r < 0.15:
            out.append(out[rng.randrange(len(out))].upper() + "!")
        else:
            k = rng.choice([2, 2, 3, 5, 8])
            out.append(rng.choice(heads) + " " + " ".join(rng.choice(vocab) for _ in range(k)))
    return out


def _decisions(texts, chunk_size=256):
    g = tdg.Guard([tdg.NearDedup(threshold=0.8)], device="cpu", chunk_size=chunk_size, progress=False)
    return [None if d is None else (d.matched, round(d.score, 6)) for _, d, _ in g.process(texts)]


def _want(texts):
    return [None if w is None else (w[0], round(w[1], 6)) for w in reference(texts, 0.8)]


def test_templated_short_texts_verify_a_linear_number_of_pairs(monkeypatch):
    texts = _templated(6000)
    pairs = []
    real = smallsets.intersections

    def counting(*args):
        out = real(*args)
        pairs.append(xp.numel(out))
        return out

    monkeypatch.setattr(smallsets, "intersections", counting)
    got = _decisions(texts)
    # every text shares its template's 5-grams with about a quarter of the others: checking each prefix token
    # against every stored prefix that holds it would verify millions of pairs
    assert sum(pairs) < 60 * len(texts), sum(pairs)
    sh = [shingles(t) for t in texts]
    assert all(jaccard(sh[i], sh[d[0]]) >= 0.8 for i, d in enumerate(got) if d is not None)
    assert sum(d is not None for d in got) > 300


@pytest.mark.parametrize("chunk_size", [64, 256])
def test_decisions_stay_exact_when_many_tokens_are_demoted(monkeypatch, chunk_size):
    # demote at 2 stored prefixes: nearly every template token is demoted, sets whose tokens are all demoted
    # take some back into their prefix, dead entries force rebuilds
    monkeypatch.setattr(smallsets, "DEMOTE_AT", 2)
    texts = _templated(1200, seed=1) + list(sentences(1, 12, 800))
    got = _decisions(texts, chunk_size)
    assert got == _want(texts)
    assert sum(d is not None for d in got) > 50


@pytest.mark.parametrize("demote_at", [2, 32])
def test_table_rebuilt_on_growth_holds_exactly_the_prefixes(monkeypatch, demote_at):
    # a growing table is rebuilt from its own live entries (not from the sets): after every chunk, through
    # growth, demotions and dead-entry rebuilds, its live entries must be the prefixes of all stored sets
    monkeypatch.setattr(smallsets, "DEMOTE_AT", demote_at)
    texts = _templated(3000, seed=2) + list(sentences(1, 12, 1500))
    near = tdg.NearDedup(threshold=0.8)
    g = tdg.Guard([near], device="cpu", chunk_size=128, progress=False)
    rebuilds = []
    real = smallsets.SmallSetIndex._rebuild

    def counting(self, *a, **k):
        rebuilds.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(smallsets.SmallSetIndex, "_rebuild", counting)
    for a in range(0, len(texts), 500):
        g.filter(texts[a:a + 500])
        s = near.small
        live = s.table[s.table >= 0]
        live = xp.unique(live[~s.dead.contains(xp.astype(live, "int64"))])
        assert live.tolist() == xp.unique(s._prefix(xp.arange(s.n, like=s.off))).tolist(), a
    assert len(rebuilds) >= 2 and near.small.n > 2000
    if demote_at == 2:
        assert len(near.small.demoted) > 0
