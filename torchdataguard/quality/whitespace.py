"""String-method versions of the normalize stage's whitespace and control-character patterns.

The patterns in :mod:`~torchdataguard.quality.normalize` are the definition; these functions give the same
results several times faster on the texts they accept (tests compare them with the patterns on random and
real texts), and the stage falls back to the patterns on the others.
"""
from __future__ import annotations

import re

__all__ = ["ASCII_CONTROLS", "ASCII_SPECIALS", "OTHER_SPACES", "collapse_blank_runs", "has_ascii_controls",
           "has_ascii_specials", "has_other_spaces", "tidy_lines", "tidy_lines_plain"]

#: the ASCII characters the normalize stage removes as controls (C0 but tab and line breaks, and DEL)
ASCII_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])

#: every ASCII character that the control-character step removes or that is whitespace other than space, tab and
#: ``\n`` (``\r``, vertical tab, form feed, the separators ``\x1c``-``\x1f``): the union of
#: :data:`ASCII_CONTROLS` and the ASCII part of :data:`OTHER_SPACES`
ASCII_SPECIALS = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])

#: every character that is whitespace to ``str.isspace`` and to the patterns' ``\s``, but space, tab and ``\n``
#: (a test checks the list against every code point)
OTHER_SPACES = ("\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_OTHER_SPACES = re.compile("[" + re.escape(OTHER_SPACES) + "]")
_ASCII_OTHER_SPACES = tuple(ch for ch in OTHER_SPACES if ch.isascii())
# a line break and the spaces and tabs after it, in the reversed text: the trailing run of a line
_TRAILING_REVERSED = re.compile(r"\n[ \t]+")
# two or more spaces after a character that is not whitespace (the literal first, so the scan is fast)
_INNER_SPACES = re.compile(r"  (?<=[^ \t\n]  ) *")
_INDENT = re.compile(r"[ \t]*")


def has_ascii_controls(t: str) -> bool:
    """Whether the ASCII text ``t`` holds a character of :data:`ASCII_CONTROLS`.

    Example:
        >>> has_ascii_controls("a\\tb\\n"), has_ascii_controls("a\\x00b")
        (False, True)
    """
    return len(t.encode().translate(None, ASCII_CONTROLS)) != len(t)


def has_ascii_specials(t: str) -> bool:
    """Whether the ASCII text ``t`` holds a character of :data:`ASCII_SPECIALS`; when it does not,
    :func:`has_ascii_controls` and :func:`has_other_spaces` are false and ``t`` has no line break but ``\\n``
    (one scan instead of a dozen).

    Example:
        >>> has_ascii_specials("a\\tb\\n"), has_ascii_specials("a\\r\\nb")
        (False, True)
    """
    return len(t.encode().translate(None, ASCII_SPECIALS)) != len(t)


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

    :func:`tidy_lines_plain` is the same, one line at a time; this one leaves the work to a few patterns that
    start with a literal (fast to find) and visits only the lines that hold a tab (a test compares the two).

    Example:
        >>> tidy_lines("  a  b \\t\\nc\\t", True)
        '  a b\\nc'
    """
    tabs = "\t" in t  # (one memchr; "\t\n" in t would scan the text at a few times that cost)
    if tabs:
        if " \n" in t or "\t\n" in t:
            # reversed, every trailing run follows a line break: a pattern that starts with "\n"
            t = _TRAILING_REVERSED.sub("\n", t[::-1])[::-1]
    elif " \n" in t:
        # no tab: every trailing run is spaces, and ends in " \n"; what is left of it ends a piece of the split
        pieces = t.split(" \n")
        last = pieces.pop()
        pieces = [p.rstrip(" ") for p in pieces]
        pieces.append(last)
        t = "\n".join(pieces)
    t = t.rstrip(" \t")
    if not collapse:
        return t
    if tabs:
        t = _tidy_tab_lines(t)
    if "  " in t:  # runs of spaces after a non-space (indentation is kept); the line has no tab left
        t = _INNER_SPACES.sub(" ", t)
    return t


def _tidy_tab_lines(t: str) -> str:
    """``t`` (no trailing spaces or tabs) with every line that holds a tab after its indentation tidied by
    :func:`tidy_lines_plain` (a tab in the indentation is kept, so such a line is left to the space pattern)."""
    out = []
    pos = 0
    i = t.find("\t")
    while i >= 0:
        start = t.rfind("\n", 0, i) + 1
        body = _INDENT.match(t, start).end()  # where the line's indentation ends
        end = t.find("\n", body)
        if end < 0:
            end = len(t)
        if i < body:  # the tab is in the indentation: tidy the line only if another one follows in it
            i = t.find("\t", body, end)
            if i < 0:
                i = t.find("\t", end)
                continue
        out.append(t[pos:start])
        out.append(tidy_lines_plain(t[start:end], True))
        pos = end
        i = t.find("\t", end)
    if pos == 0:
        return t
    out.append(t[pos:])
    return "".join(out)


def tidy_lines_plain(t: str, collapse: bool) -> str:
    """The plain definition of :func:`tidy_lines`: each line right-stripped of spaces and tabs and, with
    ``collapse``, the words after its indentation joined by one space.

    Example:
        >>> tidy_lines_plain("  a  b \\t\\nc\\t", True)
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
