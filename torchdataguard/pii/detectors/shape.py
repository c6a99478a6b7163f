"""The *shape* of a text: the detectors find most candidates in it (see the comment below).

Characters of the scripts written without spaces between words (Han, Hiragana, Katakana, Bopomofo, Hangul;
Thai, Lao, Khmer, Myanmar and the Tai scripts) are not word characters in the shape: ``卡号6222...`` has a word boundary between ``号`` and ``6``, as
``card 6222...`` has one after the space.

Example:
    >>> text_shape("Call 555-0100, Bob!")
    'Aaaa 000-0000, Aaa!'
    >>> text_shape("手机13812345678")
    '??00000000000'
"""
from __future__ import annotations

import codecs
import re
from typing import Tuple

__all__ = ["CJK_RANGES", "UNSPACED_RANGES", "is_cjk", "text_shape"]

# ---------------------------------------------------------------------------------------------------
# Most candidates are found in the *shape* of the text: the same string with every ASCII digit mapped to
# "0", every upper-case ASCII letter to "A" and every lower-case one to "a" (one character for one, so
# positions are the same). In the shape, "a card number" is the literal "0000000000000", "an SSN" the
# literal "000-00-0000", "an IBAN" starts with the literal "AA00": the regex engine finds literal
# prefixes with a fast scan instead of trying a pattern at every position. Boundary checks sit in
# look-behinds placed after the literal prefix, and values are validated on the original text.
# ---------------------------------------------------------------------------------------------------
_SHAPE_BYTES = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                               b"0" * 10 + b"A" * 26 + b"a" * 26)


def _shape_non_ascii(err: UnicodeEncodeError) -> Tuple[str, int]:
    # one ASCII character for each non-ASCII one: "a" for letters and digits (they are word characters
    # to the look-arounds), "?" for anything else, and for the characters of scripts written without
    # spaces (a number glued to Han text still starts at a word boundary)
    chunk = err.object[err.start:err.end]
    return "".join("a" if ch.isalnum() and _CJK.match(ch) is None else "?" for ch in chunk), err.end


#: Code point ranges of the scripts written without spaces between words (Hangul is written with spaces, but
#: particles attach to numbers and words: ``010-1234-5678로``). Used as a regex character class body.
CJK_RANGES = ("\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c"
              "\u3040-\u312f\u3131-\u318f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
              "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U00016fe0-\U00016fff"
              "\U0001b000-\U0001b16f\U00020000-\U0003134f")
#: :data:`CJK_RANGES` and the other scripts written without spaces between words: Thai, Lao, Khmer, Myanmar, Tai Le,
#: New Tai Lue, Tai Tham, Tai Viet, Balinese, Javanese. A value glued to them ends there as it does next to Han
#: (``ติดต่อsomchai@example.co.thได้เลย``: until 2026-12-07 the address took ``อ`` and ``ได`` with it, and
#: redaction cut letters out of the Thai words). Chinese context checks (:mod:`.finders_zh`) use
#: :data:`CJK_RANGES` alone.
UNSPACED_RANGES = (CJK_RANGES + "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u1950-\u19ff\u1a20-\u1aaf"
                   "\u1b00-\u1b7f\ua980-\ua9ff\uaa60-\uaadf")
_CJK = re.compile(f"[{UNSPACED_RANGES}]")


def is_cjk(ch: str) -> bool:
    """True when ``ch`` belongs to a script written without spaces between words (Han, kana, Hangul, Thai ...:
    :data:`UNSPACED_RANGES`).

    Example:
        >>> is_cjk("号"), is_cjk("カ"), is_cjk("ก"), is_cjk("é"), is_cjk("7")
        (True, True, True, False, False)
    """
    return _CJK.match(ch) is not None


codecs.register_error("torchdataguard.shape", _shape_non_ascii)


def text_shape(text: str) -> str:
    """``text`` with ASCII digits as ``0``, upper-case ASCII letters as ``A`` and lower-case as ``a``.

    Other ASCII characters stay; a non-ASCII letter or digit becomes ``a`` and any other non-ASCII
    character ``?`` (Han, kana and Hangul too, see :func:`is_cjk`), so the shape has exactly one character
    per character of ``text``.

    Example:
        >>> text_shape("Call 555-0100, Bob!")
        'Aaaa 000-0000, Aaa!'
    """
    return text.encode("ascii", "torchdataguard.shape").translate(_SHAPE_BYTES).decode("ascii")
