"""The fast paths of text normalisation and shingling against their plain definitions, on a varied multilingual
corpus: Chinese, Japanese (kana, half-width katakana), Korean, Thai, mixed English and Chinese, emoji, combining
marks, NFKC-changed text (full-width forms, ligatures, Roman numerals, the no-break and ideographic spaces, the
ellipsis), invisible characters, Arabic harakat, Greek capitals and the Turkish dotted I, ASCII texts in the same
groups. Shingle hashes are saved in guard states, so every path must give the values of the definition:

* :func:`normalized_utf8` reads the group as code points (UTF-32): its bytes are each text's
  :func:`~torchdataguard.dedup.scripts.near_text` (ASCII letters aside, which the byte table lower-cases) and the
  characters it hands on are those :func:`decode_leads` reads from the bytes;
* :func:`text_shingle_hashes` gives each document the hashes of the one-text-at-a-time reference of
  tests/dedup/test_keyer_reference.py;
* :func:`normalize_for_hash` (the exact hash) folds the no-break space and the ellipsis with the full-width forms
  and skips the split and join of texts whose only other spaces are line breaks: it equals
  ``" ".join(NFKC(drop_invisible(text)).lower().split())``;
* the character classes and lower-case changes of new code points, filled with NumPy, equal the one-by-one
  definitions on every code point.
"""
import random
import sys
import unicodedata

import numpy as np
import pytest

from torchdataguard.dedup import scripts, utf8norm
from torchdataguard.dedup.hashing import normalize_for_hash, text_shingle_hashes
from torchdataguard.dedup.scripts import drop_invisible, near_text
from torchdataguard.dedup.utf8norm import decode_leads, normalized_utf8

from test_keyer_reference import ref_hashes

PIECES = [
    "数据去重是训练前的重要步骤", "，", "。", "（中文）", "！？", "：；", "“引号”", "《书名》", "——", "…", "……",
    "ひらがなとカタカナ", "ｶﾀｶﾅ", "ﾃﾞｰﾀ", "한국어 텍스트", "한글", "ภาษาไทยไม่มีช่องว่าง", "ພາສາລາວ",
    "Python 是一种语言", "GPU加速", "the quick brown fox", "ÉCOLE", "Straße", "ΣΟΦΙΑ ΟΔΟΣ", "İstanbul", "ǅ",
    "😀", "👍🏽", "🇯🇵", "𠮷野家", "e\u0301", "\u00a0\u0301", "…\u0301", "\u3000\u0301", "Ａ\u0301",
    "Ｐｙｔｈｏｎ３", "ＡＢＣ，ｄｅｆ", "ﬁ", "Ⅻ", "①", "㎏", "\u00a0", "\u3000", "\u2026", " ", "  ", "\n", "\n\n",
    "\t", "\r\n", "\u2028", "\u200b", "\u00ad", "\u200d", "\ufeff", "\U000e0041", "كَتَبَ", "\u0640", "א\u05b8",
    "\u0627\u200b\u0654", "\u0648\u0653\u0654", "12345", "a-b", "x", "",
]


def _corpus(n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice((0, 1, 2, 4, 8, 16, 40))
        out.append("".join(rng.choice(PIECES) for _ in range(k)))
    out += ["plain ascii text one two three four five", "ASCII Capitals Here", "", "……", "\u00a0\u00a0"]
    rng.shuffle(out)
    return out


CORPUS = _corpus(600, 0)


@pytest.mark.parametrize("size", [1, 7, 64, len(CORPUS)])
def test_group_normalisation_matches_near_text_and_the_bytes_decoded(size):
    for a in range(0, len(CORPUS), size):
        texts = CORPUS[a : a + size]
        raw, decoded = normalized_utf8(texts)
        got = raw.decode("utf-8", "surrogatepass").split("\x00")
        want = [t if t.isascii() else near_text(t) for t in texts]
        # ASCII letters may stay capitals (the byte table lower-cases them): equal otherwise, character for character
        assert [g.lower() for g in got] == [w.lower() for w in want]
        assert [len(g) for g in got] == [len(w) for w in want]
        if decoded is None:
            assert raw.isascii()
            continue
        lead = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) >= 0xC0)
        cp, nb = decode_leads(raw, lead)
        assert [x.tolist() for x in decoded] == [lead.tolist(), cp.tolist(), nb.tolist()]


@pytest.mark.parametrize("mode", ["auto", "chars", "words"])
def test_shingle_hashes_equal_the_one_text_reference(mode):
    h, d = text_shingle_hashes(CORPUS, 5, char_ngram=5, mode=mode)
    for i, text in enumerate(CORPUS):
        assert sorted(h[d == i].tolist()) == sorted(ref_hashes(text, 5, 5, mode)), repr(text)


def test_shingle_hashes_of_a_group_equal_each_texts_own():
    h, d = text_shingle_hashes(CORPUS)
    for i in range(0, len(CORPUS), 37):
        hi, _ = text_shingle_hashes([CORPUS[i]])
        assert sorted(h[d == i].tolist()) == sorted(hi.tolist()), repr(CORPUS[i])


