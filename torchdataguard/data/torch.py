"""Wrappers for torch data: map-style datasets, iterable datasets, DataLoaders, lists (see :mod:`.dispatch`)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler

from ..core.gcpause import gc_paused
from ..core.idtag import IdTag
from ..core.ids import qualify_id
from ..core.textcheck import looks_like_data
from ..core.plan import Planner
from ..errors import ConfigError
from .dispatch import register, wrap
from .stream import StreamFilter, stream_ids, worker_split

__all__ = ["GuardedDataset", "GuardedIterableDataset", "refuse_one_value", "refuse_rewrap", "refuse_table",
           "wrap_iterable", "wrap_loader", "wrap_map", "wrap_other", "wrap_sequence"]


class GuardedDataset(Dataset):
    """A map-style dataset of the kept examples of ``dataset`` (``kept``: their indices, in order).

    ``len()`` is the filtered length; ``ds[i]`` is ``dataset[kept[i]]``, unchanged unless a rewriting
    stage (PII scrubbing, normalisation) changes it. Attributes of the wrapped dataset pass through.

    Example:
        >>> import torchdataguard as tdg
        >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
        >>> ds = GuardedDataset(["a", "b", "a"], [0, 1], guard.planner())
        >>> len(ds), ds[1], ds.kept_indices
        (2, 'b', [0, 1])
    """

    def __init__(self, dataset: Any, kept: Sequence[int], planner: Planner, *, source: str = "",
                 id_tag: Optional[IdTag] = None) -> None:
        self.dataset = dataset
        self.source = source
        #: shared with the guard: while its key is set, each record carries its ledger id (training dynamics)
        self.id_tag = id_tag if id_tag is not None else IdTag()
        self.kept = torch.tensor(list(kept), dtype=torch.int64)
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
        if self.id_tag.key is not None:
            rec = self.id_tag.attach(rec, qualify_id(idx, self.source))
        return rec

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        """A batch of kept examples. Defined here so that a DataLoader never reaches the wrapped dataset's own
        ``__getitems__`` (a ``Subset``'s, from ``random_split``) through attribute pass-through: that one would
        fetch unfiltered, unscrubbed rows by their filtered positions."""
        return [self[i] for i in indices]

    @property
    def kept_indices(self) -> List[int]:
        """Indices into the wrapped dataset of the kept examples."""
        return self.kept.tolist()

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "kept", "_planner", "source", "id_tag"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


class GuardedIterableDataset(IterableDataset):
    """An iterable dataset that filters ``dataset`` as it streams.

    Ids are stream positions (interleaved across DataLoader workers) unless the guard has ``id_field``;
    an example met again in a later epoch (same id, same content) replays its first decision instead of being
    counted again. Positional ids depend on the number of DataLoader workers and on the order of the stream:
    reading the stream again with another number of workers, or meeting another record at a position in a
    later pass (a reshuffling stream), raises :class:`~torchdataguard.errors.ConfigError`. If your stream
    reshuffles between epochs or you change ``num_workers``, set ``id_field`` so ids stay attached to examples.
    """

    def __init__(self, dataset: IterableDataset, guard: Any, *, source: str = "") -> None:
        self.dataset = dataset
        self.source = source
        self._filter = StreamFilter(guard, source)

    def __iter__(self) -> Iterator[Any]:
        return self._filter.run(iter(self.dataset), stream_ids(), split=worker_split()[1], begins=True)

    def __len__(self) -> int:
        raise TypeError("a guarded IterableDataset filters as it streams, so its length is unknown until the "
                        "stream ends; see guard.report()['kept']")

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "_filter", "source"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


# --------------------------------------------------------------------------------------------------
# handlers (every decider; a decider may register its own for a type, see dispatch.py)
# --------------------------------------------------------------------------------------------------
def refuse_rewrap(guard: Any, data: Any) -> None:
    """Refuse data this guard wrapped already, or made of it (a ``Subset`` from ``random_split``, a
    ``ConcatDataset``, ``ChainDataset``): as a new source, every example would be an exact duplicate of itself and
    be dropped (another guard may wrap it)."""
    found = _guarded_inside(guard, data)
    if found is None:
        return
    made = "was already wrapped by this guard" if found is data else (
        f"is made of a {type(found).__name__} that this guard returned")
    raise ConfigError(f"this {type(data).__name__} {made} (source {found.source or 'the first'!r}): wrapped again, "
                      f"each of its examples would be dropped as a duplicate of itself. Use it as it is (build the "
                      f"DataLoader on it), or wrap the original data")


#: how deep :func:`_guarded_inside` looks (a Subset of a Subset of a ConcatDataset ...)
_DEPTH = 8


def _guarded_inside(guard: Any, data: Any) -> Any:
    """The guarded dataset of ``guard`` that ``data`` is or is made of (through ``dataset`` and ``datasets``
    attributes, as ``Subset``, ``ConcatDataset`` and ``ChainDataset`` hold them), else ``None``."""
    level = [data]
    for _ in range(_DEPTH):
        inner = []
        for obj in level:
            if isinstance(obj, GuardedDataset) and obj.id_tag is guard.id_tag:
                return obj
            if isinstance(obj, GuardedIterableDataset) and obj._filter.guard is guard:
                return obj
            held = vars(obj) if hasattr(obj, "__dict__") else {}  # never a wrapper's attribute pass-through
            if held.get("dataset") is not None:
                inner.append(held["dataset"])
            if isinstance(held.get("datasets"), (list, tuple)):
                inner.extend(held["datasets"])
        if not inner:
            return None
        level = inner
    return None


@register(Dataset)
def wrap_map(guard: Any, data: Any, *, source: Optional[str], num_workers: int) -> GuardedDataset:
    """A map-style dataset: decided once now (``num_workers`` plan in DataLoader workers), then served filtered."""
    refuse_rewrap(guard, data)
    src = guard.new_source(source)
    kept = guard.decider.scan(guard, data, source=src, num_workers=num_workers)
    return GuardedDataset(data, kept, guard.planner(), source=src, id_tag=guard.id_tag)


@register(list)
@register(tuple)
def wrap_sequence(guard: Any, data: Sequence[Any], *, source: Optional[str], num_workers: int,
                  ids: Optional[Sequence[int]] = None) -> List[Any]:
    """A list or tuple: the list of kept records, as the stages rewrote them (``num_workers`` is not used; ``ids``:
    the records' positions when this list was first wrapped in another order, see dispatch.py).

    While the guard's id tag is on (training dynamics), each kept record carries its ledger id."""
    src = guard.new_source(source)
    tag = guard.id_tag
    with gc_paused():  # a list runs no user code between chunks: the whole pass without collections (gcpause)
        if tag.key is None and ids is None:
            return guard.filter(data, source=src)
        outcomes = guard.process(data, source=src, ids=ids)
        if tag.key is None:
            return [ex.record for ex, drop, _ in outcomes if drop is None]
        return [tag.attach(ex.record, ex.id) for ex, drop, _ in outcomes if drop is None]  # ids qualified


@register(IterableDataset)
def wrap_iterable(guard: Any, data: IterableDataset, *, source: Optional[str], num_workers: int) -> GuardedIterableDataset:
    """A stream: filtered as it is read, in the main process or in DataLoader workers."""
    refuse_rewrap(guard, data)
    return GuardedIterableDataset(data, guard, source=guard.new_source(source))


@register(DataLoader)
def wrap_loader(guard: Any, loader: DataLoader, *, source: Optional[str], num_workers: int) -> DataLoader:
    """A DataLoader: the same loader settings around the wrapped dataset (a new sampler over the kept examples)."""
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
    given = bs is not None and loader.batch_size is None  # DataLoader(batch_sampler=BatchSampler(sampler, ...))
    if given:
        sampler = bs.sampler  # loader.sampler is then a default SequentialSampler the batches never used
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
    if given:
        return DataLoader(ds, batch_sampler=BatchSampler(new_sampler, bs.batch_size, bs.drop_last), collate_fn=collate,
                          **kwargs)
    if loader.batch_size is None:
        return DataLoader(ds, batch_size=None, sampler=new_sampler, collate_fn=collate, **kwargs)
    return DataLoader(ds, batch_size=loader.batch_size, sampler=new_sampler, drop_last=loader.drop_last,
                      collate_fn=collate, **kwargs)


_LOADER_ARGS = ("num_workers", "pin_memory", "timeout", "worker_init_fn", "multiprocessing_context", "generator",
                "prefetch_factor", "persistent_workers", "pin_memory_device", "in_order")


@register(str)
@register(bytes)
@register(bytearray)
@register(dict)
def refuse_one_value(guard: Any, data: Any, *, source: Optional[str], num_workers: int) -> Any:
    """A text or a dict is one value, not a dataset: refused (it would be wrapped character by character, or fail
    on ``data[0]``), on every decider."""
    kind = type(data).__name__
    if isinstance(data, dict):
        keys = sorted(str(k)[:40] for k in list(data)[:10])
        keys = [k if not looks_like_data(k) else "<hidden: looks like data>" for k in keys]  # {e-mail: text}
        raise ConfigError(f"cannot wrap a dict (keys {keys}): guard.wrap takes "
                          f"a dataset of examples. For columns ({{'text': [...], 'label': [...]}}) pass "
                          f"datasets.Dataset.from_dict(columns) or a list of records "
                          f"([dict(zip(columns, row)) for row in zip(*columns.values())]); for one record, a list "
                          f"holding it")
    raise ConfigError(f"cannot wrap a {kind}: guard.wrap takes a dataset of examples, and would read a {kind} one "
                      f"character at a time. For one text pass a list holding it: guard.wrap([text]) (or "
                      f"guard.filter([text]))")


@register("pandas:DataFrame")
@register("pyarrow:Table")
def refuse_table(guard: Any, data: Any, *, source: Optional[str], num_workers: int) -> Any:
    """A pandas ``DataFrame`` or a pyarrow ``Table`` is refused with the conversion to use: its ``[i]`` is a column,
    not a row, so the map-style wrap failed with a bare ``KeyError: 0`` (pandas) or ``IndexError`` (pyarrow)."""
    pandas = type(data).__module__.startswith("pandas")
    kind, name = ("pandas.DataFrame", "df") if pandas else ("pyarrow.Table", "table")
    rows = "df.to_dict(orient='records')" if pandas else "table.to_pylist()"
    made = "datasets.Dataset.from_pandas(df)" if pandas else "datasets.Dataset(table)"
    raise ConfigError(f"cannot wrap a {kind}: {name}[i] is a column, not a row. Pass {made} (a datasets.Dataset comes "
                      f"back) or a list of records, {rows}")


@register(object)
def wrap_other(guard: Any, data: Any, *, source: Optional[str], num_workers: int) -> Any:
    """Anything else: a map-style dataset by duck typing (``__getitem__`` and ``__len__``), else refused."""
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return wrap_map(guard, data, source=source, num_workers=num_workers)
    hint = ("; for a generator or another one-off iterable, guard.filter(records) gives the kept ones as a list "
            "and guard.process(records) streams them" if hasattr(data, "__iter__") else "")
    raise ConfigError(f"cannot wrap a {type(data).__name__}: expected a torch Dataset, IterableDataset or "
                      f"DataLoader, a datasets.Dataset or datasets.IterableDataset, or a list{hint}")
