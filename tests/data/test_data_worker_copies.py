"""An IterableDataset that every DataLoader worker reads whole is counted and warned about (each record would reach
training once per worker, and a dedup stage would report the copies as duplicates in the data)."""
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import torchdataguard as tdg
from torchdataguard.core.workercopies import WORKER_COPIES

TEXTS = [f"record number {i} says something else" for i in range(120)]


class Stream(IterableDataset):
    def __init__(self, texts, split: bool) -> None:
        self.texts, self.split = texts, split

    def __iter__(self):
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if (self.split and info is not None) else (0, 1)
        for i in range(w, len(self.texts), n):
            yield {"text": self.texts[i]}


def _read(stages, ds, workers=2):
    g = tdg.Guard(stages, progress=False, chunk_size=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        served = sum(1 for _ in DataLoader(g.wrap(ds), batch_size=None, num_workers=workers))
    copies_warned = [w for w in caught if "does not split its records across workers" in str(w.message)]
    return served, g.report(), copies_warned


def test_a_stream_every_worker_reads_whole_is_counted_and_warned_once():
    served, rep, warned = _read([tdg.Normalize()], Stream(TEXTS, split=False))
    assert served == 240  # what plain PyTorch serves too: the guard does not change it, it says so
    assert rep["counts"][WORKER_COPIES] == 120 and len(warned) == 1
    assert "get_worker_info" in str(warned[0].message) and "record number" not in str(warned[0].message)
    # with a dedup stage the copies are dropped as exact duplicates; the counter says why there are so many
    served, rep, warned = _read([tdg.ExactDedup()], Stream(TEXTS, split=False))
    assert served == 120 and rep["dropped_by_reason"] == {"duplicate/exact": 120}
    assert rep["counts"][WORKER_COPIES] == 120 and len(warned) == 1


def test_a_stream_split_across_workers_or_of_one_repeated_record_is_not_flagged():
    served, rep, warned = _read([tdg.ExactDedup()], Stream(TEXTS, split=True))
    assert served == 120 and WORKER_COPIES not in rep["counts"] and not warned
    served, rep, warned = _read([tdg.Normalize()], Stream(["the same text"] * 60, split=False))
    assert served == 120 and WORKER_COPIES not in rep["counts"] and not warned  # one content: no evidence
    served, rep, warned = _read([tdg.Normalize()], Stream(TEXTS, split=False), workers=0)
    assert served == 120 and WORKER_COPIES not in rep["counts"] and not warned
