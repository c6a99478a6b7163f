"""Where a guard's index stages decide: the :class:`Decider` protocol and the :class:`LocalDecider`.

A :class:`~torchdataguard.Guard` holds one decider (``guard.decider``). What comes before it is the same for
every decider: phase one (validation, record stages, keys) is the guard's
:class:`~torchdataguard.core.plan.Planner`; so is what comes after it: every decided chunk is accounted for by
:meth:`~torchdataguard.core.ledger.Ledger.record_chunk`. The decider owns the part in between, and how chunks
are fed to it:

* :class:`LocalDecider` (the default) runs the index stages in this process;
* :class:`~torchdataguard.distributed.decider.ShardedDecider` (set by
  :class:`~torchdataguard.DistributedGuard`) decides with indexes partitioned over the ranks of a
  ``torch.distributed`` process group, in collective rounds.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from .gcpause import gc_paused
from .alldups import first_pass, note_chunk, warn_repeats
from .idcheck import check_id_field
from .ids import check_positions, check_split, hashable_ids, qualify_id
from .ledger import Outcome
from .memo import resolve_replays
from .plan import Plan, Planner, take_keys
from .stage import Drop, IndexStage
from .workercopies import note_worker_copies, worker_copies

if TYPE_CHECKING:  # pragma: no cover
    from .guard import Guard

__all__ = ["CHUNK_CHARS", "ChunkCut", "Decider", "LocalDecider", "identity", "text_length"]


def identity(x: Any) -> Any:
    """``collate_fn`` of the DataLoaders that plan chunks in workers (a plan is already one item)."""
    return x


class Decider(Protocol):
    """Decides the chunks of a :class:`~torchdataguard.Guard` (see the module docstring)."""

    #: picks the wrap handlers registered for this decider (:mod:`torchdataguard.data.dispatch`)
    name: str

    def decide(self, guard: "Guard", plan: Plan, source: str = "", *, split: Optional[int] = None) -> List[Outcome]:
        """Decide one planned chunk and account for it (``split``: the DataLoader workers that numbered its
        positional stream ids)."""

    def process(self, guard: "Guard", records: Iterable[Any], *, ids: Optional[Iterable[Any]] = None,
                source: str = "", total: Optional[int] = None, desc: str = "guard") -> Iterator[Outcome]:
        """Plan and decide a stream chunk by chunk, yielding every example's outcome."""

    def scan(self, guard: "Guard", dataset: Any, *, source: str, num_workers: int = 0,
             desc: str = "guard scan") -> List[int]:
        """Decide a map-style dataset once (indices ``0 .. len - 1`` are its ids); its kept indices, in order."""

    def reset(self) -> None:
        """Forget what the decider holds besides the guard's stages and ledger (a fresh run)."""


#: a streamed chunk is also cut once its texts hold this many characters: long documents are decided about 400
#: (5,000 characters each) or 80 (25,000) at a time rather than ``chunk_size``, which bounds the memory a chunk
#: of long texts takes (benchmarks/chunk_size.py); decisions do not depend on where chunks end
CHUNK_CHARS = 2_000_000
#: ``Guard(chunk_size=None)``: examples per chunk of a stream (cut earlier at CHUNK_CHARS), and of the paths that
#: count their chunks in advance (map-style and Hugging Face datasets, the distributed guard). Each chunk costs
#: the index stages a few hundred small array operations, so short texts go faster in large chunks (5-30 words:
#: 16,384 a chunk took 0.61x the time of 1,024; benchmarks/chunk_size.py)
STREAM_CHUNK = 16_384
DEFAULT_CHUNK = 1024


def text_length(record: Any, field: Optional[str]) -> int:
    """Characters of ``record``'s text as read (a str record, or the str under ``field``); 0 for anything else."""
    if isinstance(record, str):
        return len(record)
    if field is not None and isinstance(record, dict):
        value = record.get(field)
        if isinstance(value, str):
            return len(value)
    return 0


