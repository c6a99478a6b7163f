"""Unicode facts shared by the stage families that normalise text (near-dedup, decontamination).

Example:
    >>> joins_before("\u0301"), joins_before("\u1161"), joins_before("\u09be"), joins_before("\u093f")
    (True, True, True, False)
"""
from __future__ import annotations

import threading
import unicodedata
from typing import FrozenSet, List

__all__ = ["joins_before"]

_SECONDS: List[FrozenSet[str]] = []  # the second halves of canonical compositions of combining class 0
_lock = threading.Lock()


def joins_before(ch: str) -> bool:
    """Whether ``ch`` may compose with what precedes it (so a character removed right before it may have kept
    the two apart): a combining mark (canonical combining class not 0), a Hangul vowel or final jamo, or one of
    the few other second halves of a canonical composition (two-part vowel signs of Bengali, Oriya, Tamil ...;
    found in ``unicodedata`` on first use). Other vowel signs (Devanagari ``ि``) compose with nothing.

    Example:
        >>> joins_before("\u0301"), joins_before("a")
        (True, False)
    """
    if unicodedata.combining(ch) or "\u1161" <= ch <= "\u11c2":
        return True
    if unicodedata.category(ch)[0] != "M":
        return False
    if not _SECONDS:
        seconds = set()
        for c in range(0x20000):
            d = unicodedata.decomposition(chr(c)).split()
            if len(d) == 2 and not d[0].startswith("<"):
                pair = chr(int(d[0], 16)) + chr(int(d[1], 16))
                if unicodedata.normalize("NFC", pair) == chr(c):
                    seconds.add(pair[1])
        with _lock:
            _SECONDS[:] = [frozenset(seconds)]
    return ch in _SECONDS[0]
