"""Drop-in wrappers: map-style and iterable torch datasets, DataLoaders, Hugging Face datasets."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
from torch.utils.data import RandomSampler, SequentialSampler

from ..core.plan import Planner
from ..errors import ConfigError

__all__ = ["GuardCollator", "GuardedDataset", "GuardedIterableDataset", "wrap"]


def _hf():
    try:
        import datasets  # noqa: F401

        return datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        return None


def wrap(guard, data: Any, *, source: str, num_workers: int = 0) -> Any:
    hf = _hf()
    if isinstance(data, DataLoader):
        return _wrap_loader(guard, data, source=source, num_workers=num_workers)
    if hf is not None and isinstance(data, hf.IterableDataset):
        from .hf import wrap_hf_iterable

        return wrap_hf_iterable(guard, data, source=source)
    if hf is not None and isinstance(data, hf.Dataset):
        from .hf import wrap_hf_dataset

        return wrap_hf_dataset(guard, data, source=source, num_workers=num_workers)
    if hf is not None and isinstance(data, (hf.DatasetDict, hf.IterableDatasetDict)):
        raise ConfigError(f"got a {type(data).__name__} with splits {list(data)}; wrap one split at a time, "
                          f"e.g. guard.wrap(ds['train'])")
    if isinstance(data, IterableDataset):
        return GuardedIterableDataset(data, guard, source=source)
    if isinstance(data, (list, tuple)):
        return guard.filter(data, source=source)
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return GuardedDataset(data, guard, source=source, num_workers=num_workers)
    raise ConfigError(f"cannot wrap a {type(data).__name__}: expected a torch Dataset, IterableDataset or "
                      f"DataLoader, a datasets.Dataset or datasets.IterableDataset, or a list")


# --------------------------------------------------------------------------------------------------
# map-style
# --------------------------------------------------------------------------------------------------
def _identity(x: Any) -> Any:
    return x


class _ChunkPlans(Dataset):
    """Item ``c`` is the phase-one plan of chunk ``c`` of a map-style dataset (so workers can plan)."""

    def __init__(self, dataset: Any, planner: Planner, chunk: int) -> None:
        self.dataset = dataset
        self.planner = planner
        self.chunk = chunk
        self.n = len(dataset)

    def __len__(self) -> int:
        return math.ceil(self.n / self.chunk)

    def __getitem__(self, c: int):
        a, b = c * self.chunk, min(self.n, (c + 1) * self.chunk)
        recs = [self.dataset[i] for i in range(a, b)]
        return self.planner.plan(recs, list(range(a, b)))


def scan_indexed(guard, dataset: Any, *, source: str, num_workers: int = 0, desc: str = "guard scan") -> List[int]:
    """Run every stage over a map-style dataset once; return the kept indices in order."""
    planner = guard.planner()
    n = len(dataset)
    plans = _ChunkPlans(dataset, planner, guard.chunk_size)
    kept: List[int] = []
    bar = guard._bar(n, desc)
    if num_workers > 0:
        it = iter(DataLoader(plans, batch_size=None, num_workers=num_workers, collate_fn=_identity))
    else:
        it = (plans[c] for c in range(len(plans)))
    try:
        for c, plan in enumerate(it):
            for off, (ex, drop, replayed) in enumerate(guard.decide(plan, source)):
                if drop is None:
                    kept.append(c * guard.chunk_size + off)
            if bar is not None:
                bar.update(len(plan.examples))
        guard._check_text_field(None, source, end=True)
    finally:
        if bar is not None:
            bar.close()
        if guard.ledger.quarantine is not None:
            guard.ledger.quarantine.flush()
    return kept


class GuardedDataset(Dataset):
    """A map-style dataset of the kept examples of ``dataset`` (scanned once, when wrapped).

    ``len()`` is the filtered length; ``ds[i]`` is ``dataset[kept[i]]``, unchanged unless a rewriting
    stage (PII scrubbing, normalisation) changes it. Attributes of the wrapped dataset pass through.
    """

    def __init__(self, dataset: Any, guard, *, source: str = "", num_workers: int = 0) -> None:
        self.dataset = dataset
        self.source = source
        self.kept = torch.tensor(scan_indexed(guard, dataset, source=source, num_workers=num_workers),
                                 dtype=torch.int64)
        planner = guard.planner()
        self._planner: Optional[Planner] = planner if planner.has_rewriters else None

    def __len__(self) -> int:
        return int(self.kept.numel())

    def __getitem__(self, i: int) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} is out of range for a guarded dataset of {len(self)} kept examples")
        idx = int(self.kept[i])
        rec = self.dataset[idx]
        if self._planner is not None:
            rec = self._planner.rewrite(rec, idx)
        return rec

    @property
    def kept_indices(self) -> List[int]:
        """Indices into the wrapped dataset of the kept examples."""
        return self.kept.tolist()

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "kept", "_planner", "source"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


# --------------------------------------------------------------------------------------------------
# iterable
# --------------------------------------------------------------------------------------------------
class _StreamFilter:
    """Chunked streaming through phase one and a decider (the guard, or the service from a worker)."""

    def __init__(self, guard, source: str) -> None:
        self.planner = guard.planner()
        self.chunk = guard.chunk_size
        self.source = source
        self._guard = guard
        if guard._service is None:
            from .service import DecisionService

            guard._service = DecisionService(guard)
        self._client = guard._service.client()

    def __getstate__(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        d["_guard"] = None  # workers never hold the index; they ask the main process
        return d

    def _decide(self, plan, split: Optional[int]) -> List[bool]:
        if get_worker_info() is None and self._guard is not None:
            return [d is None for _, d, _ in self._guard.decide(plan, self.source, split=split)]
        return self._client.decide(plan.without_records(), self.source, split=split)

    def _end(self) -> None:
        """The stream ended: refuse a text field that none of its records had (checked by the main process)."""
        if get_worker_info() is None and self._guard is not None:
            self._guard._check_text_field(None, self.source, end=True)
        else:
            self._client.end(self.source)

    def run(self, records: Iterator[Any], ids: Iterator[Any], *, split: Optional[int] = None,
            end: bool = True) -> Iterator[Any]:
        """Filter ``records`` (ids from ``ids``); ``split``: the DataLoader workers positional ids count across;
        ``end=False`` when more of the same stream follows in a later call."""
        buf: List[Any] = []
        buf_ids: List[Any] = []
        for rec, i in zip(records, ids):
            buf.append(rec)
            buf_ids.append(i)
            if len(buf) >= self.chunk:
                yield from self._flush(buf, buf_ids, split)
                buf, buf_ids = [], []
        if buf:
            yield from self._flush(buf, buf_ids, split)
        if end:
            self._end()

    def _flush(self, buf: List[Any], buf_ids: List[Any], split: Optional[int]) -> Iterator[Any]:
        plan = self.planner.plan(buf, buf_ids)
        keep = self._decide(plan, split)
        for ex, k in zip(plan.examples, keep):
            if k:
                yield ex.record


def worker_split() -> tuple[int, int]:
    """``(worker id, number of workers)`` of this DataLoader worker; ``(0, 1)`` in the main process."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _stream_ids() -> Iterator[int]:
    """Stream positions, interleaved across DataLoader workers so ids stay unique (and stable while the
    number of workers stays the same: the guard refuses another number for the same stream)."""
    w, n = worker_split()
    i = 0
    while True:
        yield i * n + w
        i += 1


