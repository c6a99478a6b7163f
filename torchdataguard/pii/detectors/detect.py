"""Find personal data and secrets in a text: every finder, overlaps resolved, until nothing new appears.

Example:
    >>> text = "Mail jane.doe@example.org from 10.0.0.7, not version 1.2.3.4."
    >>> [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    [('email', 'jane.doe@example.org'), ('ipv4', '10.0.0.7')]
"""
from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from typing import FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

from ...core.invisible import INVISIBLE_RANGES, class_body, merged_ranges
from .finders import FINDERS, MIN_DIGITS, MULTI_FINDERS, MULTI_MIN_DIGITS, find_ipv4
from .overlap import ENTITY_TYPES, Detection, mask_detections, resolve_overlaps, touches_neighbour, uncovered
from .shape import text_shape

__all__ = ["find_pii", "fold_digits", "without_invisible"]


def find_pii(text: str, entities: Optional[Sequence[str] | FrozenSet[str]] = None,
             extra: Sequence[Detection] = ()) -> List[Detection]:
    """All non-overlapping detections in ``text``, sorted by position.

    Args:
        text: the text to scan.
        entities: entity types to look for (default: all of :data:`ENTITY_TYPES`).
        extra: detections from another source (an NER backend) to merge, at lower priority.

    Example:
        >>> t = "card 4111 1111 1111 1111, bad 4111 1111 1111 1112"
        >>> [(d.entity, t[d.start:d.end]) for d in find_pii(t)]
        [('credit_card', '4111 1111 1111 1111')]
    """
    wanted = ENTITY_TYPES if entities is None else [e for e in ENTITY_TYPES if e in entities]
    if not text.isascii():
        cut = _drop_invisible(text)  # jo\u200bhn@exa\u200bmple.com: found in the text without them, then mapped back
        if cut is not None:
            return [Detection(cut.to_text(d.start), cut.to_text(d.end - 1) + 1, d.entity)
                    for d in _find(cut.text, wanted, [Detection(cut.to_cut(d.start), cut.to_cut(d.end), d.entity)
                                                      for d in extra])]
    return _find(text, wanted, extra)


def _find(text: str, wanted: Sequence[str], extra: Sequence[Detection]) -> List[Detection]:
    if not text.isascii():  # other digits (٤١١١, ४१११, ４１１１), no-break spaces, ＠ addresses: read as ASCII, same positions
        text = fold_digits(text)
    dets, clipped = _detect_once(text, wanted, extra)
    # A candidate can be turned down because it touches another detection (a card right after an IPv6
    # address, a phone glued to an e-mail) or overlaps one that wins. Once that neighbour is replaced by a
    # placeholder, what is left of the candidate could be found in the output, so scrubbing would not be
    # idempotent and part of a value would stay. Settle it here: mask the detections the way a placeholder
    # would ("<...>") and look again, until nothing new appears. Only needed when a candidate lost an
    # overlap, or a detection touches a character that a neighbouring match could include.
    for _ in range(8):
        if not clipped and not any(touches_neighbour(text, d) for d in dets):
            break
        masked = mask_detections(text, dets)
        found, clipped = _detect_once(masked, wanted, ())
        new = [d for d in found if not any(d.start < t.end and t.start < d.end for t in dets)]
        if not new:
            break
        dets = sorted(dets + new)
        text = masked
    return dets


#: a decimal digit outside ASCII (Arabic-Indic, Devanagari, Thai, full-width ...)
_OTHER_DIGIT = re.compile(r"[^\x00-\x7f](?<=\d)")  # the class first: 3.5x faster on mostly ASCII text
#: separators written around such digits, each read as its ASCII form (one character for one)
_SEPARATORS = {0x00A0: " ", 0x2007: " ", 0x2009: " ", 0x202F: " ", 0x3000: " ", 0x2010: "-", 0x2011: "-",
               0x2012: "-", 0x2013: "-", 0x2212: "-", 0xFF0D: "-", 0xFF08: "(", 0xFF09: ")", 0xFF0B: "+",
               0xFF0E: ".", 0xFF0F: "/"}
#: one of those separators next to an ASCII digit (``+33\u00a06\u00a012 ...``: a no-break space from HTML's
#: ``&nbsp;`` or French typography, ``4111\u20131111 ...``); such numbers were missed until 2026-12-07
_SEPARATOR_BY_DIGIT = re.compile("[" + "".join(chr(c) for c in _SEPARATORS) + "](?:(?<=[0-9].)|(?=[0-9]))")
#: the full-width at sign: Japanese and Chinese text writes addresses as ``info\uff20example.co.jp`` or wholly in
#: full-width forms; with it, the full-width forms of the characters of an address are read as ASCII
_WIDE_AT = "\uff20"
_WIDE_ADDRESS = {**{c: c - 0xFEE0 for c in range(0xFF10, 0xFF1A)}, **{c: c - 0xFEE0 for c in range(0xFF21, 0xFF3B)},
                 **{c: c - 0xFEE0 for c in range(0xFF41, 0xFF5B)},
                 **{ord(c): ord(c) - 0xFEE0 for c in "\uff20\uff0e\uff0d\uff3f\uff05\uff0b\uff1d\uff07"}}


