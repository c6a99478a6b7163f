"""Canaries: the seeded coin, the kinds, and the guard passing canaries through untouched."""
import json

import pytest
import torch
from torch.utils.data import Dataset

import torchdataguard as tdg
from torchdataguard.audit.canaries import detect_kind
from torchdataguard.core.ids import record_fingerprint
from torchdataguard.errors import ConfigError, StateError

WORDS = ("the quick brown fox jumps over a lazy dog while seven small birds sing about rain in the old garden "
         "near our house every morning before breakfast").split()


def texts(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        picks = torch.randint(0, len(WORDS), (12,), generator=g).tolist()
        out.append(" ".join(WORDS[j] for j in picks) + f" line {i}.")
    return out


def test_the_same_seed_gives_the_same_audit_and_another_seed_another():
    def run(seed):
        a = tdg.PrivacyAudit(num_canaries=200, seed=seed)
        data = a.wrap(texts())
        return a.coins, [str(c) for c in a.canaries], list(data)

    c0, k0, d0 = run(0)
    c1, k1, d1 = run(0)
    c2, k2, _ = run(1)
    assert (c0, k0, d0) == (c1, k1, d1)
    assert c0 != c2 and k0 != k2
    assert 70 <= sum(c0) <= 130  # fair coins: 100 +- 3 sigma
    assert set(c0) == {0, 1}


def test_wrap_puts_in_exactly_the_included_canaries_and_again_the_same_ones():
    train = texts()
    audit = tdg.PrivacyAudit(num_canaries=50, seed=3)
    data = audit.wrap(train)
    inside = [c for c, coin in zip(audit.canaries, audit.coins) if coin]
    outside = [c for c, coin in zip(audit.canaries, audit.coins) if not coin]
    assert len(data) == len(train) + audit.included
    assert sorted(r for r in data if r not in train) == sorted(inside)
    assert not set(outside) & set(data)
    assert [r for r in data if r in train] == train  # the data's own order is kept
    assert list(audit.wrap(train)) == list(data)
    assert set(data.tdg_protected) == {record_fingerprint(c) for c in inside}


def test_canaries_pass_the_guard_untouched_and_are_counted(tmp_path):
    """Canaries share a template, so near-dedup would drop all but one, and the PII scrubber would rewrite their
    digit groups; protected, every one is kept as it is and counted under audit/canary."""
    train = texts()
    stages = lambda: [tdg.ExactDedup(), tdg.NearDedup(threshold=0.5), tdg.PIIScrubber(),  # noqa: E731
                      tdg.QualityFilter()]
    audit = tdg.PrivacyAudit(num_canaries=60, seed=0, template="call me on {secret} please")
    wrapped = audit.wrap(train)
    inside = [c for c, coin in zip(audit.canaries, audit.coins) if coin]

    bare = tdg.Guard(stages(), device="cpu", progress=False).wrap(list(wrapped))  # a plain list: no protection
    assert sum(c in bare for c in inside) < len(inside) // 2  # the stages would eat them

    guard = tdg.Guard(stages(), device="cpu", progress=False, quarantine=tmp_path / "q.jsonl")
    kept = guard.wrap(wrapped)
    assert [r for r in kept if r in inside] == [r for r in wrapped if r in inside]
    rep = guard.report()
    assert rep["counts"]["audit/canary"] == audit.included
    assert rep["dropped_by_reason"]  # the stages did drop other records
    guard.save_report(tmp_path)
    guard.close()
    text = (tmp_path / "report.json").read_text() + (tmp_path / "report.html").read_text()
    text += (tmp_path / "q.jsonl").read_text()
    for c in audit.canaries:  # no secret anywhere in the reports or the quarantine file
        assert c.split("me on ")[1].split(" please")[0] not in text


class MapData(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def test_map_style_data_and_a_rewriting_stage_on_fetch():
    train = MapData([{"text": t} for t in texts(200)])
    audit = tdg.PrivacyAudit(num_canaries=40, seed=1, template="my card is {secret} ok", text_field="text")
    guard = tdg.Guard([tdg.NearDedup(threshold=0.5), tdg.PIIScrubber()], device="cpu", progress=False)
    kept = guard.wrap(audit.wrap(train))
    got = [kept[i] for i in range(len(kept))]
    inside = [c for c, coin in zip(audit.canaries, audit.coins) if coin]
    assert all(c in got for c in inside)
    assert guard.report()["counts"]["audit/canary"] == audit.included


def test_datasets_dataset_is_wrapped_as_one():
    datasets = pytest.importorskip("datasets")
    train = datasets.Dataset.from_list([{"text": t, "n": i} for i, t in enumerate(texts(200))])
    audit = tdg.PrivacyAudit(num_canaries=40, seed=0)
    wrapped = audit.wrap(train)
    assert isinstance(wrapped, datasets.Dataset) and len(wrapped) == 200 + audit.included
    guard = tdg.Guard([tdg.NearDedup(threshold=0.5)], device="cpu", progress=False)
    kept = guard.wrap(wrapped)
    assert guard.report()["counts"]["audit/canary"] == audit.included
    canary_rows = [r for r in kept if r["n"] is None]
    assert len(canary_rows) == audit.included


def test_kinds_are_detected_from_the_data():
    assert detect_kind(["a b c"], "text") == "text"
    assert detect_kind([{"text": "a b"}], "text") == "text"
    assert detect_kind([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}], "text") == "tokens"
    assert detect_kind([{"input_ids": [1, 2, 3], "labels": 1}], "text") == "label"
    assert detect_kind([{"text": "a b", "label": 0}], "text") == "label"
    assert detect_kind([(torch.zeros(3), 1)], "text") == "label"
    with pytest.raises(ConfigError, match="cannot tell how to make canaries"):
        detect_kind([{"pixels": [0.1]}], "text")


def test_label_canaries_have_random_labels_and_inputs_like_the_data():
    train = [{"input_ids": [5 + (i + j) % 40 for j in range(12)], "attention_mask": [1] * 12, "labels": i % 3}
             for i in range(300)]
    audit = tdg.PrivacyAudit(num_canaries=300, seed=0)
    audit.wrap(train)
    labels = [c["labels"] for c in audit.canaries]
    assert set(labels) == {0, 1, 2}
    assert all(len(c["input_ids"]) == 12 and 5 <= min(c["input_ids"]) and max(c["input_ids"]) < 45
               for c in audit.canaries)
    pool = [{"input_ids": [7] * 12, "attention_mask": [1] * 12, "labels": 0}] * 300
    pooled = tdg.PrivacyAudit(num_canaries=20, seed=0, pool=pool)
    pooled.wrap(train)
    assert all(c["input_ids"] == [7] * 12 for c in pooled.canaries)
    with pytest.raises(ConfigError, match="pool holds 300"):
        tdg.PrivacyAudit(num_canaries=400, pool=pool).wrap(train)


def test_settings_and_order_of_calls_are_checked():
    with pytest.raises(ConfigError) as e:
        tdg.PrivacyAudit(num_canaries=1, kind="images", confidence=2, seed="x")
    assert "num_canaries=1" in str(e.value) and "kind='images'" in str(e.value) and "confidence=2" in str(e.value)
    audit = tdg.PrivacyAudit(num_canaries=10)
    with pytest.raises(StateError, match="before wrap"):
        audit.run(torch.nn.Linear(2, 2))
    with pytest.raises(StateError, match="no audit result yet"):
        audit.result()
    with pytest.raises(ConfigError, match="fewer than 2 canaries"):
        tdg.PrivacyAudit().wrap(texts(100))
    with pytest.raises(ConfigError, match="sized, indexable"):
        tdg.PrivacyAudit(num_canaries=4).wrap(iter(texts(10)))
    assert json.dumps(tdg.PrivacyAudit.__init__.__kwdefaults__["template"])
