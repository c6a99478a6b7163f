"""The arrays dedup works on: NumPy arrays on the CPU, torch tensors on other devices.

On the CPU dedup never needs torch, and ``import torch`` costs about 0.75 s on a 2-core machine: more than
``torchdataguard scan`` spends deciding 26,000 short documents. So the indexes, keys and decisions of a stage on
the CPU hold NumPy arrays and never import torch; a stage moved to an accelerator (``.to("cuda")``) holds torch
tensors and runs the same code through torch. Each function here takes the arrays it works on and returns arrays
of the same kind; the creating ones take ``like=`` (an array) or ``device=``. Dtypes are named by strings
(``"int64"``, ``"uint8"``, ``"bool"`` ...).

Setting the environment variable :data:`ARRAYS_ENV` to ``torch`` makes CPU stages hold torch tensors too (the
tests run the torch path that way).

Example:
    >>> a = arange(5, device="cpu")
    >>> type(a).__module__, nonzero(a > 2).tolist(), numel(a)
    ('numpy', [3, 4], 5)
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.arrays import is_array, is_tensor, loaded_torch
from ..core.arrays import stable_argsort as _stable_argsort_np
from ..core.arrays import to_numpy as numpy_of

__all__ = ["ARRAYS_ENV", "Array", "arange", "as_device", "asarray", "astype", "bincount", "cat", "ceil", "clip",
           "contiguous", "copy", "cummax", "cumsum", "device_type", "dtype_name", "equal", "full",
           "is_array", "is_tensor", "isin", "maximum", "minimum", "nonzero", "numel", "numpy_of", "on_numpy", "repeat",
           "same_device", "saved", "scatter_amax_", "scatter_amin_", "searchsorted", "sort", "stable_argsort", "tile",
           "to_like", "torch_module", "unique", "view", "where", "zeros"]

#: environment variable: ``torch`` makes stages on the CPU hold torch tensors (the tests' way to run that path)
ARRAYS_ENV = "TORCHDATAGUARD_DEDUP_ARRAYS"

#: an array of either kind (``numpy.ndarray`` or ``torch.Tensor``)
Array = Any
Device = Union[str, Any, None]


def torch_module() -> Any:
    """The ``torch`` module, imported on this first call: only where a tensor is asked for or already exists."""
    import torch

    return torch


_torch = torch_module


def device_type(device: Device) -> str:
    """``"cpu"``, ``"cuda"`` ... of a device given as a string, a ``torch.device`` or None (the CPU)."""
    if device is None:
        return "cpu"
    if isinstance(device, str):
        return device.split(":", 1)[0]
    return str(getattr(device, "type", device))


def on_numpy(device: Device) -> bool:
    """Whether a stage on ``device`` holds NumPy arrays: the CPU, unless :data:`ARRAYS_ENV` says ``torch``."""
    return device_type(device) == "cpu" and os.environ.get(ARRAYS_ENV, "").strip().lower() != "torch"


def _dtype(name: str, torch_side: bool) -> Any:
    if not isinstance(name, str):  # already a dtype of one side
        if torch_side == is_torch_dtype(name):
            return name
        name = str(name).replace("torch.", "")
    if torch_side:
        return getattr(_torch(), name)
    return np.dtype("bool" if name == "bool" else name)


def is_torch_dtype(d: Any) -> bool:
    t = loaded_torch()
    return t is not None and isinstance(d, t.dtype)


def _side(like: Optional[Array], device: Device) -> Tuple[bool, Any]:
    """(torch?, torch device) for a new array like ``like`` or on ``device``."""
    if like is not None:
        return (True, like.device) if is_tensor(like) else (False, None)
    if on_numpy(device):
        return False, None
    return True, _torch().device(device if device is not None else "cpu")


# -- creating ---------------------------------------------------------------------------------------------
def zeros(shape: Union[int, Sequence[int]], dtype: str = "int64", *, like: Optional[Array] = None,
          device: Device = "cpu") -> Array:
    """Zeros of ``shape`` and ``dtype`` (a name), of ``like``'s kind and device or on ``device``."""
    t, dev = _side(like, device)
    if t:
        return _torch().zeros(shape, dtype=_dtype(dtype, True), device=dev)
    return np.zeros(shape, dtype=_dtype(dtype, False))


def full(shape: Union[int, Sequence[int]], value: Any, dtype: str = "int64", *, like: Optional[Array] = None,
         device: Device = "cpu") -> Array:
    """``value`` everywhere (see :func:`zeros`)."""
    t, dev = _side(like, device)
    if t:
        return _torch().full(shape if not isinstance(shape, int) else (shape,), value, dtype=_dtype(dtype, True),
                             device=dev)
    return np.full(shape, value, dtype=_dtype(dtype, False))


