"""Which rows of a round of :meth:`NearDedup.decide <torchdataguard.NearDedup.decide>` wait for a later round.

A round queries the index for its rows ``R`` (stream order), drops the rows with a match and stores the
others, but a row that could match an earlier row of ``R`` that is not decided in this round waits:

* a row without a match waits for an earlier row without a match that it could match, which is stored first
  (as in every earlier version: this keeps the keep/drop decisions independent of chunking);
* a row *with* a match waits for such a row too, so that the row, once stored, is among the matches it is
  ranked against: the match a drop names then does not depend on where chunks end either;
* a row that waits makes later rows wait in turn: a later row must not be stored before an earlier one is
  decided, or the earlier one could be found a duplicate of a later text.

"Could match" is a shared LSH band between rows that ask the LSH index, or an exact Jaccard at or above the
threshold between rows with exact sets. Each row's answer depends on the rows before it only, so the fixed
point is unique; :class:`WaitGraph` computes the candidate relation of a round once and :func:`resolve_waits`
iterates on it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from . import xp
from .near_keys import NearKeys
from .setops import blocked_in_groups, key_groups

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array

__all__ = ["WaitGraph", "resolve_waits", "waiting"]


class WaitGraph:
    """The "could match an earlier row" relation among the rows ``R`` of one round, computed once.

    Example:
        >>> import numpy as np, torchdataguard as tdg
        >>> st = tdg.NearDedup()
        >>> texts = ["the cat sat on the mat today", "the cat sat on the mat today!", "a different line of text"]
        >>> keys = st.keyer()([tdg.Example(i, t, t) for i, t in enumerate(texts)])
        >>> WaitGraph(st, keys, np.arange(3)).blocked().tolist()
        [False, True, False]
    """

    def __init__(self, stage: Any, keys: NearKeys, R: "Array") -> None:
        """``stage``: the :class:`~torchdataguard.NearDedup` (its settings, LSH and exact-set indexes)."""
        K, _, K3 = stage.cfg.limits
        self.n = r = xp.numel(R)
        self.R = R
        bands = int(stage.cfg.bands)
        self.lsh = None  # (owners sorted by band key, group of each)
        self.spos: Optional["Array"] = None  # positions in R of the rows with exact sets
        if keys.all_large(K3):
            lpos = xp.arange(r, like=R)
            spos = lpos[:0]
        else:
            size = keys.size[R]
            lpos = xp.nonzero(size >= K)
            spos = xp.nonzero(size < K3)
        if xp.numel(lpos) > 1:
            bk = stage.index.band_keys(keys.nib[R[lpos]]).reshape(-1)
            self.lsh = key_groups(bk, xp.repeat(lpos, bands))
        if xp.numel(spos) > 1:  # exact-set pairs are found from the rows that may block as they are asked for
            self.spos, self._small, self._keys, self._rows = spos, stage.small, keys, R[spos]
            self._prefix = stage.small.prefix_within(keys.sets, keys.off, keys.size, self._rows)
            self._asked = xp.zeros(xp.numel(spos), "bool", like=R)
            self._a: List["Array"] = []
            self._b: List["Array"] = []

    def _edges(self, blockers: Optional["Array"]) -> Tuple["Array", "Array"]:
        """Exact-set pairs ``(a, b)`` (positions in R) from every row of ``blockers`` (all rows: ``None``)."""
        assert self.spos is not None
        want = xp.full(xp.numel(self._asked), True, "bool", like=self._asked) if blockers is None else blockers[self.spos]
        new = want & ~self._asked
        if bool(new.any()):
            k = self._keys
            a, b = self._small.pairs_within(k.sets, k.off, k.size, self._rows, self._prefix,
                                            None if bool(new.all()) else new)
            self._a.append(self.spos[a])
            self._b.append(self.spos[b])
            self._asked |= new
        if not self._a:
            z = xp.zeros(0, like=self.R)
            return z, z
        if len(self._a) > 1:
            self._a, self._b = [xp.cat(self._a)], [xp.cat(self._b)]
        return self._a[0], self._b[0]

    def blocked(self, blockers: Optional["Array"] = None) -> "Array":
        """bool [n]: rows that could match an earlier row (one flagged in ``blockers``, bool [n], if given)."""
        out = xp.zeros(self.n, "bool", like=self.R)
        if self.lsh is not None:
            out |= blocked_in_groups(self.lsh[0], self.lsh[1], self.n, blockers)
        if self.spos is not None:
            a, b = self._edges(blockers)
            out[b if blockers is None else b[blockers[a]]] = True
        return out


def waiting(stage: Any, keys: NearKeys, R: "Array", hit: "Array") -> "Array":
    """bool over ``R``: the rows that wait for a later round (see the module's docstring); ``hit``: the rows
    with a match in the index."""
    n = xp.numel(R)
    if n < 2 or bool(hit.all()):
        return xp.zeros(n, "bool", like=R)
    g = WaitGraph(stage, keys, R)
    if not bool(hit.any()):
        return g.blocked()
    return resolve_waits(hit, g.blocked)


def resolve_waits(hit: "Array", blocked: Callable[["Array"], "Array"]) -> "Array":
    """The rows that wait, given ``hit`` and ``blocked(blockers)`` (rows that could match an earlier row flagged
    in ``blockers``): the rows without a match that are blocked by an earlier row that is not decided now,
    and likewise the rows with a match, where "not decided now" is "without a match, or waiting".

    Iterates from "only the rows without a match block": the rows with a match that wait only grow from pass to
    pass, so the iteration ends, after one pass more than the longest chain of rows with a match that wait
    for one another (one or two on real data; a pass costs one scatter over the round's relation).

    Example:
        >>> import numpy as np
        >>> chain = lambda b: np.concatenate([[False], b[:-1]])  # row i could match row i - 1
        >>> resolve_waits(np.array([False, True, True, False]), chain).tolist()
        [False, True, True, True]
    """
    held = xp.zeros(xp.numel(hit), "bool", like=hit)  # rows with a match that wait
    now_blocked = blocked(~hit)
    while True:
        now = hit & now_blocked
        if xp.equal(now, held):  # a fixed point: ``now_blocked`` was found with these rows waiting
            return held | (~hit & now_blocked)
        held = now
        now_blocked = blocked(~hit | held)
