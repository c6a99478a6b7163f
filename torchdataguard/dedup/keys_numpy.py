"""Near-duplicate keys of a chunk on the CPU, in NumPy: the same keys as the torch path of
:func:`~torchdataguard.dedup.near_keys.keys_from_shingles`, with fewer and smaller array passes.

A chunk of short documents holds a few thousand shingles, so what costs is the number of array operations and
the bytes each one moves, not the arithmetic. Here the exact shingle sets of small documents come from one sort
of ``(document, hash)`` words (the shingles arrive in runs by document, which a merge sort uses), and only the
4-bit values of the documents that need a signature are densified (through :func:`~.minhash.densify_sources`,
one gather of bytes at the end, where the torch path copies int64 values around).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..core.mixing import np_mix64
from .minhash import EMPTY, densify_sources, seed_salt

__all__ = ["KEY_GROUP", "MIX_SLICE", "grouped_numpy_keys", "mixed_hashes", "numpy_keys", "numpy_shingle_sets"]

_U = np.uint64
_M64 = (1 << 64) - 1
#: documents whose keys are computed in one vectorised pass: a chunk of many short documents is keyed this many
#: at a time, so its signature arrays (about 1 KB a document each, a few at once) stay a few MB
KEY_GROUP = 1024
#: shingles mixed and binned in one pass (a chunk of long documents holds millions: their work arrays would
#: leave the cache, and fresh memory is slow to touch)
MIX_SLICE = 1 << 16
_EMPTY32 = np.uint32(0xFFFFFFFF)


def grouped_numpy_keys(hashes: np.ndarray, doc: np.ndarray, n: int, num_perm: int, seed: int,
                       limits: Tuple[int, int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`numpy_keys`, :data:`KEY_GROUP` documents at a time; the same keys (each document's keys depend on
    its own shingles only, in any order).

    Example:
        >>> from torchdataguard.dedup.hashing import text_shingle_hashes
        >>> texts = [f"text number {i} of a chunk" for i in range(3000)]  # three groups of 1,024
        >>> keys = grouped_numpy_keys(*text_shingle_hashes(texts, ngram=5), len(texts), 128, 1, (12, 14, 17))
        >>> [a.shape[0] for a in keys], int(keys[1].max())
        ([3000, 3000, 6000, 3001], 2)
    """
    doc = np.asarray(doc, dtype=np.int64)
    if n <= KEY_GROUP:
        return numpy_keys(hashes, doc, n, num_perm, seed, limits)
    if doc.size > 1 and bool(np.any(doc[1:] < doc[:-1])):  # keys do not depend on the order of a document's shingles
        o = np.argsort(doc, kind="stable")  # runs by document (a few one-shingle texts come last): nearly sorted
        hashes, doc = np.asarray(hashes)[o], doc[o]
    cuts = np.searchsorted(doc, np.arange(0, n + KEY_GROUP, KEY_GROUP).clip(max=n))
    parts = []
    for g, a in enumerate(range(0, n, KEY_GROUP)):
        lo, hi = int(cuts[g]), int(cuts[g + 1])
        parts.append(numpy_keys(hashes[lo:hi], doc[lo:hi] - a, min(KEY_GROUP, n - a), num_perm, seed, limits))
    off = [parts[0][3]]
    for p in parts[1:]:
        off.append(p[3][1:] + off[-1][-1])
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), np.concatenate(off))


