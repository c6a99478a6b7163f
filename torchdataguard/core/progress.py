"""Progress bars: on the main process only (rank 0 of a distributed job), from half a second of work on.

A pass that ends sooner shows no bar, as tqdm's own ``delay`` does, and never imports tqdm: importing it takes
25-40 ms (``tqdm.auto`` loads asyncio and ``importlib.metadata``), about a tenth of a ``torchdataguard scan`` of
8,000 short texts.
"""
from __future__ import annotations

import os
import time
from typing import Any, Optional

from .arrays import loaded_torch

__all__ = ["DELAY", "DelayedBar", "is_main_process", "progress_bar"]

#: seconds of work before a bar appears
DELAY = 0.5


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not part of a distributed job). A process that never imported torch
    has no ``torch.distributed`` process group: only the ``RANK`` / ``LOCAL_RANK`` variables can tell."""
    dist = getattr(loaded_torch(), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


class DelayedBar:
    """Counts examples (``update``) and shows them in a tqdm bar once :data:`DELAY` seconds have passed since it was
    made (the bar then starts at the count so far); ``close`` closes the bar if one was shown.

    Example:
        >>> bar = DelayedBar(10, "scan")
        >>> bar.update(4); bar.update(6); bar.close()  # done within half a second: no bar, tqdm not imported
        >>> bar.n, bar.shown
        (10, False)
    """

    def __init__(self, total: Optional[int], desc: str) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self._start = time.monotonic()
        self._bar: Any = None

    @property
    def shown(self) -> bool:
        """Whether the tqdm bar has appeared."""
        return self._bar is not None

    def update(self, k: int = 1) -> None:
        self.n += k
        if self._bar is not None:
            self._bar.update(k)
        elif time.monotonic() - self._start >= DELAY:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit="ex", dynamic_ncols=True, mininterval=0.5,
                             initial=self.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_bar(total: Optional[int], desc: str) -> Optional[DelayedBar]:
    """A bar counting examples (a :class:`DelayedBar`), or ``None`` outside the main process."""
    if not is_main_process():
        return None
    return DelayedBar(total, desc)