def fold_digits(text: str) -> str:
    """``text`` as the detectors read it, one character for one, so positions found in the result are
    positions in ``text``: every decimal digit outside ASCII as its ASCII digit; the separators written around
    digits (full-width and no-break spaces, dashes, brackets) as their ASCII forms when the text has such
    digits or one of those separators touches an ASCII digit; and, in a text holding the full-width at sign
    ``＠``, the full-width forms of letters, digits and ``@ . - _ % + = '`` as ASCII. Any other text comes
    back as it is (the detectors have always read it that way).

    Example:
        >>> fold_digits("بطاقة ٤١١١ ١١١١"), fold_digits("４１１１　１１１１"), fold_digits("no digits　here")
        ('بطاقة 4111 1111', '4111 1111', 'no digits\u3000here')
        >>> fold_digits("Tél. : 01\u00a023\u00a045"), fold_digits("メール：ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ")
        ('Tél. : 01 23 45', 'メール：taro@example.jp')
    """
    wide = _WIDE_AT in text
    if _OTHER_DIGIT.search(text) is not None:
        text = _OTHER_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group(), 0)), text)
    elif not wide and _SEPARATOR_BY_DIGIT.search(text) is None:
        return text
    if wide:
        text = text.translate(_WIDE_ADDRESS)
    return text.translate(_SEPARATORS)


#: invisible characters (:data:`~torchdataguard.core.invisible.INVISIBLE_RANGES`): soft hyphen, zero-width space,
#: non-joiner and joiner, the bidirectional marks, embeddings, overrides and isolates, word joiner, byte order mark,
#: the variation selectors, the combining grapheme joiner, the Hangul fillers ... (as in both dedup stages)
_INVISIBLE = re.compile(f"[{class_body(INVISIBLE_RANGES)}]+")
#: the BMP ones, one by one: ``ch in text`` for each is the quickest look at a text of BMP characters only (and
#: answers at once for a character wider than any of ``text``'s)
_INVISIBLE_CHARS = tuple(chr(c) for lo, hi in INVISIBLE_RANGES if hi < 0x10000 for c in range(lo, hi + 1))
#: the same as one class of BMP characters (a bitmap, scanned about 3x faster than a class holding ranges beyond
#: the BMP, and faster than 69 ``in`` on a text stored 4 bytes a character: one with an emoji)
_INVISIBLE_BMP = re.compile("[" + class_body(r for r in INVISIBLE_RANGES if r[1] < 0x10000) + "]")


_ASTRAL_RANGES = [(lo, hi) for lo, hi in merged_ranges(INVISIBLE_RANGES) if lo >= 0x10000]
#: those beyond the BMP: all of U+E0000-U+E0FFF (tags, variation selectors, reserved code points: a one-range class,
#: the quickest, looked for only where the UTF-16 holds a byte 0xDB, as the high surrogates of plane 14 do), and
#: the few of plane 1 (looked for where one range around them matches)
_PLANE14 = re.compile("[" + class_body(r for r in _ASTRAL_RANGES if r[0] >= 0xE0000) + "]")
_PLANE1_RANGES = [(lo, hi) for lo, hi in _ASTRAL_RANGES if hi < 0x20000]
_PLANE1 = re.compile(f"[{class_body(_PLANE1_RANGES)}]")
_PLANE1_SPAN = re.compile(f"[\\U{_PLANE1_RANGES[0][0]:08x}-\\U{_PLANE1_RANGES[-1][1]:08x}]")


def _has_invisible(text: str) -> bool:
    """Whether ``text`` holds a character of :data:`_INVISIBLE` (the quickest look for each kind of text)."""
    u16 = text.encode("utf-16-le", "surrogatepass")
    if len(u16) == 2 * len(text):  # BMP characters only
        for ch in _INVISIBLE_CHARS:
            if ch in text:
                return True
        return False
    # a text holding an emoji (stored 4 bytes a character): a scan of a class is quicker than the 69 ``in``
    return (_INVISIBLE_BMP.search(text) is not None or (b"\xdb" in u16 and _PLANE14.search(text) is not None)
            or (_PLANE1_SPAN.search(text) is not None and _PLANE1.search(text) is not None))


