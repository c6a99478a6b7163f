"""Telling torch tensors from NumPy arrays without importing torch.

``import torch`` costs about 0.75 s on a 2-core machine, more than ``torchdataguard scan`` spends deciding
26,000 short documents; so a guard on the CPU whose records and stages hold no tensors never imports it.
A tensor can only exist once torch was imported, so these checks look torch up in ``sys.modules`` and answer
without importing it when it is not there. The dedup stages' array operations
(:mod:`torchdataguard.dedup.xp`) build on them.

Example:
    >>> import numpy as np
    >>> is_tensor(np.zeros(2)), to_numpy([1, 2]).tolist()
    (False, [1, 2])
"""
from __future__ import annotations

import sys
from typing import Any, Optional

import numpy as np

__all__ = ["is_array", "is_tensor", "loaded_torch", "stable_argsort", "tensors_of", "to_numpy"]

#: arrays longer than this are not sorted by NumPy's stable sort (a merge sort for 32- and 64-bit keys, several
#: times slower there than its unstable sort, which uses SIMD instructions) but as below
_QUICK = 1024


def loaded_torch() -> Optional[Any]:
    """The ``torch`` module when this process has imported it, else ``None`` (never imports it)."""
    return sys.modules.get("torch")


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (False without importing torch when torch was never imported: then
    no tensor can exist)."""
    t = sys.modules.get("torch")
    return t is not None and isinstance(x, getattr(t, "Tensor", ()))


def is_array(x: Any) -> bool:
    """Whether ``x`` is a NumPy array or a torch tensor."""
    return isinstance(x, np.ndarray) or is_tensor(x)


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array: a view of a NumPy array or CPU tensor, a copy of a tensor on another device."""
    if is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def tensors_of(tree: Any) -> Any:
    """A copy of the nested dicts and lists ``tree`` with its NumPy arrays as torch tensors (sharing memory; imports
    torch): for state kept where only tensors are safe to load, such as a Lightning checkpoint, which
    ``torch.load(weights_only=True)`` reads but refuses NumPy arrays in."""
    if isinstance(tree, np.ndarray):
        import torch

        return torch.from_numpy(tree if tree.flags.writeable else tree.copy())
    if isinstance(tree, dict):
        return {k: tensors_of(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [tensors_of(v) for v in tree]
    if isinstance(tree, tuple):
        return tuple(tensors_of(v) for v in tree)
    return tree


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """The order that sorts the 1-D NumPy array ``keys``, equal keys in ascending positions: the order of
    ``keys.argsort(kind="stable")``, faster beyond :data:`_QUICK` keys.

    Integers whose range leaves room for a position below them are sorted as one int64 each,
    ``(key - min) << bits | position``, by NumPy's unstable sort, which puts equal keys in position order (about 16x
    faster than the stable sort for 256,000 keys); other keys by the unstable argsort, then one sort of each key's
    (rank among the distinct keys, position) as a single integer.

    Example:
        >>> stable_argsort(np.array([3, 1, 3, 1, 2], dtype=np.uint64)).tolist()
        [1, 3, 4, 0, 2]
        >>> keys = np.array([5, -2, 5, 7, -2] * 400, dtype=np.int64)
        >>> bool((stable_argsort(keys) == keys.argsort(kind="stable")).all())
        True
    """
    size = keys.shape[0]
    if size <= _QUICK:
        return keys.argsort(kind="stable").astype(np.int64, copy=False)
    if keys.dtype.kind in "iu":
        lo, hi = keys.min(), keys.max()
        bits = (size - 1).bit_length()
        if int(hi) - int(lo) < 1 << (63 - bits):
            if keys.dtype.itemsize == 8:  # the difference fits: in the keys' own type, then as int64
                combined = (keys - lo).astype(np.int64)
            else:
                combined = keys.astype(np.int64) - int(lo)
            combined <<= bits
            combined |= np.arange(size, dtype=np.int64)
            combined.sort()
            combined &= (1 << bits) - 1
            return combined
    order = keys.argsort()
    ranked = keys[order]
    new = ranked[1:] != ranked[:-1]  # a new key starts at sorted index i + 1
    if np.count_nonzero(new) == size - 1:  # every key distinct: any sort is the stable one
        return order.astype(np.int64, copy=False)
    combined = np.zeros(size, dtype=np.int64)
    np.cumsum(new, out=combined[1:])  # the rank of each sorted key among the distinct keys
    combined *= size
    combined += order
    combined.sort()
    combined %= size
    return combined
