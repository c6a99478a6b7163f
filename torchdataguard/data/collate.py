"""Collation for batch stages: collate a batch, then apply the guard's batch stages (augmentation)."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch.utils.data import default_collate, get_worker_info

from ..core.hooks import HOOKS

__all__ = ["GuardCollator"]


@HOOKS.register("collator")
class GuardCollator:
    """Collate with ``collate_fn`` (default: torch's ``default_collate``), then apply the batch stages.

    In DataLoader workers the batch stages run on the CPU; in the main process they run on the guard's
    device when the batch is moved there first (``to_device=True``).

    Example:
        >>> import torch, torchdataguard as tdg
        >>> guard = tdg.Guard([], device="cpu", progress=False)
        >>> GuardCollator(guard)([{"x": torch.tensor(1)}, {"x": torch.tensor(2)}])["x"].tolist()
        [1, 2]
    """

    def __init__(self, guard: Any, collate_fn: Optional[Callable] = None, *, to_device: bool = False) -> None:
        self.collate_fn = collate_fn or default_collate
        self.stages = list(guard.batch_stages)
        self.device = guard.device
        self.to_device = to_device

    def __call__(self, examples: Sequence[Any]) -> Any:
        batch = self.collate_fn(examples)
        if not self.stages:
            return batch
        if self.to_device and get_worker_info() is None and isinstance(batch, Mapping):
            batch = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        for st in self.stages:
            batch = st(batch)
        return batch
