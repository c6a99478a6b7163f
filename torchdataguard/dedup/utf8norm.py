"""The normalised UTF-8 that near-dedup shingles, for a group of texts at once (NumPy on the bytes).

Each non-ASCII text is shingled as ``nfkc(text).lower()`` (:func:`~.scripts.nfkc`); ASCII texts as they are
(their letters are lower-cased by the byte table of :mod:`.hashing`). :func:`normalized_utf8` gives the UTF-8
of those strings joined by NULs, with few per-text Python calls: the group is encoded once, the compatibility
characters of most Chinese and Japanese text (full-width ASCII forms, the ideographic space, the no-break
space, the ellipsis) are replaced by their decompositions in the bytes, and the whole is then usually already
in NFKC, which one quick check confirms. The characters near-dedup ignores (:data:`~.scripts.IGNORED_RANGES`:
zero-width and other invisible format characters, Arabic tatweel and harakat, Hebrew points) are then cut
out of the bytes. A NUL is a starter that composes with nothing and is the
normal form of nothing else, so the normal form of the join is the join of the normal forms.

Example:
    >>> normalized_utf8(["Ｐｙｔｈｏｎ，版本３…", "ascii Text", "Ἀθῆναι ΟΔΟΣ"])[0].decode()
    'Python,版本3...\\x00ascii Text\\x00ἀθῆναι οδος'
"""
from __future__ import annotations

import threading
import unicodedata
from typing import Optional, Sequence, Tuple

import numpy as np

from .scripts import IGNORED, classes_of

__all__ = ["Decoded", "decode_leads", "fold_compat", "lower_changes", "normalized_utf8"]

#: ``(lead, cp, nb)``: byte offsets, code points and UTF-8 lengths of the multi-byte characters of some UTF-8
Decoded = Tuple[np.ndarray, np.ndarray, np.ndarray]


