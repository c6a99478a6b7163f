"""The n-gram shares' methods and fast paths against the plain definitions (``==``, not approximately):
counting on tuples, two sorts and step by step (chosen by length), the stable order from an unstable sort on long arrays, and
the spans of a few repeated 5- to 10-grams merged on Python lists; and both methods on real long e-mails."""
import random

import numpy as np
import pytest
from test_quality_fast_paths import reference_shares, token_lists

from torchdataguard.assets import load_spamassassin
from torchdataguard.core import arrays
from torchdataguard.quality.rules import ngrams
from torchdataguard.quality.rules.ngrams import LONG, SHORT, ngram_shares, stable_argsort


@pytest.fixture(scope="module")
def lists():
    return token_lists(random.Random(11))


@pytest.mark.parametrize("long", [False, True])
def test_both_methods_equal_the_definitions(monkeypatch, lists, long):
    many = 0
    for tokens in lists:
        want = reference_shares(tokens)
        # every sort unstable then reordered (0) or as shipped; the spans on lists always (big), never (0), as shipped
        for quick, few in ((0, 10 ** 9), (0, 0), (arrays._QUICK, ngrams._FEW_STARTS)):
            monkeypatch.setattr(arrays, "_QUICK", quick)
            monkeypatch.setattr(ngrams, "_FEW_STARTS", few)
            assert ngram_shares(tokens, long=long) == want, (long, quick, few, tokens[:20])
        many += any(want[1])
    assert many > 150  # the lists reach the duplicated 5- to 10-grams


def test_the_method_follows_the_length(monkeypatch):
    calls = []
    monkeypatch.setattr(ngrams, "_step_by_step", lambda *a: calls.append("steps"))
    monkeypatch.setattr(ngrams, "_two_sorts", lambda *a: calls.append("two"))
    monkeypatch.setattr(ngrams, "_on_tuples", lambda *a: calls.append("tuples"))
    tokens = ["a", "b"] * (LONG // 2)
    ngram_shares(tokens)
    ngram_shares(tokens + ["c"])
    ngram_shares(tokens[:10], long=True)
    ngram_shares(tokens[:SHORT])
    ngram_shares(tokens[:SHORT + 1])
    ngram_shares(tokens[:10], long=False)
    few_repeats = list("abcdefghij") * 2 + [str(i) for i in range(SHORT)]  # 16 positions where a 3-gram can repeat
    ngram_shares(few_repeats)
    ngram_shares(few_repeats[:10] + few_repeats)  # 26 such positions
    assert calls == ["two", "steps", "steps", "tuples", "two", "two", "tuples", "two"]


def test_short_lists_on_tuples_equal_the_sorts(lists):
    """Lists of up to SHORT tokens are counted on tuples by default: the same shares as both sorting methods."""
    short = [t for t in lists if len(t) <= SHORT]
    assert len(short) > 300
    for tokens in short:
        want = reference_shares(tokens)
        assert ngram_shares(tokens) == want == ngram_shares(tokens, long=False) == ngram_shares(tokens, long=True)


def test_stable_argsort_is_the_stable_order(monkeypatch):
    rng = np.random.default_rng(5)
    monkeypatch.setattr(arrays, "_QUICK", 0)  # the unstable sort and the reordering, at every length
    for _ in range(300):
        size = int(rng.integers(0, 3000))
        keys = rng.integers(0, int(rng.integers(1, 60)), size).astype(np.uint64)
        if rng.random() < 0.3:  # large keys, few ties
            keys = rng.integers(0, 2 ** 63, size).astype(np.uint64) * np.uint64(2)
        assert (stable_argsort(keys) == keys.argsort(kind="stable")).all()


def test_long_e_mails_by_both_methods():
    """The longest shipped bodies, and a few glued into texts of 10,000 words, the same by either method
    (the reference loop is too slow here; the methods are checked against it above)."""
    bodies = sorted((r["text"].split("\n\n", 1)[-1].lower().split() for r in load_spamassassin()), key=len)
    texts = bodies[-25:] + [sum(bodies[-60:-40], [])[:10_000], (bodies[-1][:300] + bodies[-2][:50]) * 20]
    assert max(map(len, texts)) > 5000
    for tokens in texts:  # by default, counted on tuples from the first n with few positions where it can repeat
        assert ngram_shares(tokens, long=True) == ngram_shares(tokens, long=False) == ngram_shares(tokens)
