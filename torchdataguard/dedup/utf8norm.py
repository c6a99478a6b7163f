"""The normalised UTF-8 that near-dedup shingles, for a group of texts at once (NumPy on the bytes).

Each non-ASCII text is shingled as :func:`~.scripts.near_text` gives it (NFKC, lower case, the characters
near-dedup ignores left out: :data:`~.scripts.IGNORED_RANGES`, zero-width and other invisible format
characters, Arabic tatweel and harakat, Hebrew points); ASCII texts as they are (their letters are lower-cased
by the byte table of :mod:`.hashing`). :func:`normalized_utf8` gives the UTF-8 of those strings joined by NULs,
with few per-text Python calls: the group is read once, as code points (UTF-32) where most of its characters
are multi-byte (Chinese, Japanese ...), else as UTF-8; the compatibility characters of most Chinese and Japanese
text (full-width ASCII forms, the ideographic space, the no-break space, the ellipsis) are replaced by their
decompositions there, and the whole is then usually already in NFKC, which one quick check confirms; the code
points give the multi-byte characters of the UTF-8 without decoding its bytes (other text decodes its few); the
ignored characters are then cut out of the bytes (a text where one stands right before a mark
is normalised on its own, so that it does not keep the mark from composing: :func:`_normalized_join`). A NUL is a
starter that composes with nothing and is the normal form of nothing else, so the normal form of the join is
the join of the normal forms.

Example:
    >>> normalized_utf8(["Ｐｙｔｈｏｎ，版本３…", "ascii Text", "Ἀθῆναι ΟΔΟΣ"])[0].decode()
    'Python,版本3...\\x00ascii Text\\x00ἀθῆναι οδος'
"""
from __future__ import annotations

import threading
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .distinct import np_distinct
from .scripts import COMPOSING, IGNORED, classes_of, joins_before, near_text

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


def fold_compat(cps: np.ndarray) -> Optional[np.ndarray]:
    """The code points ``cps`` (uint32) with U+FF01-U+FF5E (full-width ASCII), U+3000 (ideographic space), U+00A0
    (no-break space) and U+2026 (ellipsis) replaced by their compatibility decompositions (``!``-``~``, a space,
    a space, ``...``); ``None`` when it holds none of them. NFKC of the result is NFKC of ``cps``.

    Example:
        >>> def cps(t): return np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32)
        >>> fold_compat(cps("Ａ，\u3000b\u00a0…")).tobytes().decode("utf-32-le"), fold_compat(cps("abc"))
        ('A, b ...', None)
    """
    wide = (cps - np.uint32(0xFF01)) < np.uint32(0xFF5F - 0xFF01)  # wraps below U+FF01
    space = (cps == 0x3000) | (cps == 0xA0)
    ell = cps == 0x2026
    has_ell = bool(ell.any())
    if not (has_ell or wide.any() or space.any()):
        return None
    out = cps.copy()
    out[wide] -= np.uint32(0xFF01 - 0x21)  # U+FF01 + k -> U+0021 + k
    out[space] = 0x20
    if has_ell:  # "…" -> "...", one code point for three
        out = np.repeat(out, np.where(ell, 3, 1))
        out[out == 0x2026] = 0x2E
    return out


