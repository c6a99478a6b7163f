"""The normalize stage's shortcuts of session 8 give exactly what their plain definitions give: the
pattern-based ``tidy_lines``, ftfy only on the lines it could change (``mojibake.fix_lines``), the windowed
``looks_bad``, the one-scan ``has_ascii_specials`` and the skipped Unicode form of ASCII text."""
from __future__ import annotations

import random
import unicodedata

import ftfy
import pytest
from ftfy.badness import BADNESS_RE, is_bad

import torchdataguard.quality.normalize as N
from torchdataguard.assets import load_spamassassin
from torchdataguard.quality import mojibake
from torchdataguard.quality.whitespace import (ASCII_SPECIALS, has_ascii_controls, has_ascii_specials, has_other_spaces,
                                               tidy_lines, tidy_lines_plain)


@pytest.fixture(scope="module")
def emails():
    return [r["text"] for r in load_spamassassin()[:1500]]


# -- tidy_lines ------------------------------------------------------------------------------------------
TIDY_PIECES = [" ", "  ", "   ", "\t", "\t\t", " \t", "\t ", "\n", "\n\n", "a", "bc", "é", "中", ".", "  \n", "\t\n"]


def test_tidy_lines_equals_its_plain_definition_on_random_texts():
    rng = random.Random(0)
    for _ in range(30000):
        text = "".join(rng.choice(TIDY_PIECES) for _ in range(rng.randint(0, 24)))
        for collapse in (True, False):
            assert tidy_lines(text, collapse) == tidy_lines_plain(text, collapse), (repr(text), collapse)


def test_tidy_lines_equals_its_plain_definition_on_real_emails(emails):
    texts = [t for t in emails if not has_other_spaces(t)]
    assert sum("\t" in t for t in texts) > 50 and sum(" \n" in t for t in texts) > 50
    for text in texts:
        for collapse in (True, False):
            assert tidy_lines(text, collapse) == tidy_lines_plain(text, collapse)


# -- ftfy on the lines it could change -------------------------------------------------------------------
MOJI_PIECES = ["plain words ", "\n", "café ", "donâ€™t ", "Ã\xa0 la ", "Ã© ", "Â ", "Ã ", "\nÃ ", "\nÂ x", "\ufffd",
               "\x80", "\x9d", "\ud83d\ude00", "\ud800", "“quoted” ", "— ", "\xa0", "â€œ", "Ã¢â‚¬â„¢", "вЂ", "ГўВЂВ",
               "Ð¿Ñ€Ð¸Ð²ÐµÑ‚ ", "中文 ", "Ø§Ù„", "×²", "¢£", "┌─┐", "√±", "a", "A", " ", "é", "ΒΓ"]


def moji_texts(n, seed):
    rng = random.Random(seed)
    for _ in range(n):
        yield "".join(rng.choice(MOJI_PIECES) for _ in range(rng.randint(0, 14)))


def test_fix_lines_equals_ftfy_on_every_line():
    cfg = mojibake.ftfy_config()
    assert mojibake.gate_pattern() is not None  # the shortcut is on with the installed ftfy
    for text in moji_texts(20000, seed=1):
        assert mojibake.fix_lines(text, cfg) == mojibake.fix_lines_plain(text, cfg), repr(text)


def test_fix_lines_equals_ftfy_on_real_emails():
    cfg = mojibake.ftfy_config()
    texts = [r["text"] for r in load_spamassassin() if not r["text"].isascii()]
    assert len(texts) > 50
    changed = 0
    for text in texts:
        fixed = mojibake.fix_lines(text, cfg)
        assert fixed == mojibake.fix_lines_plain(text, cfg)
        changed += fixed != text
    assert changed > 0  # some are repaired, so the lines handed to ftfy are the right ones


def test_looks_bad_equals_is_bad():
    for text in moji_texts(20000, seed=2):
        assert mojibake.looks_bad(text) == is_bad(text), repr(text)
    # the heuristic's "^" is the start of the text only
    assert mojibake.looks_bad("Ã foo") == is_bad("Ã foo") is True
    assert mojibake.looks_bad("1\nÃ foo") == is_bad("1\nÃ foo") is False


def test_every_heuristic_match_holds_a_gate_character():
    """The gate is read out of ftfy's pattern; a random text whose matches hold no gate character would
    make the shortcut skip a line that ftfy repairs."""
    gate, width = mojibake.gate_pattern()
    rng = random.Random(3)
    alphabet = "".join(sorted({ch for p in MOJI_PIECES for ch in p})) + "".join(map(chr, range(0xa0, 0x250)))
    found = 0
    for _ in range(30000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        for m in BADNESS_RE.finditer(text):
            found += 1
            assert gate.search(m.group()) is not None, repr(m.group())
            assert len(m.group()) <= width
    assert found > 1000


# -- one scan for the ASCII special characters -----------------------------------------------------------
def test_ascii_specials_are_the_characters_of_the_three_checks():
    for code in range(128):
        ch = chr(code)
        text = "a" + ch + "b"
        expected = has_ascii_controls(text) or has_other_spaces(text) or N._may_have_newlines(text)
        assert has_ascii_specials(text) == expected == (code in ASCII_SPECIALS), repr(ch)


def test_ascii_text_is_in_every_normal_form():
    text = "".join(map(chr, range(128)))
    for form in ("NFC", "NFKC", "NFD", "NFKD"):
        assert unicodedata.is_normalized(form, text)


def test_normalize_text_equals_a_run_without_the_shortcuts(emails, monkeypatch):
    """The stage's result with every shortcut replaced by its plain definition."""
    stage = N.Normalize()
    texts = emails[:600] + list(moji_texts(2000, seed=4))
    fast = [stage.normalize_text(t) for t in texts]
    monkeypatch.setattr(N, "fix_lines", lambda t, config, memo=None: mojibake.fix_lines_plain(t, config))
    monkeypatch.setattr(N, "tidy_lines", tidy_lines_plain)
    monkeypatch.setattr(N, "has_ascii_specials", lambda t: True)
    monkeypatch.setattr(N, "looks_bad", lambda t: bool(is_bad(t)))
    assert [stage.normalize_text(t) for t in texts] == fast
    assert ftfy.__version__.split(".")[0] == "6"
