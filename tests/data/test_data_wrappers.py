import json
import random
import re

import datasets
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

import torchdataguard as tdg
from torchdataguard.core.stage import Drop, Rewriter

rng = random.Random(3)
VOCAB = [f"v{i}" for i in range(3000)]


def make_records(n=60, dup_every=4):
    recs = []
    for i in range(n):
        if i % dup_every == dup_every - 1:
            recs.append({"text": recs[i - 2]["text"].replace("v", "V", 1), "label": i % 2})  # exact dup after normalising
        else:
            recs.append({"text": " ".join(rng.choice(VOCAB) for _ in range(60)), "label": i % 2})
    return recs


RECS = make_records()


def guard(**kw):
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False, chunk_size=8, **kw)


def expected_kept():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False).filter(RECS)


def test_map_style_filtered_length_and_unchanged_examples(list_dataset):
    g = guard()
    source = list_dataset(RECS)
    source.extra = "passthrough"  # an attribute of the wrapped dataset, reached through the wrapper
    ds = g.wrap(source)
    exp = expected_kept()
    assert len(ds) == len(exp) < len(RECS)
    assert [ds[i] for i in range(len(ds))] == exp
    assert ds[0] is RECS[0]  # the very same object: wrapping does not change unfiltered examples
    assert ds.extra == "passthrough"
    with pytest.raises(IndexError):
        ds[len(ds)]
    rep = g.report()
    assert rep["seen"] == len(RECS) and rep["kept"] == len(exp)


def test_map_style_with_dataloader_workers_and_epochs(list_dataset):
    g = guard()
    ds = g.wrap(list_dataset(RECS), num_workers=2)  # the scan itself runs its record stages in 2 workers
    loader = DataLoader(ds, batch_size=5, num_workers=2, collate_fn=list)
    for _ in range(2):
        seen = [r for b in loader for r in b]
        assert seen == expected_kept()
    assert g.report()["seen"] == len(RECS)


def test_iterable_filters_as_it_streams_and_replays_epochs(list_stream):
    g = guard()
    ds = g.wrap(list_stream(RECS, per_worker=True))
    assert isinstance(ds, IterableDataset)
    first = list(ds)
    second = list(ds)
    assert first == second == expected_kept()
    rep = g.report()
    assert rep["seen"] == len(RECS) and rep["replayed"] == len(RECS)
    with pytest.raises(TypeError, match="length is unknown"):
        len(ds)


def test_iterable_with_workers_finds_duplicates_across_workers(list_stream):
    # every duplicate sits two positions after its original: with 2 workers, pairs cross workers
    g = guard()
    ds = g.wrap(list_stream(RECS, per_worker=True))
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=list)
    kept = [r for b in loader for r in b]
    assert len(kept) == len(expected_kept())
    texts = [" ".join(r["text"].lower().split()) for r in kept]
    assert len(set(texts)) == len(texts)
    rep = g.report()
    assert rep["seen"] == len(RECS)
    assert rep["kept"] + rep["dropped"] == rep["seen"]
    assert rep["dropped_by_reason"].get("duplicate/exact", 0) == len(RECS) - len(expected_kept())


def test_dataloader_in_dataloader_out(list_dataset):
    g = guard()
    loader = DataLoader(list_dataset(RECS), batch_size=4, shuffle=True, collate_fn=list,
                        generator=torch.Generator().manual_seed(0))
    out = g.wrap(loader)
    assert isinstance(out, DataLoader) and out.batch_size == 4
    assert len(out.dataset) == len(expected_kept())
    got = sorted(json.dumps(r, sort_keys=True) for b in out for r in b)
    assert got == sorted(json.dumps(r, sort_keys=True) for r in expected_kept())


def test_dataloader_with_index_sampler_is_refused(list_dataset):
    from torch.utils.data import SubsetRandomSampler

    g = guard()
    loader = DataLoader(list_dataset(RECS), sampler=SubsetRandomSampler([0, 1]))
    with pytest.raises(tdg.ConfigError, match="sampler"):
        g.wrap(loader)


def test_hf_dataset_same_kind_out():
    hf = datasets.Dataset.from_list(RECS)
    g = guard()
    out = g.wrap(hf)
    assert isinstance(out, datasets.Dataset)
    assert out.to_list() == expected_kept()


def test_hf_iterable_same_kind_out():
    hf = datasets.Dataset.from_list(RECS).to_iterable_dataset(num_shards=2)
    g = guard()
    out = g.wrap(hf)
    assert isinstance(out, datasets.IterableDataset)
    assert list(out) == expected_kept()


BAD = [
    ({"label": 1}, "invalid/missing_field"),
    ({"text": None}, "invalid/none"),
    ({"text": 42}, "invalid/not_string"),
    ({"text": b"\xff\xfe broken"}, "invalid/not_utf8"),
    ({"text": "   "}, "invalid/empty"),
    ({"text": "x" * (50 * 1024 * 1024)}, "invalid/too_long"),
    ({"text": "lone \udc80 surrogate"}, "invalid/not_utf8"),
    (None, "invalid/none"),
    (3.5, "invalid/no_text"),
]


def test_bad_input_is_dropped_with_its_reason(tmp_path):
    q = tmp_path / "dropped.jsonl"
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(shingles="words")], device="cpu", progress=False,
                  quarantine=q)
    recs = [{"text": "fine text here"}] + [r for r, _ in BAD]
    out = list(g.process(recs))
    assert out[0][1] is None
    assert [d.reason for _, d, _ in out[1:]] == [reason for _, reason in BAD]
    g.close()
    rows = [json.loads(line) for line in q.read_text().splitlines()]
    assert [r["reason"] for r in rows] == [reason for _, reason in BAD]
    assert all("id" in r for r in rows)


