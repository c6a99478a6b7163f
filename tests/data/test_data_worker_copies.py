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


def test_a_few_adjacent_repeats_in_a_large_chunk_of_a_split_stream_are_not_flagged():
    """A stream's chunk holds up to 16,384 rows; a correctly split stream in which one record in 300 repeats the
    one before it (round-robin, so the two copies sit at the same position of the two workers) met the old count
    of 16 copies per chunk in every large chunk and was warned about as read whole by every worker."""
    from torchdataguard.core.ledger import Ledger
    from torchdataguard.core.stage import Example
    from torchdataguard.core.workercopies import worker_copies

    n = 16_384
    led = Ledger()
    for p in range(n):  # worker 0 of 2 met positions 0 .. n-1 (ids 2p)
        led.record(Example(2 * p, f"w0 {p}", fingerprint=1_000_000 + p), None)
    # worker 1's chunk: its own records, except one in 300 equal to worker 0's at the same position
    fps = [1_000_000 + p if p % 300 == 0 else 5_000_000 + p for p in range(n)]
    rows = [Example(2 * p + 1, f"w1 {p}", fingerprint=fp) for p, fp in enumerate(fps)]
    pos = [2 * p + 1 for p in range(n)]
    assert worker_copies(led, rows, pos, [0] * n, 2, "") == 0
    # a stream every worker reads whole is still found, however large the chunk
    whole = [Example(2 * p + 1, f"w0 {p}", fingerprint=1_000_000 + p) for p in range(n)]
    assert worker_copies(led, whole, pos, [0] * n, 2, "") == n


def test_a_split_stream_with_rare_adjacent_repeats_is_not_warned_about_with_the_default_chunks():
    recs = [f"record {i} of a scraped corpus" for i in range(34_000)]
    for i in range(1, len(recs), 300):
        recs[i] = recs[i - 1]  # a page scraped twice in a row: a real duplicate, split round-robin
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)  # streams cut at 16,384 rows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        served = sum(1 for _ in DataLoader(g.wrap(Stream(recs, split=True)), batch_size=None, num_workers=2))
    rep = g.report()
    assert served == len(set(recs)) and rep["dropped_by_reason"] == {"duplicate/exact": len(recs) - len(set(recs))}
    assert WORKER_COPIES not in rep["counts"]
    assert not [w for w in caught if "does not split its records across workers" in str(w.message)]
