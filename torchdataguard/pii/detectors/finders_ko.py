"""Finders for South Korean phone numbers (entity ``phone``).

* mobile numbers: ``010`` then 4 digits then 4 digits, grouped by a hyphen, a space or a dot, the same one
  twice (``010-1234-5678``, ``010 1234 5678``, ``010.1234.5678``): found anywhere;
* older mobile numbers (``011``, ``016``-``019`` then 3 or 4 digits then 4) and landlines (area code ``02``
  (Seoul), ``031``-``033``, ``041``-``044``, ``051``-``055``, ``061``-``064``, or ``070`` (internet phones),
  optionally in parentheses, then 3 or 4 digits then 4: ``02-123-4567``, ``(031) 1234-5678``), and mobile
  numbers without groups (``01012345678``): only in Korean context, a Hangul character within 40 characters
  or a phone word (``전화``, ``휴대폰``, ``연락처`` ..., ``tel``, ``phone`` ...) in the 40 before.

The group after the area code never starts with 0. Numbers with the country code (``+82 10-1234-5678``,
``+82-2-123-4567``) are found by the international pattern of :func:`~.finders.find_phone`.

Example:
    >>> from torchdataguard.pii.detectors.shape import text_shape
    >>> t = "연락처: 010-1234-5678, 사무실 (02) 123-4567"
    >>> [t[s:e] for s, e in find_korean_phone(t, text_shape(t))]
    ['010-1234-5678', '(02) 123-4567']
"""
from __future__ import annotations

import re
from typing import Iterator, List, Match, Tuple

from .finders_zh import ends_number, starts_number

__all__ = ["find_korean_phone"]

# in the shape (ASCII digits are "0"): an area code of 2 or 3 digits, maybe in parentheses, a group of 3 or 4
# digits, a group of 4, one separator between groups (the same one twice after an area code without
# parentheses); or a run of exactly 11 digits
_GROUPED = re.compile(r"(?:\((?P<pa>0{2,3})\) ?|(?P<a>0{2,3})(?P<s>[ .\-]))(?P<mid>0{3,4})"
                      r"(?(s)(?P=s)|[ .\-])0000")
# Every match of _GROUPED ends with an *anchor*: "000", a separator and "0000" (the last three digits of the
# middle group, the last group), which starts with a literal the regex engine scans for quickly, where
# _GROUPED itself (it starts with an alternation) is tried at every position (0.1 ms for a 3 KB e-mail).
# A match is 11 to 15 characters long, so it starts at most 7 before its anchor: :func:`_grouped` tries
# _GROUPED only in those windows, anchor by anchor (the same matches as ``_GROUPED.finditer``:
# tests/pii/test_pii_korean.py compares them on random digit strings).
_ANCHOR = re.compile(r"000[ .\-]0000")
_BEFORE_ANCHOR = 7
_PLAIN = re.compile(r"0{11}")
_MOBILE = frozenset(("010", "011", "016", "017", "018", "019"))
_AREA = frozenset(("02", "031", "032", "033", "041", "042", "043", "044", "051", "052", "053", "054", "055",
                   "061", "062", "063", "064", "070"))
_NEAR = 40
_HANGUL = re.compile("[\u1100-\u11ff\u3131-\u318e\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff]")
# the English words as whole words ("hotel", "recall", "excellent" hold one)
_WORDS = re.compile(r"(?:전화|휴대폰|핸드폰|휴대전화|연락처|연락|팩스|번호|문의|\b(?:tel|phone|mobile|cell|fax|call|contact)\b)",
                    re.IGNORECASE)


def _korean_context(text: str, s: int, e: int) -> bool:
    if not text.isascii() and _HANGUL.search(text, max(0, s - _NEAR), e + _NEAR) is not None:
        return True
    return _WORDS.search(text, max(0, s - _NEAR), s) is not None


def _grouped(shape: str) -> Iterator[Match[str]]:
    """``_GROUPED.finditer(shape)``, tried only in the windows that end with an anchor (see above)."""
    pos = at = 0  # the end of the last match; where to look for the next anchor
    while True:
        anchor = _ANCHOR.search(shape, at)
        if anchor is None:
            return
        m = _GROUPED.search(shape, max(pos, anchor.start() - _BEFORE_ANCHOR), anchor.end())
        if m is None:
            at = anchor.start() + 1
        else:
            yield m
            pos = at = m.end()


def find_korean_phone(text: str, shape: str) -> List[Tuple[int, int]]:
    """``(start, end)`` of the South Korean phone numbers of ``text`` (``shape``: its
    :func:`~.shape.text_shape`)."""
    out: List[Tuple[int, int]] = []
    if "0000" not in shape:
        return out
    for m in _grouped(shape):
        s, e = m.span()
        if not (starts_number(shape, s) and ends_number(shape, e)):
            continue
        a0, a1 = m.span("pa") if m.group("pa") is not None else m.span("a")
        area, mid = text[a0:a1], text[m.start("mid"):m.end("mid")]
        if mid[0] == "0" or (area not in _MOBILE and area not in _AREA) or (area == "010" and len(mid) != 4):
            continue
        if (area == "010" and m.group("s") is not None) or _korean_context(text, s, e):
            out.append((s, e))
    for m in (_PLAIN.finditer(shape) if "00000000000" in shape else ()):
        s, e = m.span()
        if (text.startswith("010", s) and text[s + 3] != "0" and starts_number(shape, s)
                and ends_number(shape, e) and _korean_context(text, s, e)):
            out.append((s, e))
    return out
