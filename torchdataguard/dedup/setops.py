"""Vectorised operations on shingle sets held flat: the set of row ``i`` is ``vals[off[i]:off[i + 1]]``.

Used by the exact short-text path of near-duplicate detection (:mod:`torchdataguard.dedup.smallsets`):
distinct sets, prefixes for the prefix filter, exact intersections of many pairs at once.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np
import torch

from ..core.mixing import np_mix64
from .distinct import sorted_unique

__all__ = ["gather_sets", "intersections", "pairs_sharing_key", "prefix_lengths", "prefix_positions",
           "segment_owner", "segment_positions", "segments", "shingle_sets", "key_groups", "blocked_in_groups"]


def prefix_lengths(size: torch.Tensor, threshold: float) -> torch.Tensor:
    """``n - ceil(t * n) + 1`` for each set size ``n`` (at least 1, at most ``n``)."""
    need = torch.ceil(size.to(torch.float64) * threshold - 1e-6).to(torch.int64).clamp(min=1)
    return (size - need + 1).clamp(min=1).minimum(size.clamp(min=1))


def shingle_sets(x: torch.Tensor, doc: torch.Tensor, cand: torch.Tensor,
                 limit: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct shingle sets of the documents flagged in ``cand`` that have fewer than ``limit`` of them.

    Args:
        x: int64 [S] shingle hashes (mixed); ``doc`` [S] the document of each.
        cand: bool [n] documents to look at (others are taken to have ``limit`` or more).
    Returns:
        ``(size, sets, off)``: ``size`` [n] is the distinct count where it is under ``limit``, else ``limit``
        (0 for a candidate without shingles); the set of row ``i`` is ``sets[off[i]:off[i + 1]]``, sorted
        ascending (as int64), and empty where ``size == limit``.

    Example:
        >>> size, sets, off = shingle_sets(torch.tensor([5, 3, 5, 9]), torch.tensor([0, 0, 0, 1]),
        ...                                torch.tensor([True, True]), 8)
        >>> size.tolist(), sets.tolist(), off.tolist()
        ([2, 1], [3, 5, 9], [0, 2, 3])
    """
    dev = x.device
    n = cand.numel()
    size = torch.full((n,), int(limit), dtype=torch.int64, device=dev)
    off = torch.zeros(n + 1, dtype=torch.int64, device=dev)
    if not bool(cand.any()):
        return size, torch.zeros(0, dtype=torch.int64, device=dev), off
    doc = doc.to(dev)
    sel = cand[doc]
    xs, ds = x[sel], doc[sel]
    o = torch.argsort(xs, stable=True)
    xs, ds = xs[o], ds[o]
    o = torch.argsort(ds, stable=True)
    xs, ds = xs[o], ds[o]
    new = torch.ones_like(xs, dtype=torch.bool)
    if xs.numel() > 1:
        new[1:] = (xs[1:] != xs[:-1]) | (ds[1:] != ds[:-1])
    xs, ds = xs[new], ds[new]
    cnt = torch.bincount(ds, minlength=n)
    small = cand & (cnt < limit)
    size[small] = cnt[small]
    keep = small[ds]
    off[1:] = torch.cumsum(torch.where(small, cnt, torch.zeros_like(cnt)), 0)
    return size, xs[keep], off


def segment_owner(lens: torch.Tensor) -> torch.Tensor:
    """``repeat_interleave(arange(len(lens)), lens)``: the segment of each position of the concatenation."""
    ends = torch.cumsum(lens, 0)
    return _owner_of(ends, int(ends[-1]) if ends.numel() else 0)


def _owner_of(ends: torch.Tensor, total: int) -> torch.Tensor:
    """For each position ``0 .. total - 1``, how many of ``ends`` (cumulative segment lengths) are at or below
    it: its segment (``searchsorted(ends, pos, right=True)`` in one pass: a count of the segment ends at each
    position, summed; repeat_interleave with tensor counts and searchsorted are slower on CPU)."""
    if total == 0:
        return torch.zeros(0, dtype=torch.int64, device=ends.device)
    inner = ends[:-1]
    return torch.cumsum(torch.bincount(inner[inner < total], minlength=total)[:total], 0)


