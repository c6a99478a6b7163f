"""Clipping mode ``"hooks"``: Opacus's per-sample gradient hooks; each micro-batch's per-sample gradients are
rescaled to per-example-loss gradients, grouped by privacy unit and clipped by Opacus's optimizer.

Example:
    >>> import torch.nn as nn
    >>> hooks = hooks_class()(nn.Linear(2, 2), batch_first=True, loss_reduction="mean", strict=False)
    >>> hooks.cleanup()
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ...errors import StateError
from ..micro import MicroBatch, unit_groups
from ..noise import CLIPPED_INPUT_ATTR
from ..stepchecks import inplace_off
from .base import CLIPPERS, Clipper

__all__ = ["HooksClipper", "hooks_class"]


def hooks_class() -> type:
    """Opacus's ``GradSampleHooks``, quiet on the backward pass of an eval-mode forward (no activations were
    recorded; the engine refuses the step that follows, with the fix)."""
    from opacus.grad_sample import GradSampleHooks

    class _Hooks(GradSampleHooks):
        """Opacus's per-sample gradient hooks, quiet on a backward pass of an eval-mode forward (which recorded no
        activations; the engine refuses the step that follows with the fix instead of Opacus's IndexError)."""

        def capture_backprops_hook(self, module, *a, **k):
            if not module.__dict__.get("activations") and not module.training:
                return None
            return super().capture_backprops_hook(module, *a, **k)

    return _Hooks


@CLIPPERS.register("hooks")
class HooksClipper(Clipper):
    """Per-sample gradients of every trained parameter (Opacus's hooks), clipped per unit after each backward."""

    name = "hooks"
    uses_opacus_hooks = True

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.hooks = None
        self._restore_inplace: Optional[Callable[[], None]] = None

    def attach(self) -> None:
        model = self.engine.model
        self.hooks = hooks_class()(model, batch_first=True, loss_reduction="mean", strict=False)
        # Opacus's full backward hooks cannot follow an in-place op on a hooked layer's output (nn.ReLU(inplace=
        # True) after a Linear): such modules compute out of place while attached (same values)
        self._restore_inplace = inplace_off(model)

    def detach(self) -> None:
        if self.hooks is not None:
            self.hooks.cleanup()
            self.hooks = None
        if self._restore_inplace is not None:
            self._restore_inplace()
            self._restore_inplace = None

    def pending(self) -> bool:
        return any(getattr(p, "grad_sample", None) is not None for p in self.engine.params)

    def clip(self, micro: Optional[MicroBatch]) -> None:
        if micro is None:
            return
        eng = self.engine
        drop = micro.plan is not None and micro.plan.pad
        idx, n_groups, counts = (None, micro.rows, None) if drop else unit_groups(micro)
        scale = eng.scale(micro)
        try:
            if not drop:
                for p, name in zip(eng.params, eng.param_names):
                    gs = p.grad_sample if hasattr(p, "grad_sample") else None
                    if isinstance(gs, list):
                        gs = torch.cat(gs, 0)
                    if gs is None:
                        gs = torch.zeros((micro.rows,) + tuple(p.shape), device=p.device, dtype=p.dtype)
                    if gs.shape[0] != micro.rows:
                        raise StateError(f"the per-sample gradient of {name} has {gs.shape[0]} rows for a micro-batch "
                                         f"of {micro.rows}: an input is broadcast over the batch (see the preflight)")
                    if id(p) in eng.pads:
                        gs[:, eng.pads[id(p)]] = 0
                    # in place: Opacus's per-sample gradient tensor is discarded after this step anyway
                    if isinstance(scale, torch.Tensor):
                        gs.mul_(scale.to(gs.device, gs.dtype).view(-1, *([1] * (gs.dim() - 1))))
                    elif scale != 1.0:
                        gs.mul_(scale)
                    if idx is not None:
                        keep = idx >= 0
                        out = torch.zeros((n_groups,) + tuple(gs.shape[1:]), device=gs.device, dtype=gs.dtype)
                        out.index_add_(0, idx[keep].to(gs.device), gs[keep.to(gs.device)])
                        if eng.config.unit_reduction == "mean":
                            out = out / counts.to(gs.device, gs.dtype).view(-1, *([1] * (gs.dim() - 1)))
                        gs = out
                    setattr(p, CLIPPED_INPUT_ATTR, gs)
                eng.opacus_optimizer.clip_and_accumulate()
        finally:
            for p in eng.params:
                p.grad_sample = None
                if hasattr(p, CLIPPED_INPUT_ATTR):
                    delattr(p, CLIPPED_INPUT_ATTR)