def _fold_utf8(raw: bytes) -> Optional[bytes]:
    """:func:`fold_compat` on UTF-8 bytes (for text that is mostly ASCII, where the multi-byte characters are few).

    Example:
        >>> _fold_utf8("Ａ，\\u3000b\\u00a0…".encode()).decode(), _fold_utf8(b"abc")
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


"".encode("utf-32-le")  # its codec module loaded with this one, not in a scan's first chunk


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (uint32; a lone surrogate is its own code point, as ``surrogatepass`` gives)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


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
        new = np_distinct(cps[unknown])
        with _lock:
            _lower_table[new] = _lowers(new)
        out = _lower_table[cps]
    return out.astype(bool)


def _lowers(cps: np.ndarray) -> np.ndarray:
    """``chr(c).lower() != chr(c)`` for each code point of ``cps``, from one ``str.lower`` of them all where it
    keeps their number (no character lowers to two: then the i-th lowers to the i-th, and only the Greek final
    sigma depends on its neighbours, which changes either way), else one by one."""
    text = "".join(map(chr, cps.tolist()))
    low = text.lower()
    if len(low) == len(text):
        return _code_points(low) != _code_points(text)
    return np.array([chr(c).lower() != chr(c) for c in cps.tolist()], dtype=bool)


def normalized_utf8(texts: Sequence[str], joined: Optional[str] = None) -> Tuple[bytes, Optional[Decoded]]:
    """The UTF-8 (``surrogatepass``) of the texts joined by NULs: each non-ASCII text NFKC-normalised and
    lower-cased, ASCII texts as they are, except that letters are lower-cased only where a non-ASCII character
    asks for it (ASCII letters are lower-cased by the byte table of :mod:`.hashing`, which reads these bytes);
    and ``(lead, cp, nb)`` of its multi-byte characters (:func:`decode_leads` of ``np.flatnonzero(raw >= 0xC0)``),
    or ``None`` when every text is ASCII (there are none).

    The texts must not hold a NUL (``joined``: their join by NULs, when the caller has it). The non-ASCII texts
    are normalised together; ASCII texts are only encoded (their bytes shift the offsets of the others'), or,
    where most characters are multi-byte, normalised with the others (NFKC, the folds, the cuts and the
    lower-casing of texts holding a non-ASCII character that changes leave an ASCII text as it is).

    Example:
        >>> normalized_utf8(["Ａｂ，", "x"])[0]
        b'Ab,\\x00x'
    """
    joined = "\x00".join(texts) if joined is None else joined
    ascii = np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))
    if ascii.all():
        return joined.encode("ascii"), None
    if not ascii.any() or _dense(joined):  # an ASCII text comes through the normalisation as it was
        return _normalized_join(joined)
    other = np.flatnonzero(~ascii)
    raw, (lead, cp, nb) = _normalized_join("\x00".join([texts[i] for i in other.tolist()]))
    normal = iter(raw.split(b"\x00"))
    parts = [t.encode("ascii") if a else next(normal) for t, a in zip(texts, ascii.tolist())]
    if lead.size:  # each non-ASCII text's characters move by the bytes of the ASCII texts before it
        size = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) + 1
        at, own = np.cumsum(size) - size, size[other]
        packed = np.cumsum(own) - own  # where each non-ASCII text starts in ``raw``
        lead = lead + (at[other] - packed)[np.searchsorted(packed, lead, side="right") - 1]
    return b"\x00".join(parts), (lead, cp, nb)


def _normalized_join(joined: str) -> Tuple[bytes, Decoded]:
    """:func:`normalized_utf8` of non-ASCII texts, from their join.

    NFKC neither removes nor changes an ignored character (:data:`~.scripts.IGNORED_RANGES`) but the composing
    marks, which it may join to their letters, and the Hangul fillers U+3164 and U+FFA0, which it makes the
    jungseong filler U+1160 (ignored as well), and it makes some out of other characters (Arabic and Hebrew
    presentation forms); an ignored character keeps other characters from composing only where it stands right
    before a character that composes with what precedes it (:func:`~.scripts.joins_before`; tests check all
    these). So the ignored characters are cut
    out of the bytes after NFKC, as they were before, except in the texts where one stands before such a
    character, or that hold a sigma (the Hangul fillers and the reserved code points are not case-ignorable, so
    one next to a capital sigma changes whether it lowers to the final form): those are normalised one at a time
    as :func:`~.scripts.near_text` does (the ignored characters left out before NFKC and after it)."""
    raw, (lead, cp, nb) = _nfkc_join(joined)
    gone = classes_of(cp) == IGNORED
    if not gone.any():
        return raw, (lead, cp, nb)
    g = np.flatnonzero(gone)
    g = g[g + 1 < lead.size]
    g = g[lead[g + 1] == lead[g] + nb[g]]  # followed right away by another multi-byte character
    # (which stays, or a composing mark: in a run of other ignored ones, the last one's next character counts)
    g = g[~gone[g + 1] | ((cp[g + 1] >= COMPOSING[0]) & (cp[g + 1] <= COMPOSING[1]))]
    joins = [c for c in np_distinct(cp[g + 1]).tolist() if joins_before(chr(c))]
    sigma = (cp == 0x3C2) | (cp == 0x3C3)
    if not joins and not sigma.any():
        return _cut(raw, lead, cp, nb, gone)
    doc = np.searchsorted(np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 0), lead)  # each character's text
    docs = doc[g[np.isin(cp[g + 1], joins)]]
    # a capital sigma lowers to the final form or not by its neighbours, and an ignored character that is not
    # case-ignorable (a Hangul filler, a reserved code point) between them changes which: such a text again
    docs = np_distinct(np.concatenate((docs, np.intersect1d(doc[sigma], doc[gone])))).tolist()
    if not docs:
        return _cut(raw, lead, cp, nb, gone)
    return _splice(*_cut(raw, lead, cp, nb, gone), {d: near_text(t) for d, t in _texts_at(joined, docs)})


def _texts_at(joined: str, docs: Sequence[int]) -> List[Tuple[int, str]]:
    """``(d, text d)`` of the NUL-joined texts for the (sorted) indices ``docs``."""
    out, want, a = [], iter(docs), 0
    d = next(want, None)
    for i in range(docs[-1] + 1 if docs else 0):
        z = joined.find("\x00", a)
        z = len(joined) if z < 0 else z
        if i == d:
            out.append((i, joined[a:z]))
            d = next(want, None)
        a = z + 1
    return out


def _splice(raw: bytes, decoded: Decoded, new: Dict[int, str]) -> Tuple[bytes, Decoded]:
    """The NUL-joined UTF-8 ``raw`` (and its :data:`Decoded`) with text ``d`` replaced by ``new[d]``; only the new
    texts are decoded."""
    lead, cp, nb = decoded
    ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 0)
    bounds = np.concatenate(([0], ends + 1)), np.append(ends, len(raw))
    parts: List[bytes] = []
    arrays: List[Decoded] = []
    at = shift = 0
    for d in sorted(new):
        a, z = int(bounds[0][d]), int(bounds[1][d])
        i, j = np.searchsorted(lead, [at, a])
        parts.append(raw[at:a])
        arrays.append((lead[i:j] + shift, cp[i:j], nb[i:j]))
        b = new[d].encode("utf-8", "surrogatepass")
        nlead = np.flatnonzero(np.frombuffer(b, dtype=np.uint8) >= 0xC0)
        arrays.append((nlead + a + shift, *decode_leads(b, nlead)))
        parts.append(b)
        shift += len(b) - (z - a)
        at = z
    i = int(np.searchsorted(lead, at))
    parts.append(raw[at:])
    arrays.append((lead[i:] + shift, cp[i:], nb[i:]))
    return b"".join(parts), tuple(np.concatenate(x) for x in zip(*arrays))  # type: ignore[return-value]


def _cut(raw: bytes, lead: np.ndarray, cp: np.ndarray, nb: np.ndarray, gone: np.ndarray) -> Tuple[bytes, Decoded]:
    """``raw`` without the multi-byte characters ``gone`` (a mask over ``lead``), and its :data:`Decoded`."""
    keep = np.ones(len(raw), dtype=bool)
    s, n = lead[gone], nb[gone]
    keep[s] = keep[s + 1] = False
    keep[s[n >= 3] + 2] = False
    keep[s[n == 4] + 3] = False
    cut = np.cumsum(~keep)  # bytes cut up to each position
    stay = lead[~gone]
    return np.frombuffer(raw, dtype=np.uint8)[keep].tobytes(), (stay - cut[stay], cp[~gone], nb[~gone])


def _nfkc_join(joined: str) -> Tuple[bytes, Decoded]:
    """NFKC and lower case of the join of non-ASCII texts (the ignored characters still in), and its
    :data:`Decoded`. Text whose characters are mostly multi-byte (Chinese, Japanese ...: :func:`_dense`) is read as
    code points (UTF-32), which give the multi-byte characters without decoding the UTF-8 (the i-th of them is
    the i-th code point from U+0080); other text is folded in its UTF-8 and its few multi-byte characters decoded."""
    dense = _dense(joined)
    raw: Optional[bytes] = None
    cps: Optional[np.ndarray] = None
    if dense:
        cps = _code_points(joined)
        folded = fold_compat(cps)
        if folded is not None:
            cps = folded
        text = joined if folded is None else folded.tobytes().decode("utf-32-le", "surrogatepass")
    else:
        raw = joined.encode("utf-8", "surrogatepass")
        folded_utf8 = _fold_utf8(raw)
        if folded_utf8 is not None:
            raw = folded_utf8
        text = joined if folded_utf8 is None else folded_utf8.decode("utf-8", "surrogatepass")
    if not unicodedata.is_normalized("NFKC", text):
        text = "\x00".join([t if unicodedata.is_normalized("NFKC", t) else unicodedata.normalize("NFKC", t)
                            for t in text.split("\x00")])
        raw = cps = None
    raw, (lead, cp, nb) = _decoded(text, raw, cps, dense)
    change = lower_changes(cp)
    if not change.any():
        return raw, (lead, cp, nb)
    docs = np_distinct(np.searchsorted(np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 0), lead[change])).tolist()
    parts = text.split("\x00")  # lower-case the texts holding a character that changes
    for d in docs:
        parts[d] = parts[d].lower()
    return _decoded("\x00".join(parts), None, None, dense)


def _dense(text: str) -> bool:
    """Whether most characters of ``text`` look multi-byte in UTF-8 (from about 4,096 of them, evenly spaced):
    which way :func:`_nfkc_join` reads it (both give the same bytes)."""
    some = text[:: max(1, len(text) // 4096)]
    return len(some.encode("utf-8", "surrogatepass")) > 1.5 * len(some)


def _decoded(text: str, raw: Optional[bytes], cps: Optional[np.ndarray], dense: bool) -> Tuple[bytes, Decoded]:
    """The UTF-8 of ``text`` (``raw`` when given) and its :data:`Decoded`, from its code points (``cps`` when
    given) where ``dense``, else by :func:`decode_leads`."""
    raw = text.encode("utf-8", "surrogatepass") if raw is None else raw
    lead = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) >= 0xC0)
    if not dense:
        return raw, (lead, *decode_leads(raw, lead))
    cps = _code_points(text) if cps is None else cps
    cp = cps[cps >= 0x80]
    return raw, (lead, cp, 2 + (cp >= 0x800).astype(np.int64) + (cp >= 0x10000))