class ChunkCut:
    """Says when a streamed chunk is full: at ``size`` records, or once their texts (under ``field``) hold
    :data:`CHUNK_CHARS` characters. One rule for every streaming path (the guard, wrapped streams, the
    distributed guard); decisions do not depend on where chunks end.

    Example:
        >>> cut = ChunkCut(3, "text")
        >>> [cut.add({"text": "a"}) for _ in range(4)]
        [False, False, True, False]
    """

    def __init__(self, size: int, field: Optional[str]) -> None:
        self.size, self.field = size, field
        self.n = self.chars = 0

    def add(self, record: Any) -> bool:
        """Count ``record`` into the chunk; ``True`` when the chunk is full (the count starts again)."""
        self.n += 1
        # a plain str record, or a plain dict with a plain str text (what text_length says, without its calls)
        if type(record) is str:
            self.chars += len(record)
        elif type(record) is dict and self.field is not None and type(record.get(self.field)) is str:
            self.chars += len(record[self.field])
        else:
            self.chars += text_length(record, self.field)
        if self.n >= self.size or self.chars >= CHUNK_CHARS:
            self.n = self.chars = 0
            return True
        return False


class _ChunkPlans:
    """Item ``c`` is the phase-one plan of chunk ``c`` of a map-style dataset (so workers can plan): a map-style
    dataset for a ``DataLoader`` (``__len__`` and ``__getitem__``; not a ``torch.utils.data.Dataset``
    subclass, so that a guard that plans in this process never imports torch)."""

    def __init__(self, dataset: Any, planner: Planner, chunk: int) -> None:
        self.dataset = dataset
        self.planner = planner
        self.chunk = chunk
        self.n = len(dataset)

    def __len__(self) -> int:
        return math.ceil(self.n / self.chunk)

    def __getitem__(self, c: int) -> Plan:
        a, b = c * self.chunk, min(self.n, (c + 1) * self.chunk)
        return self.planner.plan([self.dataset[i] for i in range(a, b)], list(range(a, b)))


class LocalDecider:
    """Runs the index stages in this process (the main process: DataLoader workers ask it through
    :class:`~torchdataguard.data.service.DecisionService`).

    Example:
        >>> import torchdataguard as tdg
        >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
        >>> type(guard.decider).__name__, [d is None for _, d, _ in guard.process(["a", "b", "a"])]
        ('LocalDecider', [True, True, False])
    """

    name = "local"

    def decide(self, guard: "Guard", plan: Plan, source: str = "", *, split: Optional[int] = None) -> List[Outcome]:
        t0 = time.perf_counter()
        with guard.lock:
            guard.check_text_field(plan, source)
            check_id_field(guard, plan, source)  # every record without a usable id: refused
            positional = split is not None and guard.id_field is None and guard.ledger.remember
            if positional:
                check_split(guard.splits, source, split)  # positional ids: the same split in every epoch
            exs = plan.examples
            several = positional and split is not None and split > 1
            positions = [e.id for e in exs] if several else []
            if source:  # the first wrapped data keeps plain ids (qualify_id returns them unchanged)
                for e in exs:
                    e.id = qualify_id(e.id, source)
            replay, dup_of = resolve_replays(guard.ledger, exs)
            if positional:
                check_positions(guard.ledger, exs, replay, source)  # a reshuffled stream: refused, not re-decided
            if several:  # every worker reading the whole stream: counted and warned about
                note_worker_copies(guard, worker_copies(guard.ledger, exs, positions, replay, split, source),
                                   source, split)  # type: ignore[arg-type]
            drops, steps = _decide_index_stages(guard.stages, plan, replay)
            out = guard.ledger.record_chunk(exs, plan.pre_drop, replay, drops, steps, dup_of=dup_of,
                                            scrub_step=guard.scrub_step)
            note_chunk(guard, source, out)  # for core/alldups.py: a source whose every new record was a duplicate
            guard.ledger.busy_seconds += time.perf_counter() - t0
            return out

    def process(self, guard: "Guard", records: Iterable[Any], *, ids: Optional[Iterable[Any]] = None,
                source: str = "", total: Optional[int] = None, desc: str = "guard") -> Iterator[Outcome]:
        planner = guard.planner()
        bar = guard.progress_bar(total, desc)
        id_iter = hashable_ids(ids) if ids is not None else None
        buf: List[Any] = []
        buf_ids: List[Any] = []  # with ``ids``; else the chunk's positions, made when it is full
        pos = 0
        full = ChunkCut(guard.stream_chunk, guard.text_field).add
        led = guard.ledger
        fresh = first_pass(led)  # nothing decided yet: a replay can only be a repeat
        try:
            for rec in records:
                buf.append(rec)
                if id_iter is not None:
                    buf_ids.append(next(id_iter))
                if full(rec):
                    if id_iter is None:
                        buf_ids = list(range(pos, pos + len(buf)))
                    pos += len(buf)
                    yield from self._chunk(guard, planner, buf, buf_ids, source, bar)
                    buf, buf_ids = [], []
            if buf:
                if id_iter is None:
                    buf_ids = list(range(pos, pos + len(buf)))
                yield from self._chunk(guard, planner, buf, buf_ids, source, bar)
            guard.check_text_field(None, source, end=True)
            if fresh and led.replayed:
                warn_repeats(led.replayed, guard.id_field)
        finally:
            _finish(guard, bar)

    def _chunk(self, guard: "Guard", planner: Planner, buf: List[Any], buf_ids: List[Any], source: str,
               bar: Any) -> List[Outcome]:
        with gc_paused():  # see gcpause: a chunk's objects would otherwise trigger full collections
            t0 = time.perf_counter()
            plan = planner.plan(buf, buf_ids)
            guard.ledger.busy_seconds += time.perf_counter() - t0
            out = self.decide(guard, plan, source)
        if bar is not None:
            bar.update(len(buf))
        return out

    def scan(self, guard: "Guard", dataset: Any, *, source: str, num_workers: int = 0,
             desc: str = "guard scan") -> List[int]:
        plans = _ChunkPlans(dataset, guard.planner(), guard.chunk_size)
        kept: List[int] = []
        bar = guard.progress_bar(len(dataset), desc)
        it: Optional[Iterator[Plan]] = None
        fresh = first_pass(guard.ledger)
        if num_workers > 0:
            from torch.utils.data import DataLoader  # only planning in workers needs torch

            it = iter(DataLoader(plans, batch_size=None, num_workers=num_workers, collate_fn=identity))
        try:
            for c in range(len(plans)):
                with gc_paused():  # see gcpause
                    plan = next(it) if it is not None else plans[c]
                    outcomes = self.decide(guard, plan, source)
                for off, (_, drop, _) in enumerate(outcomes):
                    if drop is None:
                        kept.append(c * guard.chunk_size + off)
                if bar is not None:
                    bar.update(len(plan.examples))
            guard.check_text_field(None, source, end=True)
            if fresh and guard.ledger.replayed:  # a map-style or datasets.Dataset: as a list does (process)
                warn_repeats(guard.ledger.replayed, guard.id_field)
        finally:
            _finish(guard, bar)
        return kept

    def reset(self) -> None:
        return None

    def __repr__(self) -> str:
        return "LocalDecider()"