def arange(start: int, stop: Optional[int] = None, dtype: str = "int64", *, like: Optional[Array] = None,
           device: Device = "cpu") -> Array:
    """``start, start + 1, ..., stop - 1`` (``arange(n)``: ``0 .. n - 1``)."""
    if stop is None:
        start, stop = 0, start
    t, dev = _side(like, device)
    if t:
        return _torch().arange(start, stop, dtype=_dtype(dtype, True), device=dev)
    return np.arange(start, stop, dtype=_dtype(dtype, False))


def asarray(data: Any, dtype: Optional[str] = None, *, like: Optional[Array] = None, device: Device = "cpu") -> Array:
    """``data`` (a list, a NumPy array or a tensor) as an array of ``like``'s kind and device (or ``device``'s),
    converted to ``dtype`` when given; shares memory where it can."""
    t, dev = _side(like, device)
    if t:
        torch = _torch()
        if isinstance(data, np.ndarray):
            out = torch.from_numpy(np.ascontiguousarray(data)).to(dev)
        else:
            out = torch.as_tensor(data, device=dev)
        return out if dtype is None else out.to(_dtype(dtype, True))
    if is_tensor(data):
        data = numpy_of(data)
    return np.asarray(data) if dtype is None else np.asarray(data, dtype=_dtype(dtype, False))


def to_like(a: Array, like: Array) -> Array:
    """``a`` as an array of ``like``'s kind and device (unchanged when it is one already)."""
    if is_tensor(like):
        if is_tensor(a) and a.device == like.device:
            return a
        return asarray(a, like=like)
    return a if isinstance(a, np.ndarray) else asarray(a)


def as_device(a: Array, device: Device) -> Array:
    """``a`` held as a stage on ``device`` holds it (see :func:`on_numpy`)."""
    if on_numpy(device):
        return a if isinstance(a, np.ndarray) else asarray(a)
    dev = _torch().device(device)
    return a.to(dev) if is_tensor(a) else asarray(a, device=dev)


def saved(a: Array) -> Any:
    """A host copy of ``a`` for a stage's ``state_dict``: a CPU torch tensor where this process has imported torch
    (as every state was before), else a NumPy array (so that saving imports no torch either). The guard's state
    files hold both alike, and ``load_state_dict`` takes either."""
    arr = np.array(numpy_of(a))
    t = loaded_torch()
    return arr if t is None else t.from_numpy(arr)


# -- shapes and types -------------------------------------------------------------------------------------
def numel(a: Array) -> int:
    """The number of elements."""
    return int(a.numel()) if is_tensor(a) else int(a.size)


def astype(a: Array, dtype: str) -> Array:
    """``a`` converted to ``dtype`` (the same object when it has that dtype already)."""
    if is_tensor(a):
        return a.to(_dtype(dtype, True))
    return a.astype(_dtype(dtype, False), copy=False)


def view(a: Array, dtype: str) -> Array:
    """The same bytes read as ``dtype`` (the last dimension rescaled)."""
    return a.view(_dtype(dtype, is_tensor(a)))


def dtype_name(a: Array) -> str:
    """The name of ``a``'s dtype, the same for both kinds (``"int32"``, ``"uint8"``, ``"bool"`` ...)."""
    return str(a.dtype).replace("torch.", "")


def contiguous(a: Array) -> Array:
    """``a`` with its elements in row-major order in memory (itself when they are)."""
    return a.contiguous() if is_tensor(a) else np.ascontiguousarray(a)


def same_device(a: Array, device: Device) -> bool:
    """Whether ``a`` is already held as a stage on ``device`` holds it (:func:`as_device` would return it)."""
    if on_numpy(device):
        return isinstance(a, np.ndarray)
    return is_tensor(a) and a.device == _torch().device(device)


def copy(a: Array) -> Array:
    """A copy that shares no memory with ``a``."""
    return a.clone() if is_tensor(a) else a.copy()


def cat(parts: Sequence[Array], *, like: Optional[Array] = None) -> Array:
    """The arrays joined along the first dimension (``like`` gives the kind when ``parts`` is empty)."""
    if not parts:
        return zeros(0, like=like)
    if is_tensor(parts[0]):
        return _torch().cat(list(parts))
    return np.concatenate(list(parts))


def tile(a: Array, m: int) -> Array:
    """``a`` repeated ``m`` times, one copy after the other (torch's ``Tensor.repeat``)."""
    return a.repeat(m) if is_tensor(a) else np.tile(a, m)


def repeat(a: Array, counts: Union[int, Array]) -> Array:
    """Each element repeated ``counts`` (an int or one count per element) times in place (``repeat_interleave``)."""
    return a.repeat_interleave(counts) if is_tensor(a) else np.repeat(a, counts)


