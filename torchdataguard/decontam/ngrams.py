"""N-gram hashes of normalised words (:mod:`.normalize`), computed for a whole chunk of texts with NumPy.

:func:`ngram_hashes` reads each text's normalised bytes (:func:`~.normalize.normalized_bytes`), hashes its
words with a few NumPy passes over the words (not over every byte) and its n-grams from prefix sums of the
word hashes; no per-word Python work. The normalisation functions are re-exported here.

Example:
    >>> h = ngram_hashes(["The cat sat.", "the CAT, sat!"], 3)
    >>> h.offsets.tolist(), bool(h.hashes[0] == h.hashes[1]), normalized_words("The cat sat.")
    ([0, 1, 2], True, ['the', 'cat', 'sat'])
"""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.mixing import np_mix64, np_powers
from .normalize import is_unspaced, normalize_text, normalized_bytes, normalized_bytes_many, normalized_words

__all__ = ["NgramHashes", "is_unspaced", "ngram_hashes", "normalize_text", "normalized_words", "split_words"]

_U = np.uint64
_BASE = _U(0x100000001B3)
_powers: Dict[str, np.ndarray] = {"p": np.ones(1, dtype=_U), "inv": np.ones(1, dtype=_U)}
_pow_lock = threading.Lock()
#: _MASKS[k]: the low k bytes of a 64-bit little-endian load (k = 0 .. 8)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=_U)
_LONG_SALT = _U(0x9E3779B97F4A7C15)
_PIECE_SALT = _U(0xD6E8FEB86659FD93)
_PAD = bytes(8)
_NUL_TO_SPACE = bytes.maketrans(b"\x00", b" ")


def _power_tables(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """``_BASE**i`` and its inverse powers mod 2**64 for ``i < n`` (grown and cached)."""
    with _pow_lock:
        if _powers["p"].size < n:
            m = max(n, 2 * _powers["p"].size)
            _powers["p"] = np_powers(int(_BASE), m)
            _powers["inv"] = np_powers(pow(int(_BASE), -1, 1 << 64), m)
        return _powers["p"][:n], _powers["inv"][:n]


class NgramHashes:
    """The n-gram hashes of a chunk of texts: ``hashes`` (int64) with ``offsets`` (text ``i`` owns
    ``hashes[offsets[i]:offsets[i + 1]]``, its n-grams in order: the one starting at word ``p`` is at
    ``offsets[i] + p``), and each text's normalised UTF-8 bytes with words separated by NUL bytes
    (``normalized``), so that a hit can be verified where the text itself is not at hand (DataLoader
    workers send the main process keys, not records). Picklable; :meth:`take` selects texts (the guard's
    key contract)."""

    def __init__(self, hashes: np.ndarray, offsets: np.ndarray, normalized: Optional[List[bytes]] = None) -> None:
        self.hashes = hashes
        self.offsets = offsets
        self.normalized = normalized if normalized is not None else [b""] * (int(offsets.size) - 1)

    def words(self, i: int) -> List[bytes]:
        """The normalised words of text ``i`` (UTF-8)."""
        return split_words(self.normalized[i])

    def __len__(self) -> int:
        return int(self.offsets.size) - 1

    def take(self, idx: Sequence[int]) -> "NgramHashes":
        idx = np.asarray(list(idx), dtype=np.int64)
        if idx.size == len(self) and bool((idx == np.arange(idx.size)).all()):
            return self  # every text, in order (the usual case): nothing to copy
        if idx.size == 0:
            return NgramHashes(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), [])
        a, b = self.offsets[idx], self.offsets[idx + 1]
        lens = b - a
        out_off = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lens, out=out_off[1:])
        pos = np.repeat(a - out_off[:-1], lens) + np.arange(int(out_off[-1]), dtype=np.int64)
        return NgramHashes(self.hashes[pos], out_off, [self.normalized[i] for i in idx.tolist()])


def split_words(text: bytes) -> List[bytes]:
    """The words (runs of non-NUL bytes) of normalised ``text``. Normalised text holds no other ASCII
    whitespace (it all became NUL) and UTF-8 never puts an ASCII byte inside a character, so splitting on
    whitespace after NUL became a space finds exactly the NUL-separated words (in C, without a filter).

    Example:
        >>> split_words(b"dont\\x00\\x00panic")
        [b'dont', b'panic']
    """
    return text.translate(_NUL_TO_SPACE).split()


