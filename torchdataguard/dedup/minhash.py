"""One-permutation MinHash signatures with optimal densification, on any device.

Each shingle hash is mixed with the seed; its high 32 bits pick one of ``num_perm`` bins and its low 32 bits
are the value; each bin keeps the minimum (:func:`minhash_bins`). Empty bins are then filled by
:func:`densify` (Shrivastava 2017): each takes the value of the first non-empty bin of its own probe
sequence, drawn once from the seed and shared by every document, which keeps the probability that two
documents agree on a bin equal to their Jaccard similarity. The functions take NumPy arrays or torch tensors
and return arrays of the kind they get.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Tuple

import numpy as np

from . import xp
from .mt19937 import mt_words
from .token_hashing import mix64

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .xp import Array

__all__ = ["EMPTY", "densify", "densify_numpy", "densify_sources", "densify_torch", "minhash_bins", "minhash_signatures",
           "mt_randint", "probe_table", "seed_salt"]

EMPTY = 1 << 32


def mt_randint(seed: int, low: int, high: int, n: int) -> np.ndarray:
    """int64 [n]: what ``torch.randint(low, high, (n,), generator=torch.Generator().manual_seed(seed))`` gives on the
    CPU, without torch. torch's CPU generator is the Mersenne Twister seeded with the low 32 bits of ``seed``
    (NumPy's legacy ``RandomState`` seeds it the same way; the words come from :func:`~.mt19937.mt_words`, without
    ``numpy.random``); a range under ``2**32`` takes one 32-bit draw per value, a larger one two (the first the high
    half), each reduced modulo the range.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(7920)
        >>> mt_randint(7920, 0, 128, 6).tolist() == torch.randint(0, 128, (6,), generator=g).tolist()
        True
    """
    span = int(high) - int(low)
    wide = span >= 1 << 32
    raw = mt_words(seed, n * (2 if wide else 1)).astype(np.uint64)  # no numpy.random import (5-7 ms)
    if wide:
        raw = (raw[0::2] << np.uint64(32)) | raw[1::2]
    return (raw % np.uint64(span)).astype(np.int64) + int(low)


def _probe_table(num_perm: int, seed: int, attempts: int) -> np.ndarray:
    return mt_randint(seed + 7919, 0, num_perm, num_perm * attempts).reshape(num_perm, attempts)


_probe_cache: dict = {}


def seed_salt(seed: int) -> int:
    """The 64-bit constant shingle hashes are xored with before mixing, as a signed int64 (wrapping: any
    integer seed works).

    Example:
        >>> seed_salt(1) == 0x5851F42D4C957F2D + 0x14057B7EF767814F
        True
    """
    c = (int(seed) * 0x5851F42D4C957F2D + 0x14057B7EF767814F) & ((1 << 64) - 1)
    return c - (1 << 64) if c >> 63 else c


def minhash_signatures(hashes: "Array", doc: "Array", n_docs: int, num_perm: int = 128, seed: int = 1) -> "Array":
    """One-permutation MinHash with optimal densification (Li et al. 2012; Shrivastava 2017).

    Each shingle hash is mixed with ``seed``; its high 32 bits pick one of ``num_perm`` bins, its low 32
    bits are the value, and each bin keeps the minimum. Empty bins borrow the value of a non-empty bin
    chosen by a fixed pseudo-random probe sequence shared by all documents, which keeps the
    probability that two documents agree on a bin equal to their Jaccard similarity. The work is
    O(shingles + num_perm) per document instead of O(shingles * num_perm).

    Args:
        hashes: int64 (or uint64 NumPy) shingle hashes, shape [S].
        doc: index of the document of each shingle, shape [S]; every document needs at least one.
        n_docs: number of documents.
    Returns:
        int64 [n_docs, num_perm] of values in [0, 2**32), of ``hashes``' kind.

    Example:
        >>> from torchdataguard.dedup.hashing import text_shingle_hashes
        >>> h, d = text_shingle_hashes(["the quick brown fox jumps over the lazy dog"] * 2, ngram=3)
        >>> s = minhash_signatures(h, d, 2, 64)
        >>> bool((s[0] == s[1]).all())
        True
    """
    _, sig = minhash_bins(hashes, doc, n_docs, num_perm, seed)
    return densify(sig, num_perm, seed)


def minhash_bins(hashes: "Array", doc: "Array", n_docs: int, num_perm: int = 128,
                 seed: int = 1) -> Tuple["Array", "Array"]:
    """The two halves of :func:`minhash_signatures` before densification.

    Returns ``(x, sig)``: ``x`` [S] is each shingle hash mixed with ``seed`` (a bijection of the 64-bit
    hashes, so sets of ``x`` are the shingle sets exactly) and ``sig`` [n_docs, num_perm] holds the minimum
    per bin, :data:`EMPTY` where a document has no shingle in a bin (its count of filled bins is a lower
    bound of its count of distinct shingles). ``densify(sig, num_perm, seed)`` completes the signature.

    Example:
        >>> from torchdataguard.dedup.hashing import text_shingle_hashes
        >>> h, d = text_shingle_hashes(["one two"], ngram=5)
        >>> x, sig = minhash_bins(h, d, 1, 64)
        >>> int((sig != EMPTY).sum())
        1
    """
    if isinstance(hashes, np.ndarray):
        hashes = hashes.view(np.int64)
    doc = xp.astype(xp.to_like(doc, hashes), "int64")
    x = mix64(hashes ^ seed_salt(seed))
    bins = ((x >> 32) & 0xFFFFFFFF) % num_perm
    vals = x & 0xFFFFFFFF
    flat = doc * num_perm + bins
    sig = xp.full(n_docs * num_perm, EMPTY, like=hashes)
    xp.scatter_amin_(sig, flat, vals)
    return x, sig.reshape(n_docs, num_perm)


def densify(sig: "Array", num_perm: int, seed: int = 1) -> "Array":
    """Fill the empty bins of ``sig`` (from :func:`minhash_bins`) as :func:`minhash_signatures` does.

    Each empty bin ``b`` of a document takes the value of the first non-empty bin of ``b``'s probe sequence
    (``8 * num_perm`` bins drawn once from ``seed``, shared by every document; Shrivastava 2017's optimal
    densification). A document without any shingle keeps :data:`EMPTY`; in the astronomically rare case
    that no probe of a bin hits, the document's first non-empty bin is used.

    Example:
        >>> sig = np.full((1, 8), EMPTY); sig[0, 3] = 42
        >>> densify(sig, 8).tolist()
        [[42, 42, 42, 42, 42, 42, 42, 42]]
    """
    empty = sig == EMPTY
    if not bool(empty.any()):
        return sig
    if xp.is_tensor(sig):
        return densify_torch(sig, num_perm, seed)
    return densify_numpy(sig, num_perm, seed)


def probe_table(num_perm: int, seed: int, device: Optional[Any] = None) -> "Array":
    """int64 [num_perm, 8 * num_perm]: the probe sequence of each bin (cached): a NumPy array, or a tensor on
    ``device`` when one is given."""
    key = (num_perm, seed, None if device is None else str(device))
    probes = _probe_cache.get(key)
    if probes is None:
        probes = _probe_table(num_perm, seed, 8 * num_perm) if device is None else xp.torch_module().from_numpy(
            probe_table(num_perm, seed)).to(device)
        _probe_cache[key] = probes
    return probes


#: probes of each bin ranked in the lookup tables of :func:`_rank_tables` (int8 ranks; a bin whose first filled
#: probe comes later walks its sequence on from there, in blocks of 8, 32, 128 ...)
_RANKED = 127
#: the most bins for which :func:`densify_sources` builds its lookup tables (``32 * num_perm**2`` bytes: 512 KB at
#: 128 bins, 2 MB at 256); documents of more bins walk their probe sequences from the start
TABLE_MAX_PERM = 256
#: lookup tables kept for this many ``(num_perm, seed)`` settings at most (the oldest is dropped first)
TABLE_CACHE_SIZE = 4
_table_cache: dict = {}


def _rank_tables(num_perm: int, seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(least, source, base, ranked)``, cached: the lookup tables of :func:`densify_sources`.

    ``rank[f, b]`` is the first position of bin ``f`` among the first ``ranked`` probes of bin ``b`` (127: not
    among them), and -1 where ``f == b`` (a filled bin is its own source). The filled bins of a document are
    read 8 at a time: ``least[256 * j + v, b]`` is the least ``rank[f, b]`` over the bins ``f = 8 * j + i``
    whose bit ``i`` is set in the byte ``v``, so the least rank over all filled bins is the minimum of
    ``num_perm / 8`` rows. ``source[base[b] + r]`` is the bin probed at position ``r`` of ``b``'s sequence
    (``b`` itself at ``r = -1``, -1 past ``ranked``).
    """
    key = (num_perm, seed)
    t = _table_cache.get(key)
    if t is None:
        probes = probe_table(num_perm, seed)
        ranked = min(_RANKED, probes.shape[1])
        first = probes[:, :ranked]
        rank = np.full((num_perm + 1, num_perm), 127, dtype=np.int8)  # row num_perm: the padding bins
        pos = np.arange(ranked)[::-1]
        for b in range(num_perm):
            rank[first[b, ::-1], b] = pos  # reversed: the first occurrence is written last
        rank[np.arange(num_perm), np.arange(num_perm)] = -1
        chunks = (num_perm + 7) // 8
        least = np.full((chunks, 256, num_perm), 127, dtype=np.int8)
        j = np.arange(chunks)
        for v in range(1, 256):  # v's lowest set bit joins the bins of v without it
            low = (v & -v).bit_length() - 1
            np.minimum(least[:, v & (v - 1)], rank[np.minimum(8 * j + low, num_perm)], out=least[:, v])
        source = np.full((num_perm, 129), -1, dtype=np.int64)
        source[:, 0] = np.arange(num_perm)
        source[:, 1 : ranked + 1] = first
        base = np.arange(num_perm, dtype=np.intp) * 129 + 1
        while len(_table_cache) >= TABLE_CACHE_SIZE:  # the oldest out; another thread may be evicting it too
            try:
                _table_cache.pop(next(iter(_table_cache)), None)
            except (StopIteration, RuntimeError):  # emptied or changed by that thread meanwhile
                break
        t = _table_cache[key] = (least.reshape(chunks * 256, num_perm), source.reshape(-1), base, ranked)
    return t


