"""Global dedup and equal step counts under ``torch.distributed`` (DDP, FSDP; NCCL or gloo).

:class:`DistributedGuard` gives a :class:`~torchdataguard.Guard` the sharded decider
(:class:`~torchdataguard.distributed.decider.ShardedDecider`) on every rank. Each rank reads its own
shard; decisions are made chunk-synchronously:

1. every rank plans one chunk of its shard locally (validation, record stages, keys);
2. one ``all_gather`` brings every rank the keys of the whole *global chunk*, ordered row-major by
   ``(position in the chunk, rank)``: rank 0's first row, rank 1's first row, ... rank 0's second row ...;
3. the index stages decide the global chunk with their partitioned indexes
   (:mod:`torchdataguard.distributed.sharded`); every rank learns every decision;
4. every rank accounts for its own examples in its own ledger.

The global order is the round-robin interleave of the shards. When rank ``r`` reads items
``r, r + world, r + 2 * world, ...`` of one dataset (a stride split, as ``DistributedSampler`` without
shuffling makes), the interleave is the dataset's own order, so the kept set equals a single-process
``guard.wrap(dataset)`` on it.

Equal steps: because every rank learns every decision, every rank knows how many examples each rank has
kept. A stream wrapped with :meth:`DistributedGuard.wrap` yields, after each chunk, as many examples on
every rank as the rank with the fewest kept examples has (the others carry the rest over), so every rank
yields exactly the same number of examples and a ``DataLoader`` with the same ``batch_size`` takes the
same number of steps. When one rank's stream ends and it has nothing left to yield, all ranks stop
together; the examples other ranks kept but could not yield are counted as dropped with reason
``balance/uneven_tail`` (and written to the quarantine file), never lost silently.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Iterator, Optional

from ..core.guard import Guard
from ..core.ids import ids_state
from ..core.jsonable import to_jsonable
from ..core.ledger import Outcome
from ..errors import ConfigError
from .checkpoint import FORMAT, apply_state, check_state, load_checkpoint, save_checkpoint
from .comm import Comm
from .decider import ShardedDecider
from .report import merged_report

__all__ = ["DistributedGuard"]


class DistributedGuard:
    """Run a :class:`~torchdataguard.Guard` across the ranks of a ``torch.distributed`` process group.

    Build the same guard (same stages, settings and ``chunk_size``) on every rank, then wrap it. From then on
    the guard decides with the sharded decider (``guard.decider``), so ``guard.wrap`` and ``dg.wrap`` are the
    same; ``guard.report()`` stays this rank's own report and :meth:`report` sums every rank's. Every method
    that decides or reports is *collective*: call it on every rank, in the same order.

    Args:
        guard: the guard to distribute; its index stages must be empty (fresh) or be restored with
            :meth:`load`. Supported index stages: :class:`~torchdataguard.ExactDedup`,
            :class:`~torchdataguard.NearDedup` (partitioned over the ranks) and
            :class:`~torchdataguard.Decontaminate` (the same evaluation index on every rank; each rank checks
            its own documents, the boilerplate counts of ``max_train_count`` are global, and :meth:`report`
            merges every rank's contamination section).
        group: the process group (default: the global group). Under NCCL the guard's device must be
            this rank's GPU (``device=f"cuda:{local_rank}"``); gloo works with CPU tensors. Without an
            initialised process group the guard runs as a world of one.
        drain: keep reading every rank's stream to its end after the first rank has run out, so every
            example is decided and counted (the surplus is dropped as ``balance/uneven_tail``). By default
            all ranks stop as soon as one rank has nothing left to yield.

    Example:
        >>> import torchdataguard as tdg
        >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=4)
        >>> dg = tdg.DistributedGuard(guard)       # no process group here: a world of one
        >>> dg.wrap(["a", "b", "a", "c"])
        ['a', 'b', 'c']
        >>> dg.report()["distributed"]["world_size"]
        1
    """

    def __init__(self, guard: Guard, *, group: Any = None, drain: bool = False) -> None:
        if not isinstance(guard, Guard):
            raise ConfigError(f"DistributedGuard needs a torchdataguard.Guard, got {type(guard).__name__}; build "
                              f"one with tdg.Guard([...]) on every rank")
        if not isinstance(drain, bool):
            raise ConfigError.bad("drain", drain, "True or False")
        self.guard = guard
        self.drain = drain
        self.comm = Comm(group, guard.device)
        #: the guard's decider from now on: index stages partitioned over the ranks
        self.decider = ShardedDecider(guard.stages, self.comm, drain=drain)
        self._sharded = self.decider.stages  # the partitions by stage position (read by tests)
        self._check_same_everywhere()
        guard.decider = self.decider

    # -- structure -------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def world_size(self) -> int:
        return self.comm.world

    @property
    def rounds(self) -> int:
        """Collective rounds made so far."""
        return self.decider.rounds

    def _check_same_everywhere(self) -> None:
        g = self.guard
        mine = to_jsonable({
            "chunk_size": g.chunk_size, "text_field": g.text_field, "id_field": g.id_field, "strict": g.strict,
            "max_chars": g.max_chars, "remember": g.ledger.remember, "drain": self.drain,
            "ids": ids_state({}, g.id_hasher),
            "stages": [[s.name, type(s).__name__, s.config()] for s in g.stages],
        })
        allfp = self.comm.all_gather_json(mine)
        bad = [r for r, fp in enumerate(allfp) if fp != allfp[0]]
        if bad:
            diff = sorted(k for k in allfp[0] if allfp[0].get(k) != allfp[bad[0]].get(k))
            raise ConfigError(f"ranks {bad} built their guard differently from rank 0 (settings {diff} differ); build "
                              f"the same guard (stages, options, chunk_size) on every rank")

    # -- deciding --------------------------------------------------------------------------------
    def process(self, records: Iterable[Any], *, ids: Optional[Iterable[Any]] = None, source: str = "",
                num_workers: int = 0) -> Iterator[Outcome]:
        """Decide this rank's ``records`` with global dedup, yielding ``(example, drop, replayed)`` for each.

        Collective: every rank calls it with its own shard. Rounds continue until every rank's records
        are exhausted (no balancing: every outcome is yielded). Ids default to ``position * world + rank``.
        """
        return self.decider.process(self.guard, records, ids=ids, source=source, num_workers=num_workers)

    def wrap(self, data: Any, *, source: Optional[str] = None, num_workers: int = 0) -> Any:
        """Wrap this rank's data for global dedup; collective. Same kind out as in.

        * ``torch.utils.data.IterableDataset`` (or any iterable stream, such as a ``datasets.IterableDataset``
          split with ``split_dataset_by_node``): each rank passes *its own shard*. Returns an iterable dataset
          that yields the same number of examples on every rank (see the module docs for the tail). Iterate
          it in the main process (``DataLoader(..., num_workers=0)``); ``num_workers`` here runs the record
          stages and key computation in that many DataLoader workers instead (the stream must then split
          itself across workers, as ``datasets`` streams do; ids are positions in the order the main process
          receives the chunks).
        * map-style ``Dataset``, ``datasets.Dataset`` or ``list``: every rank passes *the same full dataset*;
          rank ``r`` decides items ``r, r + world, ...`` and every rank gets the same global filtered dataset
          (a ``datasets.Dataset`` via ``select``, a list of kept records, or a map-style dataset), rewritten by
          the rewriting stages as a local guard's. Use a ``DistributedSampler`` on it, as usual, for equal steps.
        """
        return self.guard.wrap(data, source=source, num_workers=num_workers)

    # -- reports ---------------------------------------------------------------------------------
    def report(self) -> Dict[str, Any]:
        """The guard's report summed over every rank (collective; every rank gets the same report); see
        :func:`torchdataguard.distributed.report.merged_report`."""
        return merged_report(self.guard, self.decider)

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """This rank's state: its index partitions, its ledger and the global sequence counters."""
        return {"format": FORMAT, "world_size": self.comm.world, "rank": self.comm.rank,
                "guard": self.guard.state_dict(),
                "sharded": {str(si): sh.state_dict() for si, sh in self.decider.stages.items()}}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on this rank (not collective). Refused with a :class:`StateError`, before
        anything changes, for another world size or rank, other settings, or a malformed or inconsistent state."""
        check_state(self, state)
        apply_state(self, state)

    def save(self, directory: str | os.PathLike) -> None:
        """Write this rank's part (``guard_state.rank<k>.<h>.safetensors`` + ``.json``) and, on rank 0, the
        manifest ``guard_state.distributed.json`` that commits all parts at once (collective; see
        :mod:`torchdataguard.distributed.checkpoint`)."""
        save_checkpoint(self, directory)

    def load(self, directory: str | os.PathLike) -> None:
        """Restore what :meth:`save` wrote, verified, on the same world size (collective: all ranks load, or
        all raise the same :class:`StateError`)."""
        load_checkpoint(self, directory)

    def reset(self) -> None:
        """Forget every decision and counter on this rank (call on every rank)."""
        self.guard.reset()  # resets the partitions too (the guard's decider)

    def __repr__(self) -> str:
        return f"DistributedGuard({self.guard!r}, rank={self.comm.rank}, world_size={self.comm.world})"
