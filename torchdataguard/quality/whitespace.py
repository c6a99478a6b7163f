"""String-method versions of the normalize stage's whitespace and control-character patterns.

The patterns in :mod:`~torchdataguard.quality.normalize` are the definition; these functions give the same
results several times faster on the texts they accept (tests compare them with the patterns on random and
real texts), and the stage falls back to the patterns on the others.
"""
from __future__ import annotations

import re

__all__ = ["ASCII_CONTROLS", "OTHER_SPACES", "collapse_blank_runs", "has_ascii_controls", "has_other_spaces", "tidy_lines"]

#: the ASCII characters the normalize stage removes as controls (C0 but tab and line breaks, and DEL)
ASCII_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])

#: every character that is whitespace to ``str.isspace`` and to the patterns' ``\s``, but space, tab and ``\n``
#: (a test checks the list against every code point)
OTHER_SPACES = ("\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_OTHER_SPACES = re.compile("[" + re.escape(OTHER_SPACES) + "]")
_ASCII_OTHER_SPACES = tuple(ch for ch in OTHER_SPACES if ch.isascii())


def has_ascii_controls(t: str) -> bool:
    """Whether the ASCII text ``t`` holds a character of :data:`ASCII_CONTROLS`.

    Example:
        >>> has_ascii_controls("a\\tb\\n"), has_ascii_controls("a\\x00b")
        (False, True)
    """
    b = t.encode("ascii")
    return len(b.translate(None, ASCII_CONTROLS)) != len(b)


def has_other_spaces(t: str) -> bool:
    """Whether ``t`` holds whitespace other than space, tab and ``\\n`` (``\\r``, ``\\xa0``, ``\\u3000``...).

    Example:
        >>> has_other_spaces("a b\\tc\\n"), has_other_spaces("a\\u3000b")
        (False, True)
    """
    if t.isascii():  # a few substring scans, cheaper than the pattern on ASCII text
        return any(ch in t for ch in _ASCII_OTHER_SPACES)
    return _OTHER_SPACES.search(t) is not None


def tidy_lines(t: str, collapse: bool) -> str:
    """Trailing spaces and tabs removed from each line and (``collapse``) runs of them inside a line made one
    space, the indentation kept: what the stage's trailing-space and inner-run patterns do to a text whose only
    whitespace is space, tab and ``\\n`` (:func:`has_other_spaces` is false).

    Example:
        >>> tidy_lines("  a  b \\t\\nc\\t", True)
        '  a b\\nc'
    """
    out = []
    for line in t.split("\n"):
        line = line.rstrip(" \t")
        if collapse and ("  " in line or "\t" in line):
            body = line.lstrip(" \t")  # the indentation is kept
            line = line[:len(line) - len(body)] + " ".join([w for w in body.replace("\t", " ").split(" ") if w])
        out.append(line)
    return "\n".join(out)


def collapse_blank_runs(t: str, keep: int) -> str:
    """Every run of more than ``keep`` line breaks made exactly ``keep`` (``re.sub("\\n{keep+1,}", ...)``).

    Example:
        >>> collapse_blank_runs("a\\n\\n\\n\\n\\nb\\n\\n\\n", 2)
        'a\\n\\nb\\n\\n'
    """
    sep = "\n" * (keep + 1)
    parts = t.split(sep)
    if len(parts) == 1:
        return t
    out = [parts[0]]
    last = len(parts) - 1
    for i in range(1, last + 1):
        rest = parts[i].lstrip("\n")  # the newlines left of a run longer than the separator
        if rest or i == last:
            out.append("\n" * keep + rest)
    return "".join(out)