class GuardedIterableDataset(IterableDataset):
    """An iterable dataset that filters ``dataset`` as it streams.

    Ids are stream positions (interleaved across DataLoader workers) unless the guard has ``id_field``;
    an example met again in a later epoch (same id, same content) replays its first decision instead of being
    counted again. Positional ids depend on the number of DataLoader workers and on the order of the stream:
    reading the stream again with another number of workers, or meeting another record at a position in a
    later pass (a reshuffling stream), raises :class:`~torchdataguard.errors.ConfigError`. If your stream
    reshuffles between epochs or you change ``num_workers``, set ``id_field`` so ids stay attached to examples.
    """

    def __init__(self, dataset: IterableDataset, guard, *, source: str = "") -> None:
        self.dataset = dataset
        self.source = source
        self._filter = _StreamFilter(guard, source)

    def __iter__(self) -> Iterator[Any]:
        return self._filter.run(iter(self.dataset), _stream_ids(), split=worker_split()[1])

    def __len__(self) -> int:
        raise TypeError("a guarded IterableDataset filters as it streams, so its length is unknown until the "
                        "stream ends; see guard.report()['kept']")

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "_filter", "source"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


# --------------------------------------------------------------------------------------------------
# DataLoader
# --------------------------------------------------------------------------------------------------
_LOADER_ARGS = ("num_workers", "pin_memory", "timeout", "worker_init_fn", "multiprocessing_context", "generator",
                "prefetch_factor", "persistent_workers", "pin_memory_device", "in_order")


