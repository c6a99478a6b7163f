"""Book-keeping rule of every other layer type for which Opacus has a per-sample gradient function
(convolutions, GroupNorm, RMSNorm ...): Opacus's function applied to ``(A, G)``.

Example:
    >>> import torch.nn as nn
    >>> OPACUS_RULE.applies(nn.Conv1d(2, 2, 1)), OPACUS_RULE.applies(nn.LSTM(2, 2))
    (True, False)
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn as nn

from .base import BookKeeping, LayerRecord, PerSampleRule

__all__ = ["OPACUS_RULE", "OpacusRule"]


def _samplers() -> Dict[type, Callable]:
    from opacus.grad_sample import GradSampleModule

    return GradSampleModule.GRAD_SAMPLERS


class OpacusRule(PerSampleRule):
    """Any layer whose exact type has an Opacus grad sampler; it runs its own forward with detached parameters."""

    fast_forward = False

    def applies(self, m: nn.Module) -> bool:
        return type(m) in _samplers()

    def per_sample_grads(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> Dict[nn.Parameter, torch.Tensor]:
        got = _samplers()[type(rec.module)](rec.module, [rec.a], g)
        return {p: gs for p, gs in got.items() if bk.trains(p)}


#: the fallback of :func:`~torchdataguard.dp.clipping.layers.rule_for` (not registered: it applies by exact type)
OPACUS_RULE = OpacusRule(nn.Module)
