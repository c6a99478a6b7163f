"""Dedup indexes partitioned across ranks, deciding a global chunk with collectives.

Every rank sees the keys of the whole global chunk (gathered by
:class:`~torchdataguard.distributed.DistributedGuard`), in the same order, and stores only its own part of
the index, so memory per rank falls with the world size:

* **exact**: a digest is owned by rank ``digest mod world``. The owner looks the chunk's digests it owns
  up in its :class:`~torchdataguard.dedup.index.ExactIndex`; hits and the matched ids travel in one
  ``all_reduce``. Duplicates inside the chunk are then found identically on every rank (keep-first), and
  each owner inserts the first copies it owns.
* **near**: the kept documents are numbered in global insertion order (``seq``, identical on every rank)
  and document ``seq`` is stored by rank ``seq mod world`` in its
  :class:`~torchdataguard.dedup.index.LSHIndex` or, when it has few shingles, its
  :class:`~torchdataguard.dedup.smallsets.SmallSetIndex` (exact sets). Each rank queries its partitions with
  the whole chunk (candidates, then verification: on the stored signatures, or exact Jaccard on the sets);
  the best match per row of each kind is combined with one ``all_reduce(MAX)`` over ``(similarity rank,
  -seq)``, which picks the most similar document and, on a tie, the earliest one, exactly as the
  single-process stage does. The "waves" of :meth:`~torchdataguard.dedup.near.NearDedup.decide` (rows that
  share a band key or a prefix token with an earlier undecided row wait for its decision) are computed
  identically on every rank from the chunk's keys; the keys travel with the set of every row that has
  fewer than ``K3`` shingles (:func:`~torchdataguard.dedup.smallsets.exact_limits`).

Decisions therefore equal the single-process decisions on the interleaved stream, whatever the world size.
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

import torch

from ..core.stage import Drop, IndexStage
from ..dedup.exact import ExactDedup
from ..dedup.index import LSHIndex
from ..dedup.near import NearDedup, NearKeys
from ..dedup.setops import segment_owner
from ..errors import ConfigError, StateError
from ..registry import Registry
from .comm import Comm

__all__ = ["GlobalIds", "SHARDED", "ShardedExact", "ShardedNear", "ShardedStage", "sharded_for"]

_MASK63 = 0x7FFFFFFFFFFFFFFF

#: sharded implementations by the class name of the index stage they distribute
SHARDED: Registry[type] = Registry("sharded index stage")


class GlobalIds:
    """The ids of a global chunk's rows: an int64 tensor when every id is an integer, else a list."""

    def __init__(self, ints: Optional[torch.Tensor] = None, objs: Optional[List[Any]] = None) -> None:
        self.ints = ints
        self.objs = objs

    def __len__(self) -> int:
        return int(self.ints.numel()) if self.ints is not None else len(self.objs or [])

    @property
    def is_int(self) -> bool:
        return self.ints is not None

    def take(self, idx: torch.Tensor) -> "GlobalIds":
        if self.ints is not None:
            return GlobalIds(ints=self.ints[idx.to(self.ints.device)])
        return GlobalIds(objs=[self.objs[i] for i in idx.tolist()])  # type: ignore[index]

    def tolist(self) -> List[Any]:
        return self.ints.tolist() if self.ints is not None else list(self.objs or [])

    def get(self, j: int) -> Any:
        return int(self.ints[j]) if self.ints is not None else self.objs[j]  # type: ignore[index]


