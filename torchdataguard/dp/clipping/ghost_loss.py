"""The loss that stands in for the model's under ghost clipping: its ``backward()`` runs the two passes.

Example:
    >>> import torch
    >>> class Recorder:
    ...     def backward(self, per): print("two passes over", per.shape[0], "examples")
    >>> loss = GhostLoss(Recorder(), torch.ones(3), torch.tensor(1.0)) / 2
    >>> loss.item()
    0.5
    >>> loss.backward()
    two passes over 3 examples
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["GhostLoss"]


class GhostLoss:
    """Stands in for the model's loss under ghost clipping: ``backward()`` runs the two passes.

    Scaling (``loss / k``, ``loss * k``) changes only the reported value: the gradient is always the clipped
    per-example gradient, which is what the accountant assumes. Adding other terms is refused (their gradient
    would not be clipped).
    """

    def __init__(self, clipper: Any, per_sample: torch.Tensor, reported: torch.Tensor) -> None:
        self.clipper = clipper
        self.per_sample = per_sample
        self.reported = reported

    def _scaled(self, v: torch.Tensor) -> "GhostLoss":
        return GhostLoss(self.clipper, self.per_sample, v)

    def __truediv__(self, k):
        return self._scaled(self.reported / k)

    def __mul__(self, k):
        if isinstance(k, GhostLoss):
            return NotImplemented
        return self._scaled(self.reported * k)

    __rmul__ = __mul__

    def __add__(self, other):
        raise TypeError("under ghost clipping the model's loss cannot be combined with other terms (their gradient "
                        "would not be clipped); use DPConfig(clipping='hooks') for composite losses")

    __radd__ = __sub__ = __rsub__ = __add__

    def detach(self) -> torch.Tensor:
        return self.reported.detach()

    def item(self) -> float:
        return float(self.reported.detach().item())

    def mean(self) -> "GhostLoss":
        return self

    @property
    def shape(self):
        return self.reported.shape

    @property
    def device(self):
        return self.reported.device

    @property
    def dtype(self):
        return self.reported.dtype

    def backward(self, *args, **kwargs) -> None:
        self.clipper.backward(self.per_sample)

    def __repr__(self) -> str:
        return f"GhostClippedLoss({self.item():.4f})"
