"""core.arrays.stable_argsort: the order of NumPy's stable argsort on every integer type, range and length."""
from __future__ import annotations

import numpy as np
import pytest

from torchdataguard.core.arrays import stable_argsort


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64])
@pytest.mark.parametrize("n", [0, 1, 7, 1024, 1025, 5000, 70000])
def test_stable_argsort_is_the_stable_order_for_integers_of_every_range(dtype, n):
    rng = np.random.default_rng(n)
    info = np.iinfo(dtype)
    for hi in (3, 1000, 2**40, int(info.max)):  # many ties, few ties, ranges that do and do not leave room
        hi = min(hi, int(info.max))
        lo = max(int(info.min), -hi)
        keys = rng.integers(lo, hi, n, dtype=dtype, endpoint=True)
        got = stable_argsort(keys)
        assert got.dtype == np.int64
        assert got.tolist() == keys.argsort(kind="stable").tolist()


def test_stable_argsort_of_extreme_and_float_keys():
    for keys in (np.array([2**64 - 1, 2**64 - 3, 2**64 - 1] * 700, dtype=np.uint64),
                 np.array([-2**63, 2**63 - 1, 0, -2**63] * 700, dtype=np.int64),
                 np.random.default_rng(0).integers(0, 5, 3000).astype(np.float64)):
        assert stable_argsort(keys).tolist() == keys.argsort(kind="stable").tolist()