class ShardedStage(abc.ABC):
    """One index stage, partitioned across the ranks of a :class:`Comm`.

    Subclasses say how the stage's keys travel (``width`` int64 words per row) and decide a global chunk.
    ``decide`` is collective: every rank calls it with the same arguments, in the same order.
    """

    stage_class: ClassVar[type] = IndexStage

    def __init__(self, stage: IndexStage, comm: Comm) -> None:
        self.stage = stage
        self.comm = comm

    @property
    @abc.abstractmethod
    def width(self) -> int:
        """int64 words per row of encoded keys."""

    @abc.abstractmethod
    def encode(self, keys: Any, n: int) -> torch.Tensor:
        """The keyer's output for ``n`` rows as an int64 tensor ``[n, width]`` on the CPU."""

    @abc.abstractmethod
    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        """Decisions for the rows of a global chunk (in global order) and per-row counters ``(row, name)``."""

    def stored(self) -> int:
        """Documents stored in this rank's partition."""
        return int(getattr(getattr(self.stage, "index", None), "n", 0) or 0)

    def check_empty(self) -> None:
        if self.stored():
            raise ConfigError(
                f"stage {self.stage.name!r} already holds {self.stored()} documents from a single-process run; a "
                f"DistributedGuard partitions the index across ranks, so start from a fresh guard (guard.reset()) "
                f"or restore a distributed checkpoint with DistributedGuard.load(directory)")

    def memory_bytes(self) -> int:
        return self.stage.memory_bytes()

    def reset(self) -> None:
        """Forget the partition's extra state (the stage itself is reset by the guard)."""

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def check_state(self, stage_state: Mapping[str, Any], state: Any) -> List[str]:
        """Problems with this rank's saved partition: ``stage_state`` is the index stage's saved state and
        ``state`` what :meth:`state_dict` saved (nothing is changed)."""
        return [] if state in (None, {}) else [f"unexpected partition state with keys {sorted(state)}"]

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    # -- matched ids ---------------------------------------------------------------------------------
    def _exchange_ids(self, mine: List[Tuple[int, Any]], n: int, is_int: bool) -> List[Any]:
        """Combine ``(row, id)`` pairs that each rank knows into the list of ids of ``n`` rows (collective)."""
        if is_int:
            t = torch.zeros(n, dtype=torch.int64)
            if mine:
                rows = torch.tensor([j for j, _ in mine], dtype=torch.int64)
                t[rows] = torch.tensor([int(v) for _, v in mine], dtype=torch.int64)
            return self.comm.all_reduce(t, "sum").tolist()
        out: List[Any] = [None] * n
        for part in self.comm.all_gather_json([[j, v] for j, v in mine]):
            for j, v in part:
                out[int(j)] = v
        return out


def sharded_for(stage: IndexStage, comm: Comm) -> ShardedStage:
    """The sharded implementation of ``stage`` (raises a clear error for stages without one)."""
    name = type(stage).__name__
    if name not in SHARDED:
        raise ConfigError(f"index stage {stage.name!r} ({name}) has no distributed implementation; the ones that do "
                          f"are {SHARDED.names()}. Run it per rank with a plain Guard, or remove it from the guard")
    return SHARDED.get(name)(stage, comm)


