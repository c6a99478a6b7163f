"""Indexes for deduplication: NumPy arrays on the CPU, torch tensors on other devices (:mod:`.xp`).

:class:`ExactIndex` is an open-addressing hash set of 128-bit digests. :class:`LSHIndex` is a banded
LSH multimap over 4-bit MinHash signatures: every kept document stores its signature packed two values
per byte (``num_perm / 2`` bytes) and ``bands`` int32 table entries; band keys are recomputed from the
stored signature, so keys themselves are never stored. Both tables are open addressing with linear probing
(:mod:`torchdataguard.dedup.probing`), grown by 1.45x when 80% full.

Memory per kept document at the defaults (128 permutations, 16 bands), counting allocated capacity: 64 to 72
bytes of signature (rows grow by 1/8), 4 to 5.8 bytes of id (8 to 11.6 once an id does not fit int32), and 16
table entries of 4 bytes at a load between 0.55 and 0.8 (80 to 116 bytes): 148 to 194 bytes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import StateError
from . import xp
from .distinct import sorted_unique
from .minhash import mt_randint
from .probing import GROWTH, MAX_LOAD, capacity_for, chain_matches, linear_probe_insert
from .token_hashing import mix64

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array, Device

__all__ = ["INITIAL_ROWS", "ExactIndex", "IdStore", "LSHIndex"]

#: rows allocated by an empty index (signatures, ids); they grow with what is inserted
INITIAL_ROWS = 64


class IdStore:
    """Slot -> external id. Integer ids live in a NumPy array (host memory, whatever the device of the index):
    int32 (4 bytes each) while every id fits, int64 from the first one that does not; other ids (and integers
    beyond int64) in a list. Saved as int64 either way.

    Example:
        >>> s = IdStore(); s.extend([3, 7]); s.extend([2**40])
        >>> s.get(1), s.get(2), xp.dtype_name(s.state_dict()["ids"])
        (7, 1099511627776, 'int64')
        >>> s.get_many([2, 0]), (s.extend(["doc-9"]), s.get_many([3, 0]))[1]
        ([1099511627776, 3], ['doc-9', 3])
    """

    def __init__(self) -> None:
        self._ints = np.zeros(INITIAL_ROWS, dtype=np.int32)
        self._objs: List[Any] | None = None
        self.n = 0

    def extend(self, ids: Sequence[Any]) -> None:
        t = None
        if self._objs is None and (set(map(type, ids)) <= {int}  # plain ints (the usual case), checked in C
                                   or all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
            try:
                t = np.fromiter(ids, dtype=np.int64, count=len(ids))
            except (OverflowError, RuntimeError, ValueError, TypeError):  # beyond int64: ids go to the list
                t = None
        if t is not None:
            need = self.n + len(ids)
            dtype = self._ints.dtype
            if dtype == np.int32 and t.size and (int(t.min()) < -2**31 or int(t.max()) >= 2**31):
                dtype = np.dtype(np.int64)
            if need > self._ints.size or dtype != self._ints.dtype:
                new = np.zeros(max(need, int(self._ints.size * GROWTH)), dtype=dtype)
                new[: self.n] = self._ints[: self.n]
                self._ints = new
            self._ints[self.n : need] = t
        else:
            if self._objs is None:
                self._objs = self._ints[: self.n].tolist()
                self._ints = np.zeros(0, dtype=np.int64)
            self._objs.extend(ids)
        self.n += len(ids)

    def get(self, slot: int) -> Any:
        return self._objs[slot] if self._objs is not None else int(self._ints[slot])

    def get_many(self, slots: Sequence[int]) -> List[Any]:
        """The ids of ``slots`` (one gather instead of one element read each)."""
        if self._objs is not None:
            return [self._objs[i] for i in slots]
        return self._ints[np.asarray(slots, dtype=np.int64)].tolist() if len(slots) else []

    def nbytes(self) -> int:
        return self._ints.nbytes if self._objs is None else 8 * len(self._objs)

    def state_dict(self) -> Dict[str, Any]:
        if self._objs is None:
            return {"ids": xp.saved(self._ints[: self.n].astype(np.int64))}
        return {"id_list": list(self._objs)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (its ``ids`` a NumPy array or a tensor)."""
        if "ids" in state:
            t = xp.numpy_of(state["ids"]).astype(np.int64).reshape(-1)
            self._objs = None
            self.n = t.size
            fits = not self.n or (int(t.min()) >= -2**31 and int(t.max()) < 2**31)
            self._ints = np.zeros(max(INITIAL_ROWS, self.n), dtype=np.int32 if fits else np.int64)
            self._ints[: self.n] = t
        else:
            self._objs = list(state["id_list"])
            self.n = len(self._objs)
            self._ints = np.zeros(0, dtype=np.int64)


