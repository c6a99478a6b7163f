"""Exact dedup partitioned across ranks: a digest is owned by rank ``digest mod world`` (see :mod:`.sharded`)."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..core.stage import Drop
from ..dedup import xp
from ..dedup.exact import ExactDedup, exact_digests, first_rows
from .sharded import SHARDED, GlobalIds, ShardedStage

__all__ = ["ShardedExact"]

_MASK63 = 0x7FFFFFFFFFFFFFFF


@SHARDED.register("ExactDedup")
class ShardedExact(ShardedStage):
    """:class:`~torchdataguard.ExactDedup` with digests partitioned by ``digest mod world``."""

    stage_class = ExactDedup

    @property
    def width(self) -> int:
        return 2

    def encode(self, keys: Any, n: int) -> torch.Tensor:
        return torch.as_tensor(xp.numpy_of(exact_digests(keys))).to("cpu", torch.int64).reshape(n, 2)

    def decide(self, words: torch.Tensor, ids: GlobalIds) -> Tuple[List[Optional[Drop]], List[Tuple[int, str]]]:
        G = words.shape[0]
        out: List[Optional[Drop]] = [None] * G
        if G == 0:
            return out, []
        index = self.stage.index
        d = xp.as_device(words, index.device)  # the index's kind: NumPy arrays on the CPU
        owner = xp.numpy_of((d[:, 0] & _MASK63) % self.comm.world)
        mine = np.flatnonzero(owner == self.comm.rank)
        hits: List[Tuple[int, Any]] = []
        if mine.size:
            found = xp.numpy_of(index.lookup(d[xp.asarray(mine, like=d)]))
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
        hit = np.zeros(G, dtype=bool)
        for j, v in matched.items():
            hit[j] = True
            out[j] = Drop("duplicate/exact", matched=v, score=1.0)
        rest = np.flatnonzero(~hit)
        if rest.size:
            first_of = first_rows(xp.numpy_of(d)[rest])  # position in rest of each row's first copy
            is_first = first_of == np.arange(rest.size)
            for j, f in zip(rest[~is_first].tolist(), rest[first_of[~is_first]].tolist()):
                out[j] = Drop("duplicate/exact", matched=ids.get(f), score=1.0)
            new = rest[is_first]
            new = new[owner[new] == self.comm.rank]
            if new.size:
                index.insert(d[xp.asarray(new, like=d)], ids.take(torch.from_numpy(new)).tolist())
        return out, []

    def check_state(self, stage_state: Mapping[str, Any], state: Any) -> List[str]:
        problems = super().check_state(stage_state, state)
        d = stage_state.get("index", {}).get("digests") if isinstance(stage_state.get("index"), Mapping) else None
        if not isinstance(d, (torch.Tensor, np.ndarray)) or d.ndim != 2 or d.shape[1] != 2:
            return problems + ["the saved exact index has no [n, 2] digests tensor"]
        owner = (xp.numpy_of(d).astype(np.int64)[:, 0] & _MASK63) % self.comm.world
        stray = int((owner != self.comm.rank).sum())
        if stray:
            problems.append(f"{stray} stored digests belong to other ranks (digest mod {self.comm.world}): this part "
                            f"was saved by another rank or is corrupt")
        return problems
