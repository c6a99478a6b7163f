import random
import re

import numpy as np
import pytest
import torch

from torchdataguard.dedup.hashing import content_hash128, normalize_for_hash, text_shingle_hashes, token_shingle_hashes
from torchdataguard.dedup.minhash import minhash_signatures

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega red green blue cyan magenta yellow black white").split()


def _ref_shingles(text, n):
    ws = re.findall(r"[a-z0-9\x80-\U0010ffff]+", text.lower())
    if len(ws) < n:
        return {tuple(ws)}
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def _jaccard(a, b):
    return len(a & b) / len(a | b)


def test_shingle_count_matches_reference():
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) + "!" for _ in range(50)]
    h, d = text_shingle_hashes(texts, ngram=3)
    for i, t in enumerate(texts):
        ref = _ref_shingles(t, 3)
        mine = set(h[d == i].tolist())
        assert len(mine) == len(ref), t


def test_word_boundaries_and_case_are_normalised():
    h1, _ = text_shingle_hashes(["Hello, World! How are you"], ngram=2)
    h2, _ = text_shingle_hashes(["hello world how   are\nyou"], ngram=2)
    assert sorted(h1.tolist()) == sorted(h2.tolist())


def test_text_without_words_still_gets_a_shingle():
    h, d = text_shingle_hashes(["!!!", "???"], ngram=5)
    assert d.tolist() == [0, 1] and h[0] != h[1]


def test_signature_estimates_jaccard():
    rng = random.Random(1)
    errs = []
    for _ in range(60):
        base = [rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(200)]
        other = list(base)
        for _ in range(rng.randint(0, 120)):
            other[rng.randrange(len(other))] = "x" + str(rng.randint(0, 10**6))
        a, b = " ".join(base), " ".join(other)
        true = _jaccard(_ref_shingles(a, 5), _ref_shingles(b, 5))
        h, d = text_shingle_hashes([a, b], ngram=5)
        s = minhash_signatures(torch.from_numpy(h.view(np.int64)), torch.from_numpy(d), 2, 128)
        est = (s[0] == s[1]).float().mean().item()
        errs.append(abs(est - true))
    assert np.mean(errs) < 0.05, np.mean(errs)


def test_signature_is_deterministic_and_seeded():
    h, d = text_shingle_hashes(["one two three four five six seven"], ngram=2)
    a = minhash_signatures(torch.from_numpy(h.view(np.int64)), torch.from_numpy(d), 1, 64, seed=1)
    b = minhash_signatures(torch.from_numpy(h.view(np.int64)), torch.from_numpy(d), 1, 64, seed=1)
    c = minhash_signatures(torch.from_numpy(h.view(np.int64)), torch.from_numpy(d), 1, 64, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) < 2**32


def test_token_shingles_ignore_padding():
    ids = torch.tensor([[5, 6, 7, 8, 9, 0, 0], [5, 6, 7, 8, 9, 3, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0, 0]])
    h, d = token_shingle_hashes(ids, mask, ngram=3)
    assert sorted(h[d == 0].tolist()) == sorted(h[d == 1].tolist())
    with pytest.raises(ValueError, match="attention_mask shape"):
        token_shingle_hashes(ids, mask[:, :3], ngram=3)


def test_content_hash_and_normalisation():
    assert normalize_for_hash("  A\u00a0b\tC ") == "a b c"
    assert content_hash128("x") != content_hash128("y") and len(content_hash128(b"x")) == 16


def test_non_ascii_text_is_folded_like_ascii():
    h1, _ = text_shingle_hashes(["ÉCOLE Straße ＡＢＣ one two"], ngram=2)
    h2, _ = text_shingle_hashes(["école straße abc one two"], ngram=2)
    assert sorted(h1.tolist()) == sorted(h2.tolist())
    h3, d3 = text_shingle_hashes(["Mixed CASE words here", "mixed case words here"], ngram=2)
    assert sorted(h3[d3 == 0].tolist()) == sorted(h3[d3 == 1].tolist())


def test_printable_text_has_no_whitespace_but_the_space_so_the_collapse_shortcut_is_exact():
    """normalize_for_hash skips its split and join for printable text without double or end spaces; that is
    exact only if no printable code point other than " " splits words: checked over every code point."""
    import sys

    bad = [hex(c) for c in range(sys.maxunicode + 1)
           if chr(c) != " " and chr(c).isprintable() and (chr(c).isspace() or len(f"a{chr(c)}b".split()) != 1)]
    assert bad == []


def test_normalize_for_hash_equals_the_plain_rule_on_varied_text():
    import random

    from torchdataguard.dedup.hashing import nfkc

    rng = random.Random(0)
    pieces = ["word", "Mot", "ÉTÉ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\x1c", "\x00", "ﬁ", "Ⅻ",
              "数据", "\ud800", "!", ""]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert normalize_for_hash(text) == " ".join((text if text.isascii() else nfkc(text)).lower().split()), repr(text)


def test_power_tables_are_the_powers_mod_2_64():
    from torchdataguard.core.mixing import np_powers
    from torchdataguard.decontam.ngrams import _power_tables
    from torchdataguard.dedup.hashing import _POLY, _powers

    for base in (0x100000001B3, pow(0x100000001B3, -1, 1 << 64), 3, 0, 1, (1 << 64) - 1, 1 << 70):
        for n in (0, 1, 2, 3, 7, 8, 9, 1000, 4097):
            got = np_powers(base, n)
            assert got.dtype == np.uint64 and got.shape == (n,)
            assert [int(v) for v in got] == [pow(base, i, 1 << 64) for i in range(n)], (base, n)
    for table in (_powers, _power_tables):  # the shingle hashes' cached tables: powers and inverse powers
        p, q = table(3001)
        assert [int(v) for v in p[::97]] == [pow(int(_POLY), i, 1 << 64) for i in range(0, 3001, 97)]
        assert np.all(p * q == 1)
