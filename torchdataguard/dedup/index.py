"""Tensor indexes for deduplication, on any torch device.

:class:`ExactIndex` is an open-addressing hash set of 128-bit digests. :class:`LSHIndex` is a banded
LSH multimap over 4-bit MinHash signatures: every kept document stores its signature packed two values
per byte (``num_perm / 2`` bytes) and ``bands`` int32 table entries; band keys are recomputed from the
stored signature, so keys themselves are never stored. Both grow by 1.5x when the table is 3/4 full.

Memory per kept document at the defaults (128 permutations, 16 bands): 64 bytes of signature, 8 bytes of
id, and 16 table entries of 4 bytes at a load factor between 0.5 and 0.75 (85 to 128 bytes), so 157 to
200 bytes.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch

from ..errors import StateError
from .hashing import mix64

__all__ = ["ExactIndex", "IdStore", "LSHIndex", "capacity_for", "linear_probe_insert"]

MAX_LOAD = 0.75
GROWTH = 1.5


class IdStore:
    """Slot -> external id. Integer ids live in an int64 tensor (8 bytes each); other ids in a list."""

    def __init__(self) -> None:
        self._ints = torch.zeros(1024, dtype=torch.int64)
        self._objs: List[Any] | None = None
        self.n = 0

    def extend(self, ids: Sequence[Any]) -> None:
        if self._objs is None and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            need = self.n + len(ids)
            if need > self._ints.numel():
                new = torch.zeros(max(need, int(self._ints.numel() * GROWTH)), dtype=torch.int64)
                new[: self.n] = self._ints[: self.n]
                self._ints = new
            if ids:
                self._ints[self.n : need] = torch.tensor(list(ids), dtype=torch.int64)
        else:
            if self._objs is None:
                self._objs = self._ints[: self.n].tolist()
                self._ints = torch.zeros(0, dtype=torch.int64)
            self._objs.extend(ids)
        self.n += len(ids)

    def get(self, slot: int) -> Any:
        return self._objs[slot] if self._objs is not None else int(self._ints[slot])

    def nbytes(self) -> int:
        return self._ints.numel() * 8 if self._objs is None else 8 * len(self._objs)

    def state(self) -> Dict[str, Any]:
        if self._objs is None:
            return {"ids": self._ints[: self.n].clone()}
        return {"id_list": list(self._objs)}

    def load(self, state: Dict[str, Any]) -> None:
        if "ids" in state:
            t = state["ids"].to(torch.int64)
            self._objs = None
            self.n = t.numel()
            self._ints = torch.zeros(max(1024, self.n), dtype=torch.int64)
            self._ints[: self.n] = t
        else:
            self._objs = list(state["id_list"])
            self.n = len(self._objs)
            self._ints = torch.zeros(0, dtype=torch.int64)


def capacity_for(n_entries: int) -> int:
    return max(1024, int(n_entries / (MAX_LOAD * 0.99)) + 1)


def linear_probe_insert(table: torch.Tensor, pos: torch.Tensor, values: torch.Tensor) -> None:
    """Insert ``values`` at their home positions ``pos`` with linear probing (deterministic, in place)."""
    T = table.numel()
    order = torch.arange(pos.numel(), device=pos.device)
    while pos.numel():
        occupied = table[pos] >= 0
        free_idx = (~occupied).nonzero().flatten()
        placed = torch.zeros_like(occupied)
        if free_idx.numel():
            fp = pos[free_idx]
            uniq, inv = torch.unique(fp, return_inverse=True)
            claim = torch.full((uniq.numel(),), 2**62, dtype=torch.int64, device=pos.device)
            claim.scatter_reduce_(0, inv, order[free_idx], reduce="amin", include_self=True)
            win = claim[inv] == order[free_idx]
            w = free_idx[win]
            table[pos[w]] = values[w]
            placed[w] = True
        keep = ~placed
        pos = (pos[keep] + 1) % T
        values = values[keep]
        order = order[keep]


class ExactIndex:
    """An open-addressing set of 128-bit digests (two int64 halves), keep-first, with ids of the firsts.

    Memory: 16 bytes of digest and 8 of id per kept document, 4 bytes per table slot at load 0.5-0.75.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.ids = IdStore()
        self.n = 0
        self.digests = torch.zeros(1024, 2, dtype=torch.int64, device=self.device)
        self.table = torch.full((1024,), -1, dtype=torch.int32, device=self.device)

    def _home(self, d: torch.Tensor) -> torch.Tensor:
        return (mix64(d[:, 0] ^ d[:, 1]) & 0x7FFFFFFFFFFFFFFF) % self.table.numel()

    def lookup(self, d: torch.Tensor) -> torch.Tensor:
        """Slot of each digest in the index, or -1."""
        out = torch.full((d.shape[0],), -1, dtype=torch.int64, device=self.device)
        pos = self._home(d)
        active = torch.arange(d.shape[0], device=self.device)
        T = self.table.numel()
        while active.numel():
            e = self.table[pos].to(torch.int64)
            filled = e >= 0
            active, pos, e = active[filled], pos[filled], e[filled]
            if not active.numel():
                break
            eq = (self.digests[e] == d[active]).all(1)
            out[active[eq]] = e[eq]
            keep = ~eq
            active, pos = active[keep], (pos[keep] + 1) % T
        return out

    def insert(self, d: torch.Tensor, ids: Sequence[Any]) -> None:
        m = d.shape[0]
        if m == 0:
            return
        if self.n + m > self.digests.shape[0]:
            new = torch.zeros(max(self.n + m, int(self.digests.shape[0] * GROWTH)), 2, dtype=torch.int64,
                              device=self.device)
            new[: self.n] = self.digests[: self.n]
            self.digests = new
        self.digests[self.n : self.n + m] = d
        self.ids.extend(ids)
        slots = torch.arange(self.n, self.n + m, device=self.device, dtype=torch.int64)
        self.n += m
        if self.n > MAX_LOAD * self.table.numel():
            self._rebuild(capacity_for(int(self.n * GROWTH)))
        else:
            linear_probe_insert(self.table, self._home(d), slots.to(torch.int32))

    def _rebuild(self, capacity: int) -> None:
        self.table = torch.full((capacity,), -1, dtype=torch.int32, device=self.device)
        d = self.digests[: self.n]
        linear_probe_insert(self.table, self._home(d), torch.arange(self.n, device=self.device, dtype=torch.int32))

    def to(self, device) -> "ExactIndex":
        self.device = torch.device(device)
        self.digests = self.digests.to(self.device)
        self.table = self.table.to(self.device)
        return self

    def nbytes(self) -> int:
        return self.n * 16 + self.table.numel() * 4 + self.ids.nbytes()

    def state(self) -> Dict[str, Any]:
        return {"digests": self.digests[: self.n].cpu().clone(), **self.ids.state()}

    def load(self, state: Dict[str, Any]) -> None:
        d = state["digests"].to(torch.int64)
        self.ids.load(state)
        if self.ids.n != d.shape[0]:
            raise StateError(f"exact index state has {d.shape[0]} digests but {self.ids.n} ids")
        self.n = d.shape[0]
        self.digests = torch.zeros(max(1024, self.n), 2, dtype=torch.int64, device=self.device)
        self.digests[: self.n] = d.to(self.device)
        self._rebuild(capacity_for(int(self.n * GROWTH)))


