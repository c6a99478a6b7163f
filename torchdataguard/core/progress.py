"""Progress bars: on the main process only (rank 0 of a distributed job)."""
from __future__ import annotations

import os
from typing import Any, Optional

import torch

__all__ = ["is_main_process", "progress_bar"]


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not part of a distributed job)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def progress_bar(total: Optional[int], desc: str) -> Any:
    """A tqdm bar counting examples, or ``None`` outside the main process."""
    if not is_main_process():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ex", dynamic_ncols=True, mininterval=0.5)
