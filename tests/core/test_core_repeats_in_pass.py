"""A record that repeats both the id and the content of an earlier record in a guard's first pass is served
again as the same example (ids name examples), so a duplicate row under one id reaches training without a
decision of its own: the pass ends with a warning that counts them and names the fix."""
import time
import warnings

import pytest
import torch

import torchdataguard as tdg

ROWS = [{"id": 1, "text": "the first record of this small stream"},
        {"id": 2, "text": "a second record, not like the first at all"},
        {"id": 1, "text": "the first record of this small stream"}]


def _guard():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], id_field="id", device="cpu", progress=False)


@pytest.mark.parametrize("chunk", [None, 1], ids=["one-chunk", "chunk-per-record"])
def test_a_repeated_id_and_content_in_the_first_pass_is_served_again_with_a_warning(chunk):
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], id_field="id", device="cpu", progress=False, chunk_size=chunk)
    with pytest.warns(UserWarning, match=r"1 record repeated both the id \(the id field 'id'\).*--id-field ''"):
        out = g.filter(ROWS)
    rep = g.report()
    assert len(out) == 3 and (rep["seen"], rep["kept"], rep["replayed"]) == (2, 2, 1)


def test_positional_ids_drop_the_repeat_and_warn_about_nothing():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = g.filter(ROWS)
    assert out == ROWS[:2] and g.report()["dropped_by_reason"] == {"duplicate/exact": 1}


def test_a_later_pass_replays_without_a_warning():
    g = _guard()
    with pytest.warns(UserWarning):
        g.filter(ROWS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(g.filter(ROWS[:2])) == 2  # the next epoch: replays are what ids are for
    assert g.report()["replayed"] == 3


class _Rows(torch.utils.data.Dataset):
    def __len__(self):
        return len(ROWS)

    def __getitem__(self, i):
        return ROWS[i]


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter(ROWS)


@pytest.mark.parametrize("kind", ["map-style", "stream", "datasets"])
def test_every_way_of_use_that_sees_the_whole_pass_warns_of_repeats_in_it(kind):
    """Only a list (guard.filter, guard.process) warned until the fifteenth session: a map-style dataset, a torch
    stream or a datasets.Dataset served the repeated row again without a word, and yielded 3 where the report
    said kept 2."""
    import datasets

    g = _guard()
    data = {"map-style": _Rows, "stream": _Stream, "datasets": lambda: datasets.Dataset.from_list(ROWS)}[kind]()
    wrapped = g.wrap(data) if kind == "stream" else None
    with pytest.warns(UserWarning, match=r"1 record repeated both the id \(the id field 'id'\)"):
        if wrapped is None:  # decided when wrapped
            wrapped = g.wrap(data)
        out = list(wrapped)
    rep = g.report()
    assert len(out) == 3 and (rep["seen"], rep["kept"], rep["replayed"]) == (2, 2, 1)
    with warnings.catch_warnings():  # a later epoch replays without a warning
        warnings.simplefilter("error")
        assert len(list(wrapped)) == 3


def test_a_stream_broken_off_in_its_first_epoch_replays_the_next_without_a_warning():
    g = _guard()
    wrapped = g.wrap(_Stream())
    for _ in wrapped:  # training stopped early (max_steps): the first pass never ended
        break
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(wrapped)) == 3  # the repeat is seen only in a first pass, and this is none


class _SplitStream(torch.utils.data.IterableDataset):
    """ROWS and more, each DataLoader worker reading its share (every n-th record)."""

    rows = ROWS + [{"id": k, "text": f"record number {k} of a longer stream, its own words"} for k in range(3, 40)]

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        return iter(self.rows[w::n])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stream_that_dataloader_workers_share_warns_of_repeats_in_its_first_pass(workers):
    """Until the seventeenth session DataLoader workers' passes were not told apart: the repeated row reached
    training again without a word (the main process decides for the workers, so it can see their pass end)."""
    g = _guard()
    loader = torch.utils.data.DataLoader(g.wrap(_SplitStream()), batch_size=None, num_workers=workers)
    with pytest.warns(UserWarning, match=r"1 record repeated both the id \(the id field 'id'\)"):
        out = list(loader)
    rep = g.report()
    assert len(out) == len(_SplitStream.rows) and (rep["kept"], rep["replayed"]) == (len(_SplitStream.rows) - 1, 1)
    with warnings.catch_warnings():  # the next epoch replays every row: no warning
        warnings.simplefilter("error")
        assert len(list(loader)) == len(_SplitStream.rows)


def test_a_first_pass_of_dataloader_workers_without_repeats_warns_of_nothing():
    g = _guard()
    rows = _SplitStream.rows[:2] + _SplitStream.rows[3:]
    stream = _SplitStream()
    stream.rows = rows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = list(torch.utils.data.DataLoader(g.wrap(stream), batch_size=None, num_workers=2))
    assert len(out) == len(rows) and g.report()["replayed"] == 0


