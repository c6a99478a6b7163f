"""Book-keeping rule of ``nn.LayerNorm``: per-example gradients of its (small) weight and bias, formed at once.

Example:
    >>> import torch.nn as nn
    >>> LayerNormRule(nn.LayerNorm).applies(nn.LayerNorm(4))
    True
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BookKeeping, LayerRecord, PerSampleRule, register_layer_rule

__all__ = ["LayerNormRule"]


@register_layer_rule(nn.LayerNorm)
class LayerNormRule(PerSampleRule):
    """``nn.LayerNorm``: ``dL/dweight_i = sum over positions of G_i * xhat_i``, ``dL/dbias_i = sum of G_i``."""

    def forward(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        w = None if m.weight is None else m.weight.detach()
        b = None if m.bias is None else m.bias.detach()
        return F.layer_norm(x, m.normalized_shape, w, b, m.eps)

    def per_sample_grads(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> Dict[nn.Parameter, torch.Tensor]:
        m = rec.module
        shape = tuple(m.normalized_shape)
        x = rec.a.float()
        g32 = g.float()
        dims = tuple(range(1, x.dim() - len(shape)))
        grads = {}
        if bk.trains(m.weight):
            xhat = F.layer_norm(x, shape, None, None, m.eps)
            grads[m.weight] = (g32 * xhat).sum(dims) if dims else g32 * xhat
        if bk.trains(m.bias):
            grads[m.bias] = g32.sum(dims) if dims else g32
        return grads
