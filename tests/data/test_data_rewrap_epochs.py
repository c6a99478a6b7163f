"""Wrapping the same data object again each epoch replays its decisions instead of dropping it as duplicates."""
from __future__ import annotations

import pytest
from torch.utils.data import DataLoader, Dataset, IterableDataset

import torchdataguard as tdg

ROWS = [{"id": i, "text": f"example {i % 30} with a few words in it"} for i in range(90)]


class _Map(Dataset):
    def __len__(self):
        return len(ROWS)

    def __getitem__(self, i):
        return ROWS[i]


class _Stream(IterableDataset):
    def __iter__(self):
        yield from ROWS


def _count(wrapped):
    if isinstance(wrapped, DataLoader):
        return sum(len(b["id"]) for b in wrapped)
    return sum(1 for _ in wrapped) if isinstance(wrapped, IterableDataset) else len(wrapped)


@pytest.mark.parametrize("make", [_Map, _Stream, lambda: DataLoader(_Stream(), batch_size=4)],
                         ids=["map-style", "iterable", "dataloader"])
@pytest.mark.parametrize("id_field", [None, "id"])
def test_the_same_object_wrapped_each_epoch_replays(make, id_field):
    # before: the second wrap was a new source ("data1"), and every example of epoch 2 was dropped as a duplicate
    # of itself: epoch 2 trained on nothing, without a warning, and seen counted each example twice
    guard = tdg.Guard([tdg.ExactDedup()], id_field=id_field, device="cpu", progress=False)
    data = make()
    per_epoch = [_count(guard.wrap(data)) for _ in range(3)]
    rep = guard.report()
    assert per_epoch == [30, 30, 30]
    assert (rep["seen"], rep["kept"], rep["replayed"]) == (90, 30, 180)


def test_a_datasets_dataset_wrapped_each_epoch_replays():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert [len(guard.wrap(ds)) for _ in range(2)] == [30, 30]
    stream = ds.to_iterable_dataset()
    other = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert [sum(1 for _ in other.wrap(stream)) for _ in range(2)] == [30, 30]


@pytest.mark.filterwarnings("ignore:every one of the")  # warned about: see the last test
def test_another_object_or_a_named_source_is_still_a_new_source():
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(guard.wrap(_Map())) == 30
    assert len(guard.wrap(_Map())) == 0  # other data with the same content: duplicates across sources
    data = _Map()
    assert len(guard.wrap(data, source="test")) == 0
    assert len(guard.wrap(data)) == 0 and guard.report()["replayed"] == 90  # keeps the name "test"
    assert sorted(guard.sources) == ["", "data1", "test"]


@pytest.mark.parametrize("id_field", [None, "id"])
def test_a_list_with_the_same_records_wrapped_each_epoch_replays(id_field):
    # before: a list was a new source each time, so guard.wrap(records) in an epoch loop returned [] from the
    # second epoch on (every record a duplicate of itself), with or without id_field
    guard = tdg.Guard([tdg.ExactDedup()], id_field=id_field, device="cpu", progress=False)
    per_epoch = [len(guard.wrap(list(ROWS))) for _ in range(2)] + [len(guard.wrap(tuple(ROWS)))]
    rep = guard.report()
    assert per_epoch == [30, 30, 30]
    assert (rep["seen"], rep["kept"], rep["replayed"]) == (90, 30, 180)
    assert list(guard.sources) == [""]


@pytest.mark.filterwarnings("ignore:every one of the")  # warned about: see the last test
def test_a_list_with_other_records_is_a_new_source():
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(guard.wrap(ROWS)) == 30
    assert len(guard.wrap(ROWS[:60])) == 0  # other content: its examples are duplicates of the first list's
    assert len(guard.wrap(ROWS + ROWS[:1])) == 0  # one record more: another source too
    assert sorted(guard.sources) == ["", "data1", "data2"]


TEXTS = [f"note {i}: call me at alice{i}@example.com about topic {i % 7}" for i in range(60)] + ["the same line"] * 3