def test_exact_normalisation_equals_the_plain_rule():
    rng = random.Random(1)
    texts = CORPUS + ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    for text in texts:
        plain = text if text.isascii() else unicodedata.normalize("NFKC", drop_invisible(text))
        assert normalize_for_hash(text) == " ".join(plain.lower().split()), repr(text)


def test_folded_characters_give_the_nfkc_of_the_text_before_any_mark():
    # (the combining grapheme joiner U+034F is invisible: nfkc_visible leaves it out)
    marks = [c for c in range(0x300, 0x370) if c != 0x34F] + [0x3099, 0x309A, 0x0E48, 0x05B8, 0x0654, 0x1DC0, 0x20D0]
    for ch in "\u00a0\u3000\u2026\uff01\uff21\uff5e":
        for m in marks:
            for text in (ch + chr(m), "a" + ch + chr(m) + "b", chr(m) + ch):
                assert scripts.nfkc_visible(text) == unicodedata.normalize("NFKC", text), (hex(ord(ch)), hex(m))
                cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
                folded = utf8norm.fold_compat(cps).tobytes().decode("utf-32-le")
                assert unicodedata.normalize("NFKC", folded) == unicodedata.normalize("NFKC", text)


def _all_code_points():
    """Every code point of the BMP and of the ranges the classes name (and their neighbours), every 7th beyond."""
    edges = [c for lo, hi in scripts.IGNORED_RANGES + tuple(r for _, rs in scripts.UNSPACED for r in rs)
             for c in (lo - 1, lo, hi, hi + 1)]
    return np.unique(np.concatenate([np.arange(0x10000), np.arange(0x10000, 0x110000, 7), np.array(edges)]))


def test_character_classes_filled_at_once_equal_the_one_by_one_definition():
    cps = _all_code_points()
    got = scripts._classify_all(cps)
    assert got.tolist() == [scripts._classify(c) for c in cps.tolist()]


def test_lower_case_changes_filled_at_once_equal_the_one_by_one_definition():
    cps = np.arange(sys.maxunicode + 1)
    want = [chr(c).lower() != chr(c) for c in range(sys.maxunicode + 1)]
    assert utf8norm._lowers(cps).tolist() == want
    assert utf8norm._lowers(cps[cps != 0x130]).tolist() == [w for c, w in enumerate(want) if c != 0x130]
    sigma = np.array([ord(c) for c in "AΣ Σ"])  # the final sigma lowers by its context, and changes either way
    assert utf8norm._lowers(sigma).tolist() == [True, True, False, True]


@pytest.mark.parametrize("dense", [True, False])
def test_both_ways_of_reading_a_group_give_the_same_bytes_and_characters(monkeypatch, dense):
    """A group is read as code points where most characters are multi-byte, else in UTF-8: both must agree."""
    groups = [CORPUS[a : a + 50] for a in range(0, len(CORPUS), 50)] + [CORPUS]
    want = [normalized_utf8(g) for g in groups]
    monkeypatch.setattr(utf8norm, "_dense", lambda text: dense)
    for g, (raw, decoded) in zip(groups, want):
        got_raw, got = normalized_utf8(g)
        assert got_raw == raw
        assert (got is None) == (decoded is None)
        if got is not None:
            assert [x.tolist() for x in got] == [x.tolist() for x in decoded]


def test_the_density_guess():
    assert utf8norm._dense("数据去重是训练前的重要步骤" * 1000)
    assert not utf8norm._dense("plain English text with one “quote” " * 1000)


def test_dropping_looks_with_a_bitmap_first_and_drops_what_the_ranges_say():
    """``drop_ignored`` and ``drop_invisible`` scanned non-ASCII text with a class holding ranges beyond the BMP,
    which the 2026-12-07 ranges made 1.5x slower (``near_text`` of 2,000 characters of French 29 -> 36 us); they look
    with a bitmap class of the BMP ones first (and any character beyond the BMP), and drop what the ranges say."""
    import re

    from torchdataguard.dedup.scripts import IGNORED_RANGES, INVISIBLE_RANGES, drop_ignored

    rng = random.Random(3)
    ranges = IGNORED_RANGES + ((0x20, 0x7E), (0xC0, 0x17F), (0x4E00, 0x4E20), (0x1F600, 0x1F610), (0xE0000, 0xE0200))
    for ranges_of, drop in ((IGNORED_RANGES, drop_ignored), (INVISIBLE_RANGES, drop_invisible)):
        rx = re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges_of) + "]")
        for _ in range(5000):
            text = "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(1, 8)))
            assert drop(text) == rx.sub("", text), ascii(text)
    # the look is a class of BMP characters (a bitmap: one lookup a character), or any character beyond the BMP
    quick = scripts._QUICK[scripts._IGNORED_RE].pattern
    assert "\\U" not in quick.split("]|[")[0] and quick.endswith("]|[\U00010000-\U0010ffff]")
