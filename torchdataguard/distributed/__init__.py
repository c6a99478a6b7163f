"""Past one machine: global dedup and equal step counts under ``torch.distributed``.

* :class:`DistributedGuard` gives a :class:`~torchdataguard.Guard` the sharded decider
  (:mod:`.decider`) on every rank of a process group (NCCL or gloo): duplicates are dropped globally,
  every rank yields the same number of examples, and each rank checkpoints its own part of the index.
* Importing this package registers the sharded index stages (:mod:`.sharded_exact`, :mod:`.sharded_near`,
  :mod:`.sharded_decontam`: the evaluation index of decontamination, the same on every rank)
  and the wrap handlers of a distributed guard (:mod:`.wrap`).
"""
from . import sharded_decontam, sharded_exact, sharded_near, wrap  # noqa: F401  (register sharded stages, wrap handlers)
from .comm import Comm
from .decider import TAIL_REASON, EncodedKeys, ShardedDecider
from .guard import DistributedGuard
from .sharded import SHARDED, ShardedStage
from .sharded_decontam import ShardedDecontam
from .sharded_exact import ShardedExact
from .sharded_near import ShardedNear
from .wrap import DistributedGuardedIterableDataset

__all__ = ["Comm", "DistributedGuard", "DistributedGuardedIterableDataset", "EncodedKeys", "SHARDED",
           "ShardedDecider", "ShardedDecontam", "ShardedExact", "ShardedNear", "ShardedStage", "TAIL_REASON"]