@pytest.mark.parametrize("distributed", [False, True], ids=["guard", "distributed-guard"])
@pytest.mark.parametrize("as_dicts", [False, True], ids=["texts", "dicts"])
def test_a_list_shuffled_in_place_each_epoch_replays_in_its_new_order(distributed, as_dicts):
    # before: the same records in another order were a new source, so a loop that shuffles its list each epoch and
    # wraps it got [] from the second epoch on: every record dropped as a duplicate of itself
    import random
    records = [{"i": i, "text": t} for i, t in enumerate(TEXTS)] if as_dicts else list(TEXTS)
    guard = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], text_field="text" if as_dicts else None,
                      device="cpu", progress=False)
    if distributed:
        guard = tdg.DistributedGuard(guard)  # world of one: no process group
    first = guard.wrap(records)
    assert len(first) == 61 and not any("@example.com" in str(r) for r in first)
    for epoch in range(1, 3):
        random.Random(epoch).shuffle(records)
        out = guard.wrap(records)
        # the kept records of the shuffled list, scrubbed, in the shuffled order: one copy of the repeated line
        expected = [r for r in records if (r["text"] if as_dicts else r) != "the same line"]
        key = (lambda r: r["text"]) if as_dicts else (lambda r: r)
        assert [key(r).split(":")[0] for r in out if key(r) != "the same line"] == [key(r).split(":")[0] for r in expected]
        assert sum(key(r) == "the same line" for r in out) == 1
        assert not any("@example.com" in str(r) for r in out)
    rep = guard.report()
    assert (rep["seen"], rep["kept"], rep["replayed"]) == (63, 61, 126)
    assert list(guard.guard.sources if distributed else guard.sources) == [""]


def test_permutation_ids_pair_equal_records_in_order_and_refuse_other_records():
    import numpy as np

    from torchdataguard.data.dispatch import permutation_ids
    u = lambda xs: np.array(xs, dtype=np.uint64)  # noqa: E731
    assert permutation_ids(u([1, 2, 3]), u([1, 2, 3])) is None
    assert permutation_ids(u([1, 2, 2, 3]), u([2, 3, 1, 2])) == [1, 3, 0, 2]
    with pytest.raises(ValueError):
        permutation_ids(u([1, 2, 3]), u([1, 2, 4]))
    with pytest.raises(ValueError):
        permutation_ids(u([1, 2, 3]), u([1, 2]))


def test_data_built_anew_whose_every_record_is_a_duplicate_is_warned_about_with_the_fix():
    # before: a Dataset created inside the epoch loop was a new source each epoch, every record was dropped as a
    # duplicate of the first epoch's, and epoch 2 trained on nothing without a word
    import warnings

    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first wrap, and a split that shares some records, warn about nothing
        assert len(guard.wrap(_Map())) == 30
        assert len(guard.wrap(ROWS[:10] + [{"id": -k, "text": f"a new record {k}"} for k in range(1, 6)],
                              source="test")) == 5  # 10 of 15 leak: reported as leakage, under 90%: no warning
    with pytest.warns(UserWarning, match=r"every one of the 90 records .*source 'data2'.*duplicate/exact: 90.*"
                                         r"source='' to replay") as got:
        assert len(guard.wrap(DataLoader(_Map(), batch_size=4)).dataset) == 0
    assert len(got) == 1 and got[0].filename == __file__  # once, at the user's line
    assert len(guard.wrap(_Map(), source="")) == 30  # the fix the warning names: replayed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(guard.wrap(ROWS[:5])) == 0  # fewer than 10 records: too few to say


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_stream_built_anew_each_epoch_is_warned_about_at_its_end(num_workers):
    # a stream is decided as it is read: the warning comes when its pass ends (in the main process, from the counts
    # the decider keeps per source), once, and replaying with source='' gives the epoch its records back
    class Fresh(IterableDataset):
        def __iter__(self):
            from torch.utils.data import get_worker_info
            info = get_worker_info()
            rows = ROWS if info is None else ROWS[info.id::info.num_workers]
            yield from rows

    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    first = sum(len(b["id"]) for b in DataLoader(guard.wrap(Fresh()), batch_size=8, num_workers=num_workers))
    assert first == 30
    with pytest.warns(UserWarning, match=r"every one of the \d+ records of source 'data1'.*duplicate/exact") as got:
        assert sum(len(b["id"]) for b in DataLoader(guard.wrap(Fresh()), batch_size=8, num_workers=num_workers)) == 0
    assert sum("every one of the" in str(w.message) for w in got) == 1
    if num_workers == 0:
        assert got[0].filename == __file__
    again = DataLoader(guard.wrap(Fresh(), source=""), batch_size=8, num_workers=num_workers)
    assert sum(len(b["id"]) for b in again) == 30


