"""The decision memory of the ledger: for every id, its decision and the fingerprint of its content."""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .arrays import is_array, to_numpy
from .ids import FINGERPRINT, FINGERPRINTS, LEGACY_FINGERPRINT

__all__ = ["DecisionMemo", "check_memo_state", "resolve_replays", "saved_scheme"]

KEPT = 1
DROPPED = 2
_FP_LIMIT = 1 << 63  # fingerprints are 63-bit: 0 (unknown) <= fp < 2**63


class DecisionMemo:
    """Remembers the decision for every example seen: 9 bytes per example for integer ids.

    Integer ids (dataset indices, stream positions) live in a growable ``uint8`` decision array and an
    ``int64`` fingerprint array (NumPy, so that the ledger never needs torch); any other hashable id lives in a
    dict. The first example met under an id owns it; a later example under the same id with another
    fingerprint is another example, kept in a side table keyed by ``(id, fingerprint)`` (ids are meant to be
    unique, so this table stays small).
    A fingerprint of 0 means "unknown" (a state saved before fingerprints existed): the first content met
    again under that id is adopted.

    Example:
        >>> m = DecisionMemo()
        >>> m.set(7, KEPT, 111), m.set(7, DROPPED, 222)
        (False, True)
        >>> m.lookup(7, 111), m.lookup(7, 222), m.lookup(7, 333)
        (1, 2, 0)
    """

    def __init__(self) -> None:
        self._dense = np.zeros(0, dtype=np.uint8)
        self._dense_fp = np.zeros(0, dtype=np.int64)
        self._sparse: Dict[Any, int] = {}  # id -> fingerprint << 2 | decision
        self._other: Dict[Tuple[Any, int], int] = {}  # (id, fingerprint) -> decision
        #: the hash its fingerprints are made with (a tag of :data:`~torchdataguard.core.ids.FINGERPRINTS`):
        #: this version's for a new memo, the saved one's for a loaded state
        self.scheme = FINGERPRINT

    def __len__(self) -> int:
        return int((self._dense != 0).sum()) + len(self._sparse) + len(self._other)

    @property
    def reused(self) -> int:
        """Examples that reused the id of an earlier example with other content."""
        return len(self._other)

    def _dense_ok(self, id_: Any) -> bool:
        """Small non-negative integers (positions, indices) go to the arrays; large ones (timestamps,
        snowflake ids) to the dict, so memory follows the number of examples, not the largest id."""
        return (isinstance(id_, int) and not isinstance(id_, bool) and 0 <= id_
                and id_ < 2 * (self._dense.size + len(self._sparse)) + (1 << 20))

    def _first(self, id_: Any) -> Tuple[int, int]:
        """(decision, fingerprint) of the first example met under ``id_``; (0, 0) when the id is new."""
        if isinstance(id_, int) and not isinstance(id_, bool) and 0 <= id_ < self._dense.size:
            v = int(self._dense[id_])
            if v:
                return v, int(self._dense_fp[id_])
        packed = self._sparse.get(id_, 0)
        return packed & 3, packed >> 2

    def _put_first(self, id_: Any, value: int, fp: int) -> None:
        if self._dense_ok(id_):
            if id_ >= self._dense.size:
                self._grow(max(id_ + 1, int(self._dense.size * 1.5) + 1024))
            self._dense[id_] = value
            self._dense_fp[id_] = fp
        else:
            self._sparse[id_] = (fp << 2) | value

    def _grow(self, n: int) -> None:
        """Grow both arrays to ``n`` entries (zeros: unseen)."""
        new = np.zeros(n, dtype=np.uint8)
        new[: self._dense.size] = self._dense
        new_fp = np.zeros(n, dtype=np.int64)
        new_fp[: self._dense_fp.size] = self._dense_fp
        self._dense, self._dense_fp = new, new_fp

    def positions(self, n: int) -> Optional[Any]:
        """The fingerprints of the examples met under the ids ``0 .. n-1`` (a view), when exactly these ids
        were met among the small integers (a list of ``n`` records numbered by position), else ``None``."""
        if n <= 0 or n > self._dense.size or not self._dense[:n].all() or self._dense[n:].any():
            return None
        return self._dense_fp[:n]

    def get(self, id_: Any) -> int:
        """The decision of the first example met under ``id_`` (0 when the id is new), whatever its content."""
        return self._first(id_)[0]

    def first(self, id_: Any) -> Tuple[int, int]:
        """``(decision, fingerprint)`` of the first example met under ``id_``; ``(0, 0)`` when the id is new."""
        return self._first(id_)

    def lookup(self, id_: Any, fp: int) -> int:
        """The decision of the example with this id *and* this fingerprint, 0 when it was never met."""
        d, f = self._first(id_)
        if not d:
            return 0
        if f == fp:
            return d
        if f == 0 and fp:  # saved before fingerprints existed: adopt the content met now
            self._put_first(id_, d, fp)
            return d
        return self._other.get((id_, fp), 0)

    def set(self, id_: Any, value: int, fp: int = 0) -> bool:
        """Remember ``value`` for the example ``(id_, fp)``; True when it reuses an id taken by other content."""
        d, f = self._first(id_)
        if not d or f == fp or f == 0:
            self._put_first(id_, value, fp or f)
            return False
        self._other[(id_, fp)] = value
        return True

    def _plain_positions(self, ids: Sequence[Any]) -> Optional[np.ndarray]:
        """``ids`` as int64 when there are at least 32 and every one is a plain ``int`` in ``[0, 2**63)``
        (dataset indices, stream positions), else ``None``; what the batch methods take their NumPy path on."""
        if len(ids) < 32 or not all(type(i) is int for i in ids):
            return None
        try:
            arr = np.fromiter(ids, dtype=np.int64, count=len(ids))
        except OverflowError:
            return None
        return arr if int(arr.min()) >= 0 else None

    def lookup_many(self, ids: Sequence[Any], fps: Sequence[int]) -> List[int]:
        """``[lookup(i, f) for i, f in zip(ids, fps)]``, with the ids that are new or whose first example has
        the same fingerprint answered from the arrays at once (no state changes there; the rest, one by one).

        Example:
            >>> m = DecisionMemo(); _ = [m.set(i, KEPT, 100 + i) for i in range(40)]
            >>> m.lookup_many(list(range(38, 78)), [138, 0] + [1] * 38)[:3]
            [1, 0, 0]
        """
        arr = self._plain_positions(ids)
        if arr is None or np.unique(arr).size != arr.size:  # a lookup may adopt a fingerprint: repeats in order
            return [self.lookup(i, f) for i, f in zip(ids, fps)]
        d = np.zeros(arr.size, dtype=np.uint8)
        f = np.zeros(arr.size, dtype=np.int64)
        inside = np.flatnonzero(arr < self._dense.size)
        d[inside] = self._dense[arr[inside]]
        f[inside] = self._dense_fp[arr[inside]]
        fp = np.fromiter(fps, dtype=np.int64, count=arr.size)
        same = (d != 0) & (f == fp)
        out = np.where(same, d, 0).astype(np.int64).tolist()
        # the rest one by one: a first example with other content (reused id, or unknown fingerprint to adopt),
        # and, while the dict holds ids, the ones the arrays do not know
        rest = (d != 0) & ~same
        if self._sparse:
            rest |= d == 0
        for j in np.flatnonzero(rest).tolist():
            out[j] = self.lookup(ids[j], fps[j])
        return out

    def set_many(self, ids: Sequence[Any], values: Sequence[int], fps: Sequence[int]) -> List[bool]:
        """``[set(i, v, f) ...]`` in order, written to the arrays at once when every id is a new plain position
        that :meth:`set` would put there, once, in this batch (the arrays grow exactly as one by one)."""
        arr = self._plain_positions(ids)
        if arr is not None and not self._sparse and np.unique(arr).size == arr.size:
            size = self._dense.size
            new = arr >= size
            seen = np.flatnonzero(~new)
            if not self._dense[arr[seen]].any() and int(arr.max()) < 2 * size + (1 << 20):
                n = size
                for i in arr[new].tolist():  # the growth rule of _put_first, id after id
                    if i >= n:
                        n = max(i + 1, int(n * 1.5) + 1024)
                if n > size:
                    self._grow(n)
                self._dense[arr] = np.fromiter(values, dtype=np.uint8, count=arr.size)
                self._dense_fp[arr] = np.fromiter(fps, dtype=np.int64, count=arr.size)
                return [False] * arr.size
        return [self.set(i, v, f) for i, v, f in zip(ids, values, fps)]

    def state_dict(self) -> Dict[str, Any]:
        """``{"tensors": {memo_dense, memo_dense_fp}, "meta": {memo_sparse, memo_other}}`` (see :func:`check_memo_state`);
        the two "tensors" are NumPy arrays (saved to the safetensors file like tensors)."""
        sparse = [[k, v & 3, v >> 2] for k, v in self._sparse.items()]
        other = [[k, fp, v] for (k, fp), v in self._other.items()]
        return {"tensors": {"memo_dense": self._dense.copy(), "memo_dense_fp": self._dense_fp.copy()},
                "meta": {"memo_sparse": sparse, "memo_other": other, "memo_fingerprint": self.scheme}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (NumPy arrays or torch tensors; a state saved before fingerprints existed
        gets unknown fingerprints, 0)."""
        tensors, meta = state["tensors"], state["meta"]
        dense = tensors.get("memo_dense")
        self._dense = np.array(to_numpy(dense) if dense is not None else (), dtype=np.uint8).reshape(-1)
        fp = tensors.get("memo_dense_fp")
        fp = None if fp is None else to_numpy(fp).reshape(-1)
        if fp is None or fp.size != self._dense.size:  # a state saved before fingerprints: unknown (0)
            fp = np.zeros(self._dense.size, dtype=np.int64)
        self._dense_fp = np.array(fp, dtype=np.int64)
        self._sparse = {}
        for row in meta.get("memo_sparse", []):
            k, v, f = (row[0], row[1], row[2]) if len(row) > 2 else (row[0], row[1], 0)
            self._sparse[_key(k)] = (int(f) << 2) | int(v)
        self._other = {(_key(k), int(f)): int(v) for k, f, v in meta.get("memo_other", [])}
        self.scheme = saved_scheme(tensors, meta)


def _key(k: Any) -> Any:
    return tuple(_key(x) for x in k) if isinstance(k, list) else k


def _checkable(a: Any) -> Any:
    """A saved tensor or NumPy array as a NumPy array, checked alike (anything else, or a tensor of a dtype
    NumPy lacks, unchanged: refused by the dtype check that follows)."""
    try:
        return to_numpy(a) if is_array(a) else a
    except (TypeError, RuntimeError):
        return a


def _is_fp(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _FP_LIMIT


def _is_code(v: Any) -> bool:
    return v in (KEPT, DROPPED) and not isinstance(v, bool)


def saved_scheme(tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> Any:
    """The fingerprint hash a saved memo was made with: its ``memo_fingerprint`` tag; without one, BLAKE2b
    when the state has the fingerprint tensor (every version with fingerprints wrote it, on every rank, even
    empty), else this version's (a state from before fingerprints holds none to match)."""
    if "memo_fingerprint" in meta:
        return meta["memo_fingerprint"]
    return LEGACY_FINGERPRINT if "memo_dense_fp" in tensors else FINGERPRINT


def check_memo_state(tensors: Mapping[str, Any], meta: Mapping[str, Any], problems: List[str]) -> Optional[Counter]:
    """Check what :meth:`DecisionMemo.state_dict` wrote; returns the number of examples per decision, or ``None``
    after appending the problems found to ``problems``.

    The decisions (``memo_dense``: 1-D uint8 of codes 0/1/2) and their fingerprints (``memo_dense_fp``: 1-D
    int64 of the same length, 63-bit, 0 where no example was decided; absent in states saved before
    fingerprints), ``memo_sparse`` rows ``[id, decision, fingerprint]`` and ``memo_other`` rows ``[id,
    fingerprint, decision]``: an id reused with other content must belong to an example met first under that
    id, with another fingerprint, and be listed once. The hash the fingerprints were made with
    (``memo_fingerprint``; absent: ``"blake2b-63"``, the hash until 2026-12) must be one this version knows
    (:data:`~torchdataguard.core.ids.FINGERPRINTS`); the loaded guard goes on fingerprinting with it.
    """
    n0 = len(problems)
    saved_fp = saved_scheme(tensors, meta)
    if not isinstance(saved_fp, str) or saved_fp not in FINGERPRINTS:
        problems.append(f"the ledger's content fingerprints were made with {saved_fp!r}, which this torchdataguard does "
                        f"not know (it knows {sorted(FINGERPRINTS)}): a later version saved this state; resume it with "
                        f"that version")
        return None
    counts: Counter = Counter()
    first: Dict[Any, int] = {}  # id -> fingerprint of the first example met under it (sparse ids)
    dense = tensors.get("memo_dense")
    dense_fp = tensors.get("memo_dense_fp")
    if dense is not None:
        dense = _checkable(dense)
        if not isinstance(dense, np.ndarray) or dense.ndim != 1 or dense.dtype != np.uint8:
            problems.append(f"ledger tensor memo_dense is {getattr(dense, 'dtype', type(dense).__name__)} of shape "
                            f"{tuple(getattr(dense, 'shape', ()))}; expected a 1-D uint8 tensor or array")
            return None
        if bool((dense > DROPPED).any()):
            problems.append(f"ledger tensor memo_dense holds decision codes up to {int(dense.max())}; only 0 (unseen), "
                            f"{KEPT} (kept) and {DROPPED} (dropped) exist")
            return None
        counts[KEPT] += int((dense == KEPT).sum())
        counts[DROPPED] += int((dense == DROPPED).sum())
    if dense_fp is not None:
        n = 0 if dense is None else int(dense.size)
        dense_fp = _checkable(dense_fp)
        if not isinstance(dense_fp, np.ndarray) or dense_fp.dtype != np.int64 or tuple(dense_fp.shape) != (n,):
            problems.append(f"ledger tensor memo_dense_fp is {getattr(dense_fp, 'dtype', type(dense_fp).__name__)} of "
                            f"shape {tuple(getattr(dense_fp, 'shape', ()))}; expected 1-D int64 with one content "
                            f"fingerprint per entry of memo_dense ({n})")
            return None
        if n and bool((dense_fp < 0).any()):
            problems.append("ledger tensor memo_dense_fp holds negative content fingerprints (they are 63-bit)")
        elif n and bool(((dense == 0) & (dense_fp != 0)).any()):
            problems.append("ledger tensor memo_dense_fp holds content fingerprints for ids that have no decision")
    elif dense is not None and meta.get("memo_other"):
        problems.append("the ledger lists ids reused with other content (memo_other) but has no content fingerprints "
                        "(memo_dense_fp) for the examples first met under those ids")
    sparse = meta.get("memo_sparse", [])
    if not isinstance(sparse, list) or not all(isinstance(p, list) and len(p) in (2, 3) for p in sparse):
        problems.append("ledger memo_sparse is not a list of [id, decision, fingerprint] rows")
        return None
    for row in sparse:
        k, v, fp = row[0], row[1], (row[2] if len(row) > 2 else 0)
        if not _is_code(v) or not _is_fp(fp):
            problems.append(f"ledger memo_sparse holds the row [<id>, {v!r}, {fp!r}]; decisions are {KEPT} or "
                            f"{DROPPED}, fingerprints integers 0 <= fp < 2**63")
            return None
        try:
            first[_key(k)] = fp
        except TypeError:
            problems.append(f"ledger memo_sparse holds an id of type {type(k).__name__}, which cannot be looked up")
            return None
        counts[v] += 1
    if len(first) != len(sparse):
        problems.append(f"ledger memo_sparse lists {len(sparse) - len(first)} id(s) twice")
    other = meta.get("memo_other", [])
    if not isinstance(other, list) or not all(isinstance(r, list) and len(r) == 3 for r in other):
        problems.append("ledger memo_other is not a list of [id, fingerprint, decision] rows")
        return None
    pairs = set()
    for k, fp, v in other:
        if not _is_code(v) or not _is_fp(fp) or fp == 0:
            problems.append(f"ledger memo_other holds the row [<id>, {fp!r}, {v!r}]; fingerprints are integers "
                            f"0 < fp < 2**63, decisions {KEPT} or {DROPPED}")
            return None
        try:
            key = _key(k)
            owner = first.get(key)
        except TypeError:
            problems.append(f"ledger memo_other holds an id of type {type(k).__name__}, which cannot be looked up")
            return None
        if owner is None and isinstance(key, int) and not isinstance(key, bool) and dense is not None \
                and 0 <= key < dense.size and int(dense[key]):
            owner = int(dense_fp[key]) if dense_fp is not None else 0
        if owner is None or owner == fp or (key, fp) in pairs:
            problems.append("ledger memo_other lists an example under a reused id that no other example was first met "
                            "under, or with the first example's own fingerprint, or twice (the state was edited or is "
                            "corrupt)")
            return None
        pairs.add((key, fp))
        counts[v] += 1
    return counts if len(problems) == n0 else None


def resolve_replays(ledger: Any, exs: Sequence[Any]) -> Tuple[List[int], Dict[int, int]]:
    """Replay codes of a chunk: 0 new, 1/2 the remembered decision, -1 a repeat of row ``dup_of[i]``.

    A row repeats an earlier row of the same chunk when both have the same id *and* fingerprint, and only
    when the ledger remembers decisions (in a one-pass scan every record is its own example), so the
    outcome is the same whatever the chunk size.
    """
    ids = [e.id for e in exs]
    replay = ledger.lookup_many(ids, [e.fingerprint for e in exs])
    dup_of: Dict[int, int] = {}
    if not ledger.remember:
        return replay, dup_of
    try:
        if len(set(ids)) == len(ids):  # no id twice in the chunk: no row repeats an earlier one
            return replay, dup_of
    except TypeError:  # unhashable ids: row by row below
        pass
    first_at: Dict[Tuple[Any, int], int] = {}
    for i, e in enumerate(exs):
        if replay[i]:
            continue
        try:
            j = first_at.setdefault((e.id, e.fingerprint), i)
        except TypeError:  # an unhashable id cannot repeat-match
            continue
        if j != i:
            dup_of[i] = j
            replay[i] = -1
    return replay, dup_of
