"""Resolution of overlapping detections: every character belongs to at most one detection.

Overlapping candidates are resolved by a fixed priority (secrets, then email, IBAN, national identity number,
card, SSN, passport, IPv6, IPv4, phone, then names and places from an optional NER backend), then by length,
then by position. A candidate that lost an overlap may leave a part outside the winners, and a detection may
touch a character a
neighbouring match could include: :func:`uncovered` and :func:`touches_neighbour` tell
:func:`~torchdataguard.pii.detectors.detect.find_pii` when to mask the winners (:func:`mask_detections`) and
look again.

Example:
    >>> resolve_overlaps([Detection(0, 10, "phone"), Detection(2, 8, "email")])
    [Detection(start=2, end=8, entity='email')]
"""
from __future__ import annotations

import bisect
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from .finders import ASCII_DIGITS, HEX_COLON

__all__ = ["ENTITY_TYPES", "PRIORITY", "Detection", "mask_detections", "resolve_overlaps", "touches_neighbour",
           "uncovered"]

#: Entity types found by the built-in detectors, in priority order (earlier wins an overlap).
ENTITY_TYPES: Tuple[str, ...] = ("secret", "email", "iban", "national_id", "credit_card", "us_ssn", "passport", "ipv6",
                                 "ipv4", "phone")

#: Priority of every entity type, including those from the optional NER backend (lower wins).
PRIORITY: Dict[str, int] = {name: i for i, name in enumerate(ENTITY_TYPES)}
PRIORITY.update({"person": len(ENTITY_TYPES), "location": len(ENTITY_TYPES) + 1})


class Detection(NamedTuple):
    """One detection: ``text[start:end]`` is the detected value, of type ``entity``.

    The value itself is not stored, so a detection can be logged or counted without leaking it.
    """

    start: int
    end: int
    entity: str


def resolve_overlaps(cands: Iterable[Detection], *, losers: Optional[List[Detection]] = None) -> List[Detection]:
    """Keep a set of non-overlapping detections: higher priority first, then longer, then earlier.

    Candidates turned down for an overlap are appended to ``losers`` when it is given.

    Example:
        >>> resolve_overlaps([Detection(0, 10, "phone"), Detection(2, 8, "email")])
        [Detection(start=2, end=8, entity='email')]
    """
    order = sorted(cands, key=lambda d: (PRIORITY.get(d.entity, 99), d.start - d.end, d.start))
    starts: List[int] = []
    kept: List[Detection] = []
    for d in order:
        i = bisect.bisect_right(starts, d.start)
        if (i > 0 and kept[i - 1].end > d.start) or (i < len(kept) and kept[i].start < d.end):
            if losers is not None:
                losers.append(d)
            continue
        starts.insert(i, d.start)
        kept.insert(i, d)
    return kept


def uncovered(c: Detection, kept: Sequence[Detection]) -> bool:
    """True when some character of ``c`` lies outside every detection of ``kept`` (sorted, disjoint)."""
    i = max(0, bisect.bisect_right([d.start for d in kept], c.start) - 1)
    pos = c.start
    while i < len(kept) and kept[i].start < c.end:
        d = kept[i]
        if d.end > pos:
            if d.start > pos:
                return True
            pos = d.end
        i += 1
    return pos < c.end


# Characters that, next to a detection, cannot hide a neighbouring match: no detector includes them in a
# match that could reach into the detection, and no look-around sees through them into it.
_INERT_BOTH = " \t\n\r\f\v<>\"[]{};!?|$&*^`"
_INERT_BEFORE = frozenset(_INERT_BOTH + "(=/#@'")
_INERT_AFTER = frozenset(_INERT_BOTH + "),:#")


def touches_neighbour(text: str, d: Detection) -> bool:
    """True when a character next to ``d`` could belong to (or be looked at by) another match."""
    if d.start > 0:
        ch = text[d.start - 1]
        if ch not in _INERT_BEFORE and not (ch == ":" and (d.start < 2 or text[d.start - 2] not in HEX_COLON)):
            return True
    if d.end >= len(text):
        return False
    ch = text[d.end]
    if ch == "/":  # "name/1.2.3.4" reads as a version: only a number after it matters
        return any(c in ASCII_DIGITS for c in text[d.end + 1:d.end + 3])
    if ch in ".=":  # the end of a sentence is harmless; "==1.2.3.4" or "..local@part" after it is not
        return d.end + 1 < len(text) and not text[d.end + 1].isspace()
    return ch not in _INERT_AFTER


def mask_detections(text: str, dets: Sequence[Detection]) -> str:
    """``text`` with each detection replaced the way a placeholder would (``<XX...>``, same length).

    Example:
        >>> mask_detections("ip 10.0.0.1 ok", [Detection(3, 11, "ipv4")])
        'ip <XXXXXX> ok'
    """
    parts: List[str] = []
    pos = 0
    for d in dets:
        parts += [text[pos:d.start], "<", "X" * (d.end - d.start - 2), ">"]
        pos = d.end
    parts.append(text[pos:])
    return "".join(parts)
