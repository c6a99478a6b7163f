"""The decision memory of the ledger: for every id, its decision and the fingerprint of its content."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch

__all__ = ["DecisionMemo", "resolve_replays"]

KEPT = 1
DROPPED = 2


class DecisionMemo:
    """Remembers the decision for every example seen: 9 bytes per example for integer ids.

    Integer ids (dataset indices, stream positions) live in a growable ``uint8`` decision tensor and an
    ``int64`` fingerprint tensor; any other hashable id lives in a dict. The first example met under an
    id owns it; a later example under the same id with another fingerprint is another example, kept in a
    side table keyed by ``(id, fingerprint)`` (ids are meant to be unique, so this table stays small).
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
        self._dense = torch.zeros(0, dtype=torch.uint8)
        self._dense_fp = torch.zeros(0, dtype=torch.int64)
        self._sparse: Dict[Any, int] = {}  # id -> fingerprint << 2 | decision
        self._other: Dict[Tuple[Any, int], int] = {}  # (id, fingerprint) -> decision

    def __len__(self) -> int:
        return int((self._dense != 0).sum()) + len(self._sparse) + len(self._other)

    @property
    def reused(self) -> int:
        """Examples that reused the id of an earlier example with other content."""
        return len(self._other)

    def _dense_ok(self, id_: Any) -> bool:
        """Small non-negative integers (positions, indices) go to the tensors; large ones (timestamps,
        snowflake ids) to the dict, so memory follows the number of examples, not the largest id."""
        return (isinstance(id_, int) and not isinstance(id_, bool) and 0 <= id_
                and id_ < 2 * (self._dense.numel() + len(self._sparse)) + (1 << 20))

    def _first(self, id_: Any) -> Tuple[int, int]:
        """(decision, fingerprint) of the first example met under ``id_``; (0, 0) when the id is new."""
        if isinstance(id_, int) and not isinstance(id_, bool) and 0 <= id_ < self._dense.numel():
            v = int(self._dense[id_])
            if v:
                return v, int(self._dense_fp[id_])
        packed = self._sparse.get(id_, 0)
        return packed & 3, packed >> 2

    def _put_first(self, id_: Any, value: int, fp: int) -> None:
        if self._dense_ok(id_):
            if id_ >= self._dense.numel():
                n = max(id_ + 1, int(self._dense.numel() * 1.5) + 1024)
                new = torch.zeros(n, dtype=torch.uint8)
                new[: self._dense.numel()] = self._dense
                new_fp = torch.zeros(n, dtype=torch.int64)
                new_fp[: self._dense_fp.numel()] = self._dense_fp
                self._dense, self._dense_fp = new, new_fp
            self._dense[id_] = value
            self._dense_fp[id_] = fp
        else:
            self._sparse[id_] = (fp << 2) | value

    def get(self, id_: Any) -> int:
        """The decision of the first example met under ``id_`` (0 when the id is new), whatever its content."""
        return self._first(id_)[0]

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

    def kept_ids_dense(self) -> torch.Tensor:
        return torch.nonzero(self._dense == KEPT).flatten()

    def state(self) -> tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
        sparse = [[k, v & 3, v >> 2] for k, v in self._sparse.items()]
        other = [[k, fp, v] for (k, fp), v in self._other.items()]
        return ({"memo_dense": self._dense.clone(), "memo_dense_fp": self._dense_fp.clone()},
                {"memo_sparse": sparse, "memo_other": other})

    def load(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        self._dense = tensors.get("memo_dense", torch.zeros(0, dtype=torch.uint8)).to(torch.uint8).clone()
        fp = tensors.get("memo_dense_fp")
        if fp is None or fp.numel() != self._dense.numel():  # a state saved before fingerprints: unknown (0)
            fp = torch.zeros(self._dense.numel(), dtype=torch.int64)
        self._dense_fp = fp.to(torch.int64).clone()
        self._sparse = {}
        for row in meta.get("memo_sparse", []):
            k, v, f = (row[0], row[1], row[2]) if len(row) > 2 else (row[0], row[1], 0)
            self._sparse[_key(k)] = (int(f) << 2) | int(v)
        self._other = {(_key(k), int(f)): int(v) for k, f, v in meta.get("memo_other", [])}


def _key(k: Any) -> Any:
    return tuple(_key(x) for x in k) if isinstance(k, list) else k


def resolve_replays(ledger: Any, exs: Sequence[Any]) -> Tuple[List[int], Dict[int, int]]:
    """Replay codes of a chunk: 0 new, 1/2 the remembered decision, -1 a repeat of row ``dup_of[i]``.

    A row repeats an earlier row of the same chunk when both have the same id *and* fingerprint, and only
    when the ledger remembers decisions (in a one-pass scan every record is its own example), so the
    outcome is the same whatever the chunk size.
    """
    replay = [ledger.lookup(e.id, e.fingerprint) for e in exs]
    dup_of: Dict[int, int] = {}
    if not ledger.remember:
        return replay, dup_of
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