def gather_sets(sets: torch.Tensor, off: torch.Tensor, rows: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The sets of ``rows`` as ``(flat values, owner position in rows)``."""
    lens = off[rows + 1] - off[rows]
    return segments(sets, off[rows], lens)


def segment_positions(starts: torch.Tensor, lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Positions ``starts[k] .. starts[k] + lens[k] - 1`` of every segment ``k``, concatenated, and the
    segment of each."""
    total = int(lens.sum()) if lens.numel() else 0
    dev = starts.device
    if total == 0:
        z = torch.zeros(0, dtype=torch.int64, device=dev)
        return z, z.clone()
    ends = torch.cumsum(lens, 0)
    owner = _owner_of(ends, total)
    return torch.arange(total, device=dev) + (starts - (ends - lens))[owner], owner


def segments(vals: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The values of the segments ``vals[starts[k] : starts[k] + lens[k]]``, concatenated, and the owner
    ``k`` of each."""
    idx, owner = segment_positions(starts, lens)
    return vals[idx], owner


def prefix_positions(vals: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor, threshold: float,
                     late: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
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
    redo = torch.zeros(lens.numel(), dtype=torch.bool, device=lens.device)
    redo[owner[hit]] = True
    sub = torch.nonzero(redo).flatten()
    rpos, rown = _late_last_prefix(vals, starts[sub], lens[sub], plen[sub], late)
    keep = ~redo[owner]
    pos, owner = torch.cat([pos[keep], rpos]), torch.cat([owner[keep], sub[rown]])
    order = torch.argsort(owner, stable=True)  # by set, each set's positions in set order (as they come)
    return pos[order], owner[order]


def _late_last_prefix(vals: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor, plen: torch.Tensor,
                      late: Callable[[torch.Tensor], torch.Tensor],
                      plain: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`prefix_positions` of sets cut in the order "late values last", ``plen`` values each (``plain``:
    the answer returned when no value is late)."""
    pos, owner = segment_positions(starts, lens)
    is_late = late(vals[pos])
    if plain is not None and not bool(is_late.any()):
        return plain
    # each element's rank in that order within its set, without sorting: an element that is not late comes
    # after the earlier ones of its set that are not late; a late one after every one that is not late and the
    # earlier late ones (the positions come out in set order, the same positions as a stable sort would keep)
    early = (~is_late).to(torch.int64)
    ce = torch.zeros(pos.numel() + 1, dtype=torch.int64, device=pos.device)
    torch.cumsum(early, 0, out=ce[1:])
    first = torch.cumsum(lens, 0) - lens  # where each set starts in the concatenation
    before = ce[:-1] - ce[first][owner]  # elements not late before this one, in its set
    n_early = (ce[first + lens] - ce[first])[owner]
    at = torch.arange(pos.numel(), device=pos.device) - first[owner]
    rank = torch.where(is_late, n_early + at - before, before)
    keep = rank < plen[owner]
    return pos[keep], owner[keep]


def key_groups(keys: torch.Tensor, owner: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(owners, group)``: the owners of ``keys`` sorted by key value (stable: within one value, owners keep
    their order, non-decreasing when ``owner`` is), and the group (one per distinct value) of each, for
    :func:`blocked_in_groups`."""
    order = torch.argsort(keys, stable=True)
    ks, ow = keys[order], owner[order]
    start = torch.ones_like(ks, dtype=torch.bool)
    start[1:] = ks[1:] != ks[:-1]
    return ow, torch.cumsum(start.to(torch.int64), 0) - 1


def blocked_in_groups(ow: torch.Tensor, group: torch.Tensor, r: int,
                      blockers: Optional[torch.Tensor] = None) -> torch.Tensor:
    """bool [r]: owners (0..r-1) in a group of :func:`key_groups` with an earlier owner (one flagged in
    ``blockers``, bool [r], when given).

    Example:
        >>> ow, group = key_groups(torch.tensor([7, 9, 7, 9, 7]), torch.tensor([0, 0, 1, 1, 2]))
        >>> blocked_in_groups(ow, group, 3).tolist()
        [False, True, True]
        >>> blocked_in_groups(ow, group, 3, blockers=torch.tensor([False, True, True])).tolist()
        [False, False, True]
    """
    blocked = torch.zeros(r, dtype=torch.bool, device=ow.device)
    if ow.numel() < 2:
        return blocked
    if blockers is None:
        start = torch.ones_like(group, dtype=torch.bool)
        start[1:] = group[1:] != group[:-1]
        first_owner = ow[start][group]
    else:  # the first owner of each group that may block (r: none)
        may = torch.where(blockers[ow], ow, torch.full_like(ow, r))
        first = torch.full((int(group[-1]) + 1,), r, dtype=ow.dtype, device=ow.device)
        first_owner = first.scatter_reduce(0, group, may, "amin")[group]
    blocked[ow[first_owner < ow]] = True
    return blocked


def pairs_sharing_key(keys: torch.Tensor, owner: torch.Tensor, r: int,
                      blockers: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Unique pairs ``(a, b)``, ``a < b``, of owners (rows 0..r-1) that hold a common key value; with
    ``blockers`` (bool [r]), only the pairs whose ``a`` is flagged (the others are never enumerated).

    Example:
        >>> pairs_sharing_key(torch.tensor([7, 9, 7, 9, 7]), torch.tensor([0, 0, 1, 1, 2]), 3)
        (tensor([0, 0, 1]), tensor([1, 2, 2]))
        >>> pairs_sharing_key(torch.tensor([7, 9, 7, 9, 7]), torch.tensor([0, 0, 1, 1, 2]), 3,
        ...                   blockers=torch.tensor([False, True, True]))
        (tensor([1]), tensor([2]))
    """
    dev = keys.device
    if keys.numel() < 2:
        z = torch.zeros(0, dtype=torch.int64, device=dev)
        return z, z.clone()
    order = torch.argsort(keys, stable=True)
    ks, ow = keys[order], owner[order]
    start = torch.ones_like(ks, dtype=torch.bool)
    start[1:] = ks[1:] != ks[:-1]
    first = torch.nonzero(start).flatten()
    seg = torch.cumsum(start.to(torch.int64), 0) - 1
    if blockers is None:
        rank = torch.arange(ks.numel(), device=dev) - first[seg]
        earlier, k = segment_positions(first[seg], rank)  # for element k, every earlier element of its key value
    else:  # for element k, the earlier elements of its key value whose owner may block: a range of ``flagged``
        flag = blockers[ow].to(torch.int64)
        before = torch.cumsum(flag, 0) - flag  # flagged elements before each
        lo = before[first][seg]
        e, k = segment_positions(lo, before - lo)
        earlier = torch.nonzero(flag).flatten()[e]
    a, b = ow[earlier], ow[k]
    keep = a != b
    pair = sorted_unique(a[keep] * r + b[keep])
    return pair // r, pair % r


def intersections(a_vals: torch.Tensor, a_off: torch.Tensor, a_idx: torch.Tensor,
                  b_vals: torch.Tensor, b_off: torch.Tensor, b_idx: torch.Tensor) -> torch.Tensor:
    """``|A_p & B_p|`` for each pair ``p`` of set ``a_idx[p]`` of ``a`` and set ``b_idx[p]`` of ``b`` (each set
    sorted ascending, without repeats), exactly: sets of at most :data:`DENSE_WIDTH` values by a binary search
    of each value of ``A_p`` in ``B_p`` (:func:`_intersections_dense`), longer ones by tagging both sets with
    the pair, sorting, and counting equal neighbours.

    Example:
        >>> intersections(torch.tensor([1, 2, 3]), torch.tensor([0, 3]), torch.tensor([0]),
        ...               torch.tensor([2, 3, 4, 7]), torch.tensor([0, 3, 4]), torch.tensor([0])).tolist()
        [2]
    """
    P = a_idx.numel()
    dev = a_vals.device
    if P == 0:
        return torch.zeros(0, dtype=torch.int64, device=dev)
    a_len, b_len = a_off[a_idx + 1] - a_off[a_idx], b_off[b_idx + 1] - b_off[b_idx]
    widest = int(torch.maximum(a_len.max(), b_len.max()))
    if widest <= DENSE_WIDTH and a_vals.dtype == b_vals.dtype == torch.int64:
        return _intersections_dense(a_vals, a_off[a_idx], a_len, b_vals, b_off[b_idx], b_len)
    va, pa = segments(a_vals, a_off[a_idx], a_off[a_idx + 1] - a_off[a_idx])
    vb, pb = segments(b_vals, b_off[b_idx], b_off[b_idx + 1] - b_off[b_idx])
    v = torch.cat([va, vb])
    p = torch.cat([pa, pb])
    if dev.type == "cpu" and v.dtype == torch.int64:  # the hash reads each value as 64 bits
        counts = _intersections_by_hash(v.numpy(), p.numpy(), P)
        if counts is not None:
            return torch.from_numpy(counts)
    o = torch.argsort(v, stable=True)
    v, p = v[o], p[o]
    o = torch.argsort(p, stable=True)
    v, p = v[o], p[o]
    same = (v[1:] == v[:-1]) & (p[1:] == p[:-1])
    return torch.bincount(p[1:][same], minlength=P)




#: sets of at most this many values are intersected by :func:`_intersections_dense` (the short-text path's sets
#: have fewer than ``K3`` values: 17 at the defaults)
DENSE_WIDTH = 64


def _padded(vals: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor, width: int) -> torch.Tensor:
    """[k, width]: segment ``k`` of ``vals`` in row ``k``, then the largest int64 (where ``lens[k] < width``)."""
    col = torch.arange(width, device=vals.device)
    at = starts[:, None] + col
    out = vals[at.clamp_(max=max(vals.numel() - 1, 0))] if vals.numel() else torch.zeros_like(at)
    return out.masked_fill_(col >= lens[:, None], torch.iinfo(torch.int64).max)


def _intersections_dense(a_vals: torch.Tensor, a_start: torch.Tensor, a_len: torch.Tensor, b_vals: torch.Tensor,
                         b_start: torch.Tensor, b_len: torch.Tensor) -> torch.Tensor:
    """The counts of :func:`intersections` for short sorted sets: each set of ``b`` is one row of a padded
    matrix, and each value of the paired ``a`` set is looked up in that row (one batched binary search).
    The padding is the largest int64, after every value, so a value's place in its row is found before any
    padding; a value counts when its place is inside the set and holds it."""
    wa, wb = max(int(a_len.max()), 1), max(int(b_len.max()), 1)
    A = _padded(a_vals, a_start, a_len, wa)
    B = _padded(b_vals, b_start, b_len, wb)
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
