"""Values with invisible format characters inside (zero-width space, joiners, word joiner, byte order mark, soft
hyphen, bidirectional marks; and since the eighteenth session the variation selectors, the combining grapheme
joiner and the Hangul fillers) are found whole, with a guard that has no Normalize stage (fourteenth session)."""
import glob
import gzip
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchdataguard as tdg
from torchdataguard.pii import Detection, find_pii

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u202c",
             # the other default-ignorable characters (eighteenth session): variation selectors 16 and 17 (the
             # second beyond the BMP), the combining grapheme joiner, the Hangul fillers, a Mongolian free variation
             # selector and a code point reserved as default-ignorable
             "\ufe0f", "\U000e0100", "\u034f", "\u3164", "\uffa0", "\u180b", "\U000e0080"]
KEY = b"k" * 32


def found(text):
    return [(d.entity, text[d.start:d.end]) for d in find_pii(text)]


@pytest.mark.parametrize("ch", INVISIBLE)
def test_an_address_with_invisible_characters_is_scrubbed_whole(ch):
    address = f"jo{ch}hn@exa{ch}mple.com"
    text = f"mail {address} now"
    assert found(text) == [("email", address)]
    assert tdg.PIIScrubber().scrub(text) == "mail <EMAIL> now"  # before: passed as it came
    pseudo = tdg.PIIScrubber(actions="pseudonymize", key=KEY)
    assert pseudo.scrub(text) == pseudo.scrub("mail john@example.com now")  # one value, one pseudonym


@pytest.mark.parametrize("ch", INVISIBLE)
@pytest.mark.parametrize("text, value, entity", [
    ("Tel: 020 79{c}46 0958 ok", "020 79{c}46 0958", "phone"),
    ("call +1 (415) 555-01{c}32 now", "+1 (415) 555-01{c}32", "phone"),
    ("card 4111{c}1111{c}1111{c}1111 end", "4111{c}1111{c}1111{c}1111", "credit_card"),
    ("SSN 536-22-12{c}34 on file", "536-22-12{c}34", "us_ssn"),
    ("from 192.168.{c}10.7 via", "192.168.{c}10.7", "ipv4"),
])
def test_numbers_with_invisible_characters_are_found_whole(ch, text, value, entity):
    text, value = text.format(c=ch), value.format(c=ch)
    assert found(text) == [(entity, value)]


def test_invisible_characters_outside_a_value_stay_where_they_were():
    assert found("\ufeffjohn@example.com\u200b.") == [("email", "john@example.com")]
    # between Thai words a zero-width space parts them, as a space would: the address does not take the word
    text = "ติดต่อ\u200bjohn@example.com"
    assert found(text) == [("email", "john@example.com")]
    assert tdg.PIIScrubber().scrub(text) == "ติดต่อ\u200b<EMAIL>"
    # Persian words hold zero-width non-joiners: nothing to find, nothing changed
    assert find_pii("می\u200cخواهم این را بدانم") == []


def test_detections_of_another_source_keep_their_positions():
    text = "a\u200bb Angela Merkel, jo\u200bhn@example.com"
    name = Detection(text.index("Angela"), text.index(","), "person")
    dets = find_pii(text, extra=[name])
    assert [(d.entity, text[d.start:d.end]) for d in dets] == [("person", "Angela Merkel"),
                                                              ("email", "jo\u200bhn@example.com")]


CHANGELOGS = sorted(glob.glob("/usr/share/doc/*/changelog.Debian.gz"))[:60]
MAINTAINER = re.compile(r"^ -- [^<\n]*<([^<>\s]+@[^<>\s]+)>  ", re.M)


@pytest.mark.skipif(not CHANGELOGS, reason="no Debian changelogs on this machine")
def test_real_addresses_with_an_invisible_character_planted_are_found_with_their_extent():
    rng = random.Random(0)
    checked = 0
    for path in CHANGELOGS:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        m = MAINTAINER.search(text)
        if m is None:
            continue
        address = m.group(1)
        cut = rng.randrange(1, len(address))
        hidden = address[:cut] + rng.choice(INVISIBLE) + address[cut:]
        line = f" -- Someone <{hidden}>  Mon, 01 Jan 2024 00:00:00 +0000"
        assert ("email", hidden) in found(line), path
        assert hidden not in tdg.PIIScrubber().scrub(line)
        checked += 1
    assert checked >= 30


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
piece = st.sampled_from(["john@example.com", "Tel: 020 7946 0958", "4111 1111 1111 1111", "10.0.0.7", "ติดต่อ",
                         "می", "x", " ", "@", ".", "-", "0", "12", "\n"] + INVISIBLE)
texts = st.lists(piece, min_size=1, max_size=14).map("".join)


