"""Past one machine: global dedup and equal step counts under ``torch.distributed``, corpus scans on Ray.

* :class:`DistributedGuard` wraps a :class:`~torchdataguard.Guard` on every rank of a process group
  (NCCL or gloo): duplicates are dropped globally, every rank yields the same number of examples, and
  each rank checkpoints its own part of the index.
"""
from .comm import Comm
from .guard import TAIL_REASON, DistributedGuard, DistributedGuardedDataset, DistributedGuardedIterableDataset
from .sharded import SHARDED, ShardedExact, ShardedNear, ShardedStage

__all__ = ["Comm", "DistributedGuard", "DistributedGuardedDataset", "DistributedGuardedIterableDataset", "SHARDED",
           "ShardedExact", "ShardedNear", "ShardedStage", "TAIL_REASON"]
