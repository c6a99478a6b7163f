"""Book-keeping rule of ``nn.Embedding``: each example's gradient is the sum of its tokens' output gradients per
vocabulary row (rows repeated in one example add up before the norm); the padding row gets no gradient.

Example:
    >>> import torch.nn as nn
    >>> EmbeddingRule(nn.Embedding).unsupported(nn.Embedding(4, 2, sparse=True))
    'Embedding with sparse=True, max_norm or scale_grad_by_freq'
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BookKeeping, LayerRecord, LayerRule, UnitSums, keep_output_grad, register_layer_rule

__all__ = ["EmbeddingRule"]


@register_layer_rule(nn.Embedding)
class EmbeddingRule(LayerRule):
    """``nn.Embedding``: keeps the token ids (``A``) and the output gradient (``G``, ``[rows, tokens, dim]``)."""

    def unsupported(self, m: nn.Module) -> Optional[str]:
        if m.sparse or m.max_norm is not None or m.scale_grad_by_freq:
            return "Embedding with sparse=True, max_norm or scale_grad_by_freq"
        return None

    def forward(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, m.weight.detach(), m.padding_idx, m.max_norm, m.norm_type, m.scale_grad_by_freq,
                           m.sparse)

    def on_grad(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> None:
        m = rec.module
        ids = rec.a.reshape(bk.rows, -1)
        g3 = g.reshape(bk.rows, ids.shape[1], -1)
        pad = bk.padding.get(id(m.weight), m.padding_idx)
        if pad is not None:
            g3 = g3 * (ids != pad).unsqueeze(-1).to(g3.dtype)
        rec.a = ids
        keep_output_grad(rec, g3)

    def add_sq_norms(self, bk: BookKeeping, rec: LayerRecord, add: Callable[[torch.Tensor], None]) -> None:
        ids, g3 = rec.a, rec.g
        b = bk.rows
        v = rec.module.num_embeddings
        key = (torch.arange(b, device=ids.device).view(-1, 1) * v + ids).reshape(-1)
        uniq, inv = torch.unique(key, return_inverse=True)
        agg = torch.zeros(len(uniq), g3.shape[-1], device=g3.device, dtype=torch.float32)
        agg.index_add_(0, inv, g3.reshape(-1, g3.shape[-1]).float())
        sq = torch.zeros(b, device=g3.device, dtype=torch.float32)
        sq.index_add_(0, torch.div(uniq, v, rounding_mode="floor"), agg.square().sum(1))
        add(sq)

    def add_unit_sq_norms(self, bk: BookKeeping, rec: LayerRecord, units: UnitSums) -> None:
        ids, g3 = rec.a, rec.g
        v = rec.module.num_embeddings
        key = (units.u.view(-1, 1) * v + ids).reshape(-1)
        uniq, inv = torch.unique(key, return_inverse=True)
        agg = torch.zeros(len(uniq), g3.shape[-1], device=g3.device, dtype=torch.float32)
        agg.index_add_(0, inv, (g3.float() * units.w.view(-1, 1, 1)).reshape(-1, g3.shape[-1]))
        units.sq.index_add_(0, torch.div(uniq, v, rounding_mode="floor"), agg.square().sum(1))

    def add_clipped(self, rec: LayerRecord, c: torch.Tensor, put: Callable[[nn.Parameter, torch.Tensor], None],
                    state: Any) -> None:
        m = rec.module
        ids, g = rec.a, rec.g
        w = torch.zeros(m.weight.shape, device=g.device, dtype=torch.promote_types(g.dtype, m.weight.dtype))
        w.index_add_(0, ids.reshape(-1), (g * c.to(g.dtype).view(-1, 1, 1)).reshape(-1, g.shape[-1]).to(w.dtype))
        put(m.weight, w)
