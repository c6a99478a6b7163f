"""DataLoader workers that run a guard's stream lower their CPU priority (data/priority.py); the main process not."""
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


def test_workers_running_a_guard_lower_their_priority_and_the_main_process_keeps_its_own():
    before = os.nice(0)
    guard = tdg.Guard([tdg.Normalize(), tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    assert _worker_niceness(guard) == {min(19, before + WORKER_NICE)}
    assert os.nice(0) == before
    guard.close()


def test_worker_nice_zero_leaves_the_workers_priority_alone():
    before = os.nice(0)
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    guard.worker_nice = 0
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