@SETTINGS
@given(texts)
def test_scrubbing_with_invisible_characters_leaves_nothing_and_is_idempotent(text):
    scrub = tdg.PIIScrubber()
    dets = scrub.detect(text)
    once = scrub.scrub(text)
    assert scrub.detect(once) == [] and scrub.scrub(once) == once
    pieces, pos = [], 0
    for d in dets:  # only the detected spans change
        assert d.start >= pos and d.end > d.start
        pieces += [text[pos:d.start], f"<{d.entity.upper()}>"]
        pos = d.end
    assert once == "".join(pieces) + text[pos:]


def test_the_quick_look_for_invisible_characters_answers_like_the_pattern():
    """Every code point of the invisible ranges is found, in text of BMP characters only and in text holding an emoji
    (the two are looked at differently), and random text (much of it beyond the BMP) is answered as the pattern
    answers it."""
    from torchdataguard.core.invisible import INVISIBLE_RANGES
    from torchdataguard.pii.detectors.detect import _INVISIBLE, _has_invisible

    for lo, hi in INVISIBLE_RANGES:
        for c in range(lo, hi + 1):
            for text in (f"ab{chr(c)}cd", f"\U0001f600{chr(c)}", chr(c), f"\u4e2d{chr(c)}x\U0001d400"):
                assert _has_invisible(text), hex(c)
    rng = random.Random(5)
    spans = [(0x20, 0x3000), (0xFE00, 0x10000), (0x10000, 0x110000), (0x13000, 0x1E000), (0xD800, 0xE000),
             (0xE0000, 0xE1100), (0x1F300, 0x1FB00)]
    for _ in range(20000):
        text = "".join(chr(rng.randrange(*rng.choice(spans))) for _ in range(rng.randint(1, 6)))
        assert _has_invisible(text) == (_INVISIBLE.search(text) is not None), ascii(text)


def test_text_with_an_emoji_is_looked_at_with_a_bitmap_class():
    """A text holding an emoji (stored four bytes a character) was looked at with 69 ``in`` and a scan of a class of
    eight ranges beyond the BMP: slower than one scan of the whole invisible class (26 us a 2,000-character message,
    from 3.4 before the eighteenth session; find_pii 34 -> 59 us; 8.5 us now: docs/pii.md). Tests check what the
    look is, not its speed: a class of BMP characters (a bitmap), then plane 14 as ranges."""
    from torchdataguard.pii.detectors import detect

    text = ("Hello there, write to me at the office tomorrow about the plan \U0001f600. " * 30) + "\U0001f44d\U0001f3fd"
    assert detect._drop_invisible(text) is None and detect._has_invisible(text + "\U000e0100")
    assert "\\U" not in detect._INVISIBLE_BMP.pattern
    assert detect._PLANE14.pattern.count("-") <= 4  # a few ranges


@pytest.mark.parametrize("ch", ["\u200b", "\ufe0f", "\u2060", "\U000e0100"])
@pytest.mark.parametrize("clean", [
    "\u0e1a\u0e31\u0e15\u0e23 {v} \u0e04\u0e23\u0e31\u0e1a",  # Thai text and Thai digits
    "card {v} now",
    "\uce74\ub4dc {v} \uc785\ub2c8\ub2e4",  # Korean text
])
@pytest.mark.parametrize("value", [
    "\u0e54\u0e51\u0e51\u0e51 \u0e51\u0e51{c}\u0e51\u0e51 \u0e51\u0e51\u0e51\u0e51 \u0e51\u0e51\u0e51\u0e51",  # Thai digits
    "\u0664\u0661\u0661\u0661 \u0661\u0661{c}\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661",  # Arabic-Indic
    "\uff14\uff11\uff11\uff11 \uff11\uff11{c}\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11",  # full-width
])
def test_a_card_in_other_digits_with_an_invisible_character_inside_is_found_whole(ch, clean, value):
    """The detectors read every script's decimal digits (and full-width forms) as ASCII, and the card is found
    without the invisible character; with it inside, it passed unscrubbed (only ASCII digits and letters from
    Latin-1 to Cyrillic let one be read as absent) until the eighteenth session."""
    hidden = value.format(c=ch)
    assert found(clean.format(v=value.format(c=""))) == [("credit_card", value.format(c=""))]
    assert found(clean.format(v=hidden)) == [("credit_card", hidden)]
    assert "<CREDIT_CARD>" in tdg.PIIScrubber().scrub(clean.format(v=hidden))


def test_a_full_width_address_with_an_invisible_character_inside_is_found_whole():
    address = "\uff4a\uff4f\uff48\uff4e\u200b\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d"
    assert found(f"\u30e1\u30fc\u30eb\uff1a{address}") == [("email", address)]
