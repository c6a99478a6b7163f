"""Near dedup partitioned across ranks: kept documents stored round-robin by global insertion order
(see :mod:`.sharded`)."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..core.stage import Drop
from ..dedup import xp
from ..dedup.index import LSHIndex
from ..dedup.near import NearDedup
from ..dedup.near_keys import NearKeys
from ..dedup.setops import segment_owner
from ..errors import StateError
from .comm import Comm
from .sharded import SHARDED, GlobalIds, ShardedStage

__all__ = ["ShardedNear"]


def _tensor(a: Any) -> torch.Tensor:
    """``a`` as a tensor for a collective: itself when it is one (on the stage's device), else a CPU tensor
    sharing a NumPy array's memory (a stage on the CPU holds NumPy arrays)."""
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))


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
        self._seq = xp.zeros(1024, device=dev)
        self._nseq = 0
        self._sseq = xp.zeros(1024, device=dev)
        self._nsseq = 0

    @property
    def seq(self) -> Any:
        """Global insertion numbers of this rank's documents in the LSH index, in local slot order."""
        return self._seq[: self._nseq]

    @property
    def sseq(self) -> Any:
        """Global insertion numbers of this rank's documents in the exact-set index, in local slot order."""
        return self._sseq[: self._nsseq]

    def _append(self, which: str, seqs: Any) -> None:
        dev = self.stage.index.device
        buf, n = (self._seq, self._nseq) if which == "lsh" else (self._sseq, self._nsseq)
        buf = xp.as_device(buf, dev)
        need = n + xp.numel(seqs)
        if need > xp.numel(buf):
            new = xp.zeros(max(need, 2 * xp.numel(buf)), like=buf)
            new[:n] = buf[:n]
            buf = new
        buf[n:need] = xp.as_device(seqs, dev)
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
        keys = NearKeys(*(torch.as_tensor(xp.numpy_of(a)) for a in (keys.nib, keys.valid, keys.size, keys.sets, keys.off)))
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

    def _decode(self, words: Any) -> NearKeys:
        """The keys of encoded ``words`` (NumPy arrays or tensors: the kind ``words`` is)."""
        nw = self._nib_words
        body = xp.view(xp.contiguous(words[:, :nw]), "uint8")[:, : self.num_perm // 2]
        size = xp.copy(words[:, nw + 1])
        block = words[:, nw + 2 :]
        has = size < self.limits[2]
        lens = xp.where(has, size, 0)
        inside = xp.arange(block.shape[1], like=words)[None, :] < lens[:, None]
        off = xp.zeros(words.shape[0] + 1, like=words)
        off[1:] = xp.cumsum(lens)
        return NearKeys(LSHIndex.unpack(body), words[:, nw] != 0, size, block[inside], off)

    def memory_bytes(self) -> int:
        return self.stage.memory_bytes() + (xp.numel(self._seq) + xp.numel(self._sseq)) * 8

    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        st: NearDedup = self.stage  # type: ignore[assignment]
        G = words.shape[0]
        out: List[Optional[Drop]] = [None] * G
        if G == 0:
            return out, []
        dev = st.index.device
        keys = self._decode(xp.as_device(words, dev))  # the stage's kind: NumPy arrays on the CPU
        # settings under which nothing is compared are refused as by the local stage; every rank sees the same
        # global chunk, so every rank raises
        st.check_compares(keys.valid, self.examples, n=G)
        counts = [(j, "near/no_content") for j in xp.nonzero(~keys.valid).tolist()]
        W, me = self.comm.world, self.comm.rank
        R = xp.nonzero(keys.valid)
        while xp.numel(R):
            b = st.wave_best(keys, R, lsh_order=xp.as_device(self.seq, dev), small_order=xp.as_device(self.sseq, dev))
            best = xp.as_device(self.comm.all_reduce(torch.stack([_tensor(b.lkey), _tensor(b.ekey)], 1), "max"), dev)
            lkey, ekey = best[:, 0], best[:, 1]
            hit_mask = (lkey > 0) | (ekey > 0)
            wait = st.waiting(keys, R, hit_mask, ekey)  # the same answer on every rank: the keys were reduced
            hit = xp.nonzero(hit_mask & ~wait)
            if xp.numel(hit):
                nh = xp.numel(hit)
                iu = xp.zeros((nh, 2), like=lkey)
                if bool((ekey[hit] > 0).any()):  # every rank knows this: the keys were reduced
                    mine_e = (b.ekey[hit] == ekey[hit]) & (ekey[hit] > 0)
                    iu[mine_e, 0] = b.inter[hit][mine_e]
                    iu[mine_e, 1] = b.union[hit][mine_e]
                    iu = xp.as_device(self.comm.all_reduce(_tensor(iu), "sum"), dev)
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
                matched = self.exchange_ids(mine, nh, ids.is_int)
                for k, j in enumerate(R[hit].tolist()):
                    out[j] = Drop("duplicate/near", matched=matched[k], score=scores[k])
            safe = R[~hit_mask & ~wait]
            seqs = xp.arange(self.next_seq, self.next_seq + xp.numel(safe), like=safe)
            self.next_seq += xp.numel(safe)
            own = (seqs % W) == me
            if bool(own.any()):
                rows_own = safe[own]
                to_lsh, to_small = st.store(keys, rows_own, ids.take(_tensor(rows_own)).tolist())
                self._append("lsh", seqs[own][to_lsh])
                self._append("small", seqs[own][to_small])
            R = R[wait]
        return out, counts

    def reset(self) -> None:
        self.next_seq = 0
        self._nseq = 0
        self._nsseq = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"seq": xp.saved(self.seq), "sseq": xp.saved(self.sseq), "next_seq": int(self.next_seq)}

    def check_state(self, stage_state: Mapping[str, Any], state: Any) -> List[str]:
        if not isinstance(state, Mapping) or not isinstance(state.get("seq"), (torch.Tensor, np.ndarray)):
            return ["the saved partition lacks its 'seq' tensor (global insertion numbers)"]
        nxt = state.get("next_seq")
        if isinstance(nxt, bool) or not isinstance(nxt, int) or nxt < 0:
            return [f"the saved partition's next_seq={nxt!r} is not a non-negative integer"]
        index = stage_state.get("index") if isinstance(stage_state, Mapping) else None
        sig = index.get("signatures") if isinstance(index, Mapping) else None
        stored = int(sig.shape[0]) if isinstance(sig, (torch.Tensor, np.ndarray)) and sig.ndim == 2 else -1
        seq = torch.as_tensor(xp.numpy_of(state["seq"])).to(torch.int64).flatten()
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
        seq = xp.numpy_of(state["seq"]).astype(np.int64).reshape(-1)
        sseq = xp.numpy_of(state["sseq"]).astype(np.int64).reshape(-1)
        for name, got, held in (("LSH", seq.size, st.index.n), ("exact-set", sseq.size, st.small.n)):
            if got != held:
                raise StateError(f"near-dedup partition holds {held} documents in its {name} index but its state lists "
                                 f"{got} sequence numbers; the files of different checkpoints were mixed")
        self._nseq = self._nsseq = 0
        self._append("lsh", seq)
        self._append("small", sseq)
        self.next_seq = int(state["next_seq"])