@pytest.mark.parametrize("make", [_Map, _Stream], ids=["map-style", "iterable"])
def test_data_built_anew_is_warned_about_when_a_filter_also_drops_a_record(make):
    # before: a record dropped for another reason (a junk row the quality filter drops again in every epoch, as real
    # data has) hid the warning: epoch 2 trained on nothing without a word
    class Junk(tdg.Filter):
        stage_name = "junk"

        def judge(self, ex):
            return "row" if ex.record["id"] == 0 else None

    guard = tdg.Guard([Junk(), tdg.ExactDedup()], device="cpu", progress=False)
    assert _count(guard.wrap(make())) == 30  # row 30 has row 0's text
    with pytest.warns(UserWarning, match=r"every one of the 90 records of source 'data1' was dropped \(1 for other "
                                         r"reasons\), 89 as duplicates .*duplicate/exact: 89"):
        assert _count(guard.wrap(make())) == 0


def test_a_list_shuffled_after_a_saved_state_was_loaded_replays(tmp_path):
    # before: a resumed run knew no list yet, so the shuffled list was its first source numbered anew by position:
    # each record met a saved id with other content, was decided again and dropped as a duplicate of itself
    import random
    records = [{"i": i, "text": f"row {i % 20} of the list"} for i in range(30)]
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(guard.wrap(records)) == 20
    guard.save(tmp_path)
    resumed = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    resumed.load(tmp_path)
    random.Random(0).shuffle(records)
    out = resumed.wrap(records)
    assert sorted(r["i"] for r in out) == list(range(20))
    random.Random(1).shuffle(records)
    assert sorted(r["i"] for r in resumed.wrap(records)) == list(range(20))
    assert (resumed.report()["seen"], resumed.report()["replayed"]) == (30, 60) and list(resumed.sources) == [""]


@pytest.mark.parametrize("source", ["", "train"])
def test_a_named_list_shuffled_in_place_each_epoch_replays(source):
    # before: with source= given (as the all-duplicates warning advises) the list was not looked up by content, so the
    # shuffled list replayed by position: every record met its slot's id with other content, was decided again and
    # dropped as a duplicate of itself (0 of 30 kept, no warning: the first source is never warned about)
    import random
    records = [f"example {i} with a few words in it" for i in range(30)]
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(guard.wrap(records, source=source)) == 30
    random.Random(0).shuffle(records)
    assert guard.wrap(records, source=source) == records
    assert guard.report()["replayed"] == 30 and list(guard.sources) == [source]


def test_a_stream_built_anew_each_epoch_under_a_distributed_guard_is_warned_about():
    # before: the sharded decider kept no counts per source, so a DistributedGuard never warned about a stream
    dg = tdg.DistributedGuard(tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False))  # a world of one
    assert sum(1 for _ in dg.wrap(_Stream())) == 30
    with pytest.warns(UserWarning, match=r"every one of the 90 records of source 'data1'.*duplicate/exact: 90"):
        assert sum(1 for _ in dg.wrap(_Stream())) == 0


def test_a_source_mostly_duplicates_is_warned_about_and_a_partly_leaking_split_is_not():
    # review of the thirteenth session: a list shuffled with one record changed is a new source; 29 of its 30
    # records were dropped and one kept, so the all-duplicates warning stayed silent
    import random
    import warnings

    recs = [f"record number {i} about a topic" for i in range(30)]
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(guard.wrap(recs)) == 30
    changed = list(recs)
    random.Random(1).shuffle(changed)
    changed[0] = "a changed record"
    with pytest.warns(UserWarning, match=r"29 of the 30 records of source 'data1' \(97%\) were dropped as duplicates"
                                         r".*only 1 of it will train"):
        assert len(guard.wrap(changed)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # half of a test split inside the training data: leakage, reported, no warning
        half = recs[:15] + [f"a test record {i}" for i in range(15)]
        assert len(guard.wrap(half, source="test")) == 15


def test_a_guard_remembers_the_latest_lists_only():
    from torchdataguard.data import dispatch

    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    for k in range(dispatch.REMEMBERED_LISTS + 5):
        guard.wrap([f"list {k} record {i}" for i in range(3)])
    assert len(dispatch._WRAPPED_CONTENT[guard]) == dispatch.REMEMBERED_LISTS
    last = [f"list {dispatch.REMEMBERED_LISTS + 4} record {i}" for i in range(3)]
    assert len(guard.wrap(last[::-1])) == 3  # the latest list, shuffled: still replayed
