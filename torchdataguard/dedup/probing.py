"""Open addressing with linear probing over arrays, vectorised over a whole batch of keys.

The tables of :mod:`torchdataguard.dedup.index` and :mod:`torchdataguard.dedup.smallsets` hold one integer
per slot (``< 0``: empty); a key's entries live in the chain of slots that starts at its home position and
ends at the first empty slot. Both operations read chains a window at a time (one gather of ``[k, w]``
slots per step, ``w`` = :data:`WINDOW` at first and doubling at each further step: at a load of 0.8 nearly
every chain ends inside its first two windows, and the few keys of a batch that meet a long cluster finish
in a few more steps), so the number of passes over a batch is small and does not grow with the batch.

A stage on the CPU holds NumPy arrays (its gathers are several times faster than torch's indexing there) and
runs the NumPy implementation; tensors (other devices) run the torch one. Both give tables that answer every
lookup the same way.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Tuple

import numpy as np

from . import xp

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .xp import Array

__all__ = ["GROWTH", "MAX_LOAD", "WINDOW", "capacity_for", "chain_matches", "linear_probe_insert"]

#: tables grow (by GROWTH) when this full, so they are between 0.55 and 0.8 full: with 16 int32 entries per
#: document, an LSH table costs 80 to 116 bytes per kept document
MAX_LOAD = 0.8
GROWTH = 1.45
#: slots read per step when walking or filling a chain; the window doubles at every further step (up to
#: MAX_WINDOW), so the few keys of a batch that meet a long cluster finish in a few more steps
WINDOW = 8
MAX_WINDOW = 256


def capacity_for(n_entries: int) -> int:
    """A table size that holds ``n_entries`` below :data:`MAX_LOAD` (at least 1,024)."""
    return max(1024, int(n_entries / (MAX_LOAD * 0.99)) + 1)


def chain_matches(table: "Array", pos: "Array", stored: "Array", stride: int, col: "Array",
                  want: "Array") -> Tuple["Array", "Array"]:
    """Every ``(i, e)`` with ``e`` an entry of the chain that starts at ``pos[i]`` and
    ``stored[e * stride + col[i]] == want[i]``.

    Args:
        table: the slots (int32 or int64; ``< 0`` empty).
        pos: int64 [k] home positions, each in ``[0, table.numel())``.
        stored: a flat array of what each entry holds (``stride`` values per entry).
        col, want: int64 [k]: which of an entry's values to compare, and the value a match has.
    Returns:
        int64 arrays ``(i, e)`` of equal length, of the table's kind (NumPy arrays, or torch tensors).

    Example:
        >>> t = np.full(1024, -1, dtype=np.int32)
        >>> linear_probe_insert(t, np.array([5, 5]), np.array([0, 1], dtype=np.int32))
        >>> [a.tolist() for a in chain_matches(t, np.array([5]), np.array([70, 71]), 1, np.array([0]), np.array([71]))]
        [[0], [1]]
    """
    if xp.is_tensor(table):
        return _matches_torch(table, pos, stored, stride, col, want)
    return _matches_numpy(table, pos, stored, stride, col, want)


def linear_probe_insert(table: "Array", pos: "Array", values: "Array", *, empty: bool = False) -> None:
    """Insert ``values`` (non-negative) at their home positions ``pos`` with linear probing, in
    place.

    Each value goes to the first free slot of its chain. When several claim one slot in the same step, each
    writes a distinct negative marker there and the one whose marker stays wins; the others go on from the
    slot after it. So every slot between a value's home and its place is filled, which is what
    :func:`chain_matches` relies on; which of its chain's slots a value lands in does not change what a
    lookup finds.

    ``empty=True`` (the caller's promise that ``table`` holds nothing yet: a table being rebuilt) places the
    values in one pass instead (:func:`_fill_empty`), the same chains without the steps that values sharing
    a home take one at a time.

    Example:
        >>> t = np.full(1024, -1, dtype=np.int32)
        >>> linear_probe_insert(t, np.array([5, 5, 1023]), np.array([0, 1, 2], dtype=np.int32), empty=True)
        >>> t[[5, 6, 1023]].tolist()
        [0, 1, 2]
    """
    if xp.numel(pos) == 0:
        return
    pos, values = xp.astype(pos, "int64"), xp.astype(values, xp.dtype_name(table))
    if empty:
        pos, values = _fill_empty(table, pos, values)
        if xp.numel(pos) == 0:
            return
    if xp.is_tensor(table):
        _insert_torch(table, pos, values)
    else:
        _insert_numpy(table, pos, values)


def _fill_empty(table: "Array", pos: "Array", values: "Array") -> Tuple["Array", "Array"]:
    """Place ``values`` in the empty ``table`` as linear probing would, in one pass: in the order of their homes
    ``h``, the ``i``-th value lands at ``s_i = max(h_i, s_(i-1) + 1) = i + max_(j <= i)(h_j - j)``, so
    every slot from a value's home to its place is filled by the values before it. Returns the values whose
    place would be past the end (and their homes): they wrap around to the start, by the stepwise insert."""
    T = xp.numel(table)
    order = xp.stable_argsort(xp.astype(pos, "int32") if T < 2**31 else pos)  # (int32 sorts faster)
    i = xp.arange(xp.numel(pos), like=pos)
    place = i + xp.cummax(pos[order] - i)  # increasing: those past the end are the last ones
    fit = xp.numel(pos) if int(place[-1]) < T else int(xp.searchsorted(place, xp.asarray([T], like=place))[0])
    table[place[:fit]] = values[order[:fit]]
    late = order[fit:]
    return pos[late], values[late]


# -- NumPy (CPU) ------------------------------------------------------------------------------------------
def _width(step: int, T: int) -> int:
    return min(WINDOW << min(step, 5), MAX_WINDOW, T)


def _window_np(pos: np.ndarray, T: int, w: int) -> np.ndarray:
    idx = pos[:, None] + np.arange(w)
    np.subtract(idx, T, out=idx, where=idx >= T)  # positions are < T, so one subtraction wraps
    return idx


def _matches_numpy(table: np.ndarray, pos: np.ndarray, stored: np.ndarray, stride: int, col: np.ndarray,
                   want: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    T = table.size
    q = np.arange(pos.size)
    out_q: List[np.ndarray] = []
    out_e: List[np.ndarray] = []
    step = 0
    while q.size:
        w = _width(step, T)
        step += 1
        e = table[_window_np(pos, T, w)]
        filled = e >= 0
        gap = filled.argmin(1)  # the first empty slot of each window (0 also when there is none)
        whole = filled[np.arange(q.size), gap]  # no empty slot: the chain goes on past the window
        gap[whole] = w
        live = np.arange(w) < gap[:, None]  # the chain so far: filled and before any gap
        r = np.repeat(np.arange(q.size), gap)  # (the row of each live slot, in the order e[live] takes them)
        ent = e[live].astype(np.int64)
        hit = stored[ent * stride + col[r]] == want[r]  # only the chain's entries are compared
        if hit.any():
            out_q.append(q[r[hit]])
            out_e.append(ent[hit])
        more = np.flatnonzero(whole)
        q, col, want = q[more], col[more], want[more]
        pos = pos[more] + w
        np.subtract(pos, T, out=pos, where=pos >= T)
    if not out_q:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy()
    return np.concatenate(out_q), np.concatenate(out_e)


def _insert_numpy(table: np.ndarray, pos: np.ndarray, values: np.ndarray) -> None:
    T = table.size
    mark = (-2 - np.arange(pos.size)).astype(table.dtype)  # distinct and negative: never a value
    # first, every value whose home slot is free claims it (one gather, no window): at the loads tables are
    # kept at most values land there; the rest walk their chains from home in windows below
    h = np.flatnonzero(table[pos] < 0)
    if h.size:
        tg, mh = pos[h], mark[h]
        table[tg] = mh
        won = h[table[tg] == mh]
        table[pos[won]] = values[won]
        if won.size == pos.size:
            return
        keep = np.ones(pos.size, dtype=bool)
        keep[won] = False
        pos, values, mark = pos[keep], values[keep], mark[keep]
    step = 0
    while pos.size:
        w = _width(step, T)
        step += 1
        idx = _window_np(pos, T, w)
        free = table[idx] < 0
        first = free.argmax(1)  # the first free slot of the window (argmax returns the first maximum)
        r = np.arange(pos.size)
        has = free[r, first]
        target = idx[r, first]
        h = np.flatnonzero(has)
        tg, mh = target[h], mark[h]
        table[tg] = mh
        won = h[table[tg] == mh]
        table[target[won]] = values[won]
        keep = np.ones(pos.size, dtype=bool)
        keep[won] = False
        nxt = np.where(has, target + 1, pos + w)
        np.subtract(nxt, T, out=nxt, where=nxt >= T)
        pos, values, mark = nxt[keep], values[keep], mark[keep]


# -- torch (tensors) -----------------------------------------------------------------------------------
def _window_torch(pos: "torch.Tensor", T: int, w: int) -> "torch.Tensor":
    torch = xp.torch_module()
    idx = pos.unsqueeze(1) + torch.arange(w, device=pos.device)
    return torch.where(idx >= T, idx - T, idx)


def _matches_torch(table: "torch.Tensor", pos: "torch.Tensor", stored: "torch.Tensor", stride: int,
                   col: "torch.Tensor", want: "torch.Tensor") -> Tuple["torch.Tensor", "torch.Tensor"]:
    torch = xp.torch_module()
    T = table.numel()
    q = torch.arange(pos.numel(), device=pos.device)
    out_q: List["torch.Tensor"] = []
    out_e: List["torch.Tensor"] = []
    step = 0
    while q.numel():
        w = _width(step, T)
        step += 1
        e = table.take(_window_torch(pos, T, w)).to(torch.int64)
        live = (e >= 0).to(torch.uint8).cummin(1).values.bool()
        e = e.clamp(min=0)
        hit = live & (stored.take(e * stride + col.unsqueeze(1)) == want.unsqueeze(1))
        r, c = torch.nonzero(hit, as_tuple=True)
        out_q.append(q[r])
        out_e.append(e[r, c])
        more = torch.nonzero(live[:, -1]).flatten()
        q, col, want = q[more], col[more], want[more]
        pos = pos[more] + w
        pos = torch.where(pos >= T, pos - T, pos)
    if not out_q:
        z = torch.zeros(0, dtype=torch.int64, device=pos.device)
        return z, z.clone()
    return torch.cat(out_q), torch.cat(out_e)


def _insert_torch(table: "torch.Tensor", pos: "torch.Tensor", values: "torch.Tensor") -> None:
    torch = xp.torch_module()
    T = table.numel()
    mark = (-2 - torch.arange(pos.numel(), device=pos.device)).to(table.dtype)
    step = 0
    while pos.numel():
        w = _width(step, T)
        step += 1
        idx = _window_torch(pos, T, w)
        free = table.take(idx) < 0
        has = free.any(1)
        first = free.to(torch.uint8).argmax(1)
        target = idx.gather(1, first.unsqueeze(1)).squeeze(1)
        h = torch.nonzero(has).flatten()
        tg, mh = target[h], mark[h]
        table[tg] = mh
        won = h[table.take(tg) == mh]
        table[target[won]] = values[won]
        keep = torch.ones_like(has)
        keep[won] = False
        nxt = torch.where(has, target + 1, pos + w)
        nxt = torch.where(nxt >= T, nxt - T, nxt)
        pos, values, mark = nxt[keep], values[keep], mark[keep]
