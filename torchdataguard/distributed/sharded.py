"""Dedup indexes partitioned across ranks, deciding a global chunk with collectives.

Every rank sees the keys of the whole global chunk (gathered by
:class:`~torchdataguard.distributed.DistributedGuard`), in the same order, and stores only its own part of
the index, so memory per rank falls with the world size:

* **exact**: a digest is owned by rank ``digest mod world``. The owner looks the chunk's digests it owns
  up in its :class:`~torchdataguard.dedup.index.ExactIndex`; hits and the matched ids travel in one
  ``all_reduce``. Duplicates inside the chunk are then found identically on every rank (keep-first), and
  each owner inserts the first copies it owns.
* **near**: the kept documents are numbered in global insertion order (``seq``, identical on every rank)
  and document ``seq`` is stored by rank ``seq mod world`` in its
  :class:`~torchdataguard.dedup.index.LSHIndex` or, when it has few shingles, its
  :class:`~torchdataguard.dedup.smallsets.SmallSetIndex` (exact sets). Each rank queries its partitions with
  the whole chunk (candidates, then verification: on the stored signatures, or exact Jaccard on the sets);
  the best match per row of each kind is combined with one ``all_reduce(MAX)`` over ``(similarity rank,
  -seq)``, which picks the most similar document and, on a tie, the earliest one, exactly as the
  single-process stage does. The "waves" of :meth:`~torchdataguard.dedup.near.NearDedup.decide` (rows that
  share a band key or a prefix token with an earlier undecided row wait for its decision) are computed
  identically on every rank from the chunk's keys; the keys travel with the set of every row that has
  fewer than ``K3`` shingles (:func:`~torchdataguard.dedup.smallsets.exact_limits`).

Decisions therefore equal the single-process decisions on the interleaved stream, whatever the world size.
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

import torch

from ..core.stage import Drop, IndexStage
from ..errors import ConfigError
from ..registry import Registry
from .comm import Comm

__all__ = ["GlobalIds", "SHARDED", "ShardedStage", "sharded_for"]

#: sharded implementations by the class name of the index stage they distribute
SHARDED: Registry[type] = Registry("sharded index stage")


class GlobalIds:
    """The ids of a global chunk's rows: an int64 tensor when every id is an integer, else a list."""

    def __init__(self, ints: Optional[torch.Tensor] = None, objs: Optional[List[Any]] = None) -> None:
        self.ints = ints
        self.objs = objs

    def __len__(self) -> int:
        return int(self.ints.numel()) if self.ints is not None else len(self.objs or [])

    @property
    def is_int(self) -> bool:
        return self.ints is not None

    def take(self, idx: torch.Tensor) -> "GlobalIds":
        if self.ints is not None:
            return GlobalIds(ints=self.ints[idx.to(self.ints.device)])
        return GlobalIds(objs=[self.objs[i] for i in idx.tolist()])  # type: ignore[index]

    def tolist(self) -> List[Any]:
        return self.ints.tolist() if self.ints is not None else list(self.objs or [])

    def get(self, j: int) -> Any:
        return int(self.ints[j]) if self.ints is not None else self.objs[j]  # type: ignore[index]


class ShardedStage(abc.ABC):
    """One index stage, partitioned across the ranks of a :class:`Comm`.

    Subclasses say how the stage's keys travel (``width`` int64 words per row) and decide a global chunk.
    ``decide`` is collective: every rank calls it with the same arguments, in the same order.
    """

    stage_class: ClassVar[type] = IndexStage
    #: every rank holds the whole index (the report counts its stored examples once, not per rank)
    replicated: ClassVar[bool] = False

    def __init__(self, stage: IndexStage, comm: Comm) -> None:
        self.stage = stage
        self.comm = comm
        #: this rank's examples of the global chunk being decided (set by the decider before :meth:`decide`; for
        #: messages that name what the records hold)
        self.examples: List[Any] = []

    @property
    @abc.abstractmethod
    def width(self) -> int:
        """int64 words per row of encoded keys."""

    @abc.abstractmethod
    def encode(self, keys: Any, n: int) -> torch.Tensor:
        """The keyer's output for ``n`` rows as an int64 tensor ``[n, width]`` on the CPU."""

    @abc.abstractmethod
    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        """Decisions for the rows of a global chunk (in global order) and per-row counters ``(row, name)``."""

    def stored(self) -> int:
        """Documents stored in this rank's partition."""
        return int(getattr(getattr(self.stage, "index", None), "n", 0) or 0)

    def check_empty(self) -> None:
        if self.stored():
            raise ConfigError(
                f"stage {self.stage.name!r} already holds {self.stored()} documents from a single-process run; a "
                f"DistributedGuard partitions the index across ranks, so start from a fresh guard (guard.reset()) "
                f"or restore a distributed checkpoint with DistributedGuard.load(directory)")

    def memory_bytes(self) -> int:
        return self.stage.memory_bytes()

    def reset(self) -> None:
        """Forget the partition's extra state (the stage itself is reset by the guard)."""

    def report_part(self) -> Any:
        """What this rank adds to the merged report (a JSON value, gathered from every rank); ``None``: nothing."""
        return None

    def merge_report(self, out: Dict[str, Any], parts: List[Any]) -> None:
        """Set the stage's entries of the merged report ``out`` from every rank's :meth:`report_part`."""

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def check_state(self, stage_state: Mapping[str, Any], state: Any) -> List[str]:
        """Problems with this rank's saved partition: ``stage_state`` is the index stage's saved state and
        ``state`` what :meth:`state_dict` saved (nothing is changed)."""
        return [] if state in (None, {}) else [f"unexpected partition state with keys {sorted(state)}"]

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    # -- matched ids ---------------------------------------------------------------------------------
    def exchange_ids(self, mine: List[Tuple[int, Any]], n: int, is_int: bool) -> List[Any]:
        """Combine ``(row, id)`` pairs that each rank knows into the list of ids of ``n`` rows (collective)."""
        if is_int:
            t = torch.zeros(n, dtype=torch.int64)
            if mine:
                rows = torch.tensor([j for j, _ in mine], dtype=torch.int64)
                t[rows] = torch.tensor([int(v) for _, v in mine], dtype=torch.int64)
            return self.comm.all_reduce(t, "sum").tolist()
        out: List[Any] = [None] * n
        for part in self.comm.all_gather_json([[j, v] for j, v in mine]):
            for j, v in part:
                out[int(j)] = v
        return out


def sharded_for(stage: IndexStage, comm: Comm) -> ShardedStage:
    """The sharded implementation of ``stage`` (raises a clear error for stages without one)."""
    name = type(stage).__name__
    if name not in SHARDED:
        raise ConfigError(f"index stage {stage.name!r} ({name}) has no distributed implementation; the ones that do "
                          f"are {SHARDED.names()}. Run it per rank with a plain Guard, or remove it from the guard")
    return SHARDED.get(name)(stage, comm)
