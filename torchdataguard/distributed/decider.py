"""The sharded decider: index stages partitioned over the ranks of a process group, deciding in rounds.

Decisions are made chunk-synchronously (see :mod:`torchdataguard.distributed.guard` for the whole story):

1. every rank plans one chunk of its data locally (validation, record stages, keys);
2. one ``all_gather`` brings every rank the keys of the whole *global chunk*, ordered row-major by
   ``(position in the chunk, rank)``;
3. the sharded index stages (:mod:`torchdataguard.distributed.sharded`) decide the global chunk; every
   rank learns every decision;
4. every rank accounts for its own examples in its own ledger
   (:meth:`~torchdataguard.core.ledger.Ledger.record_chunk`, as a local guard does).

Every method that decides is *collective*: every rank calls it, in the same order.
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader

from ..core.alldups import note_chunk
from ..core.decider import identity
from ..core.idcheck import check_id_field
from ..core.ids import check_positions, check_split, hashable_ids, qualify_id
from ..core.jsonable import to_jsonable
from ..core.ledger import Outcome
from ..core.memo import KEPT
from ..core.plan import Plan
from ..core.stage import Drop, Example, IndexStage
from ..data.priority import worker_nice_of
from ..errors import ConfigError
from .comm import Comm
from .plans import StridedChunkPlans, stream_plans
from .sharded import GlobalIds, ShardedStage, sharded_for

if TYPE_CHECKING:  # pragma: no cover
    from ..core.guard import Guard

__all__ = ["EncodedKeys", "Round", "ShardedDecider", "TAIL_REASON"]

#: drop reason of examples kept by every stage but never yielded because the other ranks ran out first
TAIL_REASON = "balance/uneven_tail"
_NO_PRE = -2  # "no record-stage drop" in the gathered pre-drop column


def check_fields(guard: "Guard", plan: Optional[Plan], source: str, *, end: bool = False) -> None:
    """Refuse a text field (core/textcheck.py) or an id field (core/idcheck.py) that no record of ``source`` on
    this rank has; the caller passes the error to :meth:`ShardedDecider.round`, which raises it on every rank."""
    guard.check_text_field(plan, source, end=end)
    if plan is not None:
        check_id_field(guard, plan, source)


class EncodedKeys:
    """Keys already encoded as ``[n, width]`` int64 words (planned elsewhere, e.g. in a Ray Data task)."""

    def __init__(self, words: torch.Tensor) -> None:
        self.words = words


class Round:
    """What one chunk-synchronous round decided (identical on every rank except ``outcomes``)."""

    def __init__(self, outcomes: List[Outcome], kept_per_rank: List[int], ended: List[bool],
                 kept_rows: List[Tuple[int, int]]) -> None:
        self.outcomes = outcomes  # this rank's examples, in its own order
        self.kept_per_rank = kept_per_rank  # examples each rank may yield from this round (kept or replayed-kept)
        self.ended = ended  # whose stream had ended before this round
        self.kept_rows = kept_rows  # (rank, offset in that rank's chunk) of every yieldable row, in global order


class ShardedDecider:
    """Decides with the guard's index stages partitioned across the ranks of ``comm`` (see the module docs).

    Args:
        stages: the guard's stages; each index stage must have a sharded implementation and be empty.
        comm: the collectives of the process group.
        drain: a balanced stream reads every rank's stream to its end (see :meth:`stream`).
    """

    name = "sharded"

    def __init__(self, stages: Sequence[Any], comm: Comm, *, drain: bool = False) -> None:
        self.comm = comm
        self.drain = drain
        #: the sharded index stages, by their position among the guard's stages
        self.stages: Dict[int, ShardedStage] = {}
        for si, st in enumerate(stages):
            if isinstance(st, IndexStage):
                sh = sharded_for(st, comm)
                sh.check_empty()
                self.stages[si] = sh
        #: collective rounds made so far
        self.rounds = 0

    # -- one chunk-synchronous round -------------------------------------------------------------
    def round(self, guard: "Guard", plan: Optional[Plan], *, ended: bool, source: str,
              error: Optional[BaseException] = None, positional: bool = False) -> Round:
        """Decide this rank's chunk ``plan`` (``None`` once its data ``ended``) with every other rank's; a rank's
        ``error`` is raised on every rank after the exchange, so that none waits forever (collective)."""
        C = guard.chunk_size
        W, me = self.comm.world, self.comm.rank
        t0 = time.perf_counter()
        with guard.lock:
            exs = plan.examples if (plan is not None and error is None) else []
            m = len(exs)
            if m > C:
                raise ConfigError(f"a chunk of {m} examples is larger than chunk_size={C}")
            for e in exs:
                e.id = qualify_id(e.id, source)
            replay = [guard.ledger.lookup(e.id, e.fingerprint) for e in exs]
            if positional and m:
                try:  # a positional stream that changed since an earlier pass: refused on every rank
                    check_positions(guard.ledger, exs, replay, source)
                except ConfigError as exc:
                    error, exs, replay, m = exc, [], [], 0
            widths = [(si, sh, sh.width) for si, sh in self.stages.items()]
            K = 4 + sum(1 + w for _, _, w in widths)  # id, flags, pre-drop step, content fingerprint, keys
            T = torch.zeros(C + 1, K, dtype=torch.int64)
            T[0, 0] = m
            T[0, 1] = int(bool(ended))
            T[0, 2] = int(error is not None)
            if m:
                ints = [isinstance(e.id, int) and not isinstance(e.id, bool) and -2**63 <= e.id < 2**63 for e in exs]
                T[1 : m + 1, 0] = torch.tensor([e.id if ok else 0 for e, ok in zip(exs, ints)], dtype=torch.int64)
                T[1 : m + 1, 1] = torch.tensor([int(ok) | (r << 1) for ok, r in zip(ints, replay)], dtype=torch.int64)
                T[1 : m + 1, 2] = torch.tensor([_NO_PRE if p is None else p[0] for p in plan.pre_drop], dtype=torch.int64)
                T[1 : m + 1, 3] = torch.tensor([e.fingerprint for e in exs], dtype=torch.int64)
            col = 4
            for si, sh, w in widths:
                rows, keys = plan.keys.get(si, ([], None)) if m else ([], None)
                if rows:
                    r = torch.tensor(rows, dtype=torch.int64) + 1
                    T[r, col] = 1
                    T[r, col + 1 : col + 1 + w] = keys.words if isinstance(keys, EncodedKeys) else sh.encode(keys, len(rows))
                col += 1 + w
            A = self.comm.all_gather(T).cpu()  # [W, C+1, K]
            hdr = A[:, 0, :3]
            failed = torch.nonzero(hdr[:, 2] != 0).flatten().tolist()
            if failed:
                if error is not None:
                    raise error
                raise RuntimeError(f"torchdataguard: rank(s) {failed} failed while planning their chunk (see the error "
                                   f"on those ranks); every rank stops so that none waits forever")
            ms = hdr[:, 0]
            ended_all = [bool(x) for x in hdr[:, 1].tolist()]
            o = torch.arange(C).unsqueeze(1).expand(C, W)
            rk = torch.arange(W).unsqueeze(0).expand(C, W)
            sel = o < ms.unsqueeze(0)
            go, gr = o[sel], rk[sel]  # global order: (offset, rank), row-major
            rowsT = A[gr, go + 1]
            G = int(go.numel())
            flags = rowsT[:, 1]
            if G == 0 or bool((flags & 1).all()):
                ids = GlobalIds(ints=rowsT[:, 0].clone())
            else:
                lists = self.comm.all_gather_json([to_jsonable(e.id) for e in exs])
                ids = GlobalIds(objs=[lists[r][k] for r, k in zip(gr.tolist(), go.tolist())])
            rep = (flags >> 1) & 3
            if guard.id_field is not None and guard.ledger.remember and G:
                # ids from a field may move between ranks across epochs: ask every rank's memory (same id and content)
                fps = rowsT[:, 3].tolist()
                known = torch.tensor([guard.ledger.lookup(i, f) for i, f in zip(ids.tolist(), fps)], dtype=torch.int64)
                rep = torch.maximum(rep, self.comm.all_reduce(known, "max").cpu())
            pre = rowsT[:, 2]
            final: List[Optional[Drop]] = [None] * G
            final_step = [-1] * G
            dropped = torch.zeros(G, dtype=torch.bool)
            counts: List[Tuple[int, str]] = []
            col = 4
            for si, sh, w in widths:
                sh.examples = exs
                present = (rowsT[:, col] == 1) & (rep == 0) & ~dropped & ~((pre != _NO_PRE) & (pre < si))
                idx = torch.nonzero(present).flatten()
                drops, cnt = sh.decide(rowsT[idx, col + 1 : col + 1 + w], ids.take(idx))
                idx_l = idx.tolist()
                for j, d in zip(idx_l, drops):
                    if d is not None:
                        final[j] = d
                        final_step[j] = si
                        dropped[j] = True
                counts.extend((idx_l[j], name) for j, name in cnt)
                col += 1 + w
            # a replayed keep is kept only if no record stage dropped it this time (fail closed)
            keep = ((rep == KEPT) | ((rep == 0) & ~dropped)) & (pre == _NO_PRE)
            kept_per_rank = torch.bincount(gr[keep], minlength=W).tolist()
            kept_rows = list(zip(gr[keep].tolist(), go[keep].tolist()))
            # this rank's own examples, accounted for as a local guard does
            for j, name in counts:
                if int(gr[j]) == me:
                    exs[int(go[j])].count(name)
            mine_replay, mine_drops, mine_steps = [0] * m, [None] * m, [-1] * m
            for j in torch.nonzero(gr == me).flatten().tolist():
                k = int(go[j])
                mine_replay[k], mine_drops[k], mine_steps[k] = int(rep[j]), final[j], final_step[j]
            out = guard.ledger.record_chunk(exs, plan.pre_drop if m else [], mine_replay, mine_drops, mine_steps,
                                            scrub_step=guard.scrub_step)
            note_chunk(guard, source, out)  # for core/alldups.py, as LocalDecider counts (this rank's share)
            guard.ledger.busy_seconds += time.perf_counter() - t0
            self.rounds += 1
            return Round(out, kept_per_rank, ended_all, kept_rows)

    def decide(self, guard: "Guard", plan: Plan, source: str = "", *, split: Optional[int] = None) -> List[Outcome]:
        """One round with this chunk (collective: every rank decides one chunk, or ``None`` when it has none)."""
        error: Optional[BaseException] = None
        try:
            check_fields(guard, plan, source)
        except Exception as exc:  # noqa: BLE001 - raised on every rank by round()
            error = exc
        return self.round(guard, plan, ended=False, source=source, error=error).outcomes

    # -- feeding rounds --------------------------------------------------------------------------
    def _check_split(self, guard: "Guard", source: str, ids: Optional[Iterable[Any]], num_workers: int) -> None:
        """Positional ids follow the order the planning workers deliver chunks in: the same workers every time."""
        if ids is None and guard.id_field is None and guard.ledger.remember:
            check_split(guard.splits, source, max(1, num_workers))

    def _rounds(self, guard: "Guard", plans: Iterator[Plan], source: str, *,
                positional: bool = False) -> Iterator[Round]:
        """Collective rounds until every rank's plans are exhausted (``positional``: a wrapped stream whose ids
        are positions, refused when its records change between passes)."""
        ended = False
        while True:
            plan: Optional[Plan] = None
            err: Optional[BaseException] = None
            if not ended:
                try:
                    plan = next(plans)
                    check_fields(guard, plan, source)  # a text or id field no record has: refused
                except StopIteration:
                    ended = True
                    try:
                        guard.check_text_field(None, source, end=True)
                    except Exception as exc:  # noqa: BLE001 - re-raised on every rank by round()
                        err = exc
                except Exception as exc:  # noqa: BLE001 - re-raised on every rank by round()
                    err = exc
            rnd = self.round(guard, plan, ended=ended, source=source, error=err, positional=positional)
            yield rnd
            if all(rnd.ended):
                return

    def process(self, guard: "Guard", records: Iterable[Any], *, ids: Optional[Iterable[Any]] = None,
                source: str = "", total: Optional[int] = None, desc: str = "guard",
                num_workers: int = 0) -> Iterator[Outcome]:
        """Decide this rank's ``records``, yielding every outcome (no balancing); rounds go on until every rank's
        records are exhausted. Ids default to ``position * world + rank``; no progress bar (``total``, ``desc``)."""
        self._check_split(guard, source, ids, num_workers)
        if ids is not None:
            ids = hashable_ids(ids)
        plans = stream_plans(guard.planner(), records, ids, chunk=guard.chunk_size, rank=self.comm.rank,
                             world=self.comm.world, num_workers=num_workers,
                             nice=worker_nice_of(guard) if num_workers else 0)
        try:
            for rnd in self._rounds(guard, plans, source):
                yield from rnd.outcomes
        finally:
            if guard.ledger.quarantine is not None:
                guard.ledger.quarantine.flush()

    def stream(self, guard: "Guard", records: Iterable[Any], *, source: str, num_workers: int = 0) -> Iterator[Any]:
        """This rank's kept records, as many on every rank: after each round every rank yields as many as the
        rank with the fewest kept has (the others carry the rest over). When one rank has run out, all stop;
        what the others kept but cannot yield is dropped as ``balance/uneven_tail`` (``drain``: after reading
        every rank's stream to its end)."""
        W = self.comm.world
        buf: Deque[Tuple[Example, bool]] = deque()
        sizes = [0] * W
        closed = False
        self._check_split(guard, source, None, num_workers)
        plans = stream_plans(guard.planner(), records, None, chunk=guard.chunk_size, rank=self.comm.rank,
                             world=W, num_workers=num_workers,
                             nice=worker_nice_of(guard) if num_workers else 0)
        positional = guard.id_field is None and guard.ledger.remember
        try:
            for rnd in self._rounds(guard, plans, source, positional=positional):
                kept = [(ex, rep) for ex, d, rep in rnd.outcomes if d is None]
                if closed:
                    self._tail(guard, kept)
                else:
                    buf.extend(kept)
                    sizes = [a + b for a, b in zip(sizes, rnd.kept_per_rank)]
                    y = min(sizes)
                    for _ in range(y):
                        yield buf.popleft()[0].record
                    sizes = [a - y for a in sizes]
                    if any(e and s == 0 for e, s in zip(rnd.ended, sizes)):
                        closed = True
                        self._tail(guard, buf)
                        buf.clear()
                if closed and not self.drain:
                    break
        finally:
            if guard.ledger.quarantine is not None:
                guard.ledger.quarantine.flush()

    def _tail(self, guard: "Guard", items: Iterable[Tuple[Example, bool]]) -> int:
        """Count kept examples that can never be yielded as dropped (``balance/uneven_tail``)."""
        n = 0
        with guard.lock:
            for ex, replayed in items:
                n += 1
                if replayed:
                    guard.ledger.counts[TAIL_REASON + "_replayed"] += 1
                else:
                    guard.ledger.revoke(ex, Drop(TAIL_REASON))
        return n

    def scan(self, guard: "Guard", dataset: Any, *, source: str, num_workers: int = 0,
             desc: str = "guard scan") -> List[int]:
        """Decide a map-style dataset sharded by stride (rank ``r`` plans items ``r, r + world, ...``); every rank
        returns the same global kept indices (no progress bar: ``desc`` is not used)."""
        n = len(dataset)
        C = guard.chunk_size
        W, me = self.comm.world, self.comm.rank
        local = len(range(me, n, W))
        rounds = -(-len(range(0, n, W)) // C)
        chunks = StridedChunkPlans(dataset, guard.planner(), C, me, W)
        if num_workers > 0 and len(chunks):
            it: Iterator[Plan] = iter(DataLoader(chunks, batch_size=None, num_workers=num_workers, collate_fn=identity))
        else:
            it = (chunks[c] for c in range(len(chunks)))
        kept: List[int] = []
        for c in range(rounds):
            plan = next(it, None) if c * C < local else None
            err = None
            if plan is not None:
                try:  # a text field no record has is refused (on every rank, by round())
                    check_fields(guard, plan, source, end=(c + 1) * C >= local)
                except Exception as exc:  # noqa: BLE001
                    err = exc
            rnd = self.round(guard, plan, ended=plan is None, source=source, error=err)
            kept.extend((c * C + o) * W + r for r, o in rnd.kept_rows)
        if guard.ledger.quarantine is not None:
            guard.ledger.quarantine.flush()
        return kept

    def reset(self) -> None:
        for sh in self.stages.values():
            sh.reset()

    def __repr__(self) -> str:
        return f"ShardedDecider(rank={self.comm.rank}, world_size={self.comm.world}, drain={self.drain})"
