"""The exact path of near-duplicate detection: documents with few distinct shingles.

A 4-bit one-permutation MinHash signature of a document with ``k`` distinct shingles holds at most ``k``
independent values (densification copies them into the empty bins), so its similarity estimate is
unreliable when ``k`` is small: every one-shingle document (any text under ``ngram`` words) has a constant
signature, and 1 in 16 pairs of them look identical. :class:`~torchdataguard.NearDedup` therefore decides
every pair in which one document has fewer than ``K = exact_below`` distinct shingles on the shingle sets
themselves (:func:`exact_limits` gives ``K2`` and ``K3``):

* kept documents with fewer than ``K2`` distinct shingles are stored here, as their sets (sorted 64-bit
  shingle hashes), and not in the LSH index; no document of ``K2`` or more shingles can reach the
  threshold with one of fewer than ``K``, so the LSH index never has to answer for those;
* a query with fewer than ``K3`` shingles brings its set and is compared here with every stored set it
  can reach: candidates come from a prefix filter (Chaudhuri et al. 2006; Bayardo et al. 2007): with the
  elements of every set in one global order, two sets with Jaccard ``>= t`` share an element among the
  first ``n - ceil(t * n) + 1`` of each, so indexing those prefixes finds every such pair (no misses);
  each candidate is verified by exact Jaccard of the two sets;
* a query with ``K`` or more shingles also asks the LSH index (documents of ``K2`` or more), by estimate.

So the only pairs decided by estimate are a kept document of ``K2`` or more shingles with a later one of
``K`` or more.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import torch

from ..errors import StateError
from .hashing import mix64
from .index import IdStore
from .probing import GROWTH, MAX_LOAD, capacity_for, chain_matches, linear_probe_insert

__all__ = ["SmallSetIndex", "exact_key", "exact_limits", "gather_sets", "intersections", "prefix_tokens",
           "segment_owner", "shares_key_with_earlier", "shingle_sets"]

_MASK63 = 0x7FFFFFFFFFFFFFFF
_SALT = 0x2545F4914F6CDD1D
#: exact similarities are compared as floor(J * 2**EXACT_BITS) (distinct fractions with unions under 2,048
#: never share a value); 22 bits leave 41 bits of insertion order in one non-negative int64 key
EXACT_BITS = 22


def _least_above(count: int, threshold: float) -> int:
    """The least ``n`` with ``count / n < threshold`` (so no set of ``n`` or more can reach ``threshold``
    with a set of ``count`` or fewer)."""
    n = max(1, int(math.floor(count / threshold)) + 1)
    while count / n >= threshold - 1e-9:  # guard against rounding of the division
        n += 1
    return n


def exact_limits(threshold: float, exact_below: int) -> Tuple[int, int, int]:
    """``(K, K2, K3)`` for ``K = exact_below``: documents with fewer than ``K2`` distinct shingles are stored
    with their sets (no document of ``K2`` or more reaches the threshold with one under ``K``), and queries
    with fewer than ``K3`` bring their set (no query of ``K3`` or more reaches it with one under ``K2``).

    Example:
        >>> exact_limits(0.8, 12)
        (12, 14, 17)
    """
    k = int(exact_below)
    k2 = max(k, _least_above(k - 1, threshold))
    return k, k2, max(k2, _least_above(k2 - 1, threshold))


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
    return torch.searchsorted(ends, torch.arange(int(ends[-1]) if ends.numel() else 0, device=lens.device), right=True)


def gather_sets(sets: torch.Tensor, off: torch.Tensor, rows: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The sets of ``rows`` as ``(flat values, owner position in rows)``."""
    lens = off[rows + 1] - off[rows]
    return _segments(sets, off[rows], lens)


