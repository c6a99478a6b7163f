"""A thin, timed layer over ``torch.distributed`` collectives (NCCL on GPU, gloo on CPU).

Every collective the distributed guard makes goes through :class:`Comm`, which

* picks the device collectives run on: the guard's CUDA device under NCCL, the CPU under gloo;
* degrades to identity operations when no process group is initialised (one process, world size 1),
  so the same code runs under ``torchrun`` and in a plain script;
* counts the calls, the bytes sent and the wall time spent in them (the communication cost reported by
  :meth:`torchdataguard.DistributedGuard.report` and the scaling benchmark).
"""
from __future__ import annotations

import json
import time
from typing import Any, List

import torch

from ..errors import ConfigError

__all__ = ["Comm"]


def _dist():
    import torch.distributed as dist

    return dist


class Comm:
    """Collectives over one process group, on the right device, with timing.

    Args:
        group: a ``torch.distributed`` process group, or ``None`` for the default group.
        device: the device the guard's indexes live on (results are returned there).

    Example:
        >>> c = Comm(None, torch.device("cpu"))   # no process group: a world of one
        >>> (c.rank, c.world)
        (0, 1)
        >>> c.all_gather(torch.tensor([3, 4])).tolist()
        [[3, 4]]
    """

    def __init__(self, group: Any = None, device: torch.device | str = "cpu") -> None:
        dist = _dist()
        self.group = group
        self.device = torch.device(device)
        self.active = bool(dist.is_available() and dist.is_initialized())
        if not self.active and group is not None:
            raise ConfigError(f"group={group!r} was given but torch.distributed is not initialised; call "
                              f"torch.distributed.init_process_group(...) first (torchrun sets the environment for it)")
        if self.active:
            self.rank = dist.get_rank(group)
            self.world = dist.get_world_size(group)
            self.backend = str(dist.get_backend(group)).lower()
        else:
            self.rank, self.world, self.backend = 0, 1, "none"
        if "nccl" in self.backend:
            if self.device.type == "cuda":
                self.comm_device = self.device
            else:
                self.comm_device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.comm_device = torch.device("cpu")
        self.seconds = 0.0
        self.calls = 0
        self.bytes_sent = 0

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _start(self) -> float:
        return time.perf_counter()

    def _stop(self, t0: float, nbytes: int) -> None:
        if self.comm_device.type == "cuda":
            torch.cuda.synchronize(self.comm_device)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.bytes_sent += int(nbytes)

    def stats(self) -> dict:
        """Calls, bytes sent by this rank and seconds spent in collectives so far."""
        return {"calls": self.calls, "bytes_sent": self.bytes_sent, "seconds": round(self.seconds, 6)}

    # -- collectives ---------------------------------------------------------------------------------
    def all_gather(self, t: torch.Tensor) -> torch.Tensor:
        """``[world, *t.shape]``: every rank's ``t`` (same shape and dtype on every rank), on ``self.device``."""
        if not self.active or self.world == 1:
            return t.unsqueeze(0).to(self.device)
        dist = _dist()
        t0 = self._start()
        x = t.to(self.comm_device).contiguous()
        outs = [torch.empty_like(x) for _ in range(self.world)]
        dist.all_gather(outs, x, group=self.group)
        res = torch.stack(outs).to(self.device)
        self._stop(t0, x.numel() * x.element_size())
        return res

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Element-wise ``sum``, ``max`` or ``min`` of ``t`` over the ranks (a new tensor on ``self.device``)."""
        if not self.active or self.world == 1:
            return t.clone().to(self.device)
        dist = _dist()
        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        if op not in ops:
            raise ConfigError(f"op={op!r}: expected one of {sorted(ops)}")
        t0 = self._start()
        x = t.to(self.comm_device).clone().contiguous()
        dist.all_reduce(x, op=ops[op], group=self.group)
        res = x.to(self.device)
        self._stop(t0, x.numel() * x.element_size())
        return res

    def all_gather_json(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, a JSON value (ids, small summaries); sent as UTF-8 bytes, never pickled."""
        if not self.active or self.world == 1:
            return [json.loads(json.dumps(obj))]
        data = json.dumps(obj, ensure_ascii=True).encode("ascii")
        n = self.all_gather(torch.tensor([len(data)], dtype=torch.int64)).flatten().tolist()
        buf = torch.zeros(max(n), dtype=torch.uint8)
        if data:
            buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        got = self.all_gather(buf).cpu()
        return [json.loads(got[r, : n[r]].numpy().tobytes().decode("ascii")) for r in range(self.world)]

    def barrier(self) -> None:
        if self.active and self.world > 1:
            _dist().barrier(group=self.group)
