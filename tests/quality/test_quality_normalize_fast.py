"""The normalize stage's shortcuts (checks before each substitution, ftfy on non-ASCII lines only) give exactly
what the full steps give."""
from __future__ import annotations

import random
import re

import ftfy
import pytest

import torchdataguard.quality.normalize as N
from torchdataguard.quality import mojibake
from torchdataguard.assets import load_spamassassin


def reference(stage: N.Normalize, text: str) -> str:
    """The steps as written before the shortcuts: every substitution on every round, ftfy on the whole text."""
    c = stage.cfg
    t = text
    for _ in range(4):
        before = t
        if c.fix_mojibake and not t.isascii():
            t = ftfy.fix_text(t, config=stage._ftfy)
        if c.control_chars:
            t = N.drop_controls(t)
        if c.form is not None:
            t = N.normal_form(c.form, t)
        if c.whitespace is not None:
            f = N._TRAILING.sub("", N._NEWLINES.sub("\n", t))
            if c.whitespace == "collapse":
                f = N._INNER_RUN.sub(" ", f)
            f = re.sub("\n{%d,}" % (c.max_blank_lines + 2), "\n" * (c.max_blank_lines + 1), f)
            t = f.strip() if c.whitespace == "collapse" else f.strip("\n")
        if t == before:
            break
    return t


PIECES = ["word", "Word.", " ", "  ", "\t", "\n", "\n\n", "\n\n\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\u2028",
          "\u2029", "\xa0", "\u3000", "\u2003", "\u202f", "caf\u00e9", "donâ€™t", "Ã\xa0 la", "Ã©", "\x00", "\x1b[31m",
          "\u200b", "\ufeff", "\u00ad", "\x1c", "\x1f", " \t ", "ﬁ", "ＬＯＵＤ", "中文文本", "ខ្មែរ", "  \n", "\t\n", "\ufffd",
          "x" * 40]


ASCII_PIECES = [p for p in PIECES if p.isascii()] + [" x", "\t\tx", "x ", "x\t", "  \t  "]


def random_texts(n: int, seed: int = 0):
    """Mixed-script texts, then as many ASCII ones (the ASCII whitespace path)."""
    rng = random.Random(seed)
    for pieces in (PIECES, ASCII_PIECES):
        for _ in range(n):
            yield "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))


@pytest.mark.parametrize("kw", [{}, {"whitespace": "lines"}, {"max_blank_lines": 0}, {"form": None},
                                {"control_chars": False}, {"max_blank_lines": 3}])
def test_shortcuts_equal_the_full_steps_on_mixed_texts(kw):
    stage = N.Normalize(**kw)
    for text in random_texts(600, seed=len(str(kw))):
        assert stage.normalize_text(text)[0] == reference(stage, text), repr(text)


def test_shortcuts_equal_the_full_steps_on_real_emails():
    stage = N.Normalize()
    texts = [r["text"] for r in load_spamassassin()[:400]]
    assert sum(not t.isascii() for t in texts) > 5  # some mixed-script e-mails are in the sample
    for text in texts:
        assert stage.normalize_text(text)[0] == reference(stage, text)


def test_ftfy_on_non_ascii_lines_equals_ftfy_on_the_text():
    cfg = mojibake.ftfy_config()
    short = cfg._replace(max_decode_length=7)  # segments cut inside long lines as well
    for text in random_texts(400, seed=5):
        for fix in (mojibake.fix_lines, mojibake.fix_lines_plain):
            assert fix(text, cfg) == ftfy.fix_text(text, config=cfg)
            assert fix(text, short) == ftfy.fix_text(text, config=short)


#: pieces that are ASCII, or become ASCII in one round (NFKC, removed controls, Unicode spaces)
TO_ASCII_PIECES = ASCII_PIECES + ["ﬁ", "ＬＯＵＤ", "\xa0", "\u2003", "\u202f", "\u3000", "\u200b", "\ufeff", "\u00ad",
                                  "\x85", "\u2028", "\x7f", "\x1b[0m", "\x1e"]


@pytest.mark.parametrize("whitespace", ["collapse", "lines", None])
@pytest.mark.parametrize("form", ["NFKC", None])
@pytest.mark.parametrize("control_chars", [True, False])
def test_a_round_that_ends_in_ascii_is_the_last(whitespace, form, control_chars):
    """normalize_text stops after a round whose result is ASCII: that result must be what further rounds give."""
    rng = random.Random(17)
    for blank in (0, 1, 2):
        stage = N.Normalize(whitespace=whitespace, form=form, control_chars=control_chars, max_blank_lines=blank)
        ascii_results = 0
        for _ in range(300):
            text = "".join(rng.choice(TO_ASCII_PIECES) for _ in range(rng.randint(1, 25)))
            once = stage._one_round(text, [])
            if once.isascii():
                ascii_results += 1
                assert stage._one_round(once, []) == once, repr(text)
            assert stage.normalize_text(text)[0] == reference(stage, text), repr(text)
        assert ascii_results > 10  # the case under test is common in the sample


def test_other_spaces_are_every_whitespace_but_space_tab_and_newline():
    from torchdataguard.quality.whitespace import OTHER_SPACES, has_other_spaces

    every = "".join(chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) not in " \t\n")
    assert OTHER_SPACES == every
    assert all(has_other_spaces("a" + ch + "b") for ch in every)
    assert not has_other_spaces("a b\tc\nd é 中")
