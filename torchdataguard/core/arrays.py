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

__all__ = ["is_array", "is_tensor", "loaded_torch", "tensors_of", "to_numpy"]


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
