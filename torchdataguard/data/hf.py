"""Hugging Face ``datasets`` wrappers: same kind out as in (``datasets`` is imported only by the data itself)."""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Dict, Iterator, List, Optional

from torch.utils.data import get_worker_info

from ..core.alldups import first_pass
from ..core.ids import qualify_id
from ..errors import ConfigError
from .dispatch import register
from .stream import StreamFilter, worker_split

__all__ = ["HFRows", "datasets_bars", "wrap_hf_dataset", "wrap_hf_dict", "wrap_hf_iterable"]


@contextlib.contextmanager
def datasets_bars(show: bool) -> Iterator[None]:
    """``datasets``' own progress bars (``map``) off for the calls inside when ``show`` is false
    (``Guard(progress=False)``), and back as they were afterwards: ``datasets`` has a switch for all bars only,
    no argument per call. Bars the user switched off stay off; ``HF_DATASETS_DISABLE_PROGRESS_BARS=0`` wins."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if show or are_progress_bars_disabled():
        yield
        return
    with warnings.catch_warnings():  # the environment variable forces them on: datasets says so, and keeps them
        warnings.simplefilter("ignore")
        disable_progress_bars()
    try:
        yield
    finally:
        if are_progress_bars_disabled():
            enable_progress_bars()


class HFRows:
    """Row access to a ``datasets.Dataset`` in slices (fast column reads), as plain dicts."""

    def __init__(self, ds, block: int = 1024) -> None:
        self.ds = ds.with_format(None)
        self.block = block
        self._cache_start = -1
        self._cache: List[Dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if not (self._cache_start <= i < self._cache_start + len(self._cache)):
            start = (i // self.block) * self.block
            cols = self.ds[start : start + self.block]
            n = len(next(iter(cols.values()))) if cols else 0
            self._cache = [{k: v[j] for k, v in cols.items()} for j in range(n)]
            self._cache_start = start
        return self._cache[i - self._cache_start]


class _Rewrite:
    """Batched ``datasets.map`` function applying the rewriting record stages."""

    def __init__(self, planner) -> None:
        self.planner = planner

    def __call__(self, batch: Dict[str, List[Any]], indices: List[int]) -> Dict[str, List[Any]]:
        cols = list(batch)
        n = len(indices)
        out: Dict[str, List[Any]] = {c: [] for c in cols}
        for j in range(n):
            rec = {c: batch[c][j] for c in cols}
            new = self.planner.rewrite(rec, indices[j])
            for c in cols:
                out[c].append(new.get(c))
        return out


@register("datasets:Dataset")
def wrap_hf_dataset(guard: Any, ds: Any, *, source: Optional[str], num_workers: int) -> Any:
    """Decide a ``datasets.Dataset`` once and return ``ds.select(kept)`` (rewritten by rewriting stages)."""
    src = guard.new_source(source)
    kept = guard.decider.scan(guard, HFRows(ds), source=src, num_workers=num_workers)
    out = ds.select(kept)
    planner = guard.planner()
    if planner.has_rewriters:
        # indices passed to the map are positions in `out`; the rewrite stages do not depend on ids
        with datasets_bars(guard.progress):
            out = out.map(_Rewrite(planner), batched=True, with_indices=True, desc="torchdataguard rewrite",
                          load_from_cache_file=False)
    key = guard.id_tag.key
    if key is not None:  # training dynamics attached before wrapping: each row carries its ledger id
        if key in out.column_names:
            raise ConfigError(f"the dataset already has a column {key!r}, the key the example ids travel under; "
                              f"rename it or give TrainingDynamics(id_key=...) another key")
        out = out.add_column(key, [qualify_id(int(i), src) for i in kept])
    return out


class _HFStream:
    """Batched ``IterableDataset.map`` function that keeps only the examples the guard keeps."""

    def __init__(self, guard: Any, source: str) -> None:
        self.filter = StreamFilter(guard, source, paced=False)  # a map batch is one chunk
        #: read in the main process at a pass's first batch: whether the guard had decided nothing (see run's fresh)
        self.fresh = False

    def __call__(self, batch: Dict[str, List[Any]], indices: List[int]) -> Dict[str, List[Any]]:
        cols = list(batch)
        n = len(indices)
        w, k = worker_split()
        recs = [{c: batch[c][j] for c in cols} for j in range(n)]
        ids = [i * k + w for i in indices]
        guard = self.filter.guard
        if indices and indices[0] == 0 and guard is not None and get_worker_info() is None:  # a pass begins
            self.fresh = first_pass(guard.ledger)
        # a short batch is the last one of this shard: the text-field check may conclude there
        end = n < self.filter.chunk
        kept = list(self.filter.run(iter(recs), iter(ids), split=k, end=end, fresh=self.fresh and end,
                                    begins=bool(indices) and indices[0] == 0))  # (a worker's pass: stream.py)
        return {c: [r.get(c) for r in kept] for c in cols}


@register("datasets:IterableDataset")
def wrap_hf_iterable(guard: Any, ds: Any, *, source: Optional[str], num_workers: int) -> Any:
    """Return ``ds.map(...)``: a ``datasets.IterableDataset`` that yields only kept, rewritten examples."""
    return ds.map(_HFStream(guard, guard.new_source(source)), batched=True, batch_size=guard.chunk_size,
                  with_indices=True)


@register("datasets:DatasetDict")
@register("datasets:IterableDatasetDict")
def wrap_hf_dict(guard: Any, data: Any, *, source: Optional[str], num_workers: int) -> Any:
    """Refused: one split at a time."""
    raise ConfigError(f"got a {type(data).__name__} with splits {list(data)}; wrap one split at a time, "
                      f"e.g. guard.wrap(ds['train'])")