def densify_numpy(sig: np.ndarray, num_perm: int, seed: int = 1) -> np.ndarray:
    """:func:`densify` on a NumPy array [n, num_perm] (CPU): the same values."""
    return np.take_along_axis(sig, densify_sources(sig != EMPTY, num_perm, seed), axis=1)


def densify_sources(filled: np.ndarray, num_perm: int, seed: int = 1) -> np.ndarray:
    """int64 [n, num_perm]: the bin whose value each bin holds after :func:`densify`, from the mask of filled bins
    (a filled bin, and every bin of a row without any, is its own source).

    So ``np.take_along_axis(values, densify_sources(filled, P), 1)`` densifies any per-bin array (values, or
    only their low bits), one gather at the end instead of copying full values around. The first filled probe
    of every bin comes from lookup tables (:func:`_rank_tables`: ``num_perm / 8`` gathers of a row of int8
    ranks and their minimum per document, whatever its number of filled bins); the rare bins whose first
    filled probe lies past the ranked ones walk their sequence on.

    Example:
        >>> densify_sources(np.array([[False, True, False, False]]), 4).tolist()
        [[1, 1, 1, 1]]
    """
    n = filled.shape[0]
    k = np.count_nonzero(filled, axis=1)
    rows = np.flatnonzero((k > 0) & (k < num_perm))  # rows with an empty bin to fill
    if not rows.size:
        src = np.empty((n, num_perm), dtype=np.int64)
        src[:] = np.arange(num_perm)
        return src
    if rows.size == n:
        f = filled
    else:
        src = np.empty((n, num_perm), dtype=np.int64)
        src[:] = np.arange(num_perm)
        f = filled[rows]
    probes = probe_table(num_perm, seed)
    if num_perm > TABLE_MAX_PERM:
        s = np.empty(f.shape, dtype=np.int64)
        s[:] = np.arange(num_perm)
        d, b = np.nonzero(~f)
        _sparse_sources(filled, s, rows, d, b, probes, 0, num_perm)
    else:
        least, source, base, ranked = _rank_tables(num_perm, seed)
        idx = np.packbits(f, axis=1, bitorder="little").astype(np.intp)  # bit i of byte j: bin 8 * j + i
        idx += np.arange(idx.shape[1]) * 256
        first = least[idx[:, 0]]  # [rows, num_perm] int8: the least rank of a filled bin per bin
        for c in range(1, idx.shape[1]):
            np.minimum(first, least[idx[:, c]], out=first)
        pos = first.astype(np.intp)
        pos += base
        s = source[pos]
        if int(first.max()) >= ranked:  # bins with no filled bin among their first probes walk on
            d, b = np.nonzero(first >= ranked)
            _sparse_sources(filled, s, rows, d, b, probes, ranked, num_perm)
    if rows.size == n:
        return s
    src[rows] = s
    return src


