"""Token-id shingles and the 64-bit mixer they and the MinHash signatures share (NumPy arrays or torch
tensors on any device: the result is of the input's kind).

Example:
    >>> import numpy as np
    >>> h, d = token_shingle_hashes(np.array([[1, 2, 3, 4, 5, 6]]), ngram=5)
    >>> d.tolist()
    [0, 0]
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np

from . import xp

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array

__all__ = ["SHINGLE_MUL", "mix64", "token_shingle_hashes"]

_U = np.uint64
#: odd multipliers of the k-th token of a shingle (shingle hash = sum of token hashes times these)
SHINGLE_MUL = [_U(0x9E3779B97F4A7C15), _U(0xC2B2AE3D27D4EB4F), _U(0x165667B19E3779F9), _U(0xD6E8FEB86659FD93),
                _U(0xFF51AFD7ED558CCD), _U(0xC4CEB9FE1A85EC53), _U(0x94D049BB133111EB), _U(0xBF58476D1CE4E5B9)]

_M1 = -0x40A7B892E31B1A47  # 0xBF58476D1CE4E5B9 as a signed int64
_M2 = -0x6B2FB644ECCEEE15  # 0x94D049BB133111EB as a signed int64


def _srl(x: "Array", k: int) -> "Array":
    """Logical right shift of int64 arrays."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: "Array") -> "Array":
    """SplitMix64 finaliser on int64 arrays (NumPy or torch, wrapping arithmetic, any device)."""
    x = x ^ _srl(x, 30)
    x = x * _M1
    x = x ^ _srl(x, 27)
    x = x * _M2
    return x ^ _srl(x, 31)


def token_shingle_hashes(input_ids: "Array", attention_mask: Optional["Array"] = None,
                         ngram: int = 5) -> Tuple["Array", "Array"]:
    """64-bit hashes of token-id ``ngram``-shingles (int64), and the row of each, of the input's kind and device.

    Padding (``attention_mask == 0``) is ignored; a sequence shorter than ``ngram`` tokens is one shingle.

    Example:
        >>> h, d = token_shingle_hashes(np.array([[1, 2, 3, 4, 5, 6]]), ngram=5)
        >>> d.tolist()
        [0, 0]
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must have shape [batch, seq], got {tuple(input_ids.shape)}")
    ids = xp.astype(input_ids, "int64")
    n, T = ids.shape
    if attention_mask is None:
        mask = xp.full(tuple(ids.shape), True, "bool", like=ids)
    else:
        if tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids "
                             f"shape {tuple(input_ids.shape)}")
        mask = xp.astype(xp.to_like(attention_mask, ids), "bool")
    th = mix64(ids * 0x9E3779B97F4A7C1 + 0x632BE59BD9B4E019)
    th = xp.where(mask, th, 0)
    lengths = mask.sum(1)
    muls = xp.asarray(np.array(SHINGLE_MUL, dtype=_U).view(np.int64), like=ids)
    hs: List["Array"] = []
    ds: List["Array"] = []
    if T >= ngram:
        if xp.is_tensor(th):
            win, wm = th.unfold(1, ngram, 1), mask.unfold(1, ngram, 1).all(-1)  # [n, T-ngram+1, ngram]
        else:
            win = np.lib.stride_tricks.sliding_window_view(th, ngram, axis=1)
            wm = np.lib.stride_tricks.sliding_window_view(mask, ngram, axis=1).all(-1)
        k = xp.arange(ngram, like=ids)
        acc = (win * muls[k % xp.numel(muls)]).sum(-1) + int(k.sum())
        hs.append(acc[wm])
        ds.append(xp.nonzero(wm.reshape(-1)) // wm.shape[1])
    short = lengths < ngram
    if bool(short.any()):
        k = xp.arange(T, like=ids)
        acc = (th[short] * muls[k % xp.numel(muls)]).sum(-1) + lengths[short] * 0x632BE59BD9B4E019
        hs.append(mix64(acc))
        ds.append(xp.nonzero(short))
    return xp.cat(hs, like=ids), xp.cat(ds, like=ids)
