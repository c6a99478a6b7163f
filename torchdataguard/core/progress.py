"""Progress bars: on the main process only (rank 0 of a distributed job)."""
from __future__ import annotations

import os
from typing import Any, Optional

from .arrays import loaded_torch

__all__ = ["is_main_process", "progress_bar"]


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not part of a distributed job). A process that never imported torch
    has no ``torch.distributed`` process group: only the ``RANK`` / ``LOCAL_RANK`` variables can tell."""
    dist = getattr(loaded_torch(), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def progress_bar(total: Optional[int], desc: str) -> Any:
    """A tqdm bar counting examples, or ``None`` outside the main process."""
    if not is_main_process():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ex", dynamic_ncols=True, mininterval=0.5)