def decode_leads(raw: bytes, lead: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Code points and UTF-8 lengths of the multi-byte characters whose lead bytes are at ``lead``.

    Example:
        >>> raw = "a中é".encode()
        >>> [a.tolist() for a in decode_leads(raw, np.array([1, 4]))]
        [[20013, 233], [3, 2]]
    """
    bp = np.frombuffer(raw + b"\x00\x00\x00", dtype=np.uint8)
    b0 = bp[lead].astype(np.uint32)
    b1, b2, b3 = ((bp[lead + k] & 0x3F).astype(np.uint32) for k in (1, 2, 3))
    nb = 2 + (b0 >= 0xE0).astype(np.int64) + (b0 >= 0xF0)
    cp = np.where(nb == 2, ((b0 & 0x1F) << 6) | b1,
                  np.where(nb == 3, ((b0 & 0x0F) << 12) | (b1 << 6) | b2,
                           ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3))
    return np.minimum(cp, 0x10FFFF), nb


def fold_compat(raw: bytes) -> Optional[bytes]:
    """``raw`` (UTF-8) with U+FF01-U+FF5E (full-width ASCII), U+3000 (ideographic space), U+00A0 (no-break
    space) and U+2026 (ellipsis) replaced by their compatibility decompositions (``!``-``~``, a space, a
    space, ``...``); ``None`` when it holds none of them. NFKC of the result is NFKC of ``raw``.

    Example:
        >>> fold_compat("Ａ，\\u3000b\\u00a0…".encode()).decode(), fold_compat(b"abc")
        ('A, b ...', None)
    """
    b = np.frombuffer(raw, dtype=np.uint8)
    n = b.size
    lead = np.flatnonzero((b[: max(0, n - 1)] >= 0xC2) & (b[: max(0, n - 1)] <= 0xEF))
    if not lead.size:
        return None
    b0 = b[lead]
    lead = lead[(b0 == 0xEF) | (b0 == 0xE3) | (b0 == 0xC2) | (b0 == 0xE2)]  # the lead bytes of the four kinds
    if not lead.size:
        return None
    p = np.append(b, np.zeros(2, dtype=np.uint8))
    b0, b1, b2 = p[lead], p[lead + 1], p[lead + 2]
    wide = (b0 == 0xEF) & (((b1 == 0xBC) & (b2 >= 0x81) & (b2 <= 0xBF)) | ((b1 == 0xBD) & (b2 >= 0x80) & (b2 <= 0x9E)))
    ideo = (b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80)
    nbsp = (b0 == 0xC2) & (b1 == 0xA0)
    ell = (b0 == 0xE2) & (b1 == 0x80) & (b2 == 0xA6)
    if not (wide.any() or ideo.any() or nbsp.any() or ell.any()):
        return None
    out = b.copy()
    w = lead[wide]
    out[w] = np.where(b1[wide] == 0xBC, 0x20, 0x60) + (b2[wide] & 0x3F)  # U+FF01 + k -> U+0021 + k
    out[lead[ideo | nbsp]] = 0x20
    e = lead[ell]
    out[e] = out[e + 1] = out[e + 2] = 0x2E  # "…" -> "...", three bytes for three
    keep = np.ones(n, dtype=bool)
    three = lead[wide | ideo]
    keep[three + 1] = False
    keep[three + 2] = False
    keep[lead[nbsp] + 1] = False
    return out[keep].tobytes()


_UNKNOWN = 255
_lower_table = np.full(0x110000, _UNKNOWN, dtype=np.uint8)  # filled lazily, code point by code point
_lock = threading.Lock()


def lower_changes(cps: np.ndarray) -> np.ndarray:
    """bool [n]: whether ``chr(c).lower() != chr(c)`` for each code point ``c`` of ``cps``. A string none of
    whose characters changes is its own lower case (the one context rule, Greek final sigma, is about ``Σ``,
    which changes).

    Example:
        >>> lower_changes(np.array([ord(c) for c in "Aa中ΣÉé"])).tolist()
        [True, False, False, True, True, False]
    """
    out = _lower_table[cps]
    unknown = out == _UNKNOWN
    if unknown.any():
        new = np.unique(cps[unknown])
        with _lock:
            _lower_table[new] = [chr(c).lower() != chr(c) for c in new.tolist()]
        out = _lower_table[cps]
    return out.astype(bool)


def normalized_utf8(texts: Sequence[str], joined: Optional[str] = None) -> Tuple[bytes, Optional[Decoded]]:
    """The UTF-8 (``surrogatepass``) of the texts joined by NULs: each non-ASCII text NFKC-normalised and
    lower-cased, ASCII texts as they are, except that letters are lower-cased only where a non-ASCII character
    asks for it (ASCII letters are lower-cased by the byte table of :mod:`.hashing`, which reads these bytes);
    and, when they were made on the way, ``(lead, cp, nb)`` of its multi-byte characters (:func:`decode_leads`
    of ``np.flatnonzero(raw >= 0xC0)``), else ``None``.

    The texts must not hold a NUL (``joined``: their join by NULs, when the caller has it). The non-ASCII texts
    are normalised together; ASCII texts are only encoded.

    Example:
        >>> normalized_utf8(["Ａｂ，", "x"])[0]
        b'Ab,\\x00x'
    """
    ascii = list(map(str.isascii, texts))
    if not any(ascii):
        return _normalized_join("\x00".join(texts) if joined is None else joined)
    if all(ascii):
        return ("\x00".join(texts) if joined is None else joined).encode("ascii"), None
    raw, _ = _normalized_join("\x00".join([t for t, a in zip(texts, ascii) if not a]))
    normal = iter(raw.split(b"\x00"))
    return b"\x00".join([t.encode("ascii") if a else next(normal) for t, a in zip(texts, ascii)]), None


def _normalized_join(joined: str) -> Tuple[bytes, Optional[Decoded]]:
    """:func:`normalized_utf8` of texts that are all non-ASCII, from their join."""
    return drop_ignored_utf8(*_nfkc_join(joined))


def drop_ignored_utf8(raw: bytes, decoded: Optional[Decoded] = None) -> Tuple[bytes, Decoded]:
    """``raw`` (UTF-8) without the characters of :data:`~.scripts.IGNORED_RANGES`, and ``(lead, cp, nb)`` of the
    multi-byte characters of the result (``decoded``: those of ``raw``, when the caller has them).

    Example:
        >>> drop_ignored_utf8("da\u200bta \u05e9\u05b8\u05dc\u05d5\u05b9\u05dd".encode())[0].decode()
        'data \u05e9\u05dc\u05d5\u05dd'
    """
    if decoded is None:
        lead = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) >= 0xC0)
        cp, nb = decode_leads(raw, lead)
    else:
        lead, cp, nb = decoded
    gone = classes_of(cp) == IGNORED
    if not gone.any():
        return raw, (lead, cp, nb)
    keep = np.ones(len(raw), dtype=bool)
    s, n = lead[gone], nb[gone]
    keep[s] = keep[s + 1] = False
    keep[s[n >= 3] + 2] = False
    keep[s[n == 4] + 3] = False
    cut = np.cumsum(~keep)  # bytes cut up to each position
    stay = lead[~gone]
    return (np.frombuffer(raw, dtype=np.uint8)[keep].tobytes(),
            (stay - cut[stay], cp[~gone], nb[~gone]))


def _nfkc_join(joined: str) -> Tuple[bytes, Optional[Decoded]]:
    """NFKC and lower case of the join of non-ASCII texts (the ignored characters still in)."""
    raw = joined.encode("utf-8", "surrogatepass")
    folded = fold_compat(raw)
    text = joined if folded is None else folded.decode("utf-8", "surrogatepass")
    if folded is not None:
        raw = folded
    if not unicodedata.is_normalized("NFKC", text):
        text = "\x00".join([t if unicodedata.is_normalized("NFKC", t) else unicodedata.normalize("NFKC", t)
                            for t in text.split("\x00")])
        raw = text.encode("utf-8", "surrogatepass")
    b = np.frombuffer(raw, dtype=np.uint8)
    lead = np.flatnonzero(b >= 0xC0)
    cp, nb = decode_leads(raw, lead)
    change = lead[lower_changes(cp)]
    if not change.size:
        return raw, (lead, cp, nb)
    docs = np.unique(np.searchsorted(np.flatnonzero(b == 0), change)).tolist()  # lower-case the texts holding one
    parts = text.split("\x00")
    for d in docs:
        parts[d] = parts[d].lower()
    return "\x00".join(parts).encode("utf-8", "surrogatepass"), None
