"""A guard's work in DataLoader workers yields the CPU to the training step.

A guarded stream's records are filtered in the DataLoader's worker processes (normalisation, quality rules, PII,
the dedup keys) while the model trains in the main process. On a machine whose cores training keeps busy (CPU
training, or a GPU loop whose Python thread launches the kernels), a worker that wakes up to plan a chunk takes a
core from one of the training threads, and the others wait for it at their next barrier: measured on a 2-core
machine with ``benchmarks/guard_overhead_blocks.py``, each millisecond of guard work cost training more than a
millisecond. So a worker that runs a guard's stream lowers its own CPU priority once (its nice value goes up by
``Guard.worker_nice``, :data:`WORKER_NICE` unless set): the kernel then runs it on cores training leaves idle,
and when training waits for a batch, the workers get the cores. Nothing changes where the cores are not busy.

Only the worker processes change: the main process (training, the guard's decision threads) keeps its priority.
A worker's nice value cannot be lowered again without privileges; the workers of the next epoch (new
processes, unless ``persistent_workers=True``) start from the main process's. Set ``guard.worker_nice = 0`` to
leave the workers' priority alone (where something else in them is latency-bound, say).
"""
from __future__ import annotations

import os
from typing import Any

from torch.utils.data import get_worker_info

__all__ = ["WORKER_NICE", "lower_worker_priority", "worker_nice_of"]

#: how much a DataLoader worker running a guard's stream raises its nice value (POSIX ``nice``; 0: not at all)
WORKER_NICE = 10

#: the process ids whose priority this module lowered (a forked worker inherits its parent's, which is empty)
_LOWERED: set = set()


def worker_nice_of(guard: Any) -> int:
    """The guard's ``worker_nice`` (a non-negative integer), else :data:`WORKER_NICE`.

    Example:
        >>> class G: worker_nice = 0
        >>> worker_nice_of(G()), worker_nice_of(object()) == WORKER_NICE
        (0, True)
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
