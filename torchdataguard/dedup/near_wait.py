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

from typing import Any, Callable, List, Optional, Tuple

import torch

from .near_keys import NearKeys
from .setops import blocked_in_groups, key_groups

__all__ = ["WaitGraph", "resolve_waits", "waiting"]


class WaitGraph:
    """The "could match an earlier row" relation among the rows ``R`` of one round, computed once.

    Example:
        >>> import torch, torchdataguard as tdg
        >>> st = tdg.NearDedup()
        >>> texts = ["the cat sat on the mat today", "the cat sat on the mat today!", "a different line of text"]
        >>> keys = st.keyer()([tdg.Example(i, t, t) for i, t in enumerate(texts)])
        >>> WaitGraph(st, keys, torch.arange(3)).blocked().tolist()
        [False, True, False]
    """

    def __init__(self, stage: Any, keys: NearKeys, R: torch.Tensor) -> None:
        """``stage``: the :class:`~torchdataguard.NearDedup` (its settings, LSH and exact-set indexes)."""
        K, _, K3 = stage.cfg.limits
        self.n = r = R.numel()
        self.device = R.device
        bands = int(stage.cfg.bands)
        self.lsh = None  # (owners sorted by band key, group of each)
        self.spos: Optional[torch.Tensor] = None  # positions in R of the rows with exact sets
        if keys.all_large(K3):
            lpos = torch.arange(r, device=R.device)
            spos = lpos[:0]
        else:
            size = keys.size[R]
            lpos = torch.nonzero(size >= K).flatten()
            spos = torch.nonzero(size < K3).flatten()
        if lpos.numel() > 1:
            bk = stage.index.band_keys(keys.nib[R[lpos]]).flatten()
            self.lsh = key_groups(bk, lpos.repeat_interleave(bands))
        if spos.numel() > 1:  # exact-set pairs are found from the rows that may block as they are asked for
            self.spos, self._small, self._keys, self._rows = spos, stage.small, keys, R[spos]
            self._prefix = stage.small.prefix_within(keys.sets, keys.off, keys.size, self._rows)
            self._asked = torch.zeros(spos.numel(), dtype=torch.bool, device=R.device)
            self._a: List[torch.Tensor] = []
            self._b: List[torch.Tensor] = []

    def _edges(self, blockers: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Exact-set pairs ``(a, b)`` (positions in R) from every row of ``blockers`` (all rows: ``None``)."""
        assert self.spos is not None
        want = torch.ones_like(self._asked) if blockers is None else blockers[self.spos]
        new = want & ~self._asked
        if bool(new.any()):
            k = self._keys
            a, b = self._small.pairs_within(k.sets, k.off, k.size, self._rows, self._prefix,
                                            None if bool(new.all()) else new)
            self._a.append(self.spos[a])
            self._b.append(self.spos[b])
            self._asked |= new
        if not self._a:
            z = torch.zeros(0, dtype=torch.int64, device=self.device)
            return z, z
        if len(self._a) > 1:
            self._a, self._b = [torch.cat(self._a)], [torch.cat(self._b)]
        return self._a[0], self._b[0]

    def blocked(self, blockers: Optional[torch.Tensor] = None) -> torch.Tensor:
        """bool [n]: rows that could match an earlier row (one flagged in ``blockers``, bool [n], if given)."""
        out = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        if self.lsh is not None:
            out |= blocked_in_groups(self.lsh[0], self.lsh[1], self.n, blockers)
        if self.spos is not None:
            a, b = self._edges(blockers)
            out[b if blockers is None else b[blockers[a]]] = True
        return out


def waiting(stage: Any, keys: NearKeys, R: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """bool over ``R``: the rows that wait for a later round (see the module's docstring); ``hit``: the rows
    with a match in the index."""
    n = R.numel()
    if n < 2 or bool(hit.all()):
        return torch.zeros(n, dtype=torch.bool, device=R.device)
    g = WaitGraph(stage, keys, R)
    if not bool(hit.any()):
        return g.blocked()
    return resolve_waits(hit, g.blocked)


def resolve_waits(hit: torch.Tensor, blocked: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The rows that wait, given ``hit`` and ``blocked(blockers)`` (rows that could match an earlier row flagged
    in ``blockers``): the rows without a match that are blocked by an earlier row that is not decided now,
    and likewise the rows with a match, where "not decided now" is "without a match, or waiting".

    Iterates from "only the rows without a match block": the rows with a match that wait only grow from pass to
    pass, so the iteration ends, after one pass more than the longest chain of rows with a match that wait
    for one another (one or two on real data; a pass costs one scatter over the round's relation).

    Example:
        >>> import torch
        >>> chain = lambda b: torch.cat([torch.tensor([False]), b[:-1]])  # row i could match row i - 1
        >>> resolve_waits(torch.tensor([False, True, True, False]), chain).tolist()
        [False, True, True, True]
    """
    held = torch.zeros_like(hit)  # rows with a match that wait
    now_blocked = blocked(~hit)
    while True:
        now = hit & now_blocked
        if torch.equal(now, held):  # a fixed point: ``now_blocked`` was found with these rows waiting
            return held | (~hit & now_blocked)
        held = now
        now_blocked = blocked(~hit | held)
