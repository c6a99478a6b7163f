"""Filtering a stream chunk by chunk, in the main process or in DataLoader workers (which ask the main process)."""
from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Optional

from torch.utils.data import get_worker_info

from ..core.alldups import first_pass, warn_repeats
from ..core.decider import ChunkCut
from ..core.gcpause import gc_paused
from ..core.ids import FINGERPRINTS, qualify_id
from .pacing import WORKER_BUDGET_S, ChunkPacer, ran_clock
from .priority import lower_worker_priority, worker_nice_of
from .service import DecisionService

__all__ = ["StreamFilter", "stream_ids", "worker_split"]


class StreamFilter:
    """Chunked streaming through phase one and the guard's decisions.

    In the main process the guard decides; in a DataLoader worker (where the filter arrives pickled, without
    the guard) the worker plans each chunk and asks the guard's :class:`~torchdataguard.data.service.DecisionService`
    in the main process, so duplicates across workers are found and every example is counted once. With
    ``Guard(chunk_size=None)`` the chunks are paced (:mod:`torchdataguard.data.pacing`): 64 records first, then
    about 50 ms of work each in a worker, so a worker never holds its batches back for long.
    """

    def __init__(self, guard: Any, source: str, *, paced: bool = True) -> None:
        self.planner = guard.planner()
        self.chunk = guard.chunk_size  # a Hugging Face batch (see hf.py)
        self.cut_at = guard.stream_chunk  # a stream's chunk (also cut at CHUNK_CHARS characters)
        #: ``Guard(chunk_size=None)``: chunks start small and are paced (see .pacing); a number fixes them. The
        #: Hugging Face stream passes ``paced=False``: its map batches are already ``chunk_size`` records
        self.paced = paced and getattr(guard, "chunk_auto", False)
        self.source = source
        self.guard = guard
        #: shared with the guard (pickled into workers as it is when their iterator starts)
        self.id_tag = guard.id_tag
        #: a DataLoader worker running this stream lowers its CPU priority by this much (see .priority)
        self.worker_nice = worker_nice_of(guard)
        if guard.service is None:
            guard.service = DecisionService(guard)
        self.client = guard.service.client()
        #: in a DataLoader worker: a pass began here and did not end (a persistent worker's loop broken off)
        self._unended = False

    def _sync_fingerprint(self) -> None:
        """Fingerprint with the hash of the guard's remembered decisions: a state loaded after wrapping (a
        resumed run) may have been saved with an older one."""
        if self.guard is not None:
            self.planner.fingerprint = FINGERPRINTS[self.guard.ledger.memo.scheme]

    def __getstate__(self) -> Dict[str, Any]:
        self._sync_fingerprint()  # pickled when a DataLoader's workers start: after any state was loaded
        d = dict(self.__dict__)
        d["guard"] = None  # workers never hold the index; they ask the main process
        if self.guard is not None:  # set after wrapping: the workers that start now use it
            d["worker_nice"] = worker_nice_of(self.guard)
        return d

    def _decide(self, plan: Any, split: Optional[int]) -> List[bool]:
        if get_worker_info() is None and self.guard is not None:
            return [d is None for _, d, _ in self.guard.decide(plan, self.source, split=split)]
        return self.client.decide(plan.without_records(), self.source, split=(split, loader_tag()))

    def _end(self) -> None:
        """The stream ended: refuse a text field that none of its records had (checked by the main process)."""
        if get_worker_info() is None and self.guard is not None:
            self.guard.check_text_field(None, self.source, end=True)
        else:
            self._unended = False
            self.client.end(self.source, worker_split() + (loader_tag(),))

    def run(self, records: Iterator[Any], ids: Iterator[Any], *, split: Optional[int] = None,
            end: bool = True, fresh: Optional[bool] = None, begins: bool = False) -> Iterator[Any]:
        """Filter ``records`` (ids from ``ids``); ``split``: the DataLoader workers positional ids count across;
        ``end=False`` when more of the same stream follows in a later call; ``fresh``: whether the pass this call
        ends began with nothing decided (a caller that split the pass into calls knows; by default this call's
        start is the pass's); ``begins``: a pass of the stream begins with this call (a torch IterableDataset's whole
        pass, a datasets stream's first map batch)."""
        self._sync_fingerprint()
        if self.guard is not None:  # a forked worker's copy of the guard: its worker_nice as the workers started
            self.worker_nice = worker_nice_of(self.guard)
        lower_worker_priority(self.worker_nice)
        if begins and get_worker_info() is not None:  # a worker's pass: the last one left unfinished ends so
            if self._unended:  # (the main process forgets it: core/alldups.worker_end)
                self.client.end(self.source, (worker_split()[0], 0))
            self._unended = True
        buf: List[Any] = []
        buf_ids: List[Any] = []
        pacer = None
        if self.paced:  # a worker sizes its chunks to a time budget; the main process ramps up to the cap
            worker = get_worker_info() is not None
            pacer = ChunkPacer(self.cut_at, budget=WORKER_BUDGET_S if worker else None,
                               clock=ran_clock if worker and self.worker_nice else time.perf_counter)
        cut = ChunkCut(self.cut_at if pacer is None else pacer.size, self.planner.text_field)
        # the main process sees a whole pass of a torch stream: a replay in a guard's first one is a repeated record
        # (DataLoader workers' passes: the decision service, core/alldups.worker_end; a datasets stream's, decided a
        # map batch a call: hf.py passes ``fresh``)
        if fresh is None:
            fresh = end and self.guard is not None and get_worker_info() is None and first_pass(self.guard.ledger)
        fresh = fresh and end and self.guard is not None and get_worker_info() is None
        for rec, i in zip(records, ids):
            buf.append(rec)
            buf_ids.append(i)
            if cut.add(rec):
                yield from self._flush(buf, buf_ids, split, pacer, cut)
                buf, buf_ids = [], []
        if buf:
            yield from self._flush(buf, buf_ids, split, pacer, cut)
        if end:
            self._end()
            if fresh and self.guard.ledger.replayed:
                warn_repeats(self.guard.ledger.replayed, self.guard.id_field)

    def _flush(self, buf: List[Any], buf_ids: List[Any], split: Optional[int], pacer: Optional[ChunkPacer] = None,
               cut: Optional[ChunkCut] = None) -> Iterator[Any]:
        if pacer is not None:
            pacer.start()
        with gc_paused():  # see core.gcpause
            plan = self.planner.plan(buf, buf_ids)
            keep = self._decide(plan, split)
        if pacer is not None and cut is not None:
            pacer.done(len(buf))
            cut.size = pacer.size
        tag = self.id_tag
        for ex, k in zip(plan.examples, keep):
            if k:
                yield ex.record if tag.key is None else tag.attach(ex.record, qualify_id(ex.id, self.source))


def worker_split() -> tuple[int, int]:
    """``(worker id, number of workers)`` of this DataLoader worker; ``(0, 1)`` in the main process."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def loader_tag() -> int:
    """The base seed a DataLoader iterator gave its workers (a worker's seed less its id): one iterator's workers
    told from another's, for core/alldups.py's passes (drawn anew per iterator; persistent workers keep theirs)."""
    info = get_worker_info()
    return info.seed - info.id if info is not None else 0


def stream_ids() -> Iterator[int]:
    """Stream positions, interleaved across DataLoader workers so ids stay unique (and stable while the
    number of workers stays the same: the guard refuses another number for the same stream)."""
    w, n = worker_split()
    i = 0
    while True:
        yield i * n + w
        i += 1