def _sparse_sources(filled: np.ndarray, src: np.ndarray, rows: np.ndarray, d: np.ndarray, b: np.ndarray,
                    probes: np.ndarray, t: int, num_perm: int) -> None:
    """Sources of the bins ``(d, b)`` of ``src`` (whose row ``d`` is row ``rows[d]`` of ``filled``) from probe
    ``t`` on, reading the probe sequences in blocks of 8, 32, 128 ..."""
    attempts = probes.shape[1]
    ff = filled.reshape(-1)
    base = rows[d] * num_perm
    width = 8
    while base.size and t < attempts:
        w = min(width, attempts - t)
        p = probes[b, t : t + w]
        ok = ff[base[:, None] + p]
        first = ok.argmax(1)
        r = np.arange(p.shape[0])
        hit = ok[r, first]
        src[d[hit], b[hit]] = p[r[hit], first[hit]]
        miss = ~hit
        base, d, b = base[miss], d[miss], b[miss]
        t += w
        width *= 4
    if base.size:  # astronomically rare: the document's first non-empty bin, still deterministic
        src[d, b] = filled[rows[d]].argmax(1)


def densify_torch(sig: "torch.Tensor", num_perm: int, seed: int = 1) -> "torch.Tensor":
    """:func:`densify` with torch operations on any device: the same values.

    The probe sequences are read in blocks of growing width (8, 32, 128 ... probes), one gather per block
    for every still-empty bin, so the number of passes is logarithmic in ``8 * num_perm``.
    """
    torch = xp.torch_module()
    probes = probe_table(num_perm, seed, sig.device)
    attempts = probes.shape[1]
    empty = sig == EMPTY
    out = sig.clone()
    filled = (~empty).flatten()
    flat_sig = sig.flatten()
    d_idx, b_idx = torch.nonzero(empty & (~empty).any(1, keepdim=True), as_tuple=True)
    base = d_idx * num_perm
    flat_out = out.view(-1)
    t, width = 0, 8
    while base.numel() and t < attempts:
        w = min(width, attempts - t)
        src = base.unsqueeze(1) + probes[b_idx, t : t + w]  # [E, w] flat positions probed
        ok = filled[src]
        hit = ok.any(1)
        first = ok.to(torch.uint8).argmax(1)  # the first filled probe (argmax returns the first maximum)
        h = torch.nonzero(hit).flatten()
        flat_out[base[h] + b_idx[h]] = flat_sig[src[h, first[h]]]
        miss = ~hit
        base, b_idx = base[miss], b_idx[miss]
        t += w
        width *= 4
    if base.numel():  # astronomically rare: the document's first non-empty bin, still deterministic
        d = base // num_perm
        first = torch.argmax((~empty).to(torch.int8), dim=1)
        flat_out[base + b_idx] = sig[d, first[d]]
    return out
