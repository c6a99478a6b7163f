"""Book-keeping rule of ``nn.Linear``: norms from ``(A, G)`` by the Gram (ghost) form or the materialised
per-example gradient, whichever costs fewer operations; layers fed one input share its Gram matrix.

Example:
    >>> import torch
    >>> a, g = torch.randn(2, 3, 4), torch.randn(2, 3, 5)
    >>> want = torch.stack([(g[i].T @ a[i]).square().sum() for i in range(2)])
    >>> torch.allclose(linear_sq_norms(a, g), want, rtol=1e-4)
    True
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import MAX_SLICE, BookKeeping, LayerRecord, LayerRule, UnitSums, keep_output_grad, register_layer_rule

__all__ = ["LinearRule", "linear_sq_norms"]


def linear_sq_norms(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of each ``g_i^T a_i`` (``a``: ``[b, t, din]``, ``g``: ``[b, t, dout]``): ghost (Gram)
    or materialised, whichever is cheaper."""
    b, t, din = a.shape
    dout = g.shape[2]
    if t == 1:
        return (a.float().square().sum((1, 2)) * g.float().square().sum((1, 2)))
    out = torch.empty(b, dtype=torch.float32, device=a.device)
    if t * (din + dout) < din * dout:
        step = max(1, MAX_SLICE // (t * t))
        for s in range(0, b, step):
            aa = torch.bmm(a[s:s + step], a[s:s + step].transpose(1, 2))
            gg = torch.bmm(g[s:s + step], g[s:s + step].transpose(1, 2))
            out[s:s + step] = (aa * gg).sum((1, 2)).float()
    else:
        step = max(1, MAX_SLICE // (din * dout))
        for s in range(0, b, step):
            w = torch.bmm(g[s:s + step].transpose(1, 2), a[s:s + step])
            out[s:s + step] = torch.linalg.vector_norm(w, dim=(1, 2)).float().square()
    return out


def _group_sq(group: List[LayerRecord]) -> torch.Tensor:
    """Summed squared weight-gradient norms of linear layers fed one input ``A``.

    The Gram form shares ``A A^T`` across the group: ``sum_l <A A^T, G_l G_l^T> = <A A^T, sum_l G_l G_l^T>``.
    """
    a = group[0].a
    b, t, din = a.shape
    douts = sum(r.g.shape[2] for r in group)
    if len(group) == 1 or t == 1 or not t * (din + douts) < din * douts:
        return sum(linear_sq_norms(a, r.g.to(a.dtype)) for r in group)
    out = torch.empty(b, dtype=torch.float32, device=a.device)
    step = max(1, MAX_SLICE // (t * t))
    for s in range(0, b, step):
        sl = slice(s, s + step)
        aa = torch.bmm(a[sl], a[sl].transpose(1, 2))
        gg = None
        for r in group:
            g = r.g[sl].to(a.dtype)
            gg = torch.bmm(g, g.transpose(1, 2)) if gg is None else gg.baddbmm_(g, g.transpose(1, 2))
        out[sl] = (aa * gg).sum((1, 2)).float()
    return out


def _groups(recs: List[LayerRecord]) -> Dict[Any, List[LayerRecord]]:
    """The records whose weight gradient is wanted, grouped by their input tensor (query, key, value ...)."""
    groups: Dict[Any, List[LayerRecord]] = {}
    for rec in recs:
        if isinstance(rec.rule, LinearRule) and rec.extra.get("done") and rec.extra.get("w"):
            groups.setdefault(rec.extra["key"], []).append(rec)
    return groups


@register_layer_rule(nn.Linear)
class LinearRule(LayerRule):
    """``nn.Linear``: keeps ``A`` and ``G`` as ``[rows, tokens, features]``; the weight's norms per input group."""

    def forward(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, m.weight.detach(), None if m.bias is None else m.bias.detach())

    def on_record(self, rec: LayerRecord, x: torch.Tensor) -> None:
        # layers fed the same tensor (query, key, value) share its Gram matrix
        rec.extra["key"] = (x.data_ptr(), tuple(x.shape), tuple(x.stride()), x.dtype, x.device)

    def on_grad(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> None:
        m = rec.module
        b = bk.rows
        a = rec.a.reshape(b, -1, rec.a.shape[-1])
        g3 = g.reshape(b, -1, g.shape[-1])
        dt = torch.promote_types(a.dtype, g3.dtype)
        rec.a, g3 = a.to(dt), g3.to(dt)
        rec.extra["w"] = bk.trains(m.weight)
        rec.extra["b"] = bk.trains(m.bias)
        keep_output_grad(rec, g3)

    def add_sq_norms(self, bk: BookKeeping, rec: LayerRecord, add: Callable[[torch.Tensor], None]) -> None:
        if rec.extra["b"]:  # the weight's share comes with its input group (shared_sq_norms)
            gb = rec.g.sum(1)
            rec.extra["gb"] = gb
            add(gb.float().square().sum(1))

    def shared_sq_norms(self, bk: BookKeeping, recs: List[LayerRecord]) -> Iterable[torch.Tensor]:
        return [_group_sq(group) for group in _groups(recs).values()]

    def add_unit_sq_norms(self, bk: BookKeeping, rec: LayerRecord, units: UnitSums) -> None:
        a, g = rec.a, rec.g
        n_units, u = units.n_units, units.u
        wa = units.w.to(g.dtype).view(-1, 1, 1)
        if rec.extra["w"]:
            acc = torch.zeros(n_units, g.shape[2], a.shape[2], dtype=torch.float32, device=units.device)
            step = max(1, MAX_SLICE // (a.shape[2] * g.shape[2]))
            for s0 in range(0, units.rows, step):
                sl = slice(s0, s0 + step)
                acc.index_add_(0, u[sl], torch.bmm((g[sl] * wa[sl]).transpose(1, 2), a[sl]).float())
            units.sq.add_(acc.reshape(n_units, -1).square().sum(1))
        if rec.extra["b"]:
            rec.extra["gb"] = rec.g.sum(1)
            units.add_rows(rec.extra["gb"] * wa.view(-1, 1))

    def begin_sum(self, recs: List[LayerRecord]) -> Any:
        return {"sizes": {k: len(v) for k, v in _groups(recs).items()}, "scaled_inputs": {}}

    def add_clipped(self, rec: LayerRecord, c: torch.Tensor, put: Callable[[nn.Parameter, torch.Tensor], None],
                    state: Any) -> None:
        m = rec.module
        a, g = rec.a, rec.g
        if rec.extra.get("w"):
            cc = c.to(a.dtype).view(-1, 1, 1)
            key = rec.extra["key"]
            if a.shape[2] <= g.shape[2] * state["sizes"].get(key, 1):  # scale the input once for its whole group
                ac = state["scaled_inputs"].get(key)
                if ac is None:
                    ac = state["scaled_inputs"][key] = (a * cc).reshape(-1, a.shape[2])
                w = g.reshape(-1, g.shape[2]).t() @ ac
            else:
                w = (g * cc).reshape(-1, g.shape[2]).t() @ a.reshape(-1, a.shape[2])
            put(m.weight, w)
        if "gb" in rec.extra:
            put(m.bias, c.to(rec.extra["gb"].dtype) @ rec.extra["gb"])
