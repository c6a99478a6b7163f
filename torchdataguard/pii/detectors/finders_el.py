"""Finders for Greek phone numbers (entity ``phone``).

Greek numbers have 10 digits and no trunk 0: landlines start with ``2`` (``210 1234567`` Athens, ``2310 123456``
Thessaloniki), mobiles with ``69`` (``691 234 5678``, ``6912345678``). Such a number is found right after a Greek
phone word (``τηλ.``, ``τηλέφωνο``, ``τηλ/νο``, ``κιν.``, ``κινητό``, ``φαξ``, any case), or after ``tel``,
``phone``, ``mob``, ``mobile`` or ``fax`` with a Greek letter within 40 characters, then only ``.``, ``:``, ``#``
and whitespace; with ``+30``, ``(+30)`` or ``0030`` before it or not. A run of 10 digits elsewhere is left alone
(an order number, a tax number); ``+30 210 1234567`` is found anywhere by the international pattern of
:func:`~.finders_phone.find_phone`. Until 2026-12-07 numbers after Greek phone words were not found (the other
national patterns look for a trunk 0).

Example:
    >>> from torchdataguard.pii.detectors.shape import text_shape
    >>> t = "Τηλέφωνο: 210 1234567, κιν. 6912345678, αρ. παραγγελίας 2101234567"
    >>> [t[s:e] for s, e in find_greek_phone(t, text_shape(t))]
    ['210 1234567', '6912345678']
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from .finders_phone import cut_back

__all__ = ["find_greek_phone"]

# a phone word, then only ".", ":", "#" and whitespace (the Latin words need a Greek letter near: _GREEK)
_WORDS = re.compile(r"(?<!\w)(?:(?P<el>τηλ(?:έφωνο|εφωνο|έφωνα|εφωνα|εφώνου|εφωνου|/νο)?|κιν(?:ητό|ητο|ητού|ητου)?|φαξ)"
                    r"|tel|phone|mob(?:ile)?|fax)\b[.:]?\s*[:#]?\s*(?=[(+0-9])", re.IGNORECASE)
# Greece's country code (on the text), then groups of digits with one separator between them (on the shape,
# where ASCII digits are "0")
_CC = re.compile(r"(?:\(\+30\)|\+30|0030)[ .\-]?")
_NUMBER = re.compile(r"0{2,5}(?:[ .\-]?0{2,7}){0,3}(?![\w\-]|[.,]0)")
_GREEK = re.compile("[\u0370-\u03ff\u1f00-\u1fff]")
_NEAR = 40


def _national(text: str, shape: str, s: int) -> Optional[Tuple[int, int]]:
    """The span of the number that starts at ``s`` (maybe with the country code) when its national number has
    10 digits and starts with 2 or 69 (groups after the tenth digit cut off: ``210 1234567 24 ώρες``)."""
    cc = _CC.match(text, s)
    n0 = s if cc is None else cc.end()
    m = _NUMBER.match(shape, n0)
    span = cut_back(shape, n0, m.end(), 10, 10) if m is not None else None
    if span is None or not (text[n0] == "2" or text.startswith("69", n0)):
        return None
    return s, span[1]


def find_greek_phone(text: str, shape: str) -> List[Tuple[int, int]]:
    """``(start, end)`` of the Greek phone numbers of ``text`` (``shape``: its :func:`~.shape.text_shape`)."""
    out: List[Tuple[int, int]] = []
    if text.isascii() or _GREEK.search(text) is None:  # no Greek phone word, no Greek letter (the words' pattern,
        return out  # case-blind and tried at every position, cost the non-ASCII SpamAssassin mails 0.17 ms each)
    for w in _WORDS.finditer(text):
        if w.group("el") is None and _GREEK.search(text, max(0, w.start() - _NEAR), w.end() + _NEAR) is None:
            continue
        span = _national(text, shape, w.end())
        if span is not None:
            out.append(span)
    return out