def _joins(ch: str) -> bool:
    """Whether an invisible character next to ``ch`` (on both sides) is dropped: ASCII, letters and digits of the
    alphabets from Latin-1 to Cyrillic, the decimal digits of any script and the full-width forms of ASCII (which the
    detectors read as ASCII: :func:`fold_digits`; ``\u0e54\u0e51\u0e51\u0e51\u200b\u0e51...`` was missed until the
    eighteenth session). Next to anything else (Thai and Khmer words parted by a zero-width space, Persian words with a
    zero-width non-joiner, emoji sequences) it stays, and parts as it did."""
    return ch < "\x80" or ("\u00c0" <= ch <= "\u052f" and ch.isalnum()) or ch.isdecimal() or "\uff01" <= ch <= "\uff5e"


class _Cut(NamedTuple):
    """A text without some of its invisible characters, and how positions in the two correspond."""

    text: str
    at: List[int]  # where, in ``text``, each run of invisible characters was (ascending)
    removed: List[int]  # characters removed up to and including each run
    where: List[int]  # where each run started in the original text

    def to_text(self, i: int) -> int:
        """The original position of ``self.text[i]``."""
        k = bisect_right(self.at, i)
        return i + (self.removed[k - 1] if k else 0)

    def to_cut(self, i: int) -> int:
        """The position in ``self.text`` of the original position ``i`` (of the next kept character)."""
        k = bisect_right(self.where, i - 1)
        if k == 0:
            return i
        j = k - 1  # the last run that started before i
        before = self.removed[j - 1] if j else 0
        return i - min(self.removed[j], before + i - self.where[j])


def _drop_invisible(text: str) -> Optional[_Cut]:
    """``text`` without the runs of :data:`_INVISIBLE` characters that sit between two characters of
    :func:`_joins`, or ``None`` when there is none (most texts: a quick look for each character)."""
    if not _has_invisible(text):
        return None
    at: List[int] = []
    removed: List[int] = []
    where: List[int] = []
    parts: List[str] = []
    pos = gone = 0
    for m in _INVISIBLE.finditer(text):
        s, e = m.span()
        if s == 0 or e == len(text) or not (_joins(text[s - 1]) and _joins(text[e])):
            continue
        parts.append(text[pos:s])
        at.append(s - gone)
        gone += e - s
        removed.append(gone)
        where.append(s)
        pos = e
    if not at:
        return None
    parts.append(text[pos:])
    return _Cut("".join(parts), at, removed, where)


def without_invisible(value: str) -> str:
    """``value`` without invisible characters (zero-width space, soft hyphen, word joiner, byte order mark,
    variation selectors ...): how a value found across them is spelt for its pseudonym.

    Example:
        >>> without_invisible("jo\u200bhn@exa\u00admple.com")
        'john@example.com'
    """
    return _INVISIBLE.sub("", value)


_MOST_NEEDED = max(max(MIN_DIGITS.values()), max(MULTI_MIN_DIGITS))


def _count_digits(shape: str, most: int) -> int:
    """``min(shape.count("0"), most)``, with at most ``most`` calls of str.find (memchr) instead of a count of
    the whole text."""
    i = -1
    for n in range(most):
        i = shape.find("0", i + 1)
        if i < 0:
            return n
    return most


def _detect_once(text: str, wanted: Sequence[str], extra: Sequence[Detection]) -> Tuple[List[Detection], bool]:
    """(non-overlapping detections, whether to look again once they are masked).

    Looking again is needed when a candidate lost an overlap while reaching outside the winners, or when
    a dotted quad was read as a version with a detection in the 80 characters before it (its context).
    """
    shape = text_shape(text)
    digits = _count_digits(shape, _MOST_NEEDED)  # ASCII digits: each finder needs a few (MIN_DIGITS)
    cands: List[Detection] = list(extra)
    versions: List[Tuple[int, int]] = []
    for name in wanted:
        if digits < MIN_DIGITS[name]:
            continue
        finders = FINDERS[name][1]
        for finder in finders:
            for s, e in (find_ipv4(text, shape, versions) if finder is find_ipv4 else finder(text, shape)):
                cands.append(Detection(s, e, name))
    for (types, _, multi), least in zip(MULTI_FINDERS, MULTI_MIN_DIGITS):
        if digits < least or types.isdisjoint(wanted):
            continue
        for s, e, name in multi(text, shape):
            if name in wanted:
                cands.append(Detection(s, e, name))
    if not cands:
        return cands, False
    losers: List[Detection] = []
    kept = resolve_overlaps(cands, losers=losers) if len(cands) > 1 else cands
    for c in losers:
        if uncovered(c, kept):
            return kept, True
    for vs, _ in versions:
        if any(d.start < vs and vs - d.end <= 80 for d in kept):
            return kept, True
    return kept, False
