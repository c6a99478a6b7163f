"""Chunk plans of a rank's data: the stream's own chunks, or a stride of a map-style dataset, optionally
planned in DataLoader workers."""
from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, List, Optional

from torch.utils.data import DataLoader, Dataset, IterableDataset

from ..core.decider import ChunkCut, identity
from ..core.plan import Plan, Planner
from ..data.priority import lower_worker_priority
from ..errors import ConfigError

__all__ = ["PlanStream", "StridedChunkPlans", "stream_plans"]


class PlanStream(IterableDataset):
    """Plans of chunks of a stream, computed in DataLoader workers (ids filled in by the main process). A worker
    raises its nice value by ``nice`` first (``Guard.worker_nice``; :mod:`torchdataguard.data.priority`): it plans
    while the main process trains."""

    def __init__(self, records: Iterable[Any], planner: Planner, chunk: int, nice: int = 0) -> None:
        self.records = records
        self.planner = planner
        self.chunk = chunk
        self.nice = nice

    def __iter__(self) -> Iterator[Plan]:
        lower_worker_priority(self.nice)
        buf: List[Any] = []
        cut = ChunkCut(self.chunk, self.planner.text_field)
        for rec in self.records:
            buf.append(rec)
            if cut.add(rec):
                yield self.planner.plan(buf, [None] * len(buf))
                buf = []
        if buf:
            yield self.planner.plan(buf, [None] * len(buf))


class StridedChunkPlans(Dataset):
    """Item ``c`` plans chunk ``c`` of this rank's stride of a map-style dataset (items ``rank + world * p``)."""

    def __init__(self, dataset: Any, planner: Planner, chunk: int, rank: int, world: int) -> None:
        self.dataset = dataset
        self.planner = planner
        self.chunk = chunk
        self.idx = range(rank, len(dataset), world)

    def __len__(self) -> int:
        return math.ceil(len(self.idx) / self.chunk)

    def __getitem__(self, c: int) -> Plan:
        ii = list(self.idx[c * self.chunk : (c + 1) * self.chunk])
        return self.planner.plan([self.dataset[i] for i in ii], ii)


def stream_plans(planner: Planner, records: Iterable[Any], ids: Optional[Iterable[Any]], *, chunk: int, rank: int,
                 world: int, num_workers: int, nice: int = 0) -> Iterator[Plan]:
    """Chunk plans of this rank's stream; positional ids ``position * world + rank`` unless ``ids``; with
    ``num_workers``, the workers' nice value raised by ``nice``."""
    if num_workers > 0:
        if ids is not None:
            raise ConfigError("ids= cannot be combined with num_workers > 0; give the records an id field instead")
        loader = DataLoader(PlanStream(records, planner, chunk, nice), batch_size=None, num_workers=num_workers,
                            collate_fn=identity)
        pos = 0
        for plan in loader:
            for ex in plan.examples:
                if ex.id is None:
                    ex.id = pos * world + rank
                pos += 1
            yield plan
        return
    it = iter(records)
    id_it = iter(ids) if ids is not None else None
    pos = 0
    cut = ChunkCut(chunk, planner.text_field)
    while True:
        buf: List[Any] = []
        buf_ids: List[Any] = []
        full = False
        for rec in it:
            buf.append(rec)
            buf_ids.append(next(id_it) if id_it is not None else pos * world + rank)
            pos += 1
            if cut.add(rec):
                full = True
                break
        if not buf:
            return
        yield planner.plan(buf, buf_ids)
        if not full:
            return
