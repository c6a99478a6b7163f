"""How many records the next chunk of a guarded stream takes: few at first, then as many as fit a time budget.

A guarded stream decides a chunk at a time, and nothing of a chunk comes out before the whole chunk is
decided. Large chunks are cheapest per record (the index stages pay a few milliseconds per chunk), but in a
DataLoader worker a chunk of 16,384 short texts or 2M characters of e-mail is a second or more of work during
which that worker hands out no batch: the training loop stalls whenever the other workers' prefetched batches
run out first, and the first batch of an epoch waits for a whole chunk. So with ``Guard(chunk_size=None)``:

* the first chunk of a stream takes :data:`FIRST` records;
* in a DataLoader worker, each next chunk is sized from the last one's speed to take about
  :data:`WORKER_BUDGET_S` seconds (record stages, keys and the main process's decision), at most
  :data:`GROWTH` times larger or smaller than the last, between :data:`FIRST` and the stream's cap
  (16,384 records, and still cut at 2M characters);
* in the main process (no workers: nothing overlaps the guard's work anyway), chunks grow :data:`GROWTH`
  times each up to the cap, so the first batch comes early and later chunks cost as before.

Decisions do not depend on where chunks end. A number given as ``Guard(chunk_size=N)`` fixes every chunk at N.
Measured in ``benchmarks/guard_overhead.py --step-ms 50`` (see docs/speed.md).
"""
from __future__ import annotations

import time
from typing import Callable, Optional

__all__ = ["FIRST", "GROWTH", "WORKER_BUDGET_S", "ChunkPacer", "ran_clock"]

#: records in the first chunk of a stream
FIRST = 64
#: the most a chunk grows (or shrinks) from one to the next
GROWTH = 4
#: seconds of work a chunk aims at in a DataLoader worker
WORKER_BUDGET_S = 0.05


def _run_delay_s() -> float:
    """Seconds this thread has waited for a CPU while ready to run (Linux ``/proc/thread-self/schedstat``);
    0.0 where that cannot be read."""
    try:
        with open("/proc/thread-self/schedstat") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def ran_clock() -> float:
    """Seconds, less the time this thread waited for a CPU while ready to run (where Linux tells it).

    The clock of a DataLoader worker whose priority is lowered (see .priority): while training keeps the cores
    busy, such a worker waits for a CPU most of the time, by design, and on the wall clock each chunk would
    look many times slower than it is, so every chunk would shrink to :data:`FIRST` records (more chunks,
    each paying the index stages' per-chunk cost in the main process). Its waits for the main process's
    decision still count. Where the wait cannot be read, this is the wall clock.

    Example:
        >>> a = ran_clock(); b = ran_clock(); b >= a - 0.01
        True
    """
    return time.perf_counter() - _run_delay_s()


class ChunkPacer:
    """The size of a stream's next chunk, from the records and seconds the last one took.

    ``budget=None`` grows the size :data:`GROWTH` times per chunk up to ``cap``; a budget in seconds sizes each
    chunk to take about that long at the last chunk's speed.

    Example:
        >>> ticks = iter([0.0, 0.01, 1.0, 1.2])  # a clock: the first chunk takes 10 ms, the second 200 ms
        >>> p = ChunkPacer(16384, budget=0.05, clock=lambda: next(ticks))
        >>> p.size
        64
        >>> p.start(); p.done(64); p.size  # 6,400 records/s: 320 would take 50 ms, at most 4x the last
        256
        >>> p.start(); p.done(256); p.size  # 1,280 records/s: 64 records take 50 ms
        64
        >>> ramp = ChunkPacer(1000, budget=None)
        >>> [ramp.size] + [(ramp.start(), ramp.done(ramp.size), ramp.size)[2] for _ in range(3)]
        [64, 256, 1000, 1000]
    """

    def __init__(self, cap: int, *, budget: Optional[float], first: int = FIRST,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if cap < 1:
            raise ValueError(f"cap={cap!r}: expected a positive number of records per chunk")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget={budget!r}: expected seconds > 0, or None to grow without a budget")
        self.cap, self.budget, self.clock = cap, budget, clock
        self.size = max(1, min(first, cap))
        self._t0 = 0.0

    def start(self) -> None:
        """A chunk's work begins."""
        self._t0 = self.clock()

    def done(self, records: int) -> None:
        """A chunk of ``records`` was decided: size the next one."""
        last = max(records, 1)
        if self.budget is None:
            nxt = last * GROWTH
        else:
            elapsed = max(self.clock() - self._t0, 1e-6)
            nxt = int(last * self.budget / elapsed)
            nxt = max(last // GROWTH, min(nxt, last * GROWTH))
        self.size = max(min(FIRST, self.cap), min(nxt, self.cap))
