"""How a distributed guard wraps data: the handlers it registers in the one dispatcher
(:mod:`torchdataguard.data.dispatch`) where it differs from a local guard.

* a stream (``IterableDataset``, ``datasets.IterableDataset`` or any iterable) is *this rank's shard*:
  :class:`DistributedGuardedIterableDataset` yields as many examples on every rank;
* a ``list`` or ``tuple`` is *the full dataset* on every rank: every rank gets the same kept records;
* a ``DataLoader`` is refused (wrap its dataset).

Map-style datasets and ``datasets.Dataset`` use the shared handlers, whose decisions the sharded decider
makes (rank ``r`` decides items ``r, r + world, ...``; every rank gets the same filtered dataset).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Sequence

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..data.dispatch import register
from ..data.torch import wrap_map
from ..errors import ConfigError

__all__ = ["DistributedGuardedIterableDataset"]

SHARDED = "sharded"  # the name of the sharded decider the handlers below are registered for


class DistributedGuardedIterableDataset(IterableDataset):
    """This rank's shard, globally deduplicated, yielding the same number of examples on every rank.

    Iterate it in the main process (``DataLoader(ds, batch_size=..., num_workers=0)``); every rank must
    iterate it, in step. Iterating again (a new epoch) replays the first decisions; without ``id_field`` the
    ids are positions, and a later pass that meets another record at a position (a reshuffling stream) raises
    :class:`~torchdataguard.errors.ConfigError` on every rank: set ``id_field``.
    """

    def __init__(self, dataset: Iterable[Any], guard: Any, *, source: str = "", num_workers: int = 0) -> None:
        self.dataset = dataset
        self.source = source
        self.num_workers = num_workers
        self.guard = guard

    def __iter__(self) -> Iterator[Any]:
        if get_worker_info() is not None:
            raise ConfigError("a distributed guarded stream decides with collectives, which only the main process of each "
                              "rank can make: use DataLoader(ds, num_workers=0), and DistributedGuard.wrap(data, "
                              "num_workers=N) to run the record stages in N workers")
        return self.guard.decider.stream(self.guard, self.dataset, source=self.source, num_workers=self.num_workers)

    def __len__(self) -> int:
        raise TypeError("a distributed guarded stream filters as it streams, so its length is unknown until it ends")

    def __getstate__(self):
        raise TypeError("a distributed guarded stream holds the rank's index and cannot be sent to DataLoader workers; "
                        "use DataLoader(ds, num_workers=0) and DistributedGuard.wrap(data, num_workers=N)")

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "guard", "source", "num_workers"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


@register(IterableDataset, decider=SHARDED)
@register("datasets:IterableDataset", decider=SHARDED)
def wrap_shard_stream(guard: Any, data: Iterable[Any], *, source: Optional[str],
                      num_workers: int) -> DistributedGuardedIterableDataset:
    """This rank's shard of a stream (``num_workers``: plan its chunks in that many DataLoader workers)."""
    return DistributedGuardedIterableDataset(data, guard, source=guard.new_source(source), num_workers=num_workers)


@register(list, decider=SHARDED)
@register(tuple, decider=SHARDED)
def wrap_full_sequence(guard: Any, data: Sequence[Any], *, source: Optional[str], num_workers: int,
                       ids: Optional[Sequence[int]] = None) -> List[Any]:
    """The full list on every rank: the same kept (rewritten) records on every rank (``ids``: the records'
    positions when this list was first wrapped in another order; it is decided in that order, see dispatch.py)."""
    order = range(len(data)) if ids is None else ids
    first = data
    if ids is not None:
        first = [None] * len(data)
        for i, j in enumerate(ids):
            first[j] = data[i]
    kept = set(guard.decider.scan(guard, first, source=guard.new_source(source), num_workers=num_workers))
    planner = guard.planner()
    if planner.has_rewriters:
        return [planner.rewrite(data[i], j) for i, j in enumerate(order) if j in kept]
    return [data[i] for i, j in enumerate(order) if j in kept]


@register(DataLoader, decider=SHARDED)
def refuse_loader(guard: Any, data: DataLoader, *, source: Optional[str], num_workers: int) -> Any:
    raise ConfigError("DistributedGuard.wrap takes a dataset, not a DataLoader: wrap loader.dataset and build "
                      "the DataLoader on the result (num_workers=0 for a stream; a DistributedSampler for "
                      "a map-style dataset)")


@register(object, decider=SHARDED)
def wrap_shard_other(guard: Any, data: Any, *, source: Optional[str], num_workers: int) -> Any:
    """A map-style dataset by duck typing (the full dataset), else any iterable (this rank's shard)."""
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return wrap_map(guard, data, source=source, num_workers=num_workers)
    if hasattr(data, "__iter__"):
        return wrap_shard_stream(guard, data, source=source, num_workers=num_workers)
    raise ConfigError(f"cannot wrap a {type(data).__name__}: expected an IterableDataset or iterable stream (this "
                      f"rank's shard), or a map-style Dataset, datasets.Dataset or list (the full dataset)")
