"""A positional stream that reshuffles between passes is refused, never silently dropped as duplicates of
itself; reused ids within one pass of a stream with an id_field stay allowed and counted."""
from __future__ import annotations

import random
import re

import pytest
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import torchdataguard as tdg
from torchdataguard.distributed import DistributedGuard

N = 200


def texts(n=N):
    return [{"id": i, "text": f"record {i}: {' '.join(f'w{(i * 31 + j) % 997}' for j in range(12))}"}
            for i in range(n)]


class ShuffleBuffer(IterableDataset):
    """Reshuffles its records in every epoch, as a shuffle buffer with ``set_epoch`` does."""

    def __init__(self, recs, *, reshuffle=True):
        self.recs, self.reshuffle, self.epoch = recs, reshuffle, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = list(self.recs)
        random.Random(self.epoch if self.reshuffle else 0).shuffle(order)
        info = get_worker_info()  # each DataLoader worker reads its share, as a sharded stream does
        return iter(order if info is None else order[info.id::info.num_workers])


def guard(**kw):
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False, chunk_size=32, **kw)


def epoch(ds, workers=0):
    return [r for b in DataLoader(ds, batch_size=16, num_workers=workers, collate_fn=list) for r in b]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_reshuffled_positional_stream_is_refused_in_its_second_epoch(workers):
    g = guard()
    stream = ShuffleBuffer(texts())
    ds = g.wrap(stream)
    assert len(epoch(ds, workers)) == N
    stream.set_epoch(1)
    # before: every changed position was decided as a new example, and dedup dropped nearly all of epoch 2
    # as duplicates of epoch 1 (silent loss); now the first changed chunk is refused with the fix
    with pytest.raises(tdg.ConfigError, match="id_field") as err:
        epoch(ds, workers)
    assert "earlier pass" in str(err.value) and not re.search(r"w\d+ w\d+", str(err.value))  # never content
    rep = g.report()
    assert (rep["seen"], rep["dropped"]) == (N, 0) and "ids/reused" not in rep["counts"]  # nothing of it counted
    g.close()


def test_the_same_stream_in_the_same_order_replays_every_epoch():
    g = guard()
    stream = ShuffleBuffer(texts(), reshuffle=False)
    ds = g.wrap(stream)
    first = epoch(ds)
    for e in (1, 2):
        stream.set_epoch(e)
        assert epoch(ds) == first
    rep = g.report()
    assert (rep["seen"], rep["kept"], rep["replayed"]) == (N, N, 2 * N)
    g.close()


def test_a_reshuffled_stream_with_an_id_field_replays_by_id():
    g = guard(id_field="id")
    stream = ShuffleBuffer(texts())
    ds = g.wrap(stream)
    first = epoch(ds, 2)
    stream.set_epoch(1)
    second = epoch(ds, 2)
    assert sorted(r["id"] for r in second) == sorted(r["id"] for r in first) == list(range(N))
    rep = g.report()
    assert (rep["seen"], rep["kept"], rep["replayed"]) == (N, N, N)
    g.close()


def test_reused_ids_within_one_pass_of_a_stream_with_an_id_field_stay_allowed_and_counted():
    a = texts(50)
    b = [{"id": i, "text": f"second source row {i}: {' '.join(f'v{(i * 17 + j) % 991}' for j in range(12))}"}
         for i in range(50)]  # numbered from 0 too
    g = guard(id_field="id")
    ds = g.wrap(ShuffleBuffer(a + b, reshuffle=False))
    assert len(epoch(ds)) == 100
    assert len(epoch(ds)) == 100  # a second pass replays both sources
    rep = g.report()
    assert (rep["seen"], rep["kept"], rep["replayed"], rep["counts"]["ids/reused"]) == (100, 100, 100, 50)
    g.close()


def test_a_resumed_run_that_reads_a_reshuffled_stream_is_refused(tmp_path):
    g = guard()
    stream = ShuffleBuffer(texts())
    epoch(g.wrap(stream))
    g.save(tmp_path)
    g.close()
    h = guard()
    h.load(tmp_path)
    stream.set_epoch(3)
    with pytest.raises(tdg.ConfigError, match="id_field"):
        epoch(h.wrap(stream))
    assert h.report()["seen"] == N
    h.close()


def test_a_reshuffled_stream_is_refused_by_a_distributed_guard():
    dg = DistributedGuard(guard())  # a world of one
    stream = ShuffleBuffer(texts())
    ds = dg.wrap(stream)
    assert len(epoch(ds)) == N
    stream.set_epoch(1)
    with pytest.raises(tdg.ConfigError, match="id_field"):
        epoch(ds)
    assert dg.guard.report()["seen"] == N


def test_guard_process_may_still_meet_positions_again_with_other_records():
    # process()/filter() are not a wrapped stream: a later call with other records dedups them against the
    # earlier ones (its positions are reused with other content and counted under ids/reused)
    g = guard()
    first = g.filter(texts(40))
    again = g.filter(texts(40)[20:] + texts(60)[40:])
    assert len(first) == 40 and len(again) == 20
    assert g.report()["counts"]["ids/reused"] == 40


def test_a_reshuffled_datasets_stream_is_refused():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(texts()).to_iterable_dataset(num_shards=1).shuffle(seed=0, buffer_size=64)
    g = guard()
    wrapped = g.wrap(ds)
    assert len(list(wrapped)) == N
    wrapped.set_epoch(1)  # the shuffle buffer draws another order
    with pytest.raises(tdg.ConfigError, match="id_field"):
        list(wrapped)
    assert g.report()["seen"] == N
    keyed = guard(id_field="id")
    wrapped = keyed.wrap(ds)
    assert len(list(wrapped)) == N
    wrapped.set_epoch(2)
    assert len(list(wrapped)) == N and keyed.report()["replayed"] == N
