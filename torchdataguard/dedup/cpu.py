"""Dedup's CPU work runs its tensor operations on one thread.

The operations of one chunk are many and small (a few thousand to a few hundred thousand elements). With
more than one intra-op thread, each of them opens an OpenMP parallel region, and when another process or
the DataLoader's workers keep the other cores busy, every region waits for a thread that is not
running: measured on a 2-core machine with other work running, ``torch.searchsorted`` on 10,000 elements
took about 60x longer with two threads than with one, and near-dedup of short texts 5-10x longer in all.
So :func:`one_thread` lowers the calling thread's intra-op thread count to 1 while dedup works and restores
it after. With torch's OpenMP backend the count is per calling thread: a training loop on another thread
keeps its own.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import torch

__all__ = ["one_thread"]

F = TypeVar("F", bound=Callable[..., Any])


def one_thread(fn: F) -> F:
    """Run ``fn`` with one intra-op thread in the calling thread (restored afterwards, also on error).

    Example:
        >>> @one_thread
        ... def threads():
        ...     return torch.get_num_threads()
        >>> threads()
        1
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = torch.get_num_threads()
        if before == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper  # type: ignore[return-value]