# -- searching and sorting --------------------------------------------------------------------------------
def nonzero(mask: Array) -> Array:
    """int64 positions of the true (non-zero) elements of a flat ``mask``, ascending."""
    if is_tensor(mask):
        return _torch().nonzero(mask).flatten()
    return np.flatnonzero(mask).astype(np.int64, copy=False)


def stable_argsort(a: Array) -> Array:
    """int64 positions that sort ``a`` ascending, equal elements in their order."""
    if is_tensor(a):
        return _torch().argsort(a, stable=True)
    return _stable_argsort_np(a)


def sort(a: Array) -> Array:
    """The values of ``a`` ascending."""
    return _torch().sort(a).values if is_tensor(a) else np.sort(a)


def unique(a: Array) -> Array:
    """The distinct values of flat ``a``, ascending."""
    if is_tensor(a):
        return _torch().unique(a)
    s = np.sort(a, axis=None)  # (np.unique would import numpy.ma on its first call: a few ms of every scan)
    keep = np.ones(s.size, dtype=bool)
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def searchsorted(sorted_: Array, v: Array, *, right: bool = False) -> Array:
    """int64 insertion points of ``v`` in ascending ``sorted_`` (``right``: after equal elements)."""
    if is_tensor(sorted_):
        return _torch().searchsorted(sorted_, v, right=right)
    return np.searchsorted(sorted_, v, side="right" if right else "left").astype(np.int64, copy=False)


def isin(a: Array, b: Array) -> Array:
    """bool: whether each element of ``a`` is in ``b``."""
    if is_tensor(a):
        return _torch().isin(a, b)
    if not b.size:
        return np.zeros(a.shape, dtype=bool)
    s = np.sort(b, axis=None)  # a binary search (np.isin sorts both and may import numpy.ma)
    at = np.searchsorted(s, a)
    np.minimum(at, s.size - 1, out=at)
    return s[at] == a


def equal(a: Array, b: Array) -> bool:
    """Same shape and elements."""
    if is_tensor(a):
        return bool(_torch().equal(a, b))
    return bool(a.shape == b.shape and np.array_equal(a, b))


# -- arithmetic -------------------------------------------------------------------------------------------
def cumsum(a: Array) -> Array:
    """Running sums along the first dimension, as int64 for integers."""
    if is_tensor(a):
        return _torch().cumsum(a, 0)
    return np.cumsum(a, axis=0, dtype=np.int64 if a.dtype.kind in "iub" else None)


def cummax(a: Array) -> Array:
    """Running maxima of a flat array."""
    return _torch().cummax(a, 0).values if is_tensor(a) else np.maximum.accumulate(a)


def clip(a: Array, lo: Any = None, hi: Any = None) -> Array:
    """``a`` with values below ``lo`` raised to it and above ``hi`` lowered to it."""
    if is_tensor(a):
        return a.clamp(min=lo, max=hi)
    return np.clip(a, lo, hi)


def scatter_amax_(out: Array, idx: Array, vals: Array) -> Array:
    """``out[idx[k]] = max(out[idx[k]], vals[k])`` for every ``k``, in place; returns ``out``."""
    if is_tensor(out):
        return out.scatter_reduce_(0, idx, vals, reduce="amax", include_self=True)
    np.maximum.at(out, idx, vals)
    return out


def scatter_amin_(out: Array, idx: Array, vals: Array) -> Array:
    """``out[idx[k]] = min(out[idx[k]], vals[k])`` for every ``k``, in place; returns ``out``."""
    if is_tensor(out):
        return out.scatter_reduce_(0, idx, vals, reduce="amin", include_self=True)
    np.minimum.at(out, idx, vals)
    return out


def minimum(a: Array, b: Array) -> Array:
    """Elementwise minimum of two arrays of one kind."""
    return _torch().minimum(a, b) if is_tensor(a) else np.minimum(a, b)


def maximum(a: Array, b: Array) -> Array:
    """Elementwise maximum of two arrays of one kind."""
    return _torch().maximum(a, b) if is_tensor(a) else np.maximum(a, b)


def ceil(a: Array) -> Array:
    """The least integer (as a float) at or above each element of a float array."""
    return _torch().ceil(a) if is_tensor(a) else np.ceil(a)


def bincount(a: Array, minlength: int = 0) -> Array:
    """How many times each value ``0, 1, ...`` occurs in flat non-negative ``a`` (int64)."""
    if is_tensor(a):
        return _torch().bincount(a, minlength=minlength)
    return np.bincount(a, minlength=minlength).astype(np.int64, copy=False)


def where(cond: Array, a: Array, b: Array) -> Array:
    """``a`` where ``cond`` holds, else ``b`` (either may be a scalar)."""
    return _torch().where(cond, a, b) if is_tensor(cond) else np.where(cond, a, b)
