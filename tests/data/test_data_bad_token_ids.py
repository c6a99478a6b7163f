"""Token ids that are not one flat sequence of integers are a counted ``invalid/not_token_ids`` drop (strict: a
GuardInputError naming the record and the field), not a NumPy or torch traceback and not a silent misreading."""
import numpy as np
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.core.tokenids import token_ids_problem
from torchdataguard.errors import GuardInputError

GOOD = list(range(100, 130))
BAD = {
    "floats": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5],  # was truncated to 1, 2, 3 ...
    "nested": [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]],  # two sequences were joined into one
    "ragged": [[1, 2, 3], [4]],
    "strings": ["a", "b", "c"],
    "str": "some words",
    "huge": [2**70, 1, 2, 3, 4, 5],
    "mixed": [1, "x", 3],
    "dict": {"a": 1},
    "float_tensor": torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]),
    "nan_array": np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0]),
    "batch_tensor": torch.arange(12).reshape(2, 6),
}


@pytest.mark.parametrize("name", sorted(BAD))
@pytest.mark.parametrize("arrays", ["numpy", "torch"])
def test_bad_token_ids_are_dropped_as_invalid(name, arrays, monkeypatch):
    if arrays == "torch":
        monkeypatch.setenv("TORCHDATAGUARD_DEDUP_ARRAYS", "torch")
    else:
        monkeypatch.delenv("TORCHDATAGUARD_DEDUP_ARRAYS", raising=False)
    g = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False)
    kept = g.filter([{"input_ids": BAD[name]}, {"input_ids": GOOD}, {"input_ids": GOOD + [7]}])
    assert kept == [{"input_ids": GOOD}]
    assert g.report()["dropped_by_reason"] == {"invalid/not_token_ids": 1, "duplicate/near": 1}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_token_ids_under_strict_raise_naming_record_and_field(name):
    g = tdg.Guard([tdg.NearDedup(shingles="tokens")], device="cpu", progress=False, strict=True)
    with pytest.raises(GuardInputError, match=r"record 1: field 'input_ids' is invalid: not_token_ids") as e:
        g.filter([{"input_ids": GOOD}, {"input_ids": BAD[name]}])
    assert "some words" not in str(e.value)  # the values are never shown


@pytest.mark.parametrize("value", [GOOD, tuple(GOOD), np.array(GOOD, dtype=np.int32), torch.tensor(GOOD),
                                   torch.tensor([GOOD]), np.array(GOOD, dtype=np.float64), [True, False], [-3, -2],
                                   np.array(GOOD, dtype=np.uint8), [], None, 7])
def test_token_ids_that_read_as_before_are_accepted(value):
    assert token_ids_problem(value) is None


def test_whole_floats_read_as_the_integers():
    g = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False)
    kept = g.filter([{"input_ids": [float(i) for i in GOOD]}, {"input_ids": GOOD}])
    assert len(kept) == 1 and g.report()["dropped_by_reason"] == {"duplicate/near": 1}


def test_a_record_with_text_and_bad_token_ids_read_as_tokens_is_dropped_and_strict_raises():
    # NearDedup(shingles="tokens") reads token ids also where a record holds text: a bad value is a counted drop
    # (it raised GuardInputError in the middle of the pass even with strict=False until the sixteenth session)
    rows = [{"text": "hello there", "input_ids": "hello there"}, {"text": "a", "input_ids": BAD["floats"]},
            {"text": "b", "input_ids": GOOD}, {"text": "c", "input_ids": GOOD}, {"text": "no ids"}, "a plain str"]
    g = tdg.Guard([tdg.NearDedup(shingles="tokens")], device="cpu", progress=False)
    assert g.filter(rows) == [rows[2], rows[4], rows[5]]
    assert g.report()["dropped_by_reason"] == {"invalid/not_token_ids": 2, "duplicate/near": 1}
    g = tdg.Guard([tdg.NearDedup(shingles="tokens")], device="cpu", progress=False, strict=True)
    with pytest.raises(GuardInputError, match=r"record 0: field 'input_ids' is invalid: not_token_ids \(a str"):
        g.filter(rows)
    # the default shingles read the text of such records: their token ids are not checked
    assert len(tdg.Guard([tdg.NearDedup()], device="cpu", progress=False).filter(rows[:2])) == 2


def test_only_a_stage_reading_token_ids_checks_them():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert len(g.filter([{"input_ids": BAD["floats"]}, {"input_ids": BAD["nested"]}])) == 2


@pytest.mark.parametrize("ids", [np.random.rand(2, 8), torch.rand(2, 8), torch.arange(8), [[1, 2, 3]]])
def test_signatures_from_batch_refuses_what_is_not_a_batch_of_integer_ids(ids):
    from torchdataguard.dedup.near_config import NearDedupConfig
    from torchdataguard.dedup.near_keys import signatures_from_batch

    with pytest.raises(GuardInputError, match=r"batch\['input_ids'\] is not a \[batch, length\] array"):
        signatures_from_batch({"input_ids": ids}, NearDedupConfig(shingles="tokens"))