@SHARDED.register("ExactDedup")
class ShardedExact(ShardedStage):
    """:class:`~torchdataguard.ExactDedup` with digests partitioned by ``digest mod world``."""

    stage_class = ExactDedup

    @property
    def width(self) -> int:
        return 2

    def encode(self, keys: torch.Tensor, n: int) -> torch.Tensor:
        return keys.to("cpu", torch.int64).reshape(n, 2)

    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        G = words.shape[0]
        out: List[Optional[Drop]] = [None] * G
        if G == 0:
            return out, []
        index = self.stage.index
        dev = index.device
        d = words.to(dev)
        owner = (d[:, 0] & _MASK63) % self.comm.world
        mine = torch.nonzero(owner == self.comm.rank).flatten()
        hits: List[Tuple[int, Any]] = []
        if mine.numel():
            found = index.lookup(d[mine])
            ok = found >= 0
            hits = [(j, index.ids.get(s)) for j, s in zip(mine[ok].tolist(), found[ok].tolist())]
        # one collective: hit flags and matched ids of every row (ids of non-hits stay 0 / None)
        if ids.is_int:
            t = torch.zeros(G, 2, dtype=torch.int64)
            if hits:
                rows = torch.tensor([j for j, _ in hits], dtype=torch.int64)
                t[rows, 0] = 1
                t[rows, 1] = torch.tensor([int(v) for _, v in hits], dtype=torch.int64)
            t = self.comm.all_reduce(t, "sum").cpu()
            hit_rows = torch.nonzero(t[:, 0] > 0).flatten().tolist()
            matched = {j: int(t[j, 1]) for j in hit_rows}
        else:
            matched = {}
            for part in self.comm.all_gather_json([[j, v] for j, v in hits]):
                for j, v in part:
                    matched[int(j)] = v
        hit = torch.zeros(G, dtype=torch.bool)
        for j, v in matched.items():
            hit[j] = True
            out[j] = Drop("duplicate/exact", matched=v, score=1.0)
        rest = torch.nonzero(~hit).flatten().to(dev)
        if rest.numel():
            _, inv = torch.unique(d[rest], dim=0, return_inverse=True)
            pos = torch.arange(rest.numel(), device=dev)
            first = torch.full((int(inv.max()) + 1,), rest.numel(), dtype=torch.int64, device=dev)
            first.scatter_reduce_(0, inv, pos, reduce="amin", include_self=True)
            first_of = first[inv]
            is_first = first_of == pos
            for j, f in zip(rest[~is_first].tolist(), rest[first_of[~is_first]].tolist()):
                out[j] = Drop("duplicate/exact", matched=ids.get(f), score=1.0)
            new = rest[is_first]
            new = new[owner[new] == self.comm.rank]
            if new.numel():
                index.insert(d[new], ids.take(new).tolist())
        return out, []


    def check_state(self, stage_state: Mapping[str, Any], state: Any) -> List[str]:
        problems = super().check_state(stage_state, state)
        d = stage_state.get("index", {}).get("digests") if isinstance(stage_state.get("index"), Mapping) else None
        if not isinstance(d, torch.Tensor) or d.dim() != 2 or d.shape[1] != 2:
            return problems + ["the saved exact index has no [n, 2] digests tensor"]
        owner = (d.to(torch.int64)[:, 0] & _MASK63) % self.comm.world
        stray = int((owner != self.comm.rank).sum())
        if stray:
            problems.append(f"{stray} stored digests belong to other ranks (digest mod {self.comm.world}): this part "
                            f"was saved by another rank or is corrupt")
        return problems