def _decide_index_stages(stages: Sequence[Any], plan: Plan,
                         replay: Sequence[int]) -> Tuple[List[Optional[Drop]], List[int]]:
    """Run every index stage on the rows still undecided at its position (query-then-insert, in order).

    A row is skipped by a stage when it replays a decision, an earlier index stage dropped it, or a record
    stage before this one did. Returns each row's drop and the position of the stage that made it (-1: none).
    """
    exs = plan.examples
    m = len(exs)
    final: List[Optional[Drop]] = [None] * m
    final_step: List[int] = [-1] * m
    pre = plan.pre_drop
    # rows no stage may decide (a replay, a record-stage or validation drop) and rows an index stage dropped:
    # when there are none, every row a keyer saw is decided by its stage, without a test per row
    plain = type(replay) is list and replay.count(0) == m and type(pre) is list and pre.count(None) == m
    dropped: List[int] = []
    for si, st in enumerate(stages):
        if not isinstance(st, IndexStage):
            continue
        rows, keys = plan.keys.get(si, ([], None))
        if plain and not dropped:
            sel = range(len(rows))
        elif plain and len(rows) == m:  # rows are 0 .. m-1: all but the dropped ones
            undecided = np.ones(m, dtype=bool)
            undecided[dropped] = False
            sel = np.flatnonzero(undecided).tolist()
        else:
            sel = [j for j, i in enumerate(rows)
                   if not replay[i] and final[i] is None and (pre[i] is None or pre[i][0] >= si)]
        if not sel:
            continue
        # keys are row-aligned with ``rows``: every row still undecided (the usual case) takes them as they are
        whole = len(sel) == len(rows)
        rows_sel = rows if whole else [rows[j] for j in sel]
        drops = st.decide(list(map(exs.__getitem__, rows_sel)), keys if whole else take_keys(keys, sel))
        for i, d in zip(rows_sel, drops):
            if d is not None:
                final[i] = d
                final_step[i] = si
                dropped.append(i)
    return final, final_step


def _finish(guard: "Guard", bar: Any) -> None:
    """End of a pass over data: close its progress bar and flush the quarantine file."""
    if bar is not None:
        bar.close()
    if guard.ledger.quarantine is not None:
        guard.ledger.quarantine.flush()
