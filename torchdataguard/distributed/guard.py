"""Global dedup and equal step counts under ``torch.distributed`` (DDP, FSDP; NCCL or gloo).

:class:`DistributedGuard` wraps a :class:`~torchdataguard.Guard` on every rank. Each rank reads its own
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

import math
import os
import time
from collections import deque
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ..core.guard import Guard, Outcome
from ..core.ids import check_positions, check_split, ids_state
from ..core.ledger import DROPPED, KEPT, to_jsonable
from ..core.plan import Plan, Planner
from ..core.stage import Drop, Example, IndexStage
from ..data.wrappers import GuardedDataset
from ..errors import ConfigError
from .checkpoint import MANIFEST  # noqa: F401 (the manifest's name, importable from here as before)
from .checkpoint import FORMAT, apply_state, check_state, load_checkpoint, save_checkpoint
from .comm import Comm
from .sharded import GlobalIds, ShardedStage, sharded_for

__all__ = ["DistributedGuard", "DistributedGuardedDataset", "DistributedGuardedIterableDataset", "EncodedKeys",
           "TAIL_REASON"]

#: drop reason of examples kept by every stage but never yielded because the other ranks ran out first
TAIL_REASON = "balance/uneven_tail"
_NO_PRE = -2  # "no record-stage drop" in the gathered pre-drop column


def _identity(x: Any) -> Any:
    return x


class EncodedKeys:
    """Keys already encoded as ``[n, width]`` int64 words (planned elsewhere, e.g. in a Ray Data task)."""

    def __init__(self, words: torch.Tensor) -> None:
        self.words = words


class _Round:
    """What one chunk-synchronous round decided (identical on every rank except ``outcomes``)."""

    def __init__(self, outcomes: List[Outcome], kept_per_rank: List[int], ended: List[bool],
                 kept_rows: List[Tuple[int, int]]) -> None:
        self.outcomes = outcomes  # this rank's examples, in its own order
        self.kept_per_rank = kept_per_rank  # examples each rank may yield from this round (kept or replayed-kept)
        self.ended = ended  # whose stream had ended before this round
        self.kept_rows = kept_rows  # (rank, offset in that rank's chunk) of every yieldable row, in global order


class DistributedGuard:
    """Run a :class:`~torchdataguard.Guard` across the ranks of a ``torch.distributed`` process group.

    Build the same guard (same stages, settings and ``chunk_size``) on every rank, then wrap it. Every
    method that decides or reports is *collective*: call it on every rank, in the same order.

    Args:
        guard: the guard to distribute; its index stages must be empty (fresh) or be restored with
            :meth:`load`. Supported index stages: :class:`~torchdataguard.ExactDedup`,
            :class:`~torchdataguard.NearDedup`.
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
        self._sharded: Dict[int, ShardedStage] = {}
        for si, st in enumerate(guard.stages):
            if isinstance(st, IndexStage):
                sh = sharded_for(st, self.comm)
                sh.check_empty()
                self._sharded[si] = sh
        self._check_same_everywhere()
        self.rounds = 0

    # -- structure -------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def world_size(self) -> int:
        return self.comm.world

    def _fingerprint(self) -> Dict[str, Any]:
        g = self.guard
        return to_jsonable({
            "chunk_size": g.chunk_size, "text_field": g.text_field, "id_field": g.id_field, "strict": g.strict,
            "max_chars": g.max_chars, "remember": g.ledger.remember, "drain": self.drain,
            "ids": ids_state({}, g._id_hasher),
            "stages": [[s.name, type(s).__name__, s.config()] for s in g.stages],
        })

    def _check_same_everywhere(self) -> None:
        mine = self._fingerprint()
        allfp = self.comm.all_gather_json(mine)
        bad = [r for r, fp in enumerate(allfp) if fp != allfp[0]]
        if bad:
            diff = sorted(k for k in allfp[0] if allfp[0].get(k) != allfp[bad[0]].get(k))
            raise ConfigError(f"ranks {bad} built their guard differently from rank 0 (settings {diff} differ); build "
                              f"the same guard (stages, options, chunk_size) on every rank")

    # -- one chunk-synchronous round -------------------------------------------------------------
    def _round(self, plan: Optional[Plan], ended: bool, source: str, error: Optional[BaseException] = None,
               positional: bool = False) -> _Round:
        g = self.guard
        C = g.chunk_size
        W, me = self.comm.world, self.comm.rank
        t0 = time.perf_counter()
        with g._lock:
            exs = plan.examples if (plan is not None and error is None) else []
            m = len(exs)
            if m > C:
                raise ConfigError(f"a chunk of {m} examples is larger than chunk_size={C}")
            for e in exs:
                e.id = g._qualify(e.id, source)
            replay = [g.ledger.lookup(e.id, e.fingerprint) for e in exs]
            if positional and m:
                try:  # a positional stream that changed since an earlier pass: refused on every rank
                    check_positions(g.ledger, exs, replay, source)
                except ConfigError as exc:
                    error, exs, replay, m = exc, [], [], 0
            widths = [(si, sh, sh.width) for si, sh in self._sharded.items()]
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
            if g.id_field is not None and g.ledger.remember and G:
                # ids from a field may move between ranks across epochs: ask every rank's memory (same id and content)
                fps = rowsT[:, 3].tolist()
                known = torch.tensor([g.ledger.lookup(i, f) for i, f in zip(ids.tolist(), fps)], dtype=torch.int64)
                rep = torch.maximum(rep, self.comm.all_reduce(known, "max").cpu())
            pre = rowsT[:, 2]
            final: List[Optional[Drop]] = [None] * G
            dropped = torch.zeros(G, dtype=torch.bool)
            counts: List[Tuple[int, str]] = []
            col = 4
            for si, sh, w in widths:
                present = (rowsT[:, col] == 1) & (rep == 0) & ~dropped & ~((pre != _NO_PRE) & (pre < si))
                idx = torch.nonzero(present).flatten()
                drops, cnt = sh.decide(rowsT[idx, col + 1 : col + 1 + w], ids.take(idx))
                idx_l = idx.tolist()
                for j, d in zip(idx_l, drops):
                    if d is not None:
                        final[j] = d
                        dropped[j] = True
                counts.extend((idx_l[j], name) for j, name in cnt)
                col += 1 + w
            # a replayed keep is kept only if no record stage dropped it this time (fail closed)
            keep = ((rep == KEPT) | ((rep == 0) & ~dropped)) & (pre == _NO_PRE)
            kept_per_rank = torch.bincount(gr[keep], minlength=W).tolist()
            kept_rows = list(zip(gr[keep].tolist(), go[keep].tolist()))
            # account for this rank's own examples
            mine = torch.nonzero(gr == me).flatten().tolist()
            for j, name in counts:
                if int(gr[j]) == me:
                    exs[int(go[j])].count(name)
            out: List[Outcome] = []
            first_index_step = min((si for si, st in enumerate(g.stages) if isinstance(st, IndexStage)), default=-1)
            for j in mine:
                k = int(go[j])
                ex = exs[k]
                code = int(rep[j])
                if code:
                    g.ledger.record_replay()
                    failed = code == KEPT and plan.pre_drop[k] is not None
                    out.append((ex, plan.pre_drop[k][1] if failed else None if code == KEPT else Drop("replayed"), True))
                    continue
                d = final[j]
                step = first_index_step
                if d is None and plan.pre_drop[k] is not None:
                    step, d = plan.pre_drop[k]
                # as in Guard.decide: records dropped before the PII stage scrubbed them stay out of the quarantine
                withhold = d is not None and g._pii_pos is not None and step <= g._pii_pos
                g.ledger.record(ex, d, withhold=withhold)
                out.append((ex, d, False))
            g.ledger.busy_seconds += time.perf_counter() - t0
            self.rounds += 1
            return _Round(out, kept_per_rank, ended_all, kept_rows)

    def _tail(self, items: Iterable[Tuple[Example, bool]]) -> int:
        """Count kept examples that can never be yielded as dropped (``balance/uneven_tail``)."""
        led = self.guard.ledger
        n = 0
        with self.guard._lock:
            for ex, replayed in items:
                n += 1
                if replayed:
                    led.counts[TAIL_REASON + "_replayed"] += 1
                    continue
                led.kept -= 1
                led.dropped += 1
                led.by_reason[TAIL_REASON] += 1
                if led.remember:
                    led.memo.set(ex.id, DROPPED, ex.fingerprint)
                if led.quarantine is not None:
                    led.quarantine.write(ex, Drop(TAIL_REASON))
        return n

    # -- planning --------------------------------------------------------------------------------
    def _check_split(self, source: str, ids: Optional[Iterable[Any]], num_workers: int) -> None:
        """Positional ids follow the order the planning workers deliver chunks in: the same workers every time."""
        g = self.guard
        if ids is None and g.id_field is None and g.ledger.remember:
            check_split(g._splits, source, max(1, num_workers))

    def _plans(self, records: Iterable[Any], ids: Optional[Iterable[Any]], num_workers: int) -> Iterator[Plan]:
        """Chunk plans of this rank's stream; positional ids ``position * world + rank`` unless ``ids``."""
        planner = self.guard.planner()
        C = self.guard.chunk_size
        W, me = self.comm.world, self.comm.rank
        if num_workers > 0:
            if ids is not None:
                raise ConfigError("ids= cannot be combined with num_workers > 0; give the records an id field instead")
            loader = DataLoader(_PlanStream(records, planner, C), batch_size=None, num_workers=num_workers,
                                collate_fn=_identity)
            pos = 0
            for plan in loader:
                for ex in plan.examples:
                    if ex.id is None:
                        ex.id = pos * W + me
                    pos += 1
                yield plan
            return
        it = iter(records)
        id_it = iter(ids) if ids is not None else None
        pos = 0
        while True:
            buf: List[Any] = []
            buf_ids: List[Any] = []
            for rec in it:
                buf.append(rec)
                buf_ids.append(next(id_it) if id_it is not None else pos * W + me)
                pos += 1
                if len(buf) >= C:
                    break
            if not buf:
                return
            yield planner.plan(buf, buf_ids)
            if len(buf) < C:
                return

    def _rounds(self, plans: Iterator[Plan], source: str, *, positional: bool = False) -> Iterator[_Round]:
        """Collective rounds until every rank's plans are exhausted (``positional``: a wrapped stream whose ids
        are positions, refused when its records change between passes)."""
        ended = False
        while True:
            plan: Optional[Plan] = None
            err: Optional[BaseException] = None
            if not ended:
                try:
                    plan = next(plans)
                    self.guard._check_text_field(plan, source)  # a text field no record has: refused
                except StopIteration:
                    ended = True
                    try:
                        self.guard._check_text_field(None, source, end=True)
                    except Exception as exc:  # noqa: BLE001 - re-raised on every rank by _round
                        err = exc
                except Exception as exc:  # noqa: BLE001 - re-raised on every rank by _round
                    err = exc
            rnd = self._round(plan, ended, source, err, positional)
            yield rnd
            if all(rnd.ended):
                return

    # -- public streaming API --------------------------------------------------------------------
    def process(self, records: Iterable[Any], *, ids: Optional[Iterable[Any]] = None, source: str = "",
                num_workers: int = 0) -> Iterator[Outcome]:
        """Decide this rank's ``records`` with global dedup, yielding ``(example, drop, replayed)`` for each.

        Collective: every rank calls it with its own shard. Rounds continue until every rank's records
        are exhausted (no balancing: every outcome is yielded). Ids default to ``position * world + rank``.
        """
        self._check_split(source, ids, num_workers)
        plans = self._plans(records, ids, num_workers)
        try:
            for rnd in self._rounds(plans, source):
                yield from rnd.outcomes
        finally:
            if self.guard.ledger.quarantine is not None:
                self.guard.ledger.quarantine.flush()

    def _balanced(self, records: Iterable[Any], source: str, num_workers: int) -> Iterator[Any]:
        W = self.comm.world
        buf: Deque[Tuple[Example, bool]] = deque()
        sizes = [0] * W
        closed = False
        self._check_split(source, None, num_workers)
        plans = self._plans(records, None, num_workers)
        positional = self.guard.id_field is None and self.guard.ledger.remember
        try:
            for rnd in self._rounds(plans, source, positional=positional):
                kept = [(ex, rep) for ex, d, rep in rnd.outcomes if d is None]
                if closed:
                    self._tail(kept)
                else:
                    buf.extend(kept)
                    sizes = [a + b for a, b in zip(sizes, rnd.kept_per_rank)]
                    y = min(sizes)
                    for _ in range(y):
                        yield buf.popleft()[0].record
                    sizes = [a - y for a in sizes]
                    if any(e and s == 0 for e, s in zip(rnd.ended, sizes)):
                        closed = True
                        self._tail(buf)
                        buf.clear()
                if closed and not self.drain:
                    break
        finally:
            if self.guard.ledger.quarantine is not None:
                self.guard.ledger.quarantine.flush()

    def _scan_indexed(self, dataset: Any, source: str, num_workers: int) -> List[int]:
        """Decide a map-style dataset sharded by stride; every rank returns the same global kept indices."""
        n = len(dataset)
        C = self.guard.chunk_size
        W, me = self.comm.world, self.comm.rank
        local = len(range(me, n, W))
        rounds = math.ceil(len(range(0, n, W)) / C)
        chunks = _StridedChunkPlans(dataset, self.guard.planner(), C, me, W)
        if num_workers > 0 and len(chunks):
            it: Iterator[Plan] = iter(DataLoader(chunks, batch_size=None, num_workers=num_workers, collate_fn=_identity))
        else:
            it = (chunks[c] for c in range(len(chunks)))
        kept: List[int] = []
        for c in range(rounds):
            plan = next(it, None) if c * C < local else None
            err = None
            if plan is not None:
                try:  # a text field no record has is refused (on every rank, by _round)
                    self.guard._check_text_field(plan, source, end=(c + 1) * C >= local)
                except Exception as exc:  # noqa: BLE001
                    err = exc
            rnd = self._round(plan, plan is None, source, err)
            kept.extend((c * C + o) * W + r for r, o in rnd.kept_rows)
        if self.guard.ledger.quarantine is not None:
            self.guard.ledger.quarantine.flush()
        return kept

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
          (a ``datasets.Dataset`` via ``select``, a list of kept records, or a map-style dataset). Use a
          ``DistributedSampler`` on it, as usual, for equal steps.
        """
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError.bad("num_workers", num_workers, "a non-negative integer")
        if isinstance(data, DataLoader):
            raise ConfigError("DistributedGuard.wrap takes a dataset, not a DataLoader: wrap loader.dataset and build "
                              "the DataLoader on the result (num_workers=0 for a stream; a DistributedSampler for "
                              "a map-style dataset)")
        src = self.guard._new_source(source)
        try:
            import datasets as hf  # noqa: F401
        except ImportError:  # pragma: no cover - datasets is a core dependency
            hf = None
        if hf is not None and isinstance(data, (hf.DatasetDict, hf.IterableDatasetDict)):
            raise ConfigError(f"got a {type(data).__name__} with splits {list(data)}; wrap one split at a time")
        if hf is not None and isinstance(data, hf.Dataset):
            return data.select(self._scan_indexed(data, src, num_workers))
        if isinstance(data, (list, tuple)):
            kept = self._scan_indexed(data, src, num_workers)
            planner = self.guard.planner()
            if planner.has_rewriters:
                return [planner.rewrite(data[i], i) for i in kept]
            return [data[i] for i in kept]
        is_map = isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__")
        if is_map or (not isinstance(data, IterableDataset) and hasattr(data, "__getitem__") and hasattr(data, "__len__")):
            kept = self._scan_indexed(data, src, num_workers)
            return DistributedGuardedDataset(data, kept, self.guard.planner(), source=src)
        if hasattr(data, "__iter__"):
            return DistributedGuardedIterableDataset(data, self, source=src, num_workers=num_workers)
        raise ConfigError(f"cannot wrap a {type(data).__name__}: expected an IterableDataset or iterable stream (this "
                          f"rank's shard), or a map-style Dataset, datasets.Dataset or list (the full dataset)")

    # -- reports ---------------------------------------------------------------------------------
    def report(self) -> Dict[str, Any]:
        """The guard's report summed over every rank (collective; every rank gets the same report).

        Counts (``seen``, ``kept``, ``dropped``, reasons, counters) are sums; ``matches`` are concatenated;
        score summaries merge counts, min, max and mean, with quantiles from the pooled samples;
        ``distributed`` holds per-rank counts, index sizes and communication figures.
        """
        rep = self.guard.report()
        mine = {
            "seen": rep["seen"], "kept": rep["kept"], "dropped": rep["dropped"], "replayed": rep["replayed"],
            "dropped_by_reason": rep["dropped_by_reason"], "counts": rep["counts"], "matches": rep["matches"],
            "matches_truncated": rep["matches_truncated"], "busy_seconds": rep["busy_seconds"],
            "scores": rep["scores"], "score_values": rep["score_values"],
            "index": {self.guard.stages[si].name: {"stored": sh.stored(), "bytes": sh.memory_bytes()}
                      for si, sh in self._sharded.items()},
            "comm": self.comm.stats(), "rounds": self.rounds,
        }
        parts = self.comm.all_gather_json(to_jsonable(mine))
        out = dict(rep)
        for k in ("seen", "kept", "dropped", "replayed", "matches_truncated"):
            out[k] = sum(int(p[k]) for p in parts)
        for k in ("dropped_by_reason", "counts"):
            tot: Dict[str, int] = {}
            for p in parts:
                for name, v in p[k].items():
                    tot[name] = tot.get(name, 0) + int(v)
            out[k] = dict(sorted(tot.items()))
        by_stage: Dict[str, int] = {}
        for reason, v in out["dropped_by_reason"].items():
            by_stage[reason.split("/", 1)[0]] = by_stage.get(reason.split("/", 1)[0], 0) + v
        out["dropped_by_stage"] = dict(sorted(by_stage.items()))
        out["matches"] = [m for p in parts for m in p["matches"]]
        out["busy_seconds"] = max(float(p["busy_seconds"]) for p in parts)
        out["examples_per_second"] = round(out["seen"] / out["busy_seconds"], 1) if out["busy_seconds"] > 0 else None
        out["score_values"] = {}
        out["scores"] = {}
        for name in sorted({n for p in parts for n in p["scores"]}):
            vals = sorted(v for p in parts for v in p["score_values"].get(name, []))
            summ = [p["scores"][name] for p in parts if p["scores"].get(name, {}).get("count")]
            if not summ:
                out["scores"][name] = {"count": 0}
                continue
            cnt = sum(s["count"] for s in summ)
            entry = {"count": cnt, "min": min(s["min"] for s in summ), "max": max(s["max"] for s in summ),
                     "mean": sum(s["mean"] * s["count"] for s in summ) / cnt}
            for q in (5, 25, 50, 75, 95):
                entry[f"p{q:02d}"] = vals[min(len(vals) - 1, int(q / 100 * (len(vals) - 1) + 0.5))] if vals else None
            out["scores"][name] = entry
            out["score_values"][name] = vals
        for entry in out["stages"]:
            if entry["kind"] == "index":
                per = [p["index"].get(entry["name"], {}) for p in parts]
                entry["index_bytes"] = sum(int(x.get("bytes", 0)) for x in per)
                entry["indexed_examples"] = sum(int(x.get("stored", 0)) for x in per)
                entry["index_bytes_per_rank"] = [int(x.get("bytes", 0)) for x in per]
                if entry["indexed_examples"]:
                    entry["index_bytes_per_example"] = round(entry["index_bytes"] / entry["indexed_examples"], 1)
        out["distributed"] = {
            "world_size": self.comm.world, "backend": self.comm.backend,
            "per_rank": [{"seen": p["seen"], "kept": p["kept"], "dropped": p["dropped"], "replayed": p["replayed"],
                          "comm": p["comm"], "rounds": p["rounds"]} for p in parts],
        }
        return out

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """This rank's state: its index partitions, its ledger and the global sequence counters."""
        return {"format": FORMAT, "world_size": self.comm.world, "rank": self.comm.rank,
                "guard": self.guard.state_dict(),
                "sharded": {str(si): sh.state_dict() for si, sh in self._sharded.items()}}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on this rank (not collective). Refused with a :class:`StateError`, before
        anything changes, for another world size or rank, other settings, or a malformed or inconsistent state."""
        check_state(self, state)
        apply_state(self, state)

    def _world_message(self, saved_world: int, saved_rank: int) -> str:
        return (f"this checkpoint was saved by rank {saved_rank} of a world of {saved_world} processes, and is being "
                f"loaded by rank {self.comm.rank} of {self.comm.world}. Each rank stores its own part of the dedup "
                f"index (documents are owned by rank = key mod world size) and its own ledger of positional ids, so "
                f"the parts cannot be reused with another world size: resume with {saved_world} processes, or start "
                f"a fresh guard")

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
        self.guard.reset()
        for sh in self._sharded.values():
            sh.reset()

    def __repr__(self) -> str:
        return f"DistributedGuard({self.guard!r}, rank={self.comm.rank}, world_size={self.comm.world})"


class _PlanStream(IterableDataset):
    """Plans of chunks of a stream, computed in DataLoader workers (ids filled in by the main process)."""

    def __init__(self, records: Iterable[Any], planner: Planner, chunk: int) -> None:
        self.records = records
        self.planner = planner
        self.chunk = chunk

    def __iter__(self) -> Iterator[Plan]:
        buf: List[Any] = []
        for rec in self.records:
            buf.append(rec)
            if len(buf) >= self.chunk:
                yield self.planner.plan(buf, [None] * len(buf))
                buf = []
        if buf:
            yield self.planner.plan(buf, [None] * len(buf))


class _StridedChunkPlans(Dataset):
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


class DistributedGuardedDataset(GuardedDataset):
    """The globally kept examples of a map-style dataset (the same on every rank); use a DistributedSampler."""

    def __init__(self, dataset: Any, kept: Sequence[int], planner: Planner, *, source: str = "") -> None:
        self.dataset = dataset
        self.source = source
        self.kept = torch.tensor(list(kept), dtype=torch.int64)
        self._planner = planner if planner.has_rewriters else None


class DistributedGuardedIterableDataset(IterableDataset):
    """This rank's shard, globally deduplicated, yielding the same number of examples on every rank.

    Iterate it in the main process (``DataLoader(ds, batch_size=..., num_workers=0)``); every rank must
    iterate it, in step. Iterating again (a new epoch) replays the first decisions; without ``id_field`` the
    ids are positions, and a later pass that meets another record at a position (a reshuffling stream) raises
    :class:`~torchdataguard.errors.ConfigError` on every rank: set ``id_field``.
    """

    def __init__(self, dataset: Iterable[Any], dguard: DistributedGuard, *, source: str = "", num_workers: int = 0) -> None:
        self.dataset = dataset
        self.source = source
        self.num_workers = num_workers
        self._dguard = dguard

    def __iter__(self) -> Iterator[Any]:
        if get_worker_info() is not None:
            raise ConfigError("a distributed guarded stream decides with collectives, which only the main process of each "
                              "rank can make: use DataLoader(ds, num_workers=0), and DistributedGuard.wrap(data, "
                              "num_workers=N) to run the record stages in N workers")
        return self._dguard._balanced(self.dataset, self.source, self.num_workers)

    def __len__(self) -> int:
        raise TypeError("a distributed guarded stream filters as it streams, so its length is unknown until it ends")

    def __getstate__(self):
        raise TypeError("a distributed guarded stream holds the rank's index and cannot be sent to DataLoader workers; "
                        "use DataLoader(ds, num_workers=0) and DistributedGuard.wrap(data, num_workers=N)")

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "_dguard", "source", "num_workers"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
