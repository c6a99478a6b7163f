"""Characters inserted into a copy that must not hide it: invisible format characters (both dedup stages),
Arabic tatweel and harakat and Hebrew points (near-dedup); and marks that are letters (Devanagari and Thai
vowel signs), which must still tell words apart.

Texts: real English sentences of the SpamAssassin corpus (``short_texts.py``), the real Chinese and Thai
fixtures, and messages of the Arabic, Hebrew and Hindi GTK 3 translations (Debian 12, libgtk-3-common
3.24.38, LGPL-2.1+).
"""
import random

import pytest

import torchdataguard as tdg
from torchdataguard.dedup.hashing import normalize_for_hash, shingles
from torchdataguard.dedup.scripts import (FORMAT_RANGES, IGNORABLE_RANGES, IGNORED_RANGES, INVISIBLE_RANGES,
                                          drop_ignored)

from short_texts import sentences
from test_near_thai import long_thai
from zh_stream import passages

ARABIC = "اختر اللون الذي تريده من الحلقة الخارجية. اختر ظلمة أو إضاءة ذلك اللون باستخدام المثلث الداخلي."
HEBREW = "יש ללחוץ על הטפטפת ואז ללחוץ על צבע כלשהו במסך לבחירת אותו הצבע."
HINDI = "ड्रॉपर क्लिक करें, फिर अपने स्क्रीन पर कहीं भी वह रंग चुनने के लिए क्लिक करें."
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f", "\u202b", "\u2067",
             "\u2069", "\u061c"]
HARAKAT = [chr(c) for c in range(0x064B, 0x0660) if c not in (0x653, 0x654, 0x655)] + ["\u0670", "\u0640"]
# (and tatweel; maddah and hamza above or below compose with alef, waw and yeh into other letters: not sprinkled)
NIQQUD = [chr(c) for c in range(0x05B0, 0x05BD)] + ["\u05c1", "\u05c2", "\u0591", "\u0596", "\u05a5"]


def sprinkle(text, chars, every, seed):
    """``text`` with one of ``chars`` after about every ``every``-th letter (never before the first one)."""
    rng = random.Random(seed)
    out = []
    for ch in text:
        out.append(ch)
        if ch.isalpha() and rng.random() < 1 / every:
            out.append(rng.choice(chars))
    return "".join(out)


def originals():
    return ([s for s in sentences(12, 30, 400) if len(s) >= 80][:20] + passages()[:10] + long_thai()[:10]
            + [ARABIC, HEBREW, HINDI])


def decide(stage, texts):
    g = tdg.Guard([stage], device="cpu", progress=False)
    return [d for _, d, _ in g.process([{"text": t} for t in texts])]


@pytest.mark.parametrize("every", [3, 10])
def test_copies_with_invisible_characters_are_dropped_by_both_stages(every):
    base = originals()
    copies = [sprinkle(t, INVISIBLE, every, seed=i) for i, t in enumerate(base)]
    assert all(c != t for c, t in zip(copies, base))
    for stage, reason in ((tdg.NearDedup(), "duplicate/near"), (tdg.ExactDedup(), "duplicate/exact")):
        got = decide(stage, base + copies)
        assert got[: len(base)] == [None] * len(base)
        assert [(d.reason, d.matched) if d else None for d in got[len(base):]] == [
            (reason, i) for i in range(len(base))], stage


# the default-ignorable characters that are not format characters (variation selectors, also beyond the BMP, the
# combining grapheme joiner, the Hangul fillers, Khmer inherent vowels, Mongolian free variation selectors, reserved
# code points): until the eighteenth session a copy with them inserted passed both stages as a new text
IGNORABLE = ["\ufe0f", "\ufe00", "\U000e0100", "\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u17b4",
             "\u180b", "\u180f", "\U000e0080", "\u2065"]


@pytest.mark.parametrize("every", [3, 10])
def test_copies_with_other_default_ignorable_characters_are_dropped_by_both_stages(every):
    base = originals()
    copies = [sprinkle(t, IGNORABLE, every, seed=100 + i) for i, t in enumerate(base)]
    spaced = [t.replace(" ", " \u3164") for t in base[:20]]  # a Hangul filler after every space
    for stage, reason in ((tdg.NearDedup(), "duplicate/near"), (tdg.ExactDedup(), "duplicate/exact")):
        got = decide(stage, base + copies + spaced)
        assert got[: len(base)] == [None] * len(base)
        assert [(d.reason, d.matched) if d else None for d in got[len(base):]] == [
            (reason, i) for i in list(range(len(base))) + list(range(20))], stage


