"""One-permutation MinHash signatures with optimal densification, on any device.

Each shingle hash is mixed with the seed; its high 32 bits pick one of ``num_perm`` bins and its low 32 bits
are the value; each bin keeps the minimum (:func:`minhash_bins`). Empty bins are then filled by
:func:`densify` (Shrivastava 2017): each takes the value of the first non-empty bin of its own probe
sequence, drawn once from the seed and shared by every document, which keeps the probability that two
documents agree on a bin equal to their Jaccard similarity.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from .hashing import mix64

__all__ = ["EMPTY", "densify", "densify_numpy", "densify_sources", "densify_torch", "minhash_bins", "minhash_signatures",
           "probe_table", "seed_salt"]

EMPTY = 1 << 32


def _probe_table(num_perm: int, seed: int, attempts: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 7919)
    return torch.randint(0, num_perm, (num_perm, attempts), generator=g)


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


def minhash_signatures(hashes: torch.Tensor, doc: torch.Tensor, n_docs: int, num_perm: int = 128,
                       seed: int = 1) -> torch.Tensor:
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
        int64 tensor [n_docs, num_perm] of values in [0, 2**32).

    Example:
        >>> from torchdataguard.dedup.hashing import text_shingle_hashes
        >>> h, d = text_shingle_hashes(["the quick brown fox jumps over the lazy dog"] * 2, ngram=3)
        >>> s = minhash_signatures(torch.from_numpy(h.view("int64")), torch.from_numpy(d), 2, 64)
        >>> bool((s[0] == s[1]).all())
        True
    """
    _, sig = minhash_bins(hashes, doc, n_docs, num_perm, seed)
    return densify(sig, num_perm, seed)


