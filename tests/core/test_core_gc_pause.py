"""The cyclic garbage collector is paused while a chunk is planned and decided (core/gcpause.py), resumed after
it, and left alone when the user disabled it."""
from __future__ import annotations

import gc

import pytest
from torch.utils.data import IterableDataset

import torchdataguard as tdg
from torchdataguard.core.gcpause import gc_paused
from torchdataguard.core.stage import Filter


class _SeesCollector(Filter):
    """Keeps everything; notes whether the collector was enabled when each example was judged."""

    stage_name = "sees_gc"

    def __init__(self) -> None:
        self.seen = []

    def judge(self, ex):
        self.seen.append(gc.isenabled())
        return None


def _guard(stage):
    return tdg.Guard([stage, tdg.ExactDedup()], device="cpu", progress=False)


def test_gc_paused_restores_the_collector_and_leaves_a_disabled_one_alone():
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("a failing chunk")
    assert gc.isenabled()  # resumed after an error too
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the user's choice stands
    finally:
        gc.enable()


@pytest.mark.parametrize("path", ["process", "wrap_list", "wrap_stream", "wrap_map_style"])
def test_every_local_path_plans_with_the_collector_paused_and_resumes_it(path):
    stage = _SeesCollector()
    g = _guard(stage)
    texts = [f"text number {i}" for i in range(50)] + ["text number 3"]

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(texts)

    if path == "process":
        kept = [ex.record for ex, drop, _ in g.process(texts) if drop is None]
    elif path == "wrap_list":
        kept = g.wrap(texts)
    elif path == "wrap_stream":
        kept = list(g.wrap(Stream()))
    else:
        from torch.utils.data import Dataset

        class Table(Dataset):
            def __len__(self):
                return len(texts)

            def __getitem__(self, i):
                return texts[i]

        kept = [k for k in g.wrap(Table())]
    assert len(kept) == 50 and stage.seen and not any(stage.seen[:51]) and gc.isenabled()