def test_a_datasets_stream_decided_a_map_batch_a_call_warns_of_repeats_in_its_first_pass():
    """A datasets.IterableDataset is decided a map batch a call; until the seventeenth session the pass's start
    was taken at its last batch, where the guard had decided much already, so its repeats went unremarked."""
    import datasets

    rows = _SplitStream.rows
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], id_field="id", device="cpu", progress=False, chunk_size=7)
    wrapped = g.wrap(datasets.Dataset.from_list(rows).to_iterable_dataset())  # 40 rows: 5 batches of 7, one of 5
    with pytest.warns(UserWarning, match=r"1 record repeated both the id \(the id field 'id'\)"):
        out = list(wrapped)
    assert len(out) == len(rows) and g.report()["replayed"] == 1
    with warnings.catch_warnings():  # the next epoch replays every row: no warning
        warnings.simplefilter("error")
        assert len(list(wrapped)) == len(rows)


def test_dataloader_workers_broken_off_in_the_first_epoch_replay_the_next_without_a_warning():
    """The workers of a loop broken off leave without ending their shares: that pass ends unfinished (the service
    sees their connections close), so the next epoch's replays are not taken for repeats."""
    g = _guard()
    loader = torch.utils.data.DataLoader(g.wrap(_SplitStream()), batch_size=None, num_workers=2)
    for _ in loader:  # training stopped early in the first epoch
        break
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(loader)) == len(_SplitStream.rows)


def test_persistent_workers_broken_off_in_the_first_epoch_replay_the_next_without_a_warning():
    """Persistent workers stay connected when a loop breaks off: each tells the main process, as its next pass
    starts, that it left the last one unfinished."""
    g = _guard()
    loader = torch.utils.data.DataLoader(g.wrap(_SplitStream()), batch_size=None, num_workers=2,
                                         persistent_workers=True)
    for _ in loader:
        break
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(loader)) == len(_SplitStream.rows)
        assert len(list(loader)) == len(_SplitStream.rows)


def test_persistent_workers_warn_of_repeats_in_the_first_pass_only():
    g = _guard()
    loader = torch.utils.data.DataLoader(g.wrap(_SplitStream()), batch_size=None, num_workers=2,
                                         persistent_workers=True)
    with pytest.warns(UserWarning, match=r"1 record repeated both the id"):
        assert len(list(loader)) == len(_SplitStream.rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(loader)) == len(_SplitStream.rows)


def test_persistent_workers_of_a_datasets_stream_broken_off_in_the_first_epoch_replay_the_next_without_a_warning():
    """Review of the seventeenth session: a datasets stream's persistent workers never told the main process that
    they left a pass unfinished, so the next epoch's replays were taken for repeats of the first pass ("14 records
    repeated ..."; an error under -W error, raised in the training loop)."""
    import datasets

    rows = _SplitStream.rows
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], id_field="id", device="cpu", progress=False, chunk_size=7)
    wrapped = g.wrap(datasets.Dataset.from_list(rows).to_iterable_dataset(num_shards=2))
    loader = torch.utils.data.DataLoader(wrapped, batch_size=None, num_workers=2, persistent_workers=True)
    for _ in loader:
        break
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(loader)) == len(rows)
        assert len(list(loader)) == len(rows)


class _SlowStart(torch.utils.data.IterableDataset):
    """Worker 0 reads one record, worker 1 the rest."""

    def __iter__(self):
        return iter(_SplitStream.rows[:1] if torch.utils.data.get_worker_info().id == 0 else _SplitStream.rows[1:])


def _slow_worker_1(worker_id):
    if worker_id == 1:
        time.sleep(2.5)  # its own setup: it starts after the loop below broke off, and sends nothing


def test_workers_broken_off_before_one_of_them_sent_a_chunk_replay_the_next_epoch_without_a_warning():
    """Review of the seventeenth session: worker 0 ended its share, worker 1 had sent nothing (no connection
    closed with its share unended) when the loop broke off, so the first pass stayed open and the next epoch's
    workers ended it: its replays were taken for repeats ("1 record repeated ...")."""
    from torchdataguard.core import alldups

    g = _guard()
    loader = torch.utils.data.DataLoader(g.wrap(_SlowStart(), source="s"), batch_size=None, num_workers=2,
                                         worker_init_fn=_slow_worker_1)
    for _ in loader:  # worker 0's record; wait for its share's end, then break off before worker 1 starts
        deadline = time.monotonic() + 2.0
        while 0 not in alldups._WORKER_PASSES.get(g, {}).get("s", [0, ()])[1] and time.monotonic() < deadline:
            time.sleep(0.01)
        break
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(loader)) == len(_SplitStream.rows)


def test_an_iterator_kept_after_a_look_does_not_make_the_next_pass_a_first_one():
    """Review of the seventeenth session: the workers of an iterator kept after a look at its first example (``it =
    iter(loader); next(it)``) left their pass open, and the training loop's pass, joining it, took its replays for
    repeats of a first pass ("128 records repeated ...")."""
    rows = [{"id": k, "text": f"record number {k} of a longer stream, its own words"} for k in range(300)]
    stream = _SplitStream()
    stream.rows = rows
    g = _guard()
    loader = torch.utils.data.DataLoader(g.wrap(stream), batch_size=None, num_workers=2)
    it = iter(loader)
    next(it)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(loader)) == len(rows) and g.report()["replayed"] > 0
    del it
