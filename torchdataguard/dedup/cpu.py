"""Dedup's CPU work on torch tensors runs its tensor operations on one thread.

The operations of one chunk are many and small (a few thousand to a few hundred thousand elements). With
more than one intra-op thread, each of them opens an OpenMP parallel region, and when another process or
the DataLoader's workers keep the other cores busy, every region waits for a thread that is not
running: measured on a 2-core machine with other work running, ``torch.searchsorted`` on 10,000 elements
took about 60x longer with two threads than with one, and near-dedup of short texts 5-10x longer in all.
So :func:`one_thread` lowers the calling thread's intra-op thread count to 1 while dedup works and restores
it after. With torch's OpenMP backend the count is per calling thread: a training loop on another thread
keeps its own.

A stage on the CPU holds NumPy arrays (:mod:`torchdataguard.dedup.xp`), whose operations are single-threaded
already: there :func:`one_thread` does nothing, and never imports torch.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

from . import xp

__all__ = ["one_thread"]

F = TypeVar("F", bound=Callable[..., Any])


def _on_numpy(args: tuple) -> bool:
    """Whether a call works on NumPy arrays: its object (``args[0]``) is a stage, keyer or index whose
    ``device`` holds NumPy arrays, or keys holding them (``nib``)."""
    if not args:
        return False
    obj = args[0]
    device = getattr(obj, "device", None)
    if device is not None:
        return xp.on_numpy(device)
    nib = getattr(obj, "nib", None)
    return nib is not None and not xp.is_tensor(nib)


def one_thread(fn: F) -> F:
    """Run ``fn`` with one intra-op thread in the calling thread (restored afterwards, also on error), where it
    works on torch tensors; a call on NumPy arrays (or before anything imported torch) runs as it is.

    Example:
        >>> import torch
        >>> class Stage:
        ...     device = "meta"
        ...     @one_thread
        ...     def threads(self):
        ...         return torch.get_num_threads()
        >>> Stage().threads()
        1
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is None or _on_numpy(args):
            return fn(*args, **kwargs)
        before = torch.get_num_threads()
        if before == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper  # type: ignore[return-value]