class LSHIndex:
    """A banded LSH multimap over 4-bit MinHash signatures (keep-first, query-then-insert).

    Args:
        num_perm: signature length (even).
        bands: number of bands; ``num_perm % bands == 0`` and rows = num_perm // bands.
        device: where the tables live.
    """

    def __init__(self, num_perm: int, bands: int, device: torch.device | str = "cpu") -> None:
        if num_perm % 2 or num_perm % bands:
            raise StateError(f"num_perm={num_perm} must be even and divisible by bands={bands}")
        self.num_perm = num_perm
        self.bands = bands
        self.rows = num_perm // bands
        self.device = torch.device(device)
        self.ids = IdStore()
        self.n = 0
        self.packed = torch.zeros(1024, num_perm // 2, dtype=torch.uint8, device=self.device)
        self.table = torch.full((capacity_for(1024 * bands // 4),), -1, dtype=torch.int32, device=self.device)
        g = torch.Generator().manual_seed(12345)
        self._row_mul = (torch.randint(1, 2**62, (self.rows,), generator=g) * 2 + 1).to(self.device)
        self._band_add = torch.randint(1, 2**62, (bands,), generator=g).to(self.device)

    # -- signature packing ---------------------------------------------------------------------------
    @staticmethod
    def pack(nib: torch.Tensor) -> torch.Tensor:
        n = nib.to(torch.uint8)
        return n[:, 0::2] | (n[:, 1::2] << 4)

    @staticmethod
    def unpack(packed: torch.Tensor) -> torch.Tensor:
        out = torch.empty(packed.shape[0], packed.shape[1] * 2, dtype=torch.uint8, device=packed.device)
        out[:, 0::2] = packed & 15
        out[:, 1::2] = packed >> 4
        return out

    def band_keys(self, nib: torch.Tensor) -> torch.Tensor:
        """int64 [m, bands] keys of 4-bit signatures [m, num_perm]."""
        x = nib.to(torch.int64).view(nib.shape[0], self.bands, self.rows)
        k = (x * self._row_mul).sum(-1) + self._band_add
        return mix64(k)

    def _home(self, keys: torch.Tensor) -> torch.Tensor:
        return (keys & 0x7FFFFFFFFFFFFFFF) % self.table.numel()

    # -- queries -------------------------------------------------------------------------------------
    def candidates(self, nib: torch.Tensor, keys: torch.Tensor | None = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """All (query row, slot) pairs that share at least one band with a stored document."""
        m = nib.shape[0]
        if m == 0 or self.n == 0:
            e = torch.zeros(0, dtype=torch.int64, device=self.device)
            return e, e
        if keys is None:
            keys = self.band_keys(nib)
        T = self.table.numel()
        pos = self._home(keys).flatten()
        q = torch.arange(m, device=self.device).repeat_interleave(self.bands)
        b = torch.arange(self.bands, device=self.device).repeat(m)
        cols = torch.arange(self.rows, device=self.device)
        out_q: List[torch.Tensor] = []
        out_s: List[torch.Tensor] = []
        while pos.numel():
            e = self.table[pos].to(torch.int64)
            filled = e >= 0
            q, b, pos, e = q[filled], b[filled], pos[filled], e[filled]
            if not q.numel():
                break
            bc = (b * self.rows).unsqueeze(1) + cols  # [k, rows] signature columns of each band
            stored = self._nibbles_at(e, bc)
            eq = (stored == nib[q.unsqueeze(1), bc]).all(1)
            out_q.append(q[eq])
            out_s.append(e[eq])
            pos = (pos + 1) % T
        qs = torch.cat(out_q) if out_q else torch.zeros(0, dtype=torch.int64, device=self.device)
        ss = torch.cat(out_s) if out_s else torch.zeros(0, dtype=torch.int64, device=self.device)
        if qs.numel():
            pair = torch.unique(qs * (self.n + 1) + ss)
            qs, ss = pair // (self.n + 1), pair % (self.n + 1)
        return qs, ss

    def _nibbles_at(self, slots: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        byte = self.packed[slots.unsqueeze(1), cols // 2]
        return torch.where(cols % 2 == 0, byte & 15, byte >> 4)

    def similarity(self, nib: torch.Tensor, q: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """Estimated Jaccard between query rows ``q`` and stored ``slots`` (4-bit collision corrected)."""
        stored = self.unpack(self.packed[slots])
        frac = (stored == nib[q]).float().mean(1)
        return ((frac - 1.0 / 16) / (15.0 / 16)).clamp(0.0, 1.0)

    # -- insertion -----------------------------------------------------------------------------------
    def insert(self, nib: torch.Tensor, ids: Sequence[Any]) -> None:
        m = nib.shape[0]
        if m == 0:
            return
        if self.n + m > self.packed.shape[0]:
            new = torch.zeros(max(self.n + m, int(self.packed.shape[0] * 1.25)), self.num_perm // 2,
                              dtype=torch.uint8, device=self.device)
            new[: self.n] = self.packed[: self.n]
            self.packed = new
        self.packed[self.n : self.n + m] = self.pack(nib)
        self.ids.extend(ids)
        first = self.n
        self.n += m
        if self.n * self.bands > MAX_LOAD * self.table.numel():
            self._rebuild(capacity_for(int(self.n * self.bands * GROWTH)))
        else:
            keys = self.band_keys(nib)
            slots = torch.arange(first, first + m, device=self.device, dtype=torch.int32).repeat_interleave(self.bands)
            linear_probe_insert(self.table, self._home(keys).flatten(), slots)

    def _rebuild(self, capacity: int) -> None:
        self.table = torch.full((capacity,), -1, dtype=torch.int32, device=self.device)
        step = 65536
        for a in range(0, self.n, step):
            b = min(self.n, a + step)
            keys = self.band_keys(self.unpack(self.packed[a:b]))
            slots = torch.arange(a, b, device=self.device, dtype=torch.int32).repeat_interleave(self.bands)
            linear_probe_insert(self.table, self._home(keys).flatten(), slots)

    def to(self, device) -> "LSHIndex":
        self.device = torch.device(device)
        for name in ("packed", "table", "_row_mul", "_band_add"):
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def nbytes(self) -> int:
        return self.n * (self.num_perm // 2) + self.table.numel() * 4 + self.ids.nbytes()

    def state(self) -> Dict[str, Any]:
        return {"signatures": self.packed[: self.n].cpu().clone(), **self.ids.state()}

    def load(self, state: Dict[str, Any]) -> None:
        p = state["signatures"].to(torch.uint8)
        if p.dim() != 2 or p.shape[1] != self.num_perm // 2:
            raise StateError(f"LSH state holds signatures of shape {tuple(p.shape)}, expected [n, {self.num_perm // 2}] "
                             f"for num_perm={self.num_perm}; build NearDedup with the settings it was saved with")
        self.ids.load(state)
        if self.ids.n != p.shape[0]:
            raise StateError(f"LSH state has {p.shape[0]} signatures but {self.ids.n} ids")
        self.n = p.shape[0]
        self.packed = torch.zeros(max(1024, self.n), self.num_perm // 2, dtype=torch.uint8, device=self.device)
        self.packed[: self.n] = p.to(self.device)
        self._rebuild(capacity_for(int(self.n * self.bands * GROWTH)))
