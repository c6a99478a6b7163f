"""An ignored character (zero-width, soft hyphen, joiners, byte-order mark, tatweel, harakat, Hebrew points)
placed between a letter and its combining mark in decomposed text (NFD: ``e`` + U+0301) must not keep the
pair from composing: the copy must shingle like the clean composed text, in every hashing path (one text at a
time, groups of non-ASCII texts, groups with ASCII texts, texts holding a NUL, ``mode="auto"`` shingles, the
keyer's signatures). The tables below run over every canonical composition of Unicode.
"""
import unicodedata

import numpy as np
import pytest

from torchdataguard.core.stage import Example
from torchdataguard.dedup.hashing import _near_text, shingles, text_shingle_hashes
from torchdataguard.dedup.near import NearDedup
from torchdataguard.dedup.scripts import IGNORED_RANGES, joins_before
from torchdataguard.dedup.utf8norm import normalized_utf8

LATIN = "Élève Ångström a visité São Paulo: crème brûlée, naïve façade, señor Việt Nam, déjà vu à Zürich."
GREEK = "Ἀθῆναι καὶ Ῥώμη ἐπὶ τῆς ὁδοῦ."
HANGUL = "한국어 텍스트를 분해하면 자모가 됩니다"
ARABIC = "أين إلى آخر سؤال هيئة مؤتمر قرئ رئيس"
TEXTS = [LATIN, GREEK, HANGUL, ARABIC]
# zero-width space, soft hyphen, zero-width joiner, word joiner, byte-order mark, tatweel, inverted damma
# and fatha (harakat), a Hebrew accent and a point
MARKS = ["\u200b", "\u00ad", "\u200d", "\u2060", "\ufeff", "\u0640", "\u0657", "\u064e", "\u0592", "\u05b8"]
IGNORED = [c for lo, hi in IGNORED_RANGES for c in range(lo, hi + 1)]
ENGLISH = ["the quick brown fox jumps over the lazy dog again and again", "ascii only text", ""]


def _joins(ch):
    """True for a character that composes with what precedes it: a combining mark, or a Hangul vowel or
    final consonant jamo."""
    return unicodedata.combining(ch) != 0 or 0x1161 <= ord(ch) <= 0x11C2 or unicodedata.category(ch) == "Mc"


def hide(text, mark):
    """``text`` in NFD with ``mark`` before every character that would compose with what precedes it."""
    return "".join(mark + ch if _joins(ch) else ch for ch in unicodedata.normalize("NFD", text))


def _by_doc(texts, **kw):
    h, d = text_shingle_hashes(texts, **kw)
    return [sorted(h[d == i].tolist()) for i in range(len(texts))]


def _keys(texts):
    keys = NearDedup().keyer()([Example(i, t, t) for i, t in enumerate(texts)])
    off = keys.off.tolist()
    return keys.nib.tolist(), keys.size.tolist(), [keys.sets[off[i] : off[i + 1]].tolist() for i in range(len(texts))]


def _variants():
    out = []
    for text in TEXTS:
        for mark in MARKS + ([] if text == ARABIC else ["\u0654"]):  # hamza above composes with Arabic letters
            out.append((text, hide(text, mark)))
    return out


def test_hidden_marks_change_the_text():
    for text, hidden in _variants():
        assert hidden != text and hidden != unicodedata.normalize("NFD", text)


@pytest.mark.parametrize("mode", ["auto", "words", "chars"])
def test_a_copy_with_an_ignored_character_before_each_accent_shingles_like_the_clean_text(mode):
    pairs = _variants()
    clean = [t for t, _ in pairs]
    hidden = [h for _, h in pairs]
    for t, h in pairs:
        assert _near_text(h) == _near_text(t), ascii(h)
        assert shingles(h, mode=mode) == shingles(t, mode=mode), ascii(h)
        assert _by_doc([h], mode=mode) == _by_doc([t], mode=mode), ascii(h)  # one text
    want = _by_doc(clean, mode=mode)
    assert _by_doc(hidden, mode=mode) == want  # the group of non-ASCII texts, normalised at once
    n = len(hidden)
    assert _by_doc(hidden + ENGLISH, mode=mode)[:n] == want  # ASCII texts in the group
    assert _by_doc(hidden + ["a\x00b"], mode=mode)[:n] == want  # a NUL: one text at a time


def test_the_keyer_gives_the_clean_texts_signatures():
    pairs = _variants()
    assert _keys([h for _, h in pairs] + ENGLISH) == _keys([t for t, _ in pairs] + ENGLISH)


