"""The *shape* of a text: the detectors find most candidates in it (see the comment below).

Example:
    >>> text_shape("Call 555-0100, Bob!")
    'Aaaa 000-0000, Aaa!'
"""
from __future__ import annotations

import codecs
from typing import Tuple

__all__ = ["text_shape"]

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
    # to the look-arounds), "?" for anything else
    chunk = err.object[err.start:err.end]
    return "".join("a" if ch.isalnum() else "?" for ch in chunk), err.end


codecs.register_error("torchdataguard.shape", _shape_non_ascii)


def text_shape(text: str) -> str:
    """``text`` with ASCII digits as ``0``, upper-case ASCII letters as ``A`` and lower-case as ``a``.

    Other ASCII characters stay; a non-ASCII letter or digit becomes ``a`` and any other non-ASCII
    character ``?``, so the shape has exactly one character per character of ``text``.

    Example:
        >>> text_shape("Call 555-0100, Bob!")
        'Aaaa 000-0000, Aaa!'
    """
    return text.encode("ascii", "torchdataguard.shape").translate(_SHAPE_BYTES).decode("ascii")

