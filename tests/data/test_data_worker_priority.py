"""DataLoader workers that run a guard's stream lower their CPU priority when ``guard.worker_nice`` asks for it
(data/priority.py; off by default since the fifteenth session); the main process never."""
from __future__ import annotations

import os

import pytest
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import torchdataguard as tdg
from torchdataguard.data.priority import WORKER_NICE, lower_worker_priority, worker_nice_of

pytestmark = pytest.mark.skipif(not hasattr(os, "nice"), reason="os.nice is POSIX only")


class _Stream(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        for i in range(w, 40, n):
            yield {"text": f"record number {i} with a few distinct words {i * 7}"}


def _niceness(rows):
    """collate: the nice value of the process that collates (the worker), once per batch."""
    return os.nice(0)


def _worker_niceness(guard, workers=2):
    return set(DataLoader(guard.wrap(_Stream()), batch_size=8, num_workers=workers, collate_fn=_niceness))


def test_workers_running_a_guard_lower_their_priority_when_asked_and_the_main_process_keeps_its_own():
    before = os.nice(0)
    guard = tdg.Guard([tdg.Normalize(), tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    guard.worker_nice = 10
    assert _worker_niceness(guard) == {min(19, before + 10)}
    assert os.nice(0) == before
    guard.close()


def test_by_default_the_workers_priority_is_left_alone():
    """A lowered worker yields to every process, not only to training: beside other busy processes a loop that
    waits for data ran 3.6x slower at 10 (benchmarks/worker_priority.py), so lowering is opt-in."""
    assert WORKER_NICE == 0
    before = os.nice(0)
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert _worker_niceness(guard) == {before}
    guard.close()


def test_a_persistent_worker_lowers_its_priority_once():
    before = os.nice(0)
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    guard.worker_nice = 3
    loader = DataLoader(guard.wrap(_Stream()), batch_size=8, num_workers=1, collate_fn=_niceness,
                        persistent_workers=True)
    first, second = set(loader), set(loader)  # two epochs in the same worker process
    assert first == second == {min(19, before + 3)}
    guard.close()


@pytest.mark.parametrize("bad", [-1, 20, 2.5, True, "10"])
def test_a_bad_worker_nice_is_refused_with_the_range(bad):
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    guard.worker_nice = bad
    with pytest.raises(tdg.ConfigError, match="worker_nice=.*from 0"):
        guard.wrap(_Stream())
    guard.close()


def test_the_main_process_is_never_lowered():
    before = os.nice(0)
    assert lower_worker_priority(10) is False
    assert worker_nice_of(object()) == WORKER_NICE
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(list(guard.wrap(_Stream()))) == 40  # num_workers=0: the stream runs in this process
    assert os.nice(0) == before
    guard.close()


def _burn(cpu):
    os.sched_setaffinity(0, {cpu})
    while True:
        pass


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not os.path.exists("/proc/thread-self/schedstat"),
                    reason="Linux: CPU affinity and the scheduler's wait times")
def test_a_starved_lowered_worker_still_paces_its_chunks_by_the_time_it_ran(tmp_path, monkeypatch):
    """A worker niced below a busy process on its CPU runs a fraction of the time: timed on the wall clock,
    every chunk looked 10 times slower than it was and stayed at 64 records."""
    import multiprocessing as mp

    from torchdataguard.data import pacing

    cpu = sorted(os.sched_getaffinity(0))[0]
    log = tmp_path / "sizes"
    done = pacing.ChunkPacer.done

    def logged(self, records):
        done(self, records)
        with open(log, "a") as fh:
            fh.write(f"{self.size}\n")

    monkeypatch.setattr(pacing.ChunkPacer, "done", logged)  # the fork-started worker inherits it

    class Many(IterableDataset):
        def __iter__(self):
            for i in range(1500):
                yield {"text": f"record {i} has a few distinct words {i * 7} and some more {i % 97} to read"}

    ctx = mp.get_context("fork")
    burner = ctx.Process(target=_burn, args=(cpu,), daemon=True)
    burner.start()
    try:
        guard = tdg.Guard([tdg.Normalize(), tdg.ExactDedup()], device="cpu", progress=False)
        guard.worker_nice = 19  # about 1.5% of the CPU next to the burner
        loader = DataLoader(guard.wrap(Many()), batch_size=64, num_workers=1, multiprocessing_context=ctx,
                            collate_fn=len, worker_init_fn=lambda _: os.sched_setaffinity(0, {cpu}))
        assert sum(loader) == 1500
        guard.close()
    finally:
        burner.kill()
        burner.join()
    sizes = [int(x) for x in log.read_text().split()]
    assert max(sizes) > 4 * pacing.FIRST, sizes


def test_worker_nice_set_after_wrapping_is_used_by_the_workers_that_start_later():
    before = os.nice(0)
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    ds = guard.wrap(_Stream())
    guard.worker_nice = 7  # read when the workers start, not by wrap()
    assert set(DataLoader(ds, batch_size=8, num_workers=2, collate_fn=_niceness)) == {min(19, before + 7)}
    guard.worker_nice = 25
    with pytest.raises(tdg.ConfigError, match="worker_nice=25"):
        list(DataLoader(ds, batch_size=8, num_workers=1, collate_fn=_niceness))
    guard.close()