def _compositions():
    """``(first, second, composed)`` of every canonical composition (Hangul: every LV and some LVT)."""
    out = []
    for c in range(0x110000):
        ch = chr(c)
        d = unicodedata.decomposition(ch)
        if d and not d.startswith("<") and len(d.split()) == 2:
            a, b = (chr(int(x, 16)) for x in d.split())
            if unicodedata.normalize("NFC", a + b) == ch:
                out.append((a, b, ch))
    for lv in range(0xAC00, 0xD7A4, 28):
        out.append((chr(0x1100 + (lv - 0xAC00) // 588), chr(0x1161 + (lv - 0xAC00) % 588 // 28), chr(lv)))
        t = 1 + lv % 27
        out.append((chr(lv), chr(0x11A7 + t), chr(lv + t)))
    return out


def test_every_ignored_character_between_every_composition_pair_is_left_out():
    pairs = _compositions()
    assert len(pairs) > 1000 and ("\u0627", "\u0654", "\u0623") in pairs and ("e", "\u0301", "é") in pairs
    bad = []
    for x in map(chr, IGNORED):
        for a, b, _ in pairs:
            if unicodedata.normalize("NFC", a + x) != a + x:
                continue  # x itself composes with a (alef + hamza above): another letter, not an insertion
            if _near_text(a + x + b) != _near_text(a + b):
                bad.append((a, x, b))
    assert not bad, [ascii("".join(t)) for t in bad[:20]]


def _utf8(texts):
    """:func:`normalized_utf8` as text, lower case (it leaves ASCII capitals to the byte table that reads it)."""
    return normalized_utf8(texts)[0].decode("utf-8", "surrogatepass").lower()


def test_the_group_normalisation_leaves_them_out_too():
    pairs = _compositions()
    assert all(joins_before(b) for _, b, _ in pairs)  # what marks a text for normalising on its own
    assert not joins_before("\u093f") and not joins_before("a")  # (Devanagari vowel sign i composes with nothing)
    xs = ["\u200b", "\u0640", "\u0657", "\u05a5", "\u0654", "\U000e0041"]
    hidden = [a + x + b + " z" for x in xs for a, b, _ in pairs if unicodedata.normalize("NFC", a + x) == a + x]
    clean = [a + b + " z" for x in xs for a, b, _ in pairs if unicodedata.normalize("NFC", a + x) == a + x]
    assert _utf8(hidden) == _utf8(clean)
    assert _utf8(hidden + ["ASCII"]) == _utf8(clean + ["ASCII"])


def test_every_character_shingles_like_its_decompositions():
    """NFD and NFKD of any character read as the character: what NFKC composes back (alef + hamza above is
    ``أ``, a letter) is not left out before it composes; what it decomposes into (a Hebrew presentation form
    into a letter and its point) is left out after."""
    bad = []
    for c in range(0x110000):
        if 0xD800 <= c < 0xE000:
            continue
        ch = chr(c)
        want = _near_text(ch).lower()  # (ASCII text comes back as it is: its callers lower-case it)
        for form in ("NFD", "NFKD"):
            d = unicodedata.normalize(form, ch)
            if d != ch and _near_text(d).lower() != want:
                bad.append((hex(c), form))
    assert not bad, bad[:20]
    got = _utf8([unicodedata.normalize("NFKD", chr(c)) for c in range(0xA0, 0x10000) if not 0xD800 <= c < 0xE000])
    want = _utf8([chr(c) for c in range(0xA0, 0x10000) if not 0xD800 <= c < 0xE000])
    assert got == want


def test_presentation_forms_that_decompose_into_ignored_marks_do_not_block_an_accent():
    # NFKC turns U+FE77 (fatha, medial form) into tatweel + fatha: both left out, the e and its accent compose
    assert _near_text("e\ufe77\u0301") == _near_text("e\u0301") == "é"
    assert _near_text("\ufb2a") == "\u05e9"  # shin with shin dot: the point is left out
    assert np.array_equal(*(text_shingle_hashes([t])[0] for t in ("e\ufe77\u0301 x", "é x")))


def test_nfkc_keeps_every_ignored_character_and_composes_only_the_composing_ones():
    """What the group normalisation relies on (a text without an ignored character after NFKC had none to
    leave out before it) and what near_text keeps until NFKC has run (the composing marks)."""
    from torchdataguard.dedup.scripts import COMPOSING
    lo, hi = COMPOSING
    composing = set()
    for c in range(0x110000):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            assert parts[0] not in IGNORED or len(parts) == 1, hex(c)
            pair = "".join(map(chr, parts))
            composing |= {p for p in parts[1:] if p in IGNORED and unicodedata.normalize("NFC", pair) == chr(c)}
    assert composing == set(range(lo, hi + 1))
    # NFKC keeps every ignored character but two, which it makes another ignored one: the Hangul filler and
    # its half-width form become the jungseong filler U+1160
    changed = {x: unicodedata.normalize("NFKC", chr(x)) for x in IGNORED if unicodedata.normalize("NFKC", chr(x)) != chr(x)}
    assert changed == {0x3164: "\u1160", 0xFFA0: "\u1160"} and 0x1160 in IGNORED