def test_an_emoji_with_or_without_its_presentation_selector_is_the_same_text():
    a, b = "Thanks for the lovely dinner \u2764\ufe0f see you soon", "Thanks for the lovely dinner \u2764 see you soon"
    assert normalize_for_hash(a) == normalize_for_hash(b) and shingles(a) == shingles(b)
    assert [d and d.reason for d in decide(tdg.ExactDedup(), [a, b])] == [None, "duplicate/exact"]


def test_arabic_harakat_and_tatweel_and_hebrew_points_do_not_hide_a_near_copy():
    texts = [ARABIC, HEBREW, sprinkle(ARABIC, HARAKAT, 2, 1), sprinkle(HEBREW, NIQQUD, 2, 2)]
    assert shingles(texts[2]) == shingles(ARABIC) and shingles(texts[3]) == shingles(HEBREW)
    got = decide(tdg.NearDedup(), texts)
    assert [d and d.matched for d in got] == [None, None, 0, 1]
    # the exact hash keeps vocalised text apart (the marks are visible): only invisible characters are dropped
    assert [d and d.matched for d in decide(tdg.ExactDedup(), texts)] == [None] * 4


def test_vowel_signs_that_are_letters_still_tell_words_apart():
    # Devanagari and Thai vowel signs are combining marks too, but leaving one out makes another word
    for a, b in (("मेरा नाम राम है", "मरा नाम राम है"), ("ปิดใช้งาน", "ปดใช้งาน"), ("ร้อน", "รอน")):
        assert shingles(a) != shingles(b) and normalize_for_hash(a) != normalize_for_hash(b)
    hindi = sprinkle(HINDI, ["\u200d", "\u200c"], 3, 0)
    assert shingles(hindi) == shingles(HINDI)