def numpy_keys(hashes: np.ndarray, doc: np.ndarray, n: int, num_perm: int, seed: int,
               limits: Tuple[int, int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(nib, size, sets, off)`` of :class:`~torchdataguard.dedup.near_keys.NearKeys` for ``n`` documents.

    Args:
        hashes: uint64 (or int64) [S] shingle hashes; ``doc`` int64 [S] the document of each.
        limits: ``(K, K2, K3)`` (:func:`~torchdataguard.dedup.smallsets.exact_limits`).

    Example:
        >>> from torchdataguard.dedup.hashing import text_shingle_hashes
        >>> h, d = text_shingle_hashes(["a short text", "another short text"], ngram=5)
        >>> nib, size, sets, off = numpy_keys(h, d, 2, 128, 1, (12, 14, 17))
        >>> size.tolist(), off.tolist(), nib.shape
        ([1, 1], [0, 1, 2], (2, 128))
    """
    K, _, K3 = limits
    h = np.ascontiguousarray(hashes).view(_U)
    doc = np.asarray(doc, dtype=np.int64)
    salt = _U(seed_salt(seed) & _M64)
    sig, empty, x = _bin_minima(h, doc, n, num_perm, salt)
    sig = sig.reshape(n, num_perm)
    filled = sig != empty
    cand = np.count_nonzero(filled, axis=1) < K3
    if x is None:  # the mixed hashes of a large chunk were made a slice at a time: those of the candidates again
        sel = cand[doc]
        x, doc = mixed_hashes(h[sel], salt), doc[sel]
    size, sets, off = numpy_shingle_sets(x.view(np.int64), doc, cand, K3)
    nib = np.zeros((n, num_perm), dtype=np.uint8)
    lsh = np.flatnonzero(size >= K)
    if lsh.size == n:  # the usual case for documents of more than a few sentences
        nib = np.take_along_axis((sig & 15).astype(np.uint8), densify_sources(filled, num_perm, seed), axis=1)
    elif lsh.size:
        fl = filled[lsh]
        nib[lsh] = np.take_along_axis((sig[lsh] & 15).astype(np.uint8), densify_sources(fl, num_perm, seed), axis=1)
    return nib, size, sets, off


def mixed_hashes(h: np.ndarray, salt: np.uint64) -> np.ndarray:
    """``np_mix64(h ^ salt)`` (SplitMix64 of each hash xor the seed's salt) in one new array, mixed in place.

    Example:
        >>> h = np.array([1, 2, 3], dtype=np.uint64)
        >>> bool((mixed_hashes(h, np.uint64(7)) == np_mix64(h ^ np.uint64(7))).all())
        True
    """
    x = h ^ salt
    t = np.empty_like(x)
    with np.errstate(over="ignore"):
        np.right_shift(x, _U(30), out=t)
        x ^= t
        x *= _U(0xBF58476D1CE4E5B9)
        np.right_shift(x, _U(27), out=t)
        x ^= t
        x *= _U(0x94D049BB133111EB)
        np.right_shift(x, _U(31), out=t)
        x ^= t
    return x


def _bin_minima(h: np.ndarray, doc: np.ndarray, n: int, num_perm: int,
                salt: np.uint64) -> Tuple[np.ndarray, int, Optional[np.ndarray]]:
    """``(sig, empty, x)``: the least value per bin of each document (flat, ``n * num_perm``), the value of bins
    without a shingle, and the mixed hashes (``None`` for a chunk of more than :data:`MIX_SLICE` shingles,
    which is mixed a slice at a time so that its work arrays stay in the cache).

    Values are the low 32 bits of the mixed hashes, kept in uint32 with ``2**32 - 1`` for empty bins (half the
    bytes of int64); a chunk holding the value ``2**32 - 1`` itself (about one shingle in four billion) moves
    to int64 with :data:`~.minhash.EMPTY` from that slice on, so the bins are the same either way.
    """
    sig = np.full(n * num_perm, _EMPTY32, dtype=np.uint32)
    empty = int(_EMPTY32)
    x: Optional[np.ndarray] = None
    for a in range(0, h.size, MIX_SLICE):
        x = mixed_hashes(h[a : a + MIX_SLICE], salt)
        hi = x >> _U(32)
        if num_perm & (num_perm - 1):
            hi %= _U(num_perm)
        else:  # a power of two: the same remainder without a division
            hi &= _U(num_perm - 1)
        bins = hi.view(np.int64)
        bins += doc[a : a + MIX_SLICE] * num_perm
        vals = x.astype(np.uint32)
        if sig.dtype == np.uint32 and bool((vals == _EMPTY32).any()):
            sig = np.where(sig == _EMPTY32, np.int64(EMPTY), sig.astype(np.int64))
            empty = EMPTY
        np.minimum.at(sig, bins, vals if sig.dtype == np.uint32 else vals.astype(np.int64))
    return sig, empty, (x if h.size <= MIX_SLICE else None)


def numpy_shingle_sets(x: np.ndarray, doc: np.ndarray, cand: np.ndarray,
                       limit: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~torchdataguard.dedup.setops.shingle_sets` in NumPy: the same ``(size, sets, off)``.

    The shingles of the candidates are sorted by one word each: the document in the high bits, the top bits
    of the hash (in signed order) below; hashes that agree on those top bits in one document (about one in
    ``2**50`` pairs) are detected and the exact two-key sort is used instead.

    Example:
        >>> size, sets, off = numpy_shingle_sets(np.array([5, 3, 5, 9]), np.array([0, 0, 0, 1]),
        ...                                      np.array([True, True]), 8)
        >>> size.tolist(), sets.tolist(), off.tolist()
        ([2, 1], [3, 5, 9], [0, 2, 3])
    """
    n = cand.size
    size = np.full(n, int(limit), dtype=np.int64)
    off = np.zeros(n + 1, dtype=np.int64)
    if not cand.any():
        return size, np.zeros(0, dtype=np.int64), off
    sel = cand[doc]
    xs, ds = x[sel], doc[sel]
    bits = max(1, int(n).bit_length())
    key = (ds.astype(_U) << _U(64 - bits)) | ((xs.view(_U) ^ _U(1 << 63)) >> _U(bits))
    o = np.argsort(key, kind="stable")  # the shingles come in runs by document: a merge sort uses them
    key, xs, ds = key[o], xs[o], ds[o]
    new = np.empty(xs.size, dtype=bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    new[1:] |= ds[1:] != ds[:-1]
    if bool(np.any((key[1:] == key[:-1]) & new[1:])):  # two hashes of one document share their top bits
        o = np.lexsort((xs, ds))
        xs, ds = xs[o], ds[o]
        np.not_equal(xs[1:], xs[:-1], out=new[1:])
        new[1:] |= ds[1:] != ds[:-1]
    xs, ds = xs[new], ds[new]
    cnt = np.bincount(ds, minlength=n)
    small = cand & (cnt < limit)
    size[small] = cnt[small]
    np.cumsum(np.where(small, cnt, 0), out=off[1:])
    return size, xs[small[ds]], off
