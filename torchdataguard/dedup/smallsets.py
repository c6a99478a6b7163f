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
  a candidate whose sizes cannot reach ``t`` (the smaller under ``t`` times the larger) is left out, and
  each other one verified by exact Jaccard of the two sets;
* a query with ``K`` or more shingles also asks the LSH index (documents of ``K2`` or more), by estimate.

So the only pairs decided by estimate are a kept document of ``K2`` or more shingles with a later one of
``K`` or more.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

from ..errors import StateError
from . import xp
from .distinct import live_positions, sorted_unique
from .index import IdStore
from .prefix_memo import PrefixMemo
from .probing import GROWTH, MAX_LOAD, capacity_for, chain_matches, linear_probe_insert
from .setops import gather_sets, intersections, pairs_sharing_key, prefix_lengths, prefix_positions
from .token_hashing import mix64

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array, Device

__all__ = ["SmallSetIndex", "TokenSet", "exact_key", "exact_limits"]

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


def exact_key(inter: "Array", union: "Array") -> "Array":
    """``floor(inter / union * 2**EXACT_BITS)`` in integer arithmetic (the rank of an exact similarity)."""
    return (inter << EXACT_BITS) // xp.clip(union, 1)


class TokenSet:
    """A growing set of int64 values with a vectorised membership test (the values kept sorted: a test is one
    binary search per value tested; the set holds the few tokens demoted by :class:`SmallSetIndex`).

    Example:
        >>> import numpy as np
        >>> s = TokenSet(); s.add(np.array([5, 9, 5]))
        >>> s.contains(np.array([9, 4, 5])).tolist(), len(s)
        ([True, False, True], 2)
    """

    def __init__(self, device: "Device" = "cpu") -> None:
        self.device = device
        self.vals = xp.zeros(0, device=device)  # sorted, distinct

    def __len__(self) -> int:
        return xp.numel(self.vals)

    @property
    def n(self) -> int:
        return xp.numel(self.vals)

    def contains(self, values: "Array") -> "Array":
        if not xp.numel(self.vals) or not xp.numel(values):
            return xp.zeros(tuple(values.shape), "bool", like=values)
        at = xp.clip(xp.searchsorted(self.vals, values), hi=xp.numel(self.vals) - 1)
        return self.vals[at] == values

    def add(self, values: "Array") -> None:
        self.vals = xp.unique(xp.cat([self.vals, xp.astype(values, "int64").reshape(-1)]))

    def discard(self, values: "Array") -> None:
        """Remove ``values`` (those held)."""
        if xp.numel(self.vals) and xp.numel(values):
            self.vals = self.vals[~xp.isin(self.vals, xp.astype(values, "int64"))]

    def clear(self) -> None:
        self.vals = self.vals[:0]

    def to(self, device: "Device") -> "TokenSet":
        self.device = device
        self.vals = xp.as_device(self.vals, device)
        return self

    def nbytes(self) -> int:
        return xp.numel(self.vals) * 8


#: a prefix token found in more than this many stored prefixes by one query is demoted (see SmallSetIndex)
DEMOTE_AT = 32