@SHARDED.register("NearDedup")
class ShardedNear(ShardedStage):
    """:class:`~torchdataguard.NearDedup` with kept documents stored round-robin by global insertion order.

    Both of the stage's indexes are partitioned: a kept document goes to the LSH index or to the exact-set
    index (few shingles) of rank ``seq mod world``. Each rank finds the best match of every row in its
    partitions (:meth:`~torchdataguard.NearDedup.wave_best`, ranked by keys holding the global ``seq``); one
    ``all_reduce(MAX)`` picks the global best of each kind, the owner of an exact winner sends its set
    sizes, and the choice between the two kinds is made identically on every rank, as the local stage does.
    """

    stage_class = NearDedup

    def __init__(self, stage: NearDedup, comm: Comm) -> None:
        super().__init__(stage, comm)
        self.num_perm = int(stage.cfg.num_perm)
        self.limits = stage.cfg.limits
        self.next_seq = 0
        dev = stage.index.device
        self._seq = torch.zeros(1024, dtype=torch.int64, device=dev)
        self._nseq = 0
        self._sseq = torch.zeros(1024, dtype=torch.int64, device=dev)
        self._nsseq = 0

    @property
    def seq(self) -> torch.Tensor:
        """Global insertion numbers of this rank's documents in the LSH index, in local slot order."""
        return self._seq[: self._nseq]

    @property
    def sseq(self) -> torch.Tensor:
        """Global insertion numbers of this rank's documents in the exact-set index, in local slot order."""
        return self._sseq[: self._nsseq]

    def _append(self, which: str, seqs: torch.Tensor) -> None:
        dev = self.stage.index.device
        buf, n = (self._seq, self._nseq) if which == "lsh" else (self._sseq, self._nsseq)
        if buf.device != dev:
            buf = buf.to(dev)
        need = n + seqs.numel()
        if need > buf.numel():
            new = torch.zeros(max(need, 2 * buf.numel()), dtype=torch.int64, device=dev)
            new[:n] = buf[:n]
            buf = new
        buf[n:need] = seqs.to(dev)
        if which == "lsh":
            self._seq, self._nseq = buf, need
        else:
            self._sseq, self._nsseq = buf, need

    def stored(self) -> int:
        return self.stage.indexed_count()  # type: ignore[attr-defined]

    @property
    def _nib_words(self) -> int:
        return (self.num_perm // 2 + 7) // 8

    @property
    def width(self) -> int:
        # signature words, valid, size, and the set of a row with fewer than K3 shingles
        return self._nib_words + 2 + (self.limits[2] - 1)

    def encode(self, keys: NearKeys, n: int) -> torch.Tensor:
        keys = keys.to("cpu")
        packed = LSHIndex.pack(keys.nib)
        nw = self._nib_words
        buf = torch.zeros(n, nw * 8, dtype=torch.uint8)
        buf[:, : packed.shape[1]] = packed
        words = torch.zeros(n, self.width, dtype=torch.int64)
        words[:, :nw] = buf.view(torch.int64)
        words[:, nw] = keys.valid.to(torch.int64)
        words[:, nw + 1] = keys.size
        lens = keys.off[1:] - keys.off[:-1]
        if keys.sets.numel():
            row = segment_owner(lens)
            col = torch.arange(keys.sets.numel()) - keys.off[row]
            words[row, nw + 2 + col] = keys.sets
        return words

    def _decode(self, words: torch.Tensor) -> NearKeys:
        nw = self._nib_words
        body = words[:, :nw].contiguous().view(torch.uint8)[:, : self.num_perm // 2]
        size = words[:, nw + 1].clone()
        block = words[:, nw + 2 :]
        has = size < self.limits[2]
        lens = torch.where(has, size, torch.zeros_like(size))
        inside = torch.arange(block.shape[1], device=words.device).unsqueeze(0) < lens.unsqueeze(1)
        off = torch.zeros(words.shape[0] + 1, dtype=torch.int64, device=words.device)
        off[1:] = torch.cumsum(lens, 0)
        return NearKeys(LSHIndex.unpack(body), words[:, nw] != 0, size, block[inside], off)

    def memory_bytes(self) -> int:
        return self.stage.memory_bytes() + (self._seq.numel() + self._sseq.numel()) * 8

    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        st: NearDedup = self.stage  # type: ignore[assignment]
        G = words.shape[0]
        out: List[Optional[Drop]] = [None] * G
        if G == 0:
            return out, []
        dev = st.index.device
        keys = self._decode(words.to(dev))
        counts = [(j, "near/no_content") for j in torch.nonzero(~keys.valid).flatten().tolist()]
        W, me = self.comm.world, self.comm.rank
        R = torch.nonzero(keys.valid).flatten()
        while R.numel():
            b = st.wave_best(keys, R, lsh_order=self.seq.to(dev), small_order=self.sseq.to(dev))
            best = self.comm.all_reduce(torch.stack([b.lkey, b.ekey], 1), "max").to(dev)
            lkey, ekey = best[:, 0], best[:, 1]
            hit = torch.nonzero((lkey > 0) | (ekey > 0)).flatten()
            if hit.numel():
                nh = hit.numel()
                iu = torch.zeros(nh, 2, dtype=torch.int64, device=dev)
                if bool((ekey[hit] > 0).any()):  # every rank knows this: the keys were reduced
                    mine_e = (b.ekey[hit] == ekey[hit]) & (ekey[hit] > 0)
                    iu[mine_e] = torch.stack([b.inter[hit][mine_e], b.union[hit][mine_e]], 1)
                    iu = self.comm.all_reduce(iu, "sum").to(dev)
                mine: List[Tuple[int, Any]] = []
                scores: List[float] = []
                cols = (lkey[hit], ekey[hit], iu[:, 0], iu[:, 1], b.lkey[hit], b.lslot[hit], b.ekey[hit], b.eslot[hit])
                for k, (lk, ek, inter, union, my_lk, lslot, my_ek, eslot) in enumerate(zip(*(c.tolist() for c in cols))):
                    ls = st.score_of(lk) if lk else -1.0
                    es = inter / union if ek else -1.0
                    if es >= ls:
                        scores.append(es)
                        if my_ek == ek:  # this rank holds the winning document
                            mine.append((k, st.small.ids.get(eslot)))
                    else:
                        scores.append(ls)
                        if my_lk == lk:
                            mine.append((k, st.index.ids.get(lslot)))
                matched = self._exchange_ids(mine, nh, ids.is_int)
                for k, j in enumerate(R[hit].tolist()):
                    out[j] = Drop("duplicate/near", matched=matched[k], score=scores[k])
                keep = torch.ones(R.numel(), dtype=torch.bool, device=dev)
                keep[hit] = False
                R = R[keep]
            if not R.numel():
                break
            blocked = st.blocked_by_earlier(keys, R)
            safe = R[~blocked]
            seqs = torch.arange(self.next_seq, self.next_seq + safe.numel(), dtype=torch.int64, device=dev)
            self.next_seq += int(safe.numel())
            own = (seqs % W) == me
            if bool(own.any()):
                rows_own = safe[own]
                to_lsh, to_small = st.store(keys, rows_own, ids.take(rows_own).tolist())
                self._append("lsh", seqs[own][to_lsh])
                self._append("small", seqs[own][to_small])
            R = R[blocked]
        return out, counts

    def reset(self) -> None:
        self.next_seq = 0
        self._nseq = 0
        self._nsseq = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"seq": self.seq.cpu().clone(), "sseq": self.sseq.cpu().clone(), "next_seq": int(self.next_seq)}

    def check_state(self, stage_state: Mapping[str, Any], state: Any) -> List[str]:
        if not isinstance(state, Mapping) or not isinstance(state.get("seq"), torch.Tensor):
            return ["the saved partition lacks its 'seq' tensor (global insertion numbers)"]
        nxt = state.get("next_seq")
        if isinstance(nxt, bool) or not isinstance(nxt, int) or nxt < 0:
            return [f"the saved partition's next_seq={nxt!r} is not a non-negative integer"]
        index = stage_state.get("index") if isinstance(stage_state, Mapping) else None
        sig = index.get("signatures") if isinstance(index, Mapping) else None
        stored = int(sig.shape[0]) if isinstance(sig, torch.Tensor) and sig.dim() == 2 else -1
        seq = state["seq"].to(torch.int64).flatten()
        problems = []
        if seq.numel() != stored:
            problems.append(f"the partition holds {stored} documents but lists {seq.numel()} sequence numbers; the "
                            f"files of different checkpoints were mixed")
        if seq.numel():
            if bool((seq[1:] <= seq[:-1]).any()) or int(seq[0]) < 0 or int(seq[-1]) >= nxt:
                problems.append(f"the sequence numbers are not increasing within [0, next_seq={nxt})")
            elif bool(((seq % self.comm.world) != self.comm.rank).any()):
                problems.append(f"some sequence numbers belong to other ranks (seq mod {self.comm.world} != "
                                f"{self.comm.rank}): this part was saved by another rank or is corrupt")
        return problems

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        st: NearDedup = self.stage  # type: ignore[assignment]
        if "sseq" not in state:
            raise StateError("near-dedup partition state lacks 'sseq' (the exact-set index's sequence numbers); it was "
                             "written by another version")
        seq = state["seq"].to(torch.int64).cpu()
        sseq = state["sseq"].to(torch.int64).cpu()
        for name, got, held in (("LSH", seq.numel(), st.index.n), ("exact-set", sseq.numel(), st.small.n)):
            if got != held:
                raise StateError(f"near-dedup partition holds {held} documents in its {name} index but its state lists "
                                 f"{got} sequence numbers; the files of different checkpoints were mixed")
        self._nseq = self._nsseq = 0
        self._append("lsh", seq)
        self._append("small", sseq)
        self.next_seq = int(state["next_seq"])
