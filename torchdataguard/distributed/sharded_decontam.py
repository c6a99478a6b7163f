"""Decontamination under a distributed guard: the evaluation index replicated, documents checked where they are.

Unlike the dedup indexes, the evaluation index is not partitioned: every rank builds the same one from
the same evaluation sets (the guard's settings hold its digest, which :class:`DistributedGuard` compares
across ranks), so each rank checks its own documents against it. Only what the check found travels:

* :meth:`ShardedDecontam.encode` (on the rank that planned the rows) looks the rows' n-grams up and
  verifies the hits word for word (:meth:`~torchdataguard.Decontaminate.verify`); a row's key words are
  ``[rank, slot, verified n-grams, unverified hash hits]`` and its verified n-gram numbers wait in ``slot``;
* :meth:`ShardedDecontam.decide` (every rank, the global chunk) sends the verified n-gram numbers of the
  rows that reached the stage in one ``all_reduce`` (skipped when no row has any: the usual case), and
  every rank then judges every such row in global order
  (:meth:`~torchdataguard.Decontaminate.judge`). The boilerplate counts (``max_train_count``) are thus
  global and identical on every rank, and the decisions equal a single-process guard's on the interleaved
  stream; each rank accounts only for its own documents (dirty items, documents dropped), and
  :meth:`ShardedDecontam.merge_report` sums those into the report of
  :meth:`~torchdataguard.DistributedGuard.report`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..core.stage import Drop
from ..decontam.ngrams import NgramHashes
from ..decontam.stage import Decontaminate
from ..errors import ConfigError
from .sharded import SHARDED, GlobalIds, ShardedStage

__all__ = ["ShardedDecontam"]

_UNVERIFIED = "contamination/unverified_hash_hits"


@SHARDED.register("Decontaminate")
class ShardedDecontam(ShardedStage):
    """:class:`~torchdataguard.Decontaminate` with the evaluation index on every rank (see the module docs)."""

    stage_class = Decontaminate
    replicated = True

    def __init__(self, stage: Decontaminate, comm) -> None:
        super().__init__(stage, comm)
        #: the verified n-grams of the rows this rank encoded in the current round, by slot
        self.pending: List[np.ndarray] = []

    @property
    def width(self) -> int:
        return 4

    def stored(self) -> int:
        return self.stage.indexed_count()  # type: ignore[attr-defined]

    def check_empty(self) -> None:
        st: Decontaminate = self.stage  # type: ignore[assignment]
        if st.counts.any() or st.item_docs.any():
            raise ConfigError(f"stage {st.name!r} already judged training documents in a single-process run; a "
                              f"DistributedGuard needs its counts to start equal on every rank: start from a fresh "
                              f"guard (guard.reset()) or restore a distributed checkpoint with "
                              f"DistributedGuard.load(directory)")

    def encode(self, keys: NgramHashes, n: int) -> torch.Tensor:
        found, rejected = self.stage.verify(keys)  # type: ignore[attr-defined]
        self.pending = found
        words = torch.zeros(n, 4, dtype=torch.int64)
        words[:, 0] = self.comm.rank
        words[:, 1] = torch.arange(n)
        words[:, 2] = torch.tensor([f.size for f in found], dtype=torch.int64)
        words[:, 3] = torch.from_numpy(rejected)
        return words

    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        st: Decontaminate = self.stage  # type: ignore[assignment]
        G = words.shape[0]
        out: List[Optional[Drop]] = [None] * G
        w = words.cpu().numpy()
        counts = [(j, _UNVERIFIED) for j in np.flatnonzero(w[:, 3]).tolist() for _ in range(int(w[j, 3]))]
        lens = w[:, 2] if G else np.zeros(0, dtype=np.int64)
        total = int(lens.sum())
        if total:  # every rank computes the same total: all take part in the exchange, or none does
            off = np.zeros(G + 1, dtype=np.int64)
            np.cumsum(lens, out=off[1:])
            buf = torch.zeros(total, dtype=torch.int64)
            for j in np.flatnonzero((w[:, 0] == self.comm.rank) & (lens > 0)).tolist():
                buf[off[j] : off[j + 1]] = torch.from_numpy(self.pending[int(w[j, 1])])
            grams = self.comm.all_reduce(buf, "sum").cpu().numpy()
            for j in np.flatnonzero(lens).tolist():
                out[j] = st.judge(grams[off[j] : off[j + 1]], account=int(w[j, 0]) == self.comm.rank)
        self.pending = []
        return out, counts

    # -- the report ------------------------------------------------------------------------------------
    def report_part(self) -> Dict[str, Any]:
        st: Decontaminate = self.stage  # type: ignore[assignment]
        nz = np.flatnonzero(st.item_docs)
        return {"item_docs": [nz.tolist(), st.item_docs[nz].tolist()], "dropped": st.dropped.tolist(),
                "overlapping": st.overlapping.tolist()}

    def merge_report(self, out: Dict[str, Any], parts: List[Any]) -> None:
        """``out["contamination"]``: every rank's dirty items and documents summed."""
        st: Decontaminate = self.stage  # type: ignore[assignment]
        item_docs = np.zeros_like(st.item_docs)
        dropped = np.zeros_like(st.dropped)
        overlapping = np.zeros_like(st.overlapping)
        for p in parts:
            idx, val = p["item_docs"]
            np.add.at(item_docs, np.asarray(idx, dtype=np.int64), np.asarray(val, dtype=np.int64))
            dropped += np.asarray(p["dropped"], dtype=np.int64)
            overlapping += np.asarray(p["overlapping"], dtype=np.int64)
        out.update(st.report_entries(item_docs=item_docs, dropped=dropped, overlapping=overlapping))

    def reset(self) -> None:
        self.pending = []