class SmallSetIndex:
    """Exact shingle sets of kept documents with few shingles, and a prefix-filter table over them.

    Frequent shingles (a template's words shared by many short texts) would make every prefix that holds one
    a candidate of every other, at a cost quadratic in their count. So a token that a query finds in more
    than :data:`DEMOTE_AT` stored prefixes is *demoted*: the global order of the prefix filter puts demoted
    tokens after all others, the stored sets that had it in their prefix are re-indexed under the new order
    (their entry for it is marked dead, the next token of their set takes its place) and later queries cut
    their prefixes the same way. Any such order keeps the filter exact, so answers do not change; dead entries
    are dropped when the table is rebuilt (when it grows, or when a quarter of its entries are dead).

    Memory per document: 8 bytes per distinct shingle, 8 of offset, 4 of id (up to 5.8 with the growth
    slack; 8 to 11.6 once an id does not fit int32), and 4 bytes per prefix token (a pool position; 8 once
    the pool passes 2**31 shingles) in a table kept between 55% and 80% full.

    Args:
        threshold: the Jaccard threshold the prefixes are cut for.
        device: where the arrays live (NumPy arrays on the CPU, torch tensors on other devices).
    """

    def __init__(self, threshold: float, device: "Device" = "cpu") -> None:
        self.threshold = float(threshold)
        self.device = device
        self.ids = IdStore()
        self.n = 0
        self.npool = 0
        self.pool = xp.zeros(4096, device=device)
        self.off = xp.zeros(1025, device=device)
        self.entries = 0
        self.table = xp.full(capacity_for(1024), -1, "int32", device=device)
        self.demoted = TokenSet(self.device)
        self.dead = TokenSet(self.device)  # pool positions whose table entry is dead (few; dropped on rebuild)
        self.demotions = 0  # numbers the order of the prefix filter (see PrefixMemo)
        self.memo = PrefixMemo(self.threshold)

    @property
    def sizes(self) -> "Array":
        """Distinct shingle count of each stored document."""
        return self.off[1 : self.n + 1] - self.off[: self.n]

    def _home(self, tok: "Array") -> "Array":
        return (mix64(tok ^ _SALT) & _MASK63) % xp.numel(self.table)

    def insert(self, sets: "Array", off: "Array", rows: "Array", ids: Any) -> None:
        """Store the sets of ``rows`` (of a chunk's ``sets``/``off``), in order, with their ``ids``."""
        m = xp.numel(rows)
        if m == 0:
            return
        vals, _ = gather_sets(sets, off, rows)
        lens = off[rows + 1] - off[rows]
        need = self.npool + xp.numel(vals)
        if need > xp.numel(self.pool):
            new = xp.zeros(max(need, int(xp.numel(self.pool) * GROWTH)), like=self.pool)
            new[: self.npool] = self.pool[: self.npool]
            self.pool = new
        if self.n + m + 1 > xp.numel(self.off):
            new = xp.zeros(max(self.n + m + 1, int(xp.numel(self.off) * GROWTH)), like=self.off)
            new[: self.n + 1] = self.off[: self.n + 1]
            self.off = new
        start = self.npool
        self.pool[start:need] = vals
        self.off[self.n + 1 : self.n + m + 1] = start + xp.cumsum(lens)
        first = self.n
        self.n += m
        self.npool = need
        self.ids.extend(list(ids))
        known = self.memo.stored(sets, off, rows, self.off[first : self.n], self.demotions)
        self._add(self._prefix(xp.arange(first, self.n, like=self.off)) if known is None else known)

    def _prefix(self, slots: "Array") -> "Array":
        """Pool positions of the prefixes of stored ``slots`` under the current order."""
        return prefix_positions(self.pool, self.off[slots], self.sizes[slots], self.threshold, self._late())[0]

    def _late(self):
        """The demoted-token test for prefix cutting (None while no token is demoted)."""
        return self.demoted.contains if len(self.demoted) else None

    @property
    def ndead(self) -> int:
        """Dead entries in the table."""
        return len(self.dead)

    def _table_dtype(self) -> str:
        """int32 table entries (pool positions) while the pool allows, else int64."""
        return "int32" if xp.numel(self.pool) < 2**31 else "int64"

    def _add(self, pos: "Array") -> None:
        self.entries += xp.numel(pos)
        if (self.entries > MAX_LOAD * xp.numel(self.table) or 4 * self.ndead > self.entries
                or xp.dtype_name(self.table) != self._table_dtype()):
            self._rebuild(capacity_for(int((self.entries - self.ndead) * GROWTH)), also=pos)
        elif xp.numel(pos):
            linear_probe_insert(self.table, self._home(self.pool[pos]), pos)

    def _rebuild(self, capacity: int, *, also: Optional["Array"] = None, from_prefixes: bool = False) -> None:
        """A fresh table of ``capacity`` slots holding every live entry once: the prefix positions of all
        stored sets under the current order. They are the old table's live entries and the positions ``also``
        being added (see :meth:`_demote`: it keeps the live entries equal to the prefixes), or, with
        ``from_prefixes`` (on loading), computed from the sets."""
        if from_prefixes:
            pos = self._prefix(xp.arange(self.n, like=self.off))
        else:
            pos = live_positions(self.table, self.dead.vals if self.ndead else None, also, self.npool)
        self.table = xp.full(capacity, -1, self._table_dtype(), like=self.pool)
        self.entries = xp.numel(pos)
        self.dead.clear()
        if xp.numel(pos):
            linear_probe_insert(self.table, self._home(self.pool[pos]), pos, empty=True)

    def _lookup(self, tok: "Array") -> Tuple["Array", "Array"]:
        """Live entries holding the tokens ``tok``: ``(index into tok, pool position)``."""
        i, e = chain_matches(self.table, self._home(tok), self.pool, 1, xp.zeros(xp.numel(tok), like=tok), tok)
        if self.ndead and xp.numel(i):
            live = ~self.dead.contains(e)
            i, e = i[live], e[live]
        return i, e

    def _demote(self, tokens: "Array", found: Optional["Array"] = None) -> None:
        """Put ``tokens`` last in the order; ``found``: pool positions of the live entries holding them."""
        if found is None:
            found = self._lookup(tokens)[1] if self.n else tokens[:0]
        slots = xp.unique(xp.searchsorted(self.off[1 : self.n + 1], found, right=True))
        old = self._prefix(slots)
        self.demoted.add(tokens)
        self.demotions += 1
        new = self._prefix(slots)
        fresh = new[~xp.isin(new, old)]
        gone = old[~xp.isin(old, new)]
        self.dead.discard(fresh)  # a position can come back (all of its set demoted)
        self.dead.add(gone)
        self._add(fresh)

    def candidates(self, sets: "Array", off: "Array", size: "Array",
                   rows: "Array") -> Tuple["Array", "Array"]:
        """Unique ``(position in rows, stored slot)`` pairs whose prefixes share a token: a superset of the
        pairs with Jaccard at or above the threshold."""
        e0 = xp.zeros(0, like=self.pool)
        if self.n == 0 or xp.numel(rows) == 0:
            return e0, e0
        pos, q = self.memo.positions(sets, off, size, rows, self.demotions, self._late())
        tok = sets[pos]
        i, e = self._lookup(tok)
        if not xp.numel(i):
            return e0, e0
        hot = xp.bincount(i, minlength=xp.numel(tok)) > DEMOTE_AT
        if bool(hot.any()):
            self._demote(xp.unique(tok[hot]), e[hot[i]])
        qs = q[i]
        slots = xp.searchsorted(self.off[1 : self.n + 1], e, right=True)
        pair = sorted_unique(qs * (self.n + 1) + slots)
        return pair // (self.n + 1), pair % (self.n + 1)

    def prefix_within(self, sets: "Array", off: "Array", size: "Array",
                      rows: "Array") -> Tuple["Array", "Array"]:
        """The prefix tokens of ``rows`` and their owners (positions in ``rows``) that :meth:`pairs_within`
        pairs rows by, a token held by more than :data:`DEMOTE_AT` rows being demoted first."""
        pos, own = self.memo.positions(sets, off, size, rows, self.demotions, self._late())
        uniq, counts = sorted_unique(sets[pos], counts=True)
        if bool((counts > DEMOTE_AT).any()):
            self._demote(uniq[counts > DEMOTE_AT])
            pos, own = self.memo.positions(sets, off, size, rows, self.demotions, self._late())
        return sets[pos], own

    def pairs_within(self, sets: "Array", off: "Array", size: "Array", rows: "Array",
                     prefix: Optional[Tuple["Array", "Array"]] = None,
                     blockers: Optional["Array"] = None) -> Tuple["Array", "Array"]:
        """Pairs ``(a, b)``, ``a < b``, of positions in ``rows`` whose sets reach the threshold (exact Jaccard;
        candidates from shared prefix tokens, :meth:`prefix_within`, or ``prefix`` when given); with
        ``blockers`` (bool [len(rows)]), only those whose ``a`` is flagged. The answer does not depend on this
        index's order or content."""
        r = xp.numel(rows)
        if r < 2:
            z = xp.zeros(0, like=rows)
            return z, xp.copy(z)
        tok, own = prefix if prefix is not None else self.prefix_within(sets, off, size, rows)
        a, b = pairs_sharing_key(tok, own, r, blockers)
        if xp.numel(a):
            na, nb = size[rows[a]], size[rows[b]]
            fit = self._sizes_fit(na, nb)
            a, b, na, nb = a[fit], b[fit], na[fit], nb[fit]
            inter = intersections(sets, off, rows[a], sets, off, rows[b])
            ok = xp.astype(inter, "float64") >= (self.threshold - 1e-9) * xp.astype(na + nb - inter, "float64")
            a, b = a[ok], b[ok]
        return a, b

    def _sizes_fit(self, na: "Array", nb: "Array") -> "Array":
        """bool: the pairs of sets of sizes ``na``/``nb`` that may reach the threshold. ``inter <= min`` and
        ``union >= max``, so a pair with ``min < (t - 1e-9) * max`` fails the test ``inter >= (t - 1e-9) *
        union`` (in float64 too: the rounded product grows with its factor); only those are left out."""
        lo, hi = xp.minimum(na, nb), xp.maximum(na, nb)
        return xp.astype(lo, "float64") >= (self.threshold - 1e-9) * xp.astype(hi, "float64")

    def matches(self, sets: "Array", off: "Array", size: "Array",
                rows: "Array") -> Tuple["Array", "Array", "Array", "Array"]:
        """Every stored set whose exact Jaccard with a query row reaches the threshold, as
        ``(position in rows, slot, inter, union)``."""
        q, s = self.candidates(sets, off, size, rows)
        if xp.numel(q):
            nq, ns = size[rows[q]], self.sizes[s]
            fit = self._sizes_fit(nq, ns)
            q, s, nq, ns = q[fit], s[fit], nq[fit], ns[fit]
        if not xp.numel(q):
            e = xp.zeros(0, like=self.pool)
            return e, e, e, e
        inter = intersections(sets, off, rows[q], self.pool, self.off, s)
        union = nq + ns - inter
        ok = xp.astype(inter, "float64") >= (self.threshold - 1e-9) * xp.astype(union, "float64")
        return q[ok], s[ok], inter[ok], union[ok]

    def to(self, device: "Device") -> "SmallSetIndex":
        self.device = device
        for name in ("pool", "off", "table"):
            setattr(self, name, xp.as_device(getattr(self, name), device))
        self.demoted.to(self.device)
        self.dead.to(self.device)
        self.memo.clear()
        return self

    def nbytes(self) -> int:
        """Bytes of the stored sets, offsets, table and ids."""
        return ((self.npool + self.n + 1) * 8 + self.dead.nbytes() + self.demoted.nbytes()
                + xp.numel(self.table) * self.table.itemsize + (self.ids.nbytes() if self.n else 0))

    def state_dict(self) -> Dict[str, Any]:
        return {"sets": xp.saved(self.pool[: self.npool]), "sizes": xp.saved(self.sizes), **self.ids.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (NumPy arrays or tensors), held as this index's device holds arrays."""
        pool = xp.as_device(xp.astype(state["sets"], "int64").reshape(-1), self.device)
        sizes = xp.as_device(xp.astype(state["sizes"], "int64").reshape(-1), self.device)
        if int(sizes.sum()) != xp.numel(pool) or bool((sizes < 1).any()):
            raise StateError(f"small-set state lists sizes adding up to {int(sizes.sum())} for {xp.numel(pool)} "
                             f"stored shingles; the files of different checkpoints were mixed or were damaged")
        self.ids.load_state_dict(state)
        if self.ids.n != xp.numel(sizes):
            raise StateError(f"small-set state has {xp.numel(sizes)} sets but {self.ids.n} ids")
        self.n, self.npool = xp.numel(sizes), xp.numel(pool)
        self.pool = xp.zeros(max(4096, self.npool), like=pool)
        self.pool[: self.npool] = pool
        self.off = xp.zeros(max(1025, self.n + 1), like=pool)
        self.off[1 : self.n + 1] = xp.cumsum(sizes)
        self.demoted = TokenSet(self.device)  # frequent tokens are found again by the queries that meet them
        self.demotions += 1
        self.memo.clear()
        self.dead = TokenSet(self.device)
        self._rebuild(capacity_for(int(max(1, int(prefix_lengths(sizes, self.threshold).sum())) * GROWTH)),
                      from_prefixes=True)