def _word_hashes(raw: bytes, L: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(starts, hashes)`` of the words (runs of non-NUL bytes) in ``raw[:L]``; ``raw`` holds at least 8
    more bytes after ``L`` (read, never hashed).

    Each word is read 8 bytes at a time with unaligned 64-bit loads at its start (one gather per 8 bytes
    of word, not arithmetic per byte), the bytes past its end masked off. A word of up to 8 bytes is then
    its own masked load (distinct words differ there, since words hold no NUL); a longer one is its first
    load mixed with its length plus its last 8 bytes, plus (over 16 bytes) the loads in between, each mixed
    with its number. Every word's value then goes through the SplitMix64 finaliser.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    edge = np.zeros(L + 2, dtype=bool)
    np.not_equal(buf[:L], 0, out=edge[1 : L + 1])
    # alternating word starts and ends (exclusive): where word bytes and boundaries change
    se = np.flatnonzero(edge[1:] != edge[:-1])
    starts, ends = se[0::2], se[1::2]
    if starts.size == 0:
        return starts, np.zeros(0, dtype=_U)
    # unaligned little-endian 64-bit loads at any byte offset up to L
    loads = np.ndarray(shape=(L + 1,), dtype="<u8", buffer=raw, strides=(1,))
    lens = ends - starts
    h = loads.take(starts)
    h &= _MASKS[np.minimum(lens, 8)]
    long = np.flatnonzero(lens > 8)
    if long.size:
        # a longer word: its first 8 bytes mixed with its length, plus its last 8 bytes (all of a word of
        # up to 16 bytes), plus the 8-byte pieces in between, each mixed with its number
        ll, le = lens[long], ends[long]
        with np.errstate(over="ignore"):
            hl = np_mix64(h[long] ^ (ll.view(_U) * _LONG_SALT)) + loads[le - 8]
            very = np.flatnonzero(ll > 16)
            if very.size:
                pieces = (ll[very] - 9) >> 3  # pieces covering bytes 8 .. len - 9
                first = np.cumsum(pieces) - pieces
                k = np.arange(1, int(first[-1] + pieces[-1]) + 1, dtype=np.int64) - np.repeat(first, pieces)
                at = np.repeat(starts[long[very]], pieces) + 8 * k
                val = loads[at] & _MASKS[np.minimum(np.repeat(le[very] - 8, pieces) - at, 8)]
                val ^= k.view(_U) * _PIECE_SALT
                hl[very] += np.add.reduceat(np_mix64(val), first)
        h[long] = hl
    return starts, np_mix64(h)


def _group_hashes(encoded: Sequence[bytes], doc_start: np.ndarray, ngram: int, grams_per_doc: np.ndarray,
                  out: List[np.ndarray]) -> None:
    """Append to ``out`` the n-gram hashes of a few texts' normalised bytes (a view per text that has any,
    in text order); ``doc_start``: where each text starts in their NUL-joined bytes; fills ``grams_per_doc``."""
    raw = b"\x00".join([*encoded, _PAD])  # the texts, then the 8 bytes past the end the loads read
    L = len(raw) - len(_PAD) - 1
    starts, wh = _word_hashes(raw, L)
    first_word = np.searchsorted(starts, doc_start)
    np.maximum(np.diff(first_word, append=starts.size) - ngram + 1, 0, out=grams_per_doc)
    W = wh.size
    m = W - ngram + 1
    if m <= 0 or not grams_per_doc.any():
        return
    pw, inv = _power_tables(W)
    with np.errstate(over="ignore"):
        # the n-gram at word i: sum of wh[i + k] * BASE^k, from prefix sums of wh[j] * BASE^j
        pre = np.zeros(W + 1, dtype=_U)
        wh *= pw
        np.cumsum(wh, out=pre[1:])
        acc = pre[ngram:]
        acc -= pre[:m]
        acc *= inv[:m]
    # a text's n-grams start at its first word (those running into the next text are left out)
    starts_at, counts = first_word.tolist(), grams_per_doc.tolist()
    for d in np.flatnonzero(grams_per_doc).tolist():
        w = starts_at[d]
        out.append(acc[w : w + counts[d]])


def ngram_hashes(texts: Sequence[Optional[str]], ngram: int, *, group_bytes: int = 1 << 18) -> NgramHashes:
    """64-bit hashes of the normalised word ``ngram``-grams of each text (a text with fewer words has none;
    ``None`` is a text without words).

    The texts are hashed in groups of about ``group_bytes`` normalised bytes, so that the NumPy passes
    work on arrays that stay in the CPU cache (and are not mapped afresh from the OS for every chunk).

    Example:
        >>> h = ngram_hashes(["a b c", "A, b! C", "a b"], 3)
        >>> h.offsets.tolist(), bool(h.hashes[0] == h.hashes[1])
        ([0, 1, 2, 2], True)
    """
    encoded = normalized_bytes_many(texts)
    n_docs = len(encoded)
    grams = np.zeros(n_docs, dtype=np.int64)
    # where each text starts in the NUL-joined bytes of all; groups cut where that passes group_bytes
    at = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=n_docs) + 1, out=at[1:])
    cuts = np.unique(np.searchsorted(at, np.arange(group_bytes, int(at[-1]) + group_bytes, group_bytes)))
    parts: List[np.ndarray] = []
    a = 0
    for b in cuts.tolist() + [n_docs]:
        b = min(b, n_docs)
        if b > a:
            _group_hashes(encoded[a:b], at[a:b] - at[a], ngram, grams[a:b], parts)
            a = b
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(grams, out=offsets[1:])
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=_U)
    return NgramHashes(hashes.view(np.int64), offsets, encoded)
