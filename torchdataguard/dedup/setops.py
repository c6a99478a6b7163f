"""Vectorised operations on shingle sets held flat: the set of row ``i`` is ``vals[off[i]:off[i + 1]]``.

Used by the exact short-text path of near-duplicate detection (:mod:`torchdataguard.dedup.smallsets`):
distinct sets, prefixes for the prefix filter, exact intersections of many pairs at once. Each function works on
NumPy arrays or torch tensors (:mod:`torchdataguard.dedup.xp`) and returns arrays of the kind it gets.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Tuple

import numpy as np

from ..core.mixing import np_mix64
from . import xp
from .distinct import sorted_unique

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array

_INT64_MAX = 2**63 - 1

__all__ = ["gather_sets", "intersections", "pairs_sharing_key", "prefix_lengths", "prefix_positions",
           "segment_owner", "segment_positions", "segments", "shingle_sets", "key_groups", "blocked_in_groups"]


def prefix_lengths(size: "Array", threshold: float) -> "Array":
    """``n - ceil(t * n) + 1`` for each set size ``n`` (at least 1, at most ``n``)."""
    need = xp.clip(xp.astype(xp.ceil(xp.astype(size, "float64") * threshold - 1e-6), "int64"), 1)
    return xp.minimum(xp.clip(size - need + 1, 1), xp.clip(size, 1))


def shingle_sets(x: "Array", doc: "Array", cand: "Array", limit: int) -> Tuple["Array", "Array", "Array"]:
    """Distinct shingle sets of the documents flagged in ``cand`` that have fewer than ``limit`` of them.

    Args:
        x: int64 [S] shingle hashes (mixed); ``doc`` [S] the document of each.
        cand: bool [n] documents to look at (others are taken to have ``limit`` or more).
    Returns:
        ``(size, sets, off)``: ``size`` [n] is the distinct count where it is under ``limit``, else ``limit``
        (0 for a candidate without shingles); the set of row ``i`` is ``sets[off[i]:off[i + 1]]``, sorted
        ascending (as int64), and empty where ``size == limit``.

    Example:
        >>> size, sets, off = shingle_sets(np.array([5, 3, 5, 9]), np.array([0, 0, 0, 1]), np.array([True, True]), 8)
        >>> size.tolist(), sets.tolist(), off.tolist()
        ([2, 1], [3, 5, 9], [0, 2, 3])
    """
    n = xp.numel(cand)
    size = xp.full(n, int(limit), like=x)
    off = xp.zeros(n + 1, like=x)
    if not bool(cand.any()):
        return size, xp.zeros(0, like=x), off
    doc = xp.to_like(doc, x)
    sel = cand[doc]
    xs, ds = x[sel], doc[sel]
    o = xp.stable_argsort(xs)
    xs, ds = xs[o], ds[o]
    o = xp.stable_argsort(ds)
    xs, ds = xs[o], ds[o]
    new = xp.full(xp.numel(xs), True, "bool", like=x)
    if xp.numel(xs) > 1:
        new[1:] = (xs[1:] != xs[:-1]) | (ds[1:] != ds[:-1])
    xs, ds = xs[new], ds[new]
    cnt = xp.bincount(ds, minlength=n)
    small = cand & (cnt < limit)
    size[small] = cnt[small]
    keep = small[ds]
    off[1:] = xp.cumsum(xp.where(small, cnt, 0))
    return size, xs[keep], off


def segment_owner(lens: "Array") -> "Array":
    """``repeat_interleave(arange(len(lens)), lens)``: the segment of each position of the concatenation."""
    ends = xp.cumsum(lens)
    return _owner_of(ends, int(ends[-1]) if xp.numel(ends) else 0)


def _owner_of(ends: "Array", total: int) -> "Array":
    """For each position ``0 .. total - 1``, how many of ``ends`` (cumulative segment lengths) are at or below
    it: its segment (``searchsorted(ends, pos, right=True)`` in one pass: a count of the segment ends at each
    position, summed; repeat_interleave with tensor counts and searchsorted are slower on CPU)."""
    if total == 0:
        return xp.zeros(0, like=ends)
    inner = ends[:-1]
    return xp.cumsum(xp.bincount(inner[inner < total], minlength=total)[:total])


def gather_sets(sets: "Array", off: "Array", rows: "Array") -> Tuple["Array", "Array"]:
    """The sets of ``rows`` as ``(flat values, owner position in rows)``."""
    lens = off[rows + 1] - off[rows]
    return segments(sets, off[rows], lens)


def segment_positions(starts: "Array", lens: "Array") -> Tuple["Array", "Array"]:
    """Positions ``starts[k] .. starts[k] + lens[k] - 1`` of every segment ``k``, concatenated, and the
    segment of each."""
    total = int(lens.sum()) if xp.numel(lens) else 0
    if total == 0:
        z = xp.zeros(0, like=starts)
        return z, xp.copy(z)
    ends = xp.cumsum(lens)
    owner = _owner_of(ends, total)
    return xp.arange(total, like=starts) + (starts - (ends - lens))[owner], owner


def segments(vals: "Array", starts: "Array", lens: "Array") -> Tuple["Array", "Array"]:
    """The values of the segments ``vals[starts[k] : starts[k] + lens[k]]``, concatenated, and the owner
    ``k`` of each."""
    idx, owner = segment_positions(starts, lens)
    return vals[idx], owner


def prefix_positions(vals: "Array", starts: "Array", lens: "Array", threshold: float,
                     late: Optional[Callable[["Array"], "Array"]] = None) -> Tuple["Array", "Array"]:
    """Positions in ``vals`` of the prefix of each set ``vals[starts[k] : starts[k] + lens[k]]`` (sorted
    ascending), and the owner ``k`` of each.

    The prefix is the first ``n - ceil(t n) + 1`` elements in the global order *values for which ``late``
    (bool of each value) holds come last, then ascending value*: two sets with Jaccard ``>= t`` share an
    element of their prefixes whenever both are cut in one such order (the prefix filter), whatever ``late``
    marks.
    """
    plen = prefix_lengths(lens, threshold)
    pos, owner = segment_positions(starts, plen)
    if late is None:
        return pos, owner
    if bool((lens == 0).any()):  # (never from NearDedup: its sets hold a value at least) the full cut, as before
        return _late_last_prefix(vals, starts, lens, plen, late, plain=(pos, owner))
    hit = late(vals[pos])
    if not bool(hit.any()):
        return pos, owner
    # a set whose first values hold no late value keeps them as its prefix: they come first in the other order
    # too; only the sets with a late value there are cut again
    redo = xp.zeros(xp.numel(lens), "bool", like=lens)
    redo[owner[hit]] = True
    sub = xp.nonzero(redo)
    rpos, rown = _late_last_prefix(vals, starts[sub], lens[sub], plen[sub], late)
    keep = ~redo[owner]
    pos, owner = xp.cat([pos[keep], rpos]), xp.cat([owner[keep], sub[rown]])
    order = xp.stable_argsort(owner)  # by set, each set's positions in set order (as they come)
    return pos[order], owner[order]


def _late_last_prefix(vals: "Array", starts: "Array", lens: "Array", plen: "Array", late: Callable[["Array"], "Array"],
                      plain: Optional[Tuple["Array", "Array"]] = None) -> Tuple["Array", "Array"]:
    """:func:`prefix_positions` of sets cut in the order "late values last", ``plen`` values each (``plain``:
    the answer returned when no value is late)."""
    pos, owner = segment_positions(starts, lens)
    is_late = late(vals[pos])
    if plain is not None and not bool(is_late.any()):
        return plain
    # each element's rank in that order within its set, without sorting: an element that is not late comes
    # after the earlier ones of its set that are not late; a late one after every one that is not late and the
    # earlier late ones (the positions come out in set order, the same positions as a stable sort would keep)
    early = xp.astype(~is_late, "int64")
    ce = xp.zeros(xp.numel(pos) + 1, like=pos)
    ce[1:] = xp.cumsum(early)
    first = xp.cumsum(lens) - lens  # where each set starts in the concatenation
    before = ce[:-1] - ce[first][owner]  # elements not late before this one, in its set
    n_early = (ce[first + lens] - ce[first])[owner]
    at = xp.arange(xp.numel(pos), like=pos) - first[owner]
    rank = xp.where(is_late, n_early + at - before, before)
    keep = rank < plen[owner]
    return pos[keep], owner[keep]


def key_groups(keys: "Array", owner: "Array") -> Tuple["Array", "Array"]:
    """``(owners, group)``: the owners of ``keys`` sorted by key value (stable: within one value, owners keep
    their order, non-decreasing when ``owner`` is), and the group (one per distinct value) of each, for
    :func:`blocked_in_groups`."""
    order = xp.stable_argsort(keys)
    ks, ow = keys[order], owner[order]
    start = xp.full(xp.numel(ks), True, "bool", like=ks)
    start[1:] = ks[1:] != ks[:-1]
    return ow, xp.cumsum(xp.astype(start, "int64")) - 1


def blocked_in_groups(ow: "Array", group: "Array", r: int, blockers: Optional["Array"] = None) -> "Array":
    """bool [r]: owners (0..r-1) in a group of :func:`key_groups` with an earlier owner (one flagged in
    ``blockers``, bool [r], when given).

    Example:
        >>> ow, group = key_groups(np.array([7, 9, 7, 9, 7]), np.array([0, 0, 1, 1, 2]))
        >>> blocked_in_groups(ow, group, 3).tolist()
        [False, True, True]
        >>> blocked_in_groups(ow, group, 3, blockers=np.array([False, True, True])).tolist()
        [False, False, True]
    """
    blocked = xp.zeros(r, "bool", like=ow)
    if xp.numel(ow) < 2:
        return blocked
    if blockers is None:
        start = xp.full(xp.numel(group), True, "bool", like=group)
        start[1:] = group[1:] != group[:-1]
        first_owner = ow[start][group]
    else:  # the first owner of each group that may block (r: none)
        may = xp.where(blockers[ow], ow, r)
        first = xp.full(int(group[-1]) + 1, r, xp.dtype_name(ow), like=ow)
        first_owner = xp.scatter_amin_(first, group, may)[group]
    blocked[ow[first_owner < ow]] = True
    return blocked


def pairs_sharing_key(keys: "Array", owner: "Array", r: int, blockers: Optional["Array"] = None) -> Tuple["Array", "Array"]:
    """Unique pairs ``(a, b)``, ``a < b``, of owners (rows 0..r-1) that hold a common key value; with
    ``blockers`` (bool [r]), only the pairs whose ``a`` is flagged (the others are never enumerated).

    Example:
        >>> [a.tolist() for a in pairs_sharing_key(np.array([7, 9, 7, 9, 7]), np.array([0, 0, 1, 1, 2]), 3)]
        [[0, 0, 1], [1, 2, 2]]
        >>> [a.tolist() for a in pairs_sharing_key(np.array([7, 9, 7, 9, 7]), np.array([0, 0, 1, 1, 2]), 3,
        ...                                        blockers=np.array([False, True, True]))]
        [[1], [2]]
    """
    if xp.numel(keys) < 2:
        z = xp.zeros(0, like=keys)
        return z, xp.copy(z)
    order = xp.stable_argsort(keys)
    ks, ow = keys[order], owner[order]
    start = xp.full(xp.numel(ks), True, "bool", like=ks)
    start[1:] = ks[1:] != ks[:-1]
    first = xp.nonzero(start)
    seg = xp.cumsum(xp.astype(start, "int64")) - 1
    if blockers is None:
        rank = xp.arange(xp.numel(ks), like=ks) - first[seg]
        earlier, k = segment_positions(first[seg], rank)  # for element k, every earlier element of its key value
    else:  # for element k, the earlier elements of its key value whose owner may block: a range of ``flagged``
        flag = xp.astype(blockers[ow], "int64")
        before = xp.cumsum(flag) - flag  # flagged elements before each
        lo = before[first][seg]
        e, k = segment_positions(lo, before - lo)
        earlier = xp.nonzero(flag)[e]
    a, b = ow[earlier], ow[k]
    keep = a != b
    pair = sorted_unique(a[keep] * r + b[keep])
    return pair // r, pair % r


def intersections(a_vals: "Array", a_off: "Array", a_idx: "Array", b_vals: "Array", b_off: "Array",
                  b_idx: "Array") -> "Array":
    """``|A_p & B_p|`` for each pair ``p`` of set ``a_idx[p]`` of ``a`` and set ``b_idx[p]`` of ``b`` (each set
    sorted ascending, without repeats), exactly: sets of at most :data:`DENSE_WIDTH` values by a binary search
    of each value of ``A_p`` in ``B_p`` (:func:`_intersections_dense`), longer ones by tagging both sets with
    the pair, sorting, and counting equal neighbours.

    Example:
        >>> intersections(np.array([1, 2, 3]), np.array([0, 3]), np.array([0]),
        ...               np.array([2, 3, 4, 7]), np.array([0, 3, 4]), np.array([0])).tolist()
        [2]
    """
    P = xp.numel(a_idx)
    if P == 0:
        return xp.zeros(0, like=a_vals)
    a_len, b_len = a_off[a_idx + 1] - a_off[a_idx], b_off[b_idx + 1] - b_off[b_idx]
    widest = max(int(a_len.max()), int(b_len.max()))
    if widest <= DENSE_WIDTH and xp.dtype_name(a_vals) == xp.dtype_name(b_vals) == "int64":
        return _intersections_dense(a_vals, a_off[a_idx], a_len, b_vals, b_off[b_idx], b_len)
    va, pa = segments(a_vals, a_off[a_idx], a_off[a_idx + 1] - a_off[a_idx])
    vb, pb = segments(b_vals, b_off[b_idx], b_off[b_idx + 1] - b_off[b_idx])
    v = xp.cat([va, vb])
    p = xp.cat([pa, pb])
    if not xp.is_tensor(v) and v.dtype == np.int64:  # the hash reads each value as 64 bits
        counts = _intersections_by_hash(v, p, P)
        if counts is not None:
            return counts
    o = xp.stable_argsort(v)
    v, p = v[o], p[o]
    o = xp.stable_argsort(p)
    v, p = v[o], p[o]
    same = (v[1:] == v[:-1]) & (p[1:] == p[:-1])
    return xp.bincount(p[1:][same], minlength=P)




#: sets of at most this many values are intersected by :func:`_intersections_dense` (the short-text path's sets
#: have fewer than ``K3`` values: 17 at the defaults)
DENSE_WIDTH = 64


def _padded(vals: "Array", starts: "Array", lens: "Array", width: int) -> "Array":
    """[k, width]: segment ``k`` of ``vals`` in row ``k``, then the largest int64 (where ``lens[k] < width``)."""
    col = xp.arange(width, like=vals)
    at = starts[:, None] + col
    out = vals[xp.clip(at, hi=max(xp.numel(vals) - 1, 0))] if xp.numel(vals) else xp.zeros(tuple(at.shape), like=at)
    return xp.where(col >= lens[:, None], _INT64_MAX, out)


def _intersections_dense(a_vals: "Array", a_start: "Array", a_len: "Array", b_vals: "Array", b_start: "Array",
                         b_len: "Array") -> "Array":
    """The counts of :func:`intersections` for short sorted sets: each set of ``b`` is one row of a padded
    matrix, and each value of the paired ``a`` set is looked up in that row (one batched binary search).
    The padding is the largest int64, after every value, so a value's place in its row is found before any
    padding; a value counts when its place is inside the set and holds it. NumPy has no row-wise search: there
    each value of ``a`` is compared with the whole row (:func:`_dense_counts_numpy`), the same counts."""
    wa, wb = max(int(a_len.max()), 1), max(int(b_len.max()), 1)
    A = _padded(a_vals, a_start, a_len, wa)
    B = _padded(b_vals, b_start, b_len, wb)
    if not xp.is_tensor(A):
        return _dense_counts_numpy(A, a_len, B, b_len)
    torch = xp.torch_module()
    at = torch.searchsorted(B, A)
    found = at < b_len[:, None]
    found &= torch.gather(B, 1, at.clamp_(max=wb - 1)) == A
    found &= torch.arange(wa, device=A.device) < a_len[:, None]
    return found.sum(1)


def _intersections_by_hash(v: np.ndarray, p: np.ndarray, P: int) -> Optional[np.ndarray]:
    """The counts of :func:`intersections` from one unstable sort of a 64-bit hash of each ``(pair, value)``
    (CPU; the exact two-key sort costs two stable sorts). A value of a pair appears at most twice (once per
    set), so equal entries are adjacent pairs of equal hashes; ``None`` (the caller sorts exactly) when two
    different entries share a hash, which this detects."""
    with np.errstate(over="ignore"):
        h = np_mix64(v.view(np.uint64) ^ (p.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    o = np.argsort(h)
    h, v, p = h[o], v[o], p[o]
    eq = np.flatnonzero(h[1:] == h[:-1])
    if eq.size and (bool(np.any(v[eq] != v[eq + 1])) or bool(np.any(p[eq] != p[eq + 1]))
                    or bool(np.any(eq[1:] == eq[:-1] + 1))):  # a hash collision, or three equal hashes
        return None
    return np.bincount(p[eq], minlength=P).astype(np.int64)


def _dense_counts_numpy(A: np.ndarray, a_len: np.ndarray, B: np.ndarray, b_len: np.ndarray) -> np.ndarray:
    """``|A_p & B_p|`` of padded rows (sets of distinct values: a value of ``A_p`` matches one of ``B_p`` at
    most), by comparing every pair of values of a row, a block of rows at a time (4M comparisons a block)."""
    P, wa = A.shape
    wb = B.shape[1]
    ina = np.arange(wa) < a_len[:, None]
    inb = np.arange(wb) < b_len[:, None]
    out = np.empty(P, dtype=np.int64)
    step = max(1, (1 << 22) // (wa * wb))
    for s in range(0, P, step):
        e = min(P, s + step)
        eq = A[s:e, :, None] == B[s:e, None, :]
        eq &= ina[s:e, :, None]
        eq &= inb[s:e, None, :]
        out[s:e] = eq.sum((1, 2))
    return out
