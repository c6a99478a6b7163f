"""A text field that no record has is refused with the fix, on every path, instead of dropping every record."""
import datasets
import pytest
import torch
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.errors import ConfigError

SENT = [{"sentence": f"sentence number {i} about topic {i * 31 % 97}", "label": i % 2} for i in range(800)]


def guard(near=False, **kw):
    stages = [tdg.ExactDedup(), tdg.NearDedup()] if near else [tdg.ExactDedup()]
    return tdg.Guard(stages, device="cpu", progress=False, **kw)


def check_message(err, n="of the first 100"):
    msg = str(err)
    assert "text_field='text'" in msg and n in msg
    assert "['label', 'sentence']" in msg and "text_field='sentence'" in msg and "--text-field sentence" in msg
    assert "Traceback" not in msg and "sentence number" not in msg  # names fields, never their values


def _collate(x):
    return x


@pytest.mark.parametrize("kind", ["list", "torch_map", "hf_dataset", "hf_iterable"])
def test_wrong_text_field_is_refused_on_every_wrap(kind, list_dataset):
    g = guard(near=True)
    data = {"list": lambda: list(SENT),
            "torch_map": lambda: torch.utils.data.TensorDataset(torch.zeros(1)) and list_dataset(SENT),
            "hf_dataset": lambda: datasets.Dataset.from_list(SENT),
            "hf_iterable": lambda: datasets.Dataset.from_list(SENT).to_iterable_dataset()}[kind]()
    with pytest.raises(ConfigError) as exc:
        out = g.wrap(data)
        list(out)
    check_message(exc.value)
    rep = g.report()
    assert rep["kept"] == 0 and rep["seen"] <= 800  # nothing slipped through before the refusal


@pytest.mark.parametrize("workers", [0, 1])
def test_refusal_reaches_the_user_from_dataloader_workers(workers, list_stream):
    g = guard(chunk_size=32)
    loader = DataLoader(g.wrap(list_stream(SENT, per_worker=True)), batch_size=None, num_workers=workers,
                        collate_fn=_collate)
    with pytest.raises(ConfigError) as exc:
        list(loader)
    check_message(exc.value)
    if workers:
        assert str(exc.value).endswith("(raised in DataLoader worker process 0)") or \
            str(exc.value).endswith("(raised in DataLoader worker process 1)")


def test_small_data_is_refused_when_the_stream_ends(list_stream):
    with pytest.raises(ConfigError) as exc:
        guard().wrap(SENT[:7])
    check_message(exc.value, n="all 7 records")
    g = guard(chunk_size=4)  # several chunks, all lacking the field: refused at the end of the stream
    loader = DataLoader(g.wrap(list_stream(SENT[:10], per_worker=True)), batch_size=None, num_workers=2,
                        collate_fn=_collate)
    with pytest.raises(ConfigError):
        list(loader)


def test_sporadic_missing_fields_stay_counted_drops():
    good = [{"text": f"a text about item {i} and topic {i * 17 % 89}"} for i in range(300)]
    recs = good[:1] + SENT[:150] + good[1:]  # one record with the field first: the field is right
    g = guard()
    assert len(g.wrap(recs)) == 300
    assert g.report()["dropped_by_reason"] == {"invalid/missing_field": 150}
    recs = SENT[:99] + good  # 99 without it, then the field appears: still counted drops
    g = guard()
    assert len(g.wrap(recs)) == 300 and g.report()["dropped_by_reason"] == {"invalid/missing_field": 99}


def test_records_not_meant_to_hold_text_are_not_refused():
    ids = [{"input_ids": [i, i + 1, i + 2], "label": 0} for i in range(300)]
    assert len(tdg.Guard([], device="cpu", progress=False).wrap(ids)) == 300
    tensors = [torch.full((3,), float(i)) for i in range(300)]
    assert len(guard().wrap(tensors)) == 300
    images = [{"pixel_values": torch.zeros(3), "label": 1} for _ in range(150)]
    assert len(tdg.Guard([], device="cpu", progress=False, text_field=None).wrap(images)) == 150


def test_the_right_field_works_and_strict_mode_names_the_fields():
    g = guard(text_field="sentence")
    assert len(g.wrap(SENT)) == 800 and g.report()["dropped"] == 0
    with pytest.raises(tdg.GuardInputError, match=r"the record has the fields \['label', 'sentence'\]"):
        guard(strict=True).wrap(SENT)


@pytest.mark.parametrize("kind", ["tuples", "tensors", "ints"])
def test_records_without_any_text_are_refused_when_stages_need_text(kind, list_stream):
    data = {"tuples": [(f"text number {i} here", i % 2) for i in range(300)],
            "tensors": [torch.full((3,), float(i)) for i in range(300)],
            "ints": list(range(300))}[kind]
    text_guard = lambda **kw: tdg.Guard([tdg.Normalize(), tdg.ExactDedup()], device="cpu", progress=False, **kw)
    name = {"tuples": "tuple", "tensors": "Tensor", "ints": "int"}[kind]
    for wrap in (lambda g: g.wrap(data), lambda g: list(g.wrap(list_stream(data))), lambda g: g.wrap(data[:7])):
        g = text_guard()
        with pytest.raises(ConfigError) as exc:  # before: every record silently dropped as invalid/no_text
            wrap(g)
        msg = str(exc.value)
        assert f"records of type {name}" in msg and "invalid/no_text" in msg and "text number" not in msg
        assert g.report()["kept"] == 0
    g = text_guard()  # one record with text first: later ones without text stay counted drops
    assert len(g.wrap(["some text"] + data)) == 1 and g.report()["dropped_by_reason"] == {"invalid/no_text": 300}


@pytest.mark.parametrize("text_field", ["text", None])
def test_token_records_under_text_stages_are_told_the_fix_that_works(text_field):
    toks = [{"input_ids": [i, i + 1, 7], "label": 0} for i in range(150)]
    g = tdg.Guard([tdg.Normalize(), tdg.ExactDedup()], device="cpu", progress=False, text_field=text_field)
    with pytest.raises(ConfigError) as exc:
        g.wrap(toks)
    msg = str(exc.value)
    # before: "... or text_field=None for records without text", which fails the same way (advice that loops)
    assert "text_field=None for records" not in msg and "['normalize']" in msg and "['input_ids', 'label']" in msg
    fixed = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, text_field=text_field)
    assert len(fixed.wrap(toks)) == 150  # the advice given works


@pytest.mark.parametrize("kind", ["list", "hf_dataset"])
def test_a_text_field_holding_lists_is_refused_not_every_record_dropped(kind):
    chats = [{"messages": [f"hi number {i}", "hello"], "title": f"chat {i}"} for i in range(150)]
    data = list(chats) if kind == "list" else datasets.Dataset.from_list(chats)
    g = guard(near=True, text_field="messages")
    with pytest.raises(ConfigError) as exc:  # before: kept 0, every record an invalid/not_string drop
        g.wrap(data)
    msg = str(exc.value)
    assert "text_field='messages' holds list values" in msg and "invalid/not_string" in msg
    assert "text_field='title'" in msg and "hi number" not in msg
    assert g.report()["kept"] == 0
    g = guard(text_field="messages")  # one record with a string first: later lists stay counted drops
    assert len(g.wrap([{"messages": "a text", "title": "t"}] + chats)) == 1
    assert g.report()["dropped_by_reason"] == {"invalid/not_string": 150}
