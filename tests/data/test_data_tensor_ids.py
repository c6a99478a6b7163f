"""Ids held as NumPy integers or 0-d integer tensors (a ``datasets`` stream under ``with_format("torch")``) are ids."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import IterableDataset

import torchdataguard as tdg
from torchdataguard.errors import ConfigError

ROWS = [{"id": i, "text": f"record {i % 40} of a stream that repeats itself"} for i in range(120)]


class _Stream(IterableDataset):
    def __init__(self, conv) -> None:
        self.conv = conv

    def __iter__(self):
        for r in ROWS:
            yield {**r, "id": self.conv(r["id"])}


def _guard(**kw):
    return tdg.Guard([tdg.ExactDedup()], id_field="id", device="cpu", progress=False, **kw)


@pytest.mark.parametrize("conv", [torch.tensor, np.int64, np.int32, lambda i: torch.tensor(i, dtype=torch.int32)],
                         ids=["tensor", "np.int64", "np.int32", "tensor-int32"])
def test_integer_scalars_are_ids_and_replay(conv, tmp_path):
    # before: every record was dropped as invalid/id_type, and the training set came out empty without an error
    guard = _guard(quarantine=str(tmp_path / "q.jsonl"))
    kept = list(guard.wrap(_Stream(conv)))
    rep = guard.report()
    assert (rep["seen"], rep["kept"], rep["dropped_by_reason"]) == (120, 40, {"duplicate/exact": 80})
    assert [int(r["id"]) for r in kept] == list(range(40))
    guard.save(tmp_path / "state")
    guard.close()
    assert [json.loads(line)["id"] for line in open(tmp_path / "q.jsonl")] == list(range(40, 120))
    again = _guard()
    again.load(tmp_path / "state")
    assert len(list(again.wrap(_Stream(conv)))) == 40
    assert again.report()["replayed"] == 120 and again.report()["seen"] == 120


def test_a_torch_format_datasets_stream_keeps_its_rows():
    datasets = pytest.importorskip("datasets")
    stream = datasets.Dataset.from_list(ROWS).to_iterable_dataset().with_format("torch")
    guard = _guard()
    kept = list(guard.wrap(stream))
    assert len(kept) == 40 and guard.report()["dropped_by_reason"] == {"duplicate/exact": 80}


@pytest.mark.parametrize("bad", [torch.tensor(True), torch.tensor(1.0), torch.tensor([1]), np.float64(1.0),
                                 np.bool_(True)], ids=["bool", "float", "1-d", "np.float", "np.bool"])
def test_other_tensors_and_numpy_values_are_still_invalid_ids(bad):
    guard = _guard()
    assert guard.filter([{"id": bad, "text": "some text"}]) == []
    assert guard.report()["dropped_by_reason"] == {"invalid/id_type": 1}


def test_an_id_field_without_a_usable_id_in_any_record_is_refused_with_the_fix():
    # before: 300 of 300 records dropped as invalid/id_type, the training set empty, no error
    guard = _guard()
    with pytest.raises(tdg.ConfigError, match=r"id_field='id' holds no usable id .*int\(r\['id'\]\)"):
        guard.filter([{"id": float(i), "text": f"text {i}"} for i in range(300)])
    assert guard.report()["seen"] == 0  # refused before the chunk was counted
    wrong = _guard()
    with pytest.raises(tdg.ConfigError, match="missing or None in 100"):
        list(wrong.wrap(_Stream(lambda i: None)))


def test_the_id_check_stops_at_the_first_usable_id_and_reaches_dataloader_workers():
    guard = _guard()
    kept = guard.filter([{"id": i if i == 50 else None, "text": f"text {i}"} for i in range(300)])
    assert len(kept) == 1 and guard.report()["dropped_by_reason"] == {"invalid/missing_id": 299}
    from torch.utils.data import DataLoader

    with pytest.raises(tdg.ConfigError, match="holds no usable id"):
        for _ in DataLoader(_guard().wrap(_Stream(float)), batch_size=8, num_workers=2):
            pass


def test_the_id_field_check_starts_again_after_a_reset_or_a_loaded_state():
    # review of the twelfth session: the check remembered, per guard, that a source once had usable ids, so after
    # reset() or load_state_dict() the same guard dropped every record of data with float ids without an error
    good = [{"id": i, "text": f"text {i}"} for i in range(150)]
    bad = [{"id": float(i), "text": f"other {i}"} for i in range(150)]
    g = tdg.Guard([tdg.ExactDedup()], id_field="id", device="cpu", progress=False)
    state0 = g.state_dict()
    assert len(g.filter(good, source="train")) == 150
    g.reset()
    with pytest.raises(ConfigError, match="id_field='id'"):
        g.filter(bad, source="train")
    g = tdg.Guard([tdg.ExactDedup()], id_field="id", device="cpu", progress=False)
    g.filter(good, source="train")
    g.load_state_dict(state0)
    with pytest.raises(ConfigError, match="id_field='id'"):
        g.filter(bad, source="train")


@pytest.mark.parametrize("how", ["list", "process", "stream"])
def test_a_distributed_guard_refuses_an_id_field_no_record_holds(how):
    # before: DistributedGuard had no id check, so a wrong id_field dropped every record (0 of 300 kept from a list,
    # every record of a stream counted invalid/missing_id) without an error
    recs = [{"idx": i, "text": f"record {i} text"} for i in range(300)]
    dg = tdg.DistributedGuard(_guard())  # a world of one: no process group
    with pytest.raises(ConfigError, match="id_field='id' holds no usable id .*missing or None in 100"):
        if how == "list":
            dg.wrap(recs)
        elif how == "process":
            list(dg.process(recs))
        else:
            list(dg.wrap(_Stream(lambda i: None)))
    good = tdg.DistributedGuard(_guard())
    assert len(good.wrap([{**r, "id": r["idx"]} for r in recs])) == 300