def test_the_ranges_are_the_format_characters_and_the_listed_marks():
    import unicodedata
    fmt = {c for lo, hi in FORMAT_RANGES for c in range(lo, hi + 1)}
    ignorable = {c for lo, hi in IGNORABLE_RANGES for c in range(lo, hi + 1)}
    invisible = {c for lo, hi in INVISIBLE_RANGES for c in range(lo, hi + 1)}
    ignored = {c for lo, hi in IGNORED_RANGES for c in range(lo, hi + 1)}
    assert invisible == fmt | ignorable and not fmt & ignorable
    assert all(unicodedata.category(chr(c)) == "Cf" for c in fmt)
    assert all(unicodedata.category(chr(c)) in ("Mn", "Lo", "Cn") for c in ignorable)
    assert all(unicodedata.category(chr(c)) in ("Mn", "Lm") for c in ignored - invisible)
    assert {0x05BE, 0x05C0, 0x05C3, 0x05C6}.isdisjoint(ignored)  # Hebrew punctuation stays
    if unicodedata.unidata_version == "14.0.0":  # every Cf but the visible prepended number signs
        prepended = {0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0x110BD, 0x110CD}
        cf = {c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
        assert fmt == cf - prepended
    # Default_Ignorable_Code_Point of Unicode 15.1 (DerivedCoreProperties.txt), written out here by hand from
    # the standard: the ranges hold all of it, and of the format characters also the few Cf that are not in it
    # (interlinear annotation, Egyptian hieroglyph format controls)
    default_ignorable = [(0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                         (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
                         (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
                         (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF)]
    di = {c for lo, hi in default_ignorable for c in range(lo, hi + 1)}
    assert invisible - di == set(range(0xFFF9, 0xFFFC)) | set(range(0x13430, 0x13439))
    assert di <= invisible
    assert drop_ignored("a\u200bb") == "ab" and drop_ignored("abc") == "abc"


def test_the_exact_hash_reads_nfkc_of_the_text_without_invisible_characters():
    import unicodedata
    rng = random.Random(5)
    alphabet = ([chr(c) for c in range(0xFF01, 0xFF5F, 7)] + INVISIBLE + ["\u3000", "e", "\u0301", "中", " ", "A",
                "\U000e0041", "\U0001f600", "\U00013431", "\U00020000", "\u0600", "\u0640", "\u05b8"])
    for _ in range(3000):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        bare = "".join(ch for ch in t if not (unicodedata.category(ch) == "Cf" and ch != "\u0600"))
        want = " ".join(unicodedata.normalize("NFKC", bare).lower().split())
        assert normalize_for_hash(t) == want, repr(t)


@pytest.mark.parametrize("make", [tdg.NearDedup, tdg.ExactDedup])
def test_a_state_saved_before_the_ignorable_characters_were_left_out_warns_on_resume(make):
    import warnings

    stage = make()
    g = tdg.Guard([stage], device="cpu", progress=False)
    g.wrap(originals()[:5])
    state = stage.state_dict()
    assert state["invisible"] == "format+default-ignorable"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make().load_state_dict(state)  # this version's state: no warning
    older = {k: v for k, v in state.items() if k != "invisible"}
    with pytest.warns(RuntimeWarning, match="variation selectors.*not found as its duplicate.*fresh index"):
        make().load_state_dict(older)


@pytest.mark.parametrize("x", ["\u1160", "\u3164", "\uffa0", "\u115f", "\u2065", "\ufff0", "\U000e0080"])
def test_an_ignored_character_next_to_a_capital_sigma_changes_no_shingle(x):
    """Greek capital sigma lowers to the final form by its neighbours, and the Hangul fillers and the reserved code
    points are not case-ignorable: a group of texts (lowered before the ignored characters were cut) gave ``σ``
    where the text alone, and the text without them, give ``ς`` (and the other way round), so the copy's shingles
    differed (until the eighteenth session)."""
    from torchdataguard.dedup.hashing import text_shingle_hashes
    from torchdataguard.dedup.scripts import near_text
    from torchdataguard.dedup.utf8norm import normalized_utf8

    clean = ["ΟΔΟΣ ΚΑΙ ΡΩΜΗ ΣΤΗΝ ΑΘΗΝΑ", "ΑΣΚΗΣΗΣΚΑΙ ΠΟΛΥ"]
    hidden = [clean[0].replace("Σ", x + "Σ"), clean[1].replace("Σ", "Σ" + x)]
    want = {t: near_text(c) for t, c in zip(hidden, clean)}
    assert want == {t: near_text(t) for t in hidden}
    for group in (hidden, ["ascii text"] + hidden, [hidden[0]], [hidden[1]]):
        got = normalized_utf8(group)[0].decode("utf-8", "surrogatepass").split("\x00")
        assert got == [want.get(t, t) for t in group]
    for t, c in zip(hidden, clean):
        assert near_text(t) == near_text(c)
        assert sorted(text_shingle_hashes([t, "x"])[0].tolist()) == sorted(text_shingle_hashes([c, "x"])[0].tolist())
    h, d = text_shingle_hashes(hidden)
    want, wd = text_shingle_hashes(clean)
    assert [sorted(h[d == i].tolist()) for i in range(2)] == [sorted(want[wd == i].tolist()) for i in range(2)]


def test_a_greek_copy_with_hangul_fillers_by_its_sigmas_is_a_near_duplicate():
    text = ("ΟΙ ΑΝΘΡΩΠΟΙ ΤΗΣ ΠΟΛΗΣ ΣΥΝΑΝΤΗΘΗΚΑΝ ΣΤΗΝ ΠΛΑΤΕΙΑ ΓΙΑ ΝΑ ΣΥΖΗΤΗΣΟΥΝ ΤΑ ΝΕΑ ΤΗΣ ΗΜΕΡΑΣ ΚΑΙ ΤΙΣ ΑΠΟΦΑΣΕΙΣ "
            "ΤΟΥ ΔΗΜΟΥ")
    copy = text.replace("Σ ", "\u3164Σ ").replace("Σ", "Σ\uffa0")
    got = decide(tdg.NearDedup(threshold=0.9), [text, copy, "another text entirely"])
    assert [(d.reason, d.matched) if d else None for d in got] == [None, ("duplicate/near", 0), None]