def minhash_bins(hashes: torch.Tensor, doc: torch.Tensor, n_docs: int, num_perm: int = 128,
                 seed: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """The two halves of :func:`minhash_signatures` before densification.

    Returns ``(x, sig)``: ``x`` [S] is each shingle hash mixed with ``seed`` (a bijection of the 64-bit
    hashes, so sets of ``x`` are the shingle sets exactly) and ``sig`` [n_docs, num_perm] holds the minimum
    per bin, :data:`EMPTY` where a document has no shingle in a bin (its count of filled bins is a lower
    bound of its count of distinct shingles). ``densify(sig, num_perm, seed)`` completes the signature.

    Example:
        >>> from torchdataguard.dedup.hashing import text_shingle_hashes
        >>> h, d = text_shingle_hashes(["one two"], ngram=5)
        >>> x, sig = minhash_bins(torch.from_numpy(h.view("int64")), torch.from_numpy(d), 1, 64)
        >>> int((sig != EMPTY).sum())
        1
    """
    if isinstance(hashes, np.ndarray):
        hashes = torch.from_numpy(hashes.view(np.int64))
    if isinstance(doc, np.ndarray):
        doc = torch.from_numpy(doc)
    dev = hashes.device
    doc = doc.to(dev)
    x = mix64(hashes ^ seed_salt(seed))
    bins = ((x >> 32) & 0xFFFFFFFF) % num_perm
    vals = x & 0xFFFFFFFF
    flat = doc * num_perm + bins
    sig = torch.full((n_docs * num_perm,), EMPTY, dtype=torch.int64, device=dev)
    sig.scatter_reduce_(0, flat, vals, reduce="amin", include_self=True)
    return x, sig.view(n_docs, num_perm)


def densify(sig: torch.Tensor, num_perm: int, seed: int = 1) -> torch.Tensor:
    """Fill the empty bins of ``sig`` (from :func:`minhash_bins`) as :func:`minhash_signatures` does.

    Each empty bin ``b`` of a document takes the value of the first non-empty bin of ``b``'s probe sequence
    (``8 * num_perm`` bins drawn once from ``seed``, shared by every document; Shrivastava 2017's optimal
    densification). A document without any shingle keeps :data:`EMPTY`; in the astronomically rare case
    that no probe of a bin hits, the document's first non-empty bin is used.

    Example:
        >>> sig = torch.full((1, 8), EMPTY); sig[0, 3] = 42
        >>> densify(sig, 8).tolist()
        [[42, 42, 42, 42, 42, 42, 42, 42]]
    """
    empty = sig == EMPTY
    if not bool(empty.any()):
        return sig
    if sig.device.type == "cpu":
        return torch.from_numpy(densify_numpy(sig.numpy(), num_perm, seed))
    return densify_torch(sig, num_perm, seed)


def probe_table(num_perm: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """int64 [num_perm, 8 * num_perm]: the probe sequence of each bin (cached)."""
    key = (num_perm, seed, str(device))
    probes = _probe_cache.get(key)
    if probes is None:
        probes = _probe_cache[key] = _probe_table(num_perm, seed, 8 * num_perm).to(device)
    return probes


#: probes read at once for every empty bin of a document with many empty bins (the bin of the first hit is
#: found from a 16-bit mask); documents with few empty bins, and the misses, walk blocks of 8, 32, 128 ...
_BLOCK = 16
_FIRST_BIT = np.zeros(1 << _BLOCK, dtype=np.int8)  # index of the lowest set bit of a 16-bit mask
_FIRST_BIT[1:] = np.log2(np.arange(1, 1 << _BLOCK) & -np.arange(1, 1 << _BLOCK)).round().astype(np.int8)


def densify_numpy(sig: np.ndarray, num_perm: int, seed: int = 1) -> np.ndarray:
    """:func:`densify` on a NumPy array [n, num_perm] (CPU): the same values."""
    return np.take_along_axis(sig, densify_sources(sig != EMPTY, num_perm, seed), axis=1)


def densify_sources(filled: np.ndarray, num_perm: int, seed: int = 1) -> np.ndarray:
    """int64 [n, num_perm]: the bin whose value each bin holds after :func:`densify`, from the mask of filled bins
    (a filled bin, and every bin of a row without any, is its own source).

    So ``np.take_along_axis(values, densify_sources(filled, P), 1)`` densifies any per-bin array (values, or
    only their low bits), one gather at the end instead of copying full values around.

    Example:
        >>> densify_sources(np.array([[False, True, False, False]]), 4).tolist()
        [[1, 1, 1, 1]]
    """
    probes = probe_table(num_perm, seed).numpy()
    n = filled.shape[0]
    n_empty = num_perm - np.count_nonzero(filled, axis=1)
    src = np.empty((n, num_perm), dtype=np.int64)
    src[:] = np.arange(num_perm)
    k = num_perm - n_empty
    sparse = (k > 0) & (k <= max(1, 3 * num_perm // 16))
    many = np.flatnonzero((n_empty > num_perm // 4) & ~sparse & (k > 0))
    few = np.flatnonzero((n_empty > 0) & (n_empty <= num_perm // 4) & ~sparse)
    if sparse.any():
        rows = np.flatnonzero(sparse)
        src[rows] = _sources_by_first_probe(filled[rows], k[rows], num_perm, seed)
    if many.size:
        fm = filled if many.size == n else filled[many]
        p0 = np.ascontiguousarray(probes[:, :_BLOCK]).reshape(-1)
        ok = np.take(fm, p0, axis=1)  # [rows, num_perm * _BLOCK] bools, 8 per uint64 word
        w = ok.view("<u8").reshape(many.size, num_perm, _BLOCK // 8)
        with np.errstate(over="ignore"):  # bytes that are 0 or 1 -> one bit each (byte i -> bit i)
            w = (w * np.uint64(0x0102040810204080)) >> np.uint64(56)
        bits = (w[..., 0] | (w[..., 1] << np.uint64(8))).astype(np.int64)
        hit = (bits != 0) & ~fm
        first = p0[np.arange(num_perm) * _BLOCK + _FIRST_BIT[bits]]  # [rows, num_perm] bin probed first with a hit
        sm = np.where(hit, first, np.arange(num_perm))
        d, b = np.nonzero(~(hit | fm))  # rows of `many` go on after the dense block
        _sparse_sources(filled, sm, many, d, b, probes, _BLOCK, num_perm)
        if many.size == n:
            src = sm
        else:
            src[many] = sm
    if few.size:  # few empty bins: walk their probes from the start
        ff = filled[few]
        sf = src[few]
        d, b = np.nonzero(~ff)
        _sparse_sources(filled, sf, few, d, b, probes, 0, num_perm)
        src[few] = sf
    return src


#: probes ranked by :func:`_first_probe_rank` (int8 ranks; bins first probed later go through the block walk)
_RANKED = 64
_rank_cache: dict = {}


def _first_probe_rank(num_perm: int, seed: int) -> np.ndarray:
    """int8 [num_perm + 1, num_perm]: ``r[f, b]`` is the first position of bin ``f`` among the first
    :data:`_RANKED` probes of bin ``b`` (``_RANKED`` or more: not among them); row ``num_perm`` is padding."""
    key = (num_perm, seed)
    r = _rank_cache.get(key)
    if r is None:
        probes = probe_table(num_perm, seed).numpy()[:, :_RANKED]
        r = np.full((num_perm + 1, num_perm), 127, dtype=np.int8)
        t = np.arange(probes.shape[1])[::-1]
        for b in range(num_perm):
            r[probes[b, ::-1], b] = t  # reversed: the first occurrence is written last
        r = _rank_cache[key] = r
    return r


def _sources_by_first_probe(filled: np.ndarray, k: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """:func:`densify_sources` of rows with few filled bins (``k`` each, at least one): the first probe of bin
    ``b`` that hits is the least rank of ``b``'s probe sequence over the row's filled bins, one minimum over
    ``k`` ranks per bin instead of a walk along the sequence."""
    n = filled.shape[0]
    rank = _first_probe_rank(num_perm, seed)
    probes = probe_table(num_perm, seed).numpy()
    r, c = np.nonzero(filled)
    fidx = np.full((n, int(k.max())), num_perm, dtype=np.int64)
    fidx[r, np.arange(r.size) - (np.cumsum(k) - k)[r]] = c
    first = rank[fidx].min(axis=1)  # [n, num_perm]
    ranked = min(_RANKED, probes.shape[1])
    src = np.where(filled, np.arange(num_perm), probes[np.arange(num_perm), np.minimum(first, ranked - 1)])
    d, b = np.nonzero((first >= ranked) & ~filled)
    _sparse_sources(filled, src, np.arange(n), d, b, probes, ranked, num_perm)
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


def densify_torch(sig: torch.Tensor, num_perm: int, seed: int = 1) -> torch.Tensor:
    """:func:`densify` with torch operations on any device: the same values.

    The probe sequences are read in blocks of growing width (8, 32, 128 ... probes), one gather per block
    for every still-empty bin, so the number of passes is logarithmic in ``8 * num_perm``.
    """
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
