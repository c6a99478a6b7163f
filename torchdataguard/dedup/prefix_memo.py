"""The prefixes of a chunk's rows, computed once a round and asked for three times.

A round of :meth:`NearDedup.decide <torchdataguard.NearDedup.decide>` cuts the prefix-filter prefixes of its
rows with exact sets for the matches in the exact-set index (:meth:`SmallSetIndex.candidates
<torchdataguard.dedup.smallsets.SmallSetIndex.candidates>`), again for the pairs among them (the wait graph:
:meth:`~torchdataguard.dedup.smallsets.SmallSetIndex.prefix_within`), and a third time for the rows it stores
(their entries in the index's table). :class:`PrefixMemo` keeps the last answer and gives it again while the
chunk, the rows and the order of the prefix filter (which changes only when a token is demoted) are the same,
and the stored rows' entries from it when they are among its rows: the same positions, in the same order, as
cutting them again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Tuple

from . import xp
from .setops import prefix_positions

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array

__all__ = ["PrefixMemo"]


class PrefixMemo:
    """The prefix positions of the rows last asked about, for one order of the prefix filter.

    Example:
        >>> import numpy as np
        >>> sets, off, size = np.array([3, 5, 9, 4]), np.array([0, 3, 4]), np.array([3, 1])
        >>> memo = PrefixMemo(0.5)
        >>> [a.tolist() for a in memo.positions(sets, off, size, np.array([0, 1]), 0, None)]
        [[0, 1, 3], [0, 0, 1]]
        >>> memo.stored(sets, off, np.array([1]), np.array([10]), 0).tolist()  # row 1 stored from position 10
        [10]
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.last: Optional[tuple] = None  # (sets, off, size, order, rows, positions, owners)

    def clear(self) -> None:
        self.last = None

    def positions(self, sets: "Array", off: "Array", size: "Array", rows: "Array", order: int,
                  late: Optional[Callable[["Array"], "Array"]]) -> Tuple["Array", "Array"]:
        """:func:`~torchdataguard.dedup.setops.prefix_positions` of the sets of ``rows`` (positions in
        ``sets``, owners: positions in ``rows``) under the order numbered ``order`` (``late``: its test)."""
        m = self.last
        if m is not None and m[2] is size:
            if m[0] is sets and m[1] is off and m[3] == order and xp.equal(m[4], rows):
                return m[5], m[6]
            picked = self._pick(sets, off, rows, order)
            if picked is not None:
                k, keep = picked
                return m[5][keep], k[keep]
        pos, own = prefix_positions(sets, off[rows], size[rows], self.threshold, late)
        self.last = (sets, off, size, order, rows, pos, own)
        return pos, own

    def stored(self, sets: "Array", off: "Array", rows: "Array", starts: "Array", order: int) -> Optional["Array"]:
        """The prefix positions of the sets of ``rows`` once copied to ``starts`` (where each begins in the
        store), from the last answer, or ``None`` (cut them again) when that was for another chunk or order
        or lacks one of ``rows``."""
        picked = self._pick(sets, off, rows, order)
        if picked is None:
            return None
        k, keep = picked
        asked, pos, own = self.last[4], self.last[5], self.last[6]
        return starts[k[keep]] + (pos[keep] - off[asked[own[keep]]])

    def _pick(self, sets: "Array", off: "Array", rows: "Array", order: int) -> Optional[Tuple["Array", "Array"]]:
        """``(k, keep)`` over the last answer's entries: the position in ``rows`` of each entry's row (kept
        where it is one of them), when ``rows`` (ascending) are all among the rows asked then, for this chunk
        and order (the entries of ``rows`` then come in the order a fresh cut gives them); else ``None``."""
        m = self.last
        if m is None or m[0] is not sets or m[1] is not off or m[3] != order or not xp.numel(rows):
            return None
        if xp.numel(rows) > 1 and not bool((rows[1:] > rows[:-1]).all()):
            return None
        asked, own = m[4], m[6]
        at = xp.full(xp.numel(off) - 1, -1, like=rows)  # chunk row -> in rows
        at[asked] = -2
        if bool((at[rows] != -2).any()):
            return None
        at[rows] = xp.arange(xp.numel(rows), like=rows)
        k = at[asked[own]]
        return k, k >= 0
