"""What is wrong, if anything, with a record's token ids (the field ``NearDedup`` reads when a record has no text).

Token ids are one flat sequence of integers: a list or tuple of ints, or an integer (or bool) NumPy array or torch
tensor; a ``[1, n]`` array is read as its one row, and floats that are whole numbers (``3.0``) as those integers.
Anything else was read wrongly or failed deep inside NumPy or torch: ``[1.5, 2.7]`` was truncated to ``[1, 2]``,
two sequences ``[[1, 2], [3, 4]]`` were joined into one, and strings, dicts or integers beyond int64 raised
NumPy's or torch's own error. :func:`token_ids_problem` names the problem (never the values, which may be
personal data) so that the planner drops such a record with reason ``invalid/not_token_ids`` (``strict=True``:
raises :class:`~torchdataguard.errors.GuardInputError`), as it drops a record whose text is not a string.

Example:
    >>> token_ids_problem([1, 2, 3]) is None, token_ids_problem(None) is None
    (True, True)
    >>> token_ids_problem([1.5, 2.0])
    'not_token_ids (floats that are not whole numbers, dtype float64; token ids are integers)'
    >>> token_ids_problem("some text")
    'not_token_ids (a str; token ids are a list of integers)'
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .arrays import is_tensor

__all__ = ["token_ids_problem"]

_I64_MAX = (1 << 63) - 1


def _shape_problem(shape: Any) -> Optional[str]:
    dims = tuple(int(d) for d in shape)
    if len(dims) > 1 and any(d != 1 for d in dims[:-1]):
        return (f"not_token_ids (shape {dims}: a record holds one sequence of token ids; split a batch into "
                f"records, one per sequence)")
    return None


def _array_problem(dtype_kind: str, dtype: str, shape: Any, whole: Any) -> Optional[str]:
    if dtype_kind in "iub":
        return _shape_problem(shape)
    if dtype_kind == "f":
        if not whole():
            return f"not_token_ids (floats that are not whole numbers, dtype {dtype}; token ids are integers)"
        return _shape_problem(shape)
    return f"not_token_ids (dtype {dtype}; token ids are integers)"


def token_ids_problem(value: Any) -> Optional[str]:
    """``None`` when ``value`` reads as token ids (or is ``None``: no token ids), else the reason a record holding
    it is dropped: ``"not_token_ids (...)"``, naming the type, dtype or shape, never the values."""
    if value is None:
        return None
    if is_tensor(value):
        if value.dtype.is_floating_point:
            return _array_problem("f", str(value.dtype).replace("torch.", ""), value.shape,
                                  lambda: bool((value.isfinite() & (value == value.round())).all()))
        if value.dtype.is_complex:
            return _array_problem("c", str(value.dtype).replace("torch.", ""), value.shape, None)
        return _shape_problem(value.shape)
    if isinstance(value, (str, bytes, bytearray, dict)) or not isinstance(value, (list, tuple, np.ndarray, np.generic,
                                                                                   int)):
        return f"not_token_ids (a {type(value).__name__}; token ids are a list of integers)"
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError):  # ragged nested lists
        return "not_token_ids (nested lists; a record holds one flat list of token ids)"
    if arr.dtype.kind == "O":
        return "not_token_ids (values that are not integers, or integers beyond int64)"
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > _I64_MAX:
        return "not_token_ids (integers beyond int64)"
    if isinstance(value, (list, tuple)) and arr.size == 0:
        return None  # [] reads as float64 in NumPy: no tokens, counted invalid/empty by the planner
    return _array_problem(arr.dtype.kind, str(arr.dtype), arr.shape,
                          lambda: bool(np.isfinite(arr).all() and (arr == np.round(arr)).all()))

