"""A guard's DataLoader workers can yield the CPU to the training step: ``guard.worker_nice`` (opt-in).

A guarded stream's records are filtered in the DataLoader's worker processes (normalisation, quality rules, PII,
the dedup keys) while the model trains in the main process. With ``guard.worker_nice = N`` (1-19) a worker that
runs a guard's stream raises its own nice value by N once, so the kernel runs it on cores the other processes
leave idle. The main process (training, the guard's decision threads) keeps its priority. A worker's nice value
cannot be lowered again without privileges; the workers of the next epoch (new processes, unless
``persistent_workers=True``) start from the main process's.

It is off by default (:data:`WORKER_NICE` is 0) because a lowered worker yields to every process, not only to
training. Measured on the 2-core benchmark machine (fifteenth session, docs/speed.md):

* CPU training that keeps both cores busy (``benchmarks/guard_overhead_blocks.py --worker-nice N``): the five-stage
  guard's overhead was lower with the workers lowered (medians of 9 rounds: 3.4, 4.2, 5.3% at 19 against 8.8, 5.4,
  4.5% at 10 in three pairs; 6.5-8.2% at 0 in five runs of the fourteenth session): each millisecond a worker takes
  from a training thread makes the other wait at its next barrier;
* a loop that waits for data (the main process sleeps 20 ms a step for an accelerator's) beside two other busy
  processes (``benchmarks/worker_priority.py``): 29 ms a step with the workers' priority left alone, 106 ms at
  10 and 736 ms at 19, the loader starved by processes that have nothing to do with training.

So set it where the training process is what keeps the cores busy (CPU training on a machine of its own); leave
it at 0 where other jobs share the machine or the loop waits for data.
"""
from __future__ import annotations

import os
from typing import Any

from torch.utils.data import get_worker_info

__all__ = ["WORKER_NICE", "lower_worker_priority", "worker_nice_of"]

#: how much a DataLoader worker running a guard's stream raises its nice value (POSIX ``nice``; 0: not at all)
WORKER_NICE = 0

#: the process ids whose priority this module lowered (a forked worker inherits its parent's, which is empty)
_LOWERED: set = set()


def worker_nice_of(guard: Any) -> int:
    """The guard's ``worker_nice`` (a non-negative integer), else :data:`WORKER_NICE`.

    Example:
        >>> class G: worker_nice = 10
        >>> worker_nice_of(G()), worker_nice_of(object()) == WORKER_NICE == 0
        (10, True)
    """
    n = getattr(guard, "worker_nice", WORKER_NICE)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 19:
        from ..errors import ConfigError

        raise ConfigError(f"guard.worker_nice={n!r}: expected an integer from 0 (leave the DataLoader workers' CPU "
                          f"priority alone) to 19 (the lowest); the default is {WORKER_NICE}")
    return n


def lower_worker_priority(nice: int) -> bool:
    """In a DataLoader worker, raise this process's nice value by ``nice``, once per process; ``True`` when it
    did. Nothing in the main process, with ``nice == 0``, or where ``os.nice`` does not exist (Windows).

    Example:
        >>> lower_worker_priority(10)  # the main process: unchanged
        False
    """
    if nice <= 0 or not hasattr(os, "nice") or get_worker_info() is None:
        return False
    pid = os.getpid()
    if pid in _LOWERED:
        return False
    _LOWERED.add(pid)
    try:
        os.nice(nice)
    except OSError:  # a sandbox that forbids it: the work runs at the priority it had
        return False
    return True
