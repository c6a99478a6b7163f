"""Warnings raised on the guard's own decision-service thread (DataLoader workers ask it) name the user's line, as
those raised on the main thread do. Before, the all-duplicates warning of a stream read by workers pointed at
Python's threading.py, and the worker-copies warning at torchdataguard's own code."""
import warnings

import torch
from torch.utils.data import DataLoader, IterableDataset

import torchdataguard as tdg


class Stream(IterableDataset):
    def __init__(self, rows, split=True):
        self.rows, self.split = rows, split

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        for i, r in enumerate(self.rows):
            if not self.split or info is None or i % info.num_workers == info.id:
                yield r


ROWS = [f"record number {i} of the stream" for i in range(30)]


def caught(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn()
    return got


def test_all_duplicates_warning_from_workers_names_the_users_line():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    list(DataLoader(g.wrap(Stream(ROWS)), batch_size=None, num_workers=2))
    try:
        got = caught(lambda: list(DataLoader(g.wrap(Stream(list(ROWS))), batch_size=None, num_workers=2)))
    finally:
        g.close()
    dup = [w for w in got if "was dropped as a duplicate" in str(w.message)]
    assert dup and {w.filename for w in dup} == {__file__}, [(w.filename, w.lineno) for w in dup]


def test_worker_copies_warning_names_the_users_line():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    try:
        got = caught(lambda: list(DataLoader(g.wrap(Stream(ROWS, split=False)), batch_size=None, num_workers=2)))
    finally:
        g.close()
    copies = [w for w in got if "does not split its records across workers" in str(w.message)]
    assert copies and {w.filename for w in copies} == {__file__}, [(w.filename, w.lineno) for w in copies]


def test_on_the_main_thread_the_line_is_the_users_too():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    g.wrap(list(ROWS))
    got = caught(lambda: g.wrap(list(reversed(ROWS))[:25], source="again"))
    dup = [w for w in got if "duplicate" in str(w.message)]
    assert dup and dup[0].filename == __file__