def _segments(vals: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    total = int(lens.sum()) if lens.numel() else 0
    dev = vals.device
    if total == 0:
        return torch.zeros(0, dtype=vals.dtype, device=dev), torch.zeros(0, dtype=torch.int64, device=dev)
    ends = torch.cumsum(lens, 0)
    pos = torch.arange(total, device=dev)
    owner = torch.searchsorted(ends, pos, right=True)  # (repeat_interleave with tensor counts is slow on CPU)
    idx = starts[owner] + pos - (ends - lens)[owner]
    return vals[idx], owner


def prefix_tokens(sets: torch.Tensor, off: torch.Tensor, size: torch.Tensor, rows: torch.Tensor,
                  threshold: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Prefix-filter tokens of ``rows`` (the smallest ``n - ceil(t n) + 1`` of each set) and their owner
    (position in ``rows``)."""
    return _segments(sets, off[rows], prefix_lengths(size[rows], threshold))


def shares_key_with_earlier(keys: torch.Tensor, owner: torch.Tensor, r: int) -> torch.Tensor:
    """bool [r]: rows (0..r-1) that have a key value also held by an earlier row (``owner`` non-decreasing)."""
    blocked = torch.zeros(r, dtype=torch.bool, device=keys.device)
    if keys.numel() < 2:
        return blocked
    order = torch.argsort(keys, stable=True)  # stable: within one key value, owners stay in increasing order
    ks, ow = keys[order], owner[order]
    start = torch.ones_like(ks, dtype=torch.bool)
    start[1:] = ks[1:] != ks[:-1]
    seg = torch.cumsum(start.to(torch.int64), 0) - 1
    first_owner = ow[start][seg]
    blocked[ow[first_owner < ow]] = True
    return blocked


def intersections(a_vals: torch.Tensor, a_off: torch.Tensor, a_idx: torch.Tensor,
                  b_vals: torch.Tensor, b_off: torch.Tensor, b_idx: torch.Tensor) -> torch.Tensor:
    """``|A_p & B_p|`` for each pair ``p`` of set ``a_idx[p]`` of ``a`` and set ``b_idx[p]`` of ``b`` (each set
    without repeats), exactly: both sets are tagged with the pair and sorted, and equal neighbours counted.

    Example:
        >>> intersections(torch.tensor([1, 2, 3]), torch.tensor([0, 3]), torch.tensor([0]),
        ...               torch.tensor([2, 3, 4, 7]), torch.tensor([0, 3, 4]), torch.tensor([0])).tolist()
        [2]
    """
    P = a_idx.numel()
    dev = a_vals.device
    if P == 0:
        return torch.zeros(0, dtype=torch.int64, device=dev)
    va, pa = _segments(a_vals, a_off[a_idx], a_off[a_idx + 1] - a_off[a_idx])
    vb, pb = _segments(b_vals, b_off[b_idx], b_off[b_idx + 1] - b_off[b_idx])
    v = torch.cat([va, vb])
    p = torch.cat([pa, pb])
    o = torch.argsort(v, stable=True)
    v, p = v[o], p[o]
    o = torch.argsort(p, stable=True)
    v, p = v[o], p[o]
    same = (v[1:] == v[:-1]) & (p[1:] == p[:-1])
    return torch.bincount(p[1:][same], minlength=P)


def exact_key(inter: torch.Tensor, union: torch.Tensor) -> torch.Tensor:
    """``floor(inter / union * 2**EXACT_BITS)`` in integer arithmetic (the rank of an exact similarity)."""
    return torch.div(inter << EXACT_BITS, union.clamp(min=1), rounding_mode="floor")


class SmallSetIndex:
    """Exact shingle sets of kept documents with few shingles, and a prefix-filter table over them.

    Memory per document: 8 bytes per distinct shingle, 8 of offset, 8 of id (up to 12 with the growth
    slack), and 8 bytes per prefix token in a table kept between 50% and 75% full (measured: 45 bytes per
    text over 20,000 real texts of 1-7 words, 105 over 8-15 words).

    Args:
        threshold: the Jaccard threshold the prefixes are cut for.
        device: where the tensors live.
    """

    def __init__(self, threshold: float, device: torch.device | str = "cpu") -> None:
        self.threshold = float(threshold)
        self.device = torch.device(device)
        self.ids = IdStore()
        self.n = 0
        self.npool = 0
        self.pool = torch.zeros(4096, dtype=torch.int64, device=self.device)
        self.off = torch.zeros(1025, dtype=torch.int64, device=self.device)
        self.entries = 0
        self.table = torch.full((capacity_for(1024),), -1, dtype=torch.int64, device=self.device)

    @property
    def sizes(self) -> torch.Tensor:
        """Distinct shingle count of each stored document."""
        return self.off[1 : self.n + 1] - self.off[: self.n]

    def _home(self, tok: torch.Tensor) -> torch.Tensor:
        return (mix64(tok ^ _SALT) & _MASK63) % self.table.numel()

    def insert(self, sets: torch.Tensor, off: torch.Tensor, rows: torch.Tensor, ids: Any) -> None:
        """Store the sets of ``rows`` (of a chunk's ``sets``/``off``), in order, with their ``ids``."""
        m = rows.numel()
        if m == 0:
            return
        vals, _ = gather_sets(sets, off, rows)
        lens = off[rows + 1] - off[rows]
        need = self.npool + vals.numel()
        if need > self.pool.numel():
            new = torch.zeros(max(need, int(self.pool.numel() * GROWTH)), dtype=torch.int64, device=self.device)
            new[: self.npool] = self.pool[: self.npool]
            self.pool = new
        if self.n + m + 1 > self.off.numel():
            new = torch.zeros(max(self.n + m + 1, int(self.off.numel() * GROWTH)), dtype=torch.int64, device=self.device)
            new[: self.n + 1] = self.off[: self.n + 1]
            self.off = new
        start = self.npool
        self.pool[start:need] = vals
        self.off[self.n + 1 : self.n + m + 1] = start + torch.cumsum(lens, 0)
        first = self.n
        self.n += m
        self.npool = need
        self.ids.extend(list(ids))
        self._index(torch.arange(first, self.n, device=self.device))

    def _index(self, slots: torch.Tensor) -> None:
        """Add the prefix tokens of stored ``slots`` to the table (rebuilding it when it gets full)."""
        lens = prefix_lengths(self.sizes[slots], self.threshold)
        pos, _ = _segments(torch.arange(self.npool, device=self.device), self.off[slots], lens)
        self.entries += pos.numel()
        if self.entries > MAX_LOAD * self.table.numel():
            self._rebuild(capacity_for(int(self.entries * GROWTH)))
        elif pos.numel():
            linear_probe_insert(self.table, self._home(self.pool[pos]), pos)

    def _rebuild(self, capacity: int) -> None:
        self.table = torch.full((capacity,), -1, dtype=torch.int64, device=self.device)
        all_slots = torch.arange(self.n, device=self.device)
        lens = prefix_lengths(self.sizes, self.threshold)
        pos, _ = _segments(torch.arange(self.npool, device=self.device), self.off[all_slots], lens)
        self.entries = pos.numel()
        if pos.numel():
            linear_probe_insert(self.table, self._home(self.pool[pos]), pos)

    def candidates(self, sets: torch.Tensor, off: torch.Tensor, size: torch.Tensor,
                   rows: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Unique ``(position in rows, stored slot)`` pairs whose prefixes share a token: a superset of the
        pairs with Jaccard at or above the threshold."""
        e0 = torch.zeros(0, dtype=torch.int64, device=self.device)
        if self.n == 0 or rows.numel() == 0:
            return e0, e0
        tok, q = prefix_tokens(sets, off, size, rows, self.threshold)
        i, e = chain_matches(self.table, self._home(tok), self.pool, 1, torch.zeros_like(tok), tok)
        if not i.numel():
            return e0, e0
        qs = q[i]
        slots = torch.searchsorted(self.off[1 : self.n + 1], e, right=True)
        pair = torch.unique(qs * (self.n + 1) + slots)
        return pair // (self.n + 1), pair % (self.n + 1)

    def matches(self, sets: torch.Tensor, off: torch.Tensor, size: torch.Tensor,
                rows: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every stored set whose exact Jaccard with a query row reaches the threshold, as
        ``(position in rows, slot, inter, union)``."""
        q, s = self.candidates(sets, off, size, rows)
        if not q.numel():
            e = torch.zeros(0, dtype=torch.int64, device=self.device)
            return e, e, e, e
        inter = intersections(sets, off, rows[q], self.pool, self.off, s)
        union = size[rows[q]] + self.sizes[s] - inter
        ok = inter.to(torch.float64) >= (self.threshold - 1e-9) * union.to(torch.float64)
        return q[ok], s[ok], inter[ok], union[ok]

    def to(self, device) -> "SmallSetIndex":
        self.device = torch.device(device)
        for name in ("pool", "off", "table"):
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def nbytes(self) -> int:
        """Bytes of the stored sets, offsets, table and ids."""
        return (self.npool + self.n + 1) * 8 + self.table.numel() * 8 + (self.ids.nbytes() if self.n else 0)

    def state(self) -> Dict[str, Any]:
        return {"sets": self.pool[: self.npool].cpu().clone(), "sizes": self.sizes.cpu().clone(), **self.ids.state()}

    def load(self, state: Dict[str, Any]) -> None:
        pool = state["sets"].to(torch.int64).flatten()
        sizes = state["sizes"].to(torch.int64).flatten()
        if int(sizes.sum()) != pool.numel() or bool((sizes < 1).any()):
            raise StateError(f"small-set state lists sizes adding up to {int(sizes.sum())} for {pool.numel()} stored "
                             f"shingles; the files of different checkpoints were mixed or were damaged")
        self.ids.load(state)
        if self.ids.n != sizes.numel():
            raise StateError(f"small-set state has {sizes.numel()} sets but {self.ids.n} ids")
        self.n, self.npool = sizes.numel(), pool.numel()
        self.pool = torch.zeros(max(4096, self.npool), dtype=torch.int64, device=self.device)
        self.pool[: self.npool] = pool.to(self.device)
        self.off = torch.zeros(max(1025, self.n + 1), dtype=torch.int64, device=self.device)
        self.off[1 : self.n + 1] = torch.cumsum(sizes, 0).to(self.device)
        self._rebuild(capacity_for(int(max(1, int(prefix_lengths(sizes, self.threshold).sum())) * GROWTH)))