def test_strict_mode_names_record_and_field_not_content():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, strict=True, id_field="uid")
    with pytest.raises(tdg.GuardInputError) as err:
        g.filter([{"uid": "rec-7", "text": 12345}])
    msg = str(err.value)
    assert "rec-7" in msg and "'text'" in msg and "12345" not in msg


def test_guard_state_round_trip_uses_no_pickle(tmp_path):
    g = guard()
    g.filter(RECS[:30])
    g.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    # the JSON commit record names the tensor file (a content-hash name) and nothing else is written
    record = json.loads((tmp_path / "guard_state.json").read_text())
    assert files == sorted(["guard_state.json", record["tensors"]["file"]])
    assert re.fullmatch(r"guard_state\.[0-9a-f]{16}\.safetensors", record["tensors"]["file"])
    h = guard()
    h.load(tmp_path)
    assert h.report()["seen"] == 30
    rest = [ex for ex, d, _ in h.process(RECS[30:], ids=range(30, len(RECS))) if d is None]
    full = guard()
    exp = [ex.id for ex, d, _ in full.process(RECS) if d is None and ex.id >= 30]
    assert [ex.id for ex in rest] == exp


def test_bad_guard_settings():
    with pytest.raises(tdg.ConfigError, match="stages\\[0\\]"):
        tdg.Guard(["exact"])
    with pytest.raises(tdg.ConfigError, match="device"):
        tdg.Guard([], device="tpu")
    with pytest.raises(tdg.ConfigError, match="chunk_size"):
        tdg.Guard([], chunk_size=0)


class Flaky(Rewriter):
    stage_name = "flaky_test_stage"
    needs_text = True

    def __init__(self):
        self.calls = 0

    def rewrite(self, ex):
        self.calls += 1
        return Drop("flaky/failed") if self.calls > 1 else ex.with_text(ex.text.upper())


def test_rewriting_fails_closed_at_fetch_time(list_dataset):
    g = tdg.Guard([Flaky()], device="cpu", progress=False)
    ds = g.wrap(list_dataset([{"text": "secret stuff"}]))
    with pytest.raises(tdg.GuardInputError, match="not deterministic"):
        ds[0]


@pytest.mark.parametrize("data, fix", [("zebra stripes", "guard.wrap([text])"), (b"zebra stripes", "guard.wrap([text])"),
                                       ({"text": ["zebra stripes", "c d"]}, "datasets.Dataset.from_dict")])
def test_a_string_or_a_dict_is_refused_not_wrapped_by_its_characters_or_keys(data, fix):
    g = guard()
    with pytest.raises(tdg.ConfigError) as exc:  # before: a dataset of characters, or a KeyError
        g.wrap(data)
    assert fix in str(exc.value) and "zebra" not in str(exc.value)
    assert g.report()["seen"] == 0 and g.sources == {}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_loader_over_a_wrapped_subset_yields_the_kept_rewritten_examples(workers, list_dataset):
    rows = [{"text": "mail ann@example.org now"}] * 3 + [{"text": f"unique text {i}"} for i in range(5)]
    base = torch.utils.data.random_split(list_dataset(rows), [1.0], generator=torch.Generator().manual_seed(0))[0]
    assert hasattr(base, "__getitems__")  # a Subset fetches a batch at once: the DataLoader calls it
    g = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], device="cpu", progress=False)
    wrapped = g.wrap(base)
    expected = [wrapped[i] for i in range(len(wrapped))]
    loader = DataLoader(wrapped, batch_size=4, num_workers=workers, collate_fn=lambda b: b)
    got = [r for batch in loader for r in batch]
    # before: the Subset's own __getitems__ fetched unfiltered rows, unscrubbed (3 copies of the address)
    assert got == expected and len(got) == 6 and not any("ann@example.org" in r["text"] for r in got)


@pytest.mark.parametrize("inner", ["sequential", "random"])
def test_a_loader_built_with_a_batch_sampler_stays_batched(inner):
    data = [f"text {i}" for i in range(10)] + ["text 0", "text 3"]
    sampler = torch.utils.data.SequentialSampler(data) if inner == "sequential" else \
        torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(data, batch_sampler=torch.utils.data.BatchSampler(sampler, 4, drop_last=False),
                        collate_fn=lambda b: b)
    wrapped = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False).wrap(loader)
    batches = list(wrapped)  # before: single examples (the loader's batch_size is None when batch_sampler is given)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(x for b in batches for x in b) == sorted(f"text {i}" for i in range(10))
    assert isinstance(wrapped.batch_sampler.sampler, type(sampler))


@pytest.mark.parametrize("kind", ["map", "iterable", "loader"])
def test_wrapping_what_the_same_guard_wrapped_is_refused(kind, list_dataset, list_stream):
    data = [f"text number {i} about {i * 7 % 11}" for i in range(50)]
    g = guard()
    once = g.wrap(list_stream(data) if kind == "iterable" else list_dataset(data))
    again = DataLoader(once, batch_size=4, collate_fn=lambda b: b) if kind == "loader" else once
    with pytest.raises(tdg.ConfigError, match="already wrapped by this guard"):
        list(g.wrap(again))  # before: every example dropped as a duplicate of itself (source "data1")
    assert len(list(once)) == 50 and g.report()["dropped"] == 0 and list(g.sources) == [""]
    other = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(list(other.wrap(once))) == 50  # another guard may wrap it


def test_a_generator_is_refused_with_the_calls_that_take_it():
    g = guard()
    with pytest.raises(tdg.ConfigError, match=r"guard.filter\(records\)"):
        g.wrap(t for t in ["a b", "a b"])
    assert g.filter(t for t in ["a b", "a b"]) == ["a b"]
