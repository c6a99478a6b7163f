"""A token-id record with no tokens is a counted ``invalid/empty`` drop, like an empty text."""
import numpy as np
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.errors import GuardInputError


@pytest.mark.parametrize("empty", [[], (), torch.tensor([], dtype=torch.long), torch.zeros(1, 0, dtype=torch.long),
                                   np.array([], dtype=np.int64)], ids=["list", "tuple", "tensor", "tensor_1x0", "ndarray"])
def test_empty_input_ids_are_dropped_as_invalid_empty(empty):
    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    kept = list(guard.filter([{"input_ids": empty}, {"input_ids": [1, 2, 3]}]))
    assert [r["input_ids"] for r in kept] == [[1, 2, 3]]
    rep = guard.report()
    assert rep["dropped_by_reason"] == {"invalid/empty": 1}
    assert rep["kept"] + rep["dropped"] == rep["seen"] == 2


def test_non_empty_and_scalar_token_fields_are_kept_as_before():
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    recs = [{"input_ids": torch.tensor([4, 5])}, {"input_ids": np.array([6])}, {"input_ids": [[]]}]
    assert len(list(guard.filter(recs))) == 3
    assert guard.report()["dropped_by_reason"] == {}


def test_empty_input_ids_under_strict_raise_naming_the_field():
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, strict=True)
    with pytest.raises(GuardInputError, match="'input_ids'.*empty"):
        list(guard.filter([{"input_ids": [1]}, {"input_ids": []}]))