def _wrap_loader(guard, loader: DataLoader, *, source: str, num_workers: int) -> DataLoader:
    ds = wrap(guard, loader.dataset, source=source, num_workers=num_workers)
    kwargs: Dict[str, Any] = {}
    for name in _LOADER_ARGS:
        if hasattr(loader, name):
            kwargs[name] = getattr(loader, name)
    if kwargs.get("num_workers", 0) == 0:
        kwargs.pop("prefetch_factor", None)
        kwargs.pop("persistent_workers", None)
    collate = loader.collate_fn
    if isinstance(ds, IterableDataset) or isinstance(loader.dataset, IterableDataset):
        return DataLoader(ds, batch_size=loader.batch_size, drop_last=loader.drop_last, collate_fn=collate, **kwargs)
    sampler = loader.sampler
    bs = loader.batch_sampler
    if bs is not None and type(bs).__name__ != "BatchSampler":
        raise ConfigError(f"the DataLoader has a custom batch_sampler ({type(bs).__name__}) whose indices refer to the "
                          f"unfiltered dataset; wrap the dataset first (guard.wrap(dataset)) and build the sampler on it")
    if isinstance(sampler, RandomSampler):
        new_sampler = RandomSampler(ds, replacement=sampler.replacement,
                                    num_samples=None if sampler._num_samples is None else sampler._num_samples,
                                    generator=sampler.generator)
    elif isinstance(sampler, SequentialSampler):
        new_sampler = SequentialSampler(ds)
    elif type(sampler).__name__ == "DistributedSampler":
        from torch.utils.data.distributed import DistributedSampler

        new_sampler = DistributedSampler(ds, num_replicas=sampler.num_replicas, rank=sampler.rank,
                                         shuffle=sampler.shuffle, seed=sampler.seed, drop_last=sampler.drop_last)
    else:
        raise ConfigError(f"the DataLoader's sampler ({type(sampler).__name__}) indexes the unfiltered dataset; wrap "
                          f"the dataset first (guard.wrap(dataset)) and build the sampler on the wrapped dataset")
    if loader.batch_size is None:
        return DataLoader(ds, batch_size=None, sampler=new_sampler, collate_fn=collate, **kwargs)
    return DataLoader(ds, batch_size=loader.batch_size, sampler=new_sampler, drop_last=loader.drop_last,
                      collate_fn=collate, **kwargs)


# --------------------------------------------------------------------------------------------------
# collation for batch stages
# --------------------------------------------------------------------------------------------------
class GuardCollator:
    """Collate with ``collate_fn`` (default: torch's ``default_collate``), then apply the batch stages.

    In DataLoader workers the batch stages run on the CPU; in the main process they run on the guard's
    device when the batch is moved there first (``to_device=True``).
    """

    def __init__(self, guard, collate_fn: Optional[Callable] = None, *, to_device: bool = False) -> None:
        from torch.utils.data import default_collate

        self.collate_fn = collate_fn or default_collate
        self.stages = list(guard.batch_stages)
        self.device = guard.device
        self.to_device = to_device

    def __call__(self, examples: Sequence[Any]) -> Any:
        batch = self.collate_fn(examples)
        if not self.stages:
            return batch
        if self.to_device and get_worker_info() is None and isinstance(batch, Mapping):
            batch = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        for st in self.stages:
            batch = st(batch)
        return batch