class ExactIndex:
    """An open-addressing set of 128-bit digests (two int64 halves), keep-first, with ids of the firsts.

    Memory: 16 bytes of digest and 8 of id per kept document, 4 bytes per table slot at a load of 0.55-0.8.
    """

    def __init__(self, device: "Device" = "cpu") -> None:
        self.device = device
        self.ids = IdStore()
        self.n = 0
        self.digests = xp.zeros((1024, 2), device=device)
        self.table = xp.full(1024, -1, "int32", device=device)

    def _home(self, d: "Array") -> "Array":
        return (mix64(d[:, 0] ^ d[:, 1]) & 0x7FFFFFFFFFFFFFFF) % xp.numel(self.table)

    def lookup(self, d: "Array") -> "Array":
        """Slot of each digest in the index, or -1."""
        d = xp.to_like(d, self.digests)
        out = xp.full(d.shape[0], -1, like=self.digests)
        if self.n == 0 or d.shape[0] == 0:
            return out
        q, e = chain_matches(self.table, self._home(d), self.digests.reshape(-1), 2, xp.zeros(d.shape[0], like=d),
                             xp.contiguous(d[:, 0]))
        ok = self.digests[e, 1] == d[q, 1]
        out[q[ok]] = e[ok]
        return out

    def insert(self, d: "Array", ids: Sequence[Any]) -> None:
        m = d.shape[0]
        if m == 0:
            return
        d = xp.to_like(d, self.digests)
        if self.n + m > self.digests.shape[0]:
            self.digests = _grown(self.digests, max(self.n + m, int(self.digests.shape[0] * GROWTH)), self.n)
        self.digests[self.n : self.n + m] = d
        self.ids.extend(ids)
        slots = xp.arange(self.n, self.n + m, "int32", like=self.table)
        self.n += m
        if self.n > MAX_LOAD * xp.numel(self.table):
            self._rebuild(capacity_for(int(self.n * GROWTH)))
        else:
            linear_probe_insert(self.table, self._home(d), slots)

    def _rebuild(self, capacity: int) -> None:
        self.table = xp.full(capacity, -1, "int32", like=self.digests)
        d = self.digests[: self.n]
        linear_probe_insert(self.table, self._home(d), xp.arange(self.n, dtype="int32", like=d),
                            empty=True)  # a fresh table: filled in one pass

    def to(self, device: "Device") -> "ExactIndex":
        self.device = device
        self.digests = xp.as_device(self.digests, device)
        self.table = xp.as_device(self.table, device)
        return self

    def nbytes(self) -> int:
        return self.n * 16 + xp.numel(self.table) * 4 + self.ids.nbytes()

    def state_dict(self) -> Dict[str, Any]:
        return {"digests": xp.saved(self.digests[: self.n]), **self.ids.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (NumPy arrays or tensors), held as this index's device holds arrays."""
        d = xp.as_device(xp.astype(state["digests"], "int64"), self.device)
        self.ids.load_state_dict(state)
        if self.ids.n != d.shape[0]:
            raise StateError(f"exact index state has {d.shape[0]} digests but {self.ids.n} ids")
        self.n = d.shape[0]
        self.digests = xp.zeros((max(1024, self.n), 2), device=self.device)
        self.digests[: self.n] = d
        self._rebuild(capacity_for(int(self.n * GROWTH)))


class LSHIndex:
    """A banded LSH multimap over 4-bit MinHash signatures (keep-first, query-then-insert).

    A band is ``rows`` consecutive 4-bit values. Its *word* is the integer its packed bytes make when a band
    is 1, 2, 4 or 8 whole bytes (rows of 2, 4, 8 or 16 values; read in place from the stored signature, so
    nothing more is stored), else a 31-bit hash of its values (then stored: 4 more bytes per band). The
    table holds one int32 slot per (document, band) at the home position of the band's key; a lookup
    compares words, one gather per probed slot.

    Args:
        num_perm: signature length (even).
        bands: number of bands; ``num_perm % bands == 0`` and rows = num_perm // bands.
        device: where the tables live.
    """

    _VIEWS = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}

    def __init__(self, num_perm: int, bands: int, device: "Device" = "cpu") -> None:
        if num_perm % 2 or num_perm % bands:
            raise StateError(f"num_perm={num_perm} must be even and divisible by bands={bands}")
        self.num_perm = num_perm
        self.bands = bands
        self.rows = num_perm // bands
        self.device = device
        self.ids = IdStore()
        self.n = 0
        self.packed = xp.zeros((INITIAL_ROWS, num_perm // 2), "uint8", device=device)
        self.table = xp.full(capacity_for(INITIAL_ROWS * bands), -1, "int32", device=device)
        # the values torch.randint drew from torch.Generator().manual_seed(12345) before dedup ran without torch
        draws = mt_randint(12345, 1, 2**62, self.rows + bands)
        self._row_mul = xp.as_device(draws[: self.rows] * 2 + 1, device)
        self._band_add = xp.as_device(draws[self.rows :], device)
        #: dtype whose items are exactly one band of a packed signature, or None (words hashed and stored)
        self._view: Optional[str] = self._VIEWS.get(self.rows // 2) if self.rows % 2 == 0 else None
        self._words = None if self._view is not None else xp.zeros((INITIAL_ROWS, bands), "int32", device=device)

    # -- signature packing ---------------------------------------------------------------------------
    @staticmethod
    def pack(nib: "Array") -> "Array":
        n = xp.astype(nib, "uint8")
        return n[:, 0::2] | (n[:, 1::2] << 4)

    @staticmethod
    def unpack(packed: "Array") -> "Array":
        out = xp.zeros((packed.shape[0], packed.shape[1] * 2), "uint8", like=packed)
        out[:, 0::2] = packed & 15
        out[:, 1::2] = packed >> 4
        return out

    def band_words(self, packed: "Array") -> "Array":
        """int64 [m, bands]: the word of each band of packed signatures [m, num_perm / 2]."""
        if self._view is not None:
            return xp.astype(xp.view(xp.contiguous(packed), self._view), "int64")
        x = xp.astype(self.unpack(packed), "int64").reshape(packed.shape[0], self.bands, self.rows)
        return mix64((x * self._row_mul).sum(-1)) & 0x7FFFFFFF

    def band_keys(self, nib: "Array") -> "Array":
        """int64 [m, bands] keys of 4-bit signatures [m, num_perm]: equal exactly when the band and its values
        are (up to 64-bit hash collisions)."""
        return self._keys(self.band_words(self.pack(nib)))

    def _keys(self, words: "Array") -> "Array":
        return mix64(words + self._band_add)

    def _home(self, keys: "Array") -> "Array":
        return (keys & 0x7FFFFFFFFFFFFFFF) % xp.numel(self.table)

    def _stored_words(self) -> "Array":
        """The word of every stored (document, band), flat (``bands`` per document)."""
        if self._view is not None:
            return xp.view(self.packed, self._view).reshape(-1)
        return self._words.reshape(-1)

    # -- queries -------------------------------------------------------------------------------------
    def candidates(self, nib: "Array", packed: Optional["Array"] = None) -> Tuple["Array", "Array"]:
        """All (query row, slot) pairs that share at least one band with a stored document."""
        m = nib.shape[0]
        if m == 0 or self.n == 0:
            e = xp.zeros(0, like=self.table)
            return e, e
        nib = xp.to_like(nib, self.packed)
        if packed is None:
            packed = self.pack(nib)
        words = self.band_words(packed)
        band = xp.tile(xp.arange(self.bands, like=words), m)
        i, slots = chain_matches(self.table, self._home(self._keys(words)).reshape(-1), self._stored_words(),
                                 self.bands, band, words.reshape(-1))
        if not xp.numel(i):
            return i, slots
        pair = sorted_unique((i // self.bands) * (self.n + 1) + slots)
        return pair // (self.n + 1), pair % (self.n + 1)

    def agreement(self, packed: "Array", slots: "Array") -> "Array":
        """int64: how many of the ``num_perm`` 4-bit values of each packed query row equal the stored ``slots``'."""
        x = packed ^ self.packed[slots]
        return ((x & 15) == 0).sum(1) + ((x >> 4) == 0).sum(1)

    # -- insertion -----------------------------------------------------------------------------------
    def insert(self, nib: "Array", ids: Sequence[Any]) -> None:
        m = nib.shape[0]
        if m == 0:
            return
        nib = xp.to_like(nib, self.packed)
        if self.n + m > self.packed.shape[0]:
            cap = max(self.n + m, int(self.packed.shape[0] * 1.125))  # 8 bytes of slack per document at most
            self.packed = _grown(self.packed, cap, self.n)
            if self._words is not None:
                self._words = _grown(self._words, cap, self.n)
        packed = self.pack(nib)
        self.packed[self.n : self.n + m] = packed
        if self._words is not None:
            self._words[self.n : self.n + m] = xp.astype(self.band_words(packed), "int32")
        self.ids.extend(ids)
        first = self.n
        self.n += m
        if self.n * self.bands > MAX_LOAD * xp.numel(self.table):
            self._rebuild(capacity_for(int(self.n * self.bands * GROWTH)))
        else:
            self._place(packed, first)

    def _place(self, packed: "Array", first: int, *, empty: bool = False) -> None:
        keys = self._keys(self.band_words(packed))
        slots = xp.arange(first, first + packed.shape[0], "int32", like=packed)
        linear_probe_insert(self.table, self._home(keys).reshape(-1), xp.repeat(slots, self.bands), empty=empty)

    def _rebuild(self, capacity: int) -> None:
        self.table = xp.full(capacity, -1, "int32", like=self.packed)
        step = 65536
        for a in range(0, self.n, step):
            b = min(self.n, a + step)
            self._place(self.packed[a:b], a, empty=a == 0)

    def to(self, device: "Device") -> "LSHIndex":
        self.device = device
        for name in ("packed", "table", "_row_mul", "_band_add", "_words"):
            if getattr(self, name) is not None:
                setattr(self, name, xp.as_device(getattr(self, name), device))
        return self

    def nbytes(self) -> int:
        """Bytes held: signatures (allocated rows), stored words if any, the table and the ids."""
        words = 0 if self._words is None else xp.numel(self._words) * 4
        return xp.numel(self.packed) + words + xp.numel(self.table) * 4 + self.ids.nbytes()

    def state_dict(self) -> Dict[str, Any]:
        return {"signatures": xp.saved(self.packed[: self.n]), **self.ids.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (NumPy arrays or tensors), held as this index's device holds arrays."""
        p = xp.as_device(xp.astype(state["signatures"], "uint8"), self.device)
        if p.ndim != 2 or p.shape[1] != self.num_perm // 2:
            raise StateError(f"LSH state holds signatures of shape {tuple(p.shape)}, expected [n, {self.num_perm // 2}] "
                             f"for num_perm={self.num_perm}; build NearDedup with the settings it was saved with")
        self.ids.load_state_dict(state)
        if self.ids.n != p.shape[0]:
            raise StateError(f"LSH state has {p.shape[0]} signatures but {self.ids.n} ids")
        self.n = p.shape[0]
        self.packed = xp.zeros((max(INITIAL_ROWS, self.n), self.num_perm // 2), "uint8", like=p)
        self.packed[: self.n] = p
        if self._words is not None:
            self._words = xp.zeros((max(INITIAL_ROWS, self.n), self.bands), "int32", like=p)
            self._words[: self.n] = xp.astype(self.band_words(self.packed[: self.n]), "int32")
        self._rebuild(capacity_for(int(self.n * self.bands * GROWTH)))


def _grown(t: "Array", rows: int, used: int) -> "Array":
    """``t`` with room for ``rows`` rows, the first ``used`` copied."""
    new = xp.zeros((rows,) + tuple(t.shape[1:]), xp.dtype_name(t), like=t)
    new[:used] = t[:used]
    return new
