"""Every function of dedup/xp.py gives the same values and dtypes for NumPy arrays and for CPU torch tensors (the
two kinds a stage holds: NumPy on the CPU, tensors elsewhere), on random inputs of each dtype dedup uses,
empty ones and negative values included."""
import numpy as np
import pytest
import torch

from torchdataguard.dedup import xp

DTYPES = ["int32", "int64", "uint8"]
SIZES = [0, 1, 2, 9, 64]


def _make(rng, dtype, n):
    if dtype == "uint8":
        return rng.integers(0, 256, n).astype(dtype)
    return rng.integers(-40, 40, n).astype(dtype)


def _idx(a, m):
    return xp.astype(xp.arange(xp.numel(a), like=a) % m, "int64")


OPS = {
    "nonzero": lambda a, b: xp.nonzero(a > b),
    "nonzero_values": lambda a, b: xp.nonzero(a),
    "stable_argsort": lambda a, b: xp.stable_argsort(a),
    "sort": lambda a, b: xp.sort(a),
    "unique": lambda a, b: xp.unique(a),
    "searchsorted": lambda a, b: xp.searchsorted(xp.sort(a), b),
    "searchsorted_right": lambda a, b: xp.searchsorted(xp.sort(a), b, right=True),
    "isin": lambda a, b: xp.isin(a, b),
    "isin_empty": lambda a, b: xp.isin(a, b[:0]),
    "equal": lambda a, b: xp.equal(a, b),
    "equal_self": lambda a, b: xp.equal(a, xp.copy(a)),
    "cumsum": lambda a, b: xp.cumsum(a),
    "cumsum_bool": lambda a, b: xp.cumsum(a > b),
    "cummax": lambda a, b: xp.cummax(a),
    "clip": lambda a, b: xp.clip(a, 1, 30),
    "clip_lo": lambda a, b: xp.clip(a, 1),
    "clip_hi": lambda a, b: xp.clip(a, None, 7),
    "minimum": lambda a, b: xp.minimum(a, b),
    "maximum": lambda a, b: xp.maximum(a, b),
    "bincount": lambda a, b: xp.bincount(xp.astype(a, "int64") & 15),
    "bincount_minlength": lambda a, b: xp.bincount(xp.astype(a, "int64") & 15, minlength=20),
    "where": lambda a, b: xp.where(a > b, a, b),
    "where_scalar": lambda a, b: xp.where(a > b, a, 0),
    "tile": lambda a, b: xp.tile(a, 3),
    "repeat": lambda a, b: xp.repeat(a, 2),
    "repeat_counts": lambda a, b: xp.repeat(a, xp.astype(b, "int64") & 3),
    "cat": lambda a, b: xp.cat([a, b]),
    "astype_int64": lambda a, b: xp.astype(a, "int64"),
    "astype_uint8": lambda a, b: xp.astype(a, "uint8"),
    "astype_float64": lambda a, b: xp.astype(a, "float64"),
    "ceil": lambda a, b: xp.ceil(xp.astype(a, "float64") / 3),
    "add_wraps": lambda a, b: a + b,
    "mul_wraps": lambda a, b: a * b,
    "shift": lambda a, b: a >> 2,
    "and": lambda a, b: a & 15,
    "bool_sum": lambda a, b: (a > b).sum(),
    "asarray_list": lambda a, b: xp.asarray(a.tolist(), "int64", like=b),
    "zeros": lambda a, b: xp.zeros((2, 3), "int32", like=a),
    "full": lambda a, b: xp.full(4, -1, "int32", like=a),
    "arange": lambda a, b: xp.arange(2, 9, like=a),
    "view_uint8": lambda a, b: xp.view(xp.contiguous(a.reshape(1, -1)), "uint8") if xp.numel(a) else a,
    "scatter_amax": lambda a, b: xp.scatter_amax_(xp.full(5, -100, xp.dtype_name(a), like=a), _idx(a, 5), a),
    "scatter_amin": lambda a, b: xp.scatter_amin_(xp.full(5, 100, xp.dtype_name(a), like=a), _idx(a, 5), a),
    "contiguous": lambda a, b: xp.contiguous(a[::2]),
    "numel": lambda a, b: xp.numel(a),
    "dtype_name": lambda a, b: xp.dtype_name(a),
}
NO_UINT8 = {"scatter_amax", "scatter_amin", "clip", "clip_lo", "clip_hi"}  # bounds outside uint8 in these cases


def _compare(out_np, out_t, what):
    if not hasattr(out_np, "shape") or isinstance(out_np, np.generic) and not hasattr(out_t, "shape"):
        assert out_np == out_t, what
        return
    got = xp.numpy_of(out_t)
    assert isinstance(out_np, np.ndarray) and xp.is_tensor(out_t), what
    assert xp.dtype_name(out_np) == xp.dtype_name(out_t), what
    assert out_np.shape == tuple(got.shape), what
    assert np.array_equal(out_np, got), what


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_xp_gives_the_same_for_numpy_arrays_and_tensors(op, dtype):
    if dtype == "uint8" and op in NO_UINT8:
        pytest.skip("bounds outside uint8")
    rng = np.random.default_rng(hash((op, dtype)) & 0xFFFF)
    for n in SIZES:
        for _ in range(3):
            a, b = _make(rng, dtype, n), _make(rng, dtype, n)
            out_np = OPS[op](a.copy(), b.copy())
            out_t = OPS[op](torch.from_numpy(a.copy()), torch.from_numpy(b.copy()))
            if op == "bool_sum":
                assert int(out_np) == int(out_t)
                continue
            _compare(out_np, out_t, f"{op} {dtype} n={n}")


@pytest.mark.parametrize("n", SIZES)
def test_xp_results_are_int64_where_documented(n):
    a = np.arange(n, dtype=np.int32)
    for arr in (a, torch.from_numpy(a)):
        for r in (xp.nonzero(arr >= 0), xp.stable_argsort(arr), xp.searchsorted(arr, arr), xp.cumsum(arr),
                  xp.bincount(xp.astype(arr, "int64"))):
            assert xp.dtype_name(r) == "int64"
