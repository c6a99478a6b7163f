"""Clipping mode ``"bk"``: book-keeping (:mod:`.bookkeeper`), one backward pass per micro-batch.

:func:`bk_trial` is the check ``"auto"`` runs before choosing it: on the preflight batch, the sum of the per-row
gradients book-keeping forms (no clipping) must equal the ordinary gradient of the loop's loss (same dropout
draws), and autograd must have computed no parameter gradient of its own (a parameter used outside its layer
would escape clipping).

Example:
    >>> from torchdataguard.dp.clipping import CLIPPERS
    >>> CLIPPERS.get("bk").__name__
    'BookKeepingClipper'
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch

from ...errors import ConfigError, StateError
from ..batch import output_field, preflight_rows, surrogate_loss
from ..micro import MicroBatch, unit_groups
from .base import CLIPPERS, Clipper, PreflightFacts
from .bookkeeper import BookKeeper

__all__ = ["BookKeepingClipper", "bk_trial"]


def bk_trial(engine, facts: PreflightFacts) -> Optional[str]:
    """Why book-keeping must not be chosen automatically (``None``: it may); see the module docstring."""
    bk = BookKeeper(engine.model, engine.params, padding=engine.pads)
    probs = bk.problems()
    if probs:
        return "; ".join(probs)
    if facts.batch is None or not engine.config.preflight:
        return "no preflight batch to check it on"
    batch, forward, loss_fn = facts.batch, facts.forward, facts.loss_fn
    model, params = engine.model, engine.params

    def run_loss() -> Tuple[torch.Tensor, int]:
        out = forward(model, batch)
        rows = engine.current.rows if engine.current is not None else preflight_rows(batch)
        if loss_fn is not None:
            return loss_fn(out, batch), rows
        loss = output_field(out, "loss")
        if isinstance(loss, torch.Tensor) and loss.dim() == 0:
            return loss, rows
        return surrogate_loss(out), rows

    captured: Dict[str, Any] = {}
    with engine.preflight_pass(captured):
        try:
            for p in params:
                p.grad = None
            with engine.same_draws():  # both passes draw the same dropout masks and augmentations
                loss, rows = run_loss()
                want = torch.autograd.grad(loss, params, allow_unused=True)
            bk.attach()
            bk.active = lambda: True
            bk.begin(rows)
            with engine.same_draws():
                loss, _ = run_loss()
                loss.backward()
            leaked = [n for p, n in zip(params, engine.param_names) if p.grad is not None]
            if leaked:
                return f"autograd computed gradients of {leaked[:3]} outside their layers (used directly?)"
            if bk.finish() is None:
                return "no trainable layer took part in the loss"
            got = bk.clipped_sum(torch.ones(rows, device=loss.device))
            for p, n, w in zip(params, engine.param_names, want):
                g = got.get(p)
                w = torch.zeros_like(p) if w is None else w
                g = torch.zeros_like(p) if g is None else g
                tol = 1e-3 * float(w.abs().max()) + 1e-6
                if float((g.float() - w.float()).abs().max()) > tol:
                    return f"its gradient of {n} differs from autograd's on the preflight batch"
            return None
        except (ConfigError, StateError, RuntimeError) as exc:
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            bk.detach()
            for p in params:
                p.grad = None


@CLIPPERS.register("bk")
class BookKeepingClipper(Clipper):
    """Book-keeping: each micro-batch's norms and clipped sum from the one backward pass of the loop's loss."""

    name = "bk"

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.bk: Optional[BookKeeper] = None
        self._leaked: List[str] = []

    @classmethod
    def check_selected(cls, engine, facts: PreflightFacts) -> None:
        probs = BookKeeper(engine.model, engine.params, padding=engine.pads).problems()
        if not probs and facts.opacus_check_failed:
            why = bk_trial(engine, facts)
            probs = [why] if why else []
        if probs:
            raise ConfigError("clipping='bk' cannot clip this model exactly: " + "; ".join(probs)
                              + ". Use clipping='ghost', 'hooks' or 'auto'")

    def attach(self) -> None:
        eng = self.engine
        self.bk = BookKeeper(eng.model, eng.params, padding=eng.pads,
                             active=lambda: eng.current is not None and not eng.preflight.active)
        self.bk.attach()

    def detach(self) -> None:
        if self.bk is not None:
            self.bk.detach()
            self.bk = None

    def begin(self, rows: int) -> None:
        self.bk.begin(rows)

    def on_param_grad(self, name: str) -> None:
        # under book-keeping autograd computes no parameter gradient: this one escaped the layers
        self._leaked.append(name)

    def pending(self) -> bool:
        return self.bk is not None and self.bk.pending()

    def discard(self) -> None:
        if self.bk is not None:
            self.bk.end()

    def clip(self, micro: Optional[MicroBatch]) -> None:
        """The backward pass of the loop's own loss gave each row's output gradients; clip and sum.

        The loop's loss is ``sum_i w_i l_i / d`` (see :func:`~torchdataguard.dp.micro.loss_scale`), so row ``i``'s
        gradient of its own loss is ``d / w_i`` times what the pass recorded: norms and the clipped sum are scaled
        by that factor.
        """
        if micro is None:
            return
        eng = self.engine
        bk = self.bk
        leaked, self._leaked = self._leaked, []
        if leaked:
            bk.end()
            raise ConfigError(f"book-keeping clipping: autograd computed gradients of {sorted(set(leaked))[:5]} "
                              f"outside their layers (a parameter used directly in a forward pass), so they would not "
                              f"be clipped; use DPConfig(clipping='hooks')")
        if micro.plan is not None and micro.plan.pad:  # a padding micro-batch of the sampler: no gradient at all
            bk.end()
            return
        max_norm = eng.config.max_grad_norm
        idx, n_groups, counts = unit_groups(micro)
        scale = eng.scale(micro)
        factor = (scale.float() if isinstance(scale, torch.Tensor)
                  else torch.full((micro.rows,), float(scale))) * micro.rows
        if idx is not None and n_groups != int((idx >= 0).sum()):
            # rows that share a unit: the unit's gradient is the sum (user rows) or mean (views) of its rows'
            keep = idx >= 0
            w = factor.to(idx.device).clone()
            if eng.config.unit_reduction == "mean":
                w = w / counts.to(w.device, w.dtype)[idx.clamp(min=0)]
            w = w * keep.to(w.dtype)
            unit_norm = bk.finish_units(w, idx, n_groups)
            if unit_norm is None:
                bk.end()
                return
            c_unit = (max_norm / (unit_norm + 1e-6)).clamp(max=1.0)
            coef = c_unit[idx.clamp(min=0).to(c_unit.device)] * w.to(c_unit.device)
        else:
            raw = bk.finish()
            if raw is None:  # no trainable layer took part (a forward without backward)
                bk.end()
                return
            factor = factor.to(raw.device)
            norm = raw * factor.abs()
            coef = (max_norm / (norm + 1e-6)).clamp(max=1.0) * factor
            if idx is not None:
                coef = coef * (idx.to(coef.device) >= 0).to(coef.dtype)
        for p, g in bk.clipped_sum(coef).items():
            p.summed_grad = g if getattr(p, "summed_grad", None) is None else p.summed_grad + g
