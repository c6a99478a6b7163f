"""Opacus's hooks as the DP engine uses them, and the loss that stands in for the model's under ghost clipping.

* :func:`hooks_class`: Opacus's per-sample gradient hooks, quiet on the backward pass of an eval-mode forward
  (no activations were recorded; the engine refuses the step that follows, with the fix).
* :func:`ghost_hooks_class`: Opacus's ghost-clipping hooks with a per-layer fallback to per-sample gradients
  (tied weights, layers called twice, layers whose ghost norm costs more), with the output gradient at an
  ``nn.Embedding``'s ``padding_idx`` positions masked so that each example's norm is autograd's (the padding row
  gets no gradient), and a clear error where Opacus cannot follow a shared layer.
* :class:`GhostLoss`: what ``model(...).loss`` is under ghost clipping; its ``backward()`` runs the two passes.

Example:
    >>> import torch.nn as nn
    >>> cls = ghost_hooks_class()
    >>> hooks = cls(nn.Linear(2, 2), no_ghost=set(), batch_first=True, loss_reduction="mean", strict=False,
    ...             max_grad_norm=1.0, use_ghost_clipping=True)
    >>> hooks.cleanup()
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..errors import ConfigError

__all__ = ["GhostLoss", "ghost_hooks_class", "hooks_class"]


# -- Opacus's hooks ------------------------------------------------------------------------------------------------
def hooks_class() -> type:
    from opacus.grad_sample import GradSampleHooks

    class _Hooks(GradSampleHooks):
        """Opacus's per-sample gradient hooks, quiet on a backward pass of an eval-mode forward (which recorded no
        activations; the engine refuses the step that follows with the fix instead of Opacus's IndexError)."""

        def capture_backprops_hook(self, module, *a, **k):
            if not module.__dict__.get("activations") and not module.training:
                return None
            return super().capture_backprops_hook(module, *a, **k)

    return _Hooks


# -- ghost clipping ------------------------------------------------------------------------------------------------
def ghost_hooks_class() -> type:
    from opacus.grad_sample import GradSampleHooksFastGradientClipping

    class _GhostHooks(GradSampleHooksFastGradientClipping):
        """Opacus's ghost-clipping hooks with a per-layer fallback to per-sample gradients (``no_ghost``)."""

        def __init__(self, m, *, no_ghost: set, **kw):
            self._no_ghost = set(no_ghost)
            super().__init__(m, **kw)

        def _call(self, fn, module, *a, **k):
            if id(module) in self._no_ghost and self.use_ghost_clipping:
                self.use_ghost_clipping = False
                try:
                    return fn(module, *a, **k)
                finally:
                    self.use_ghost_clipping = True
            return fn(module, *a, **k)

        def capture_activations_hook(self, module, *a, **k):
            try:
                return self._call(super().capture_activations_hook, module, *a, **k)
            except NotImplementedError as exc:
                if "Parameter tying" not in str(exc):
                    raise
                raise ConfigError(f"ghost clipping: a trainable {type(module).__name__} runs several times in one "
                                  f"forward pass, and Opacus's ghost norms cannot add up its calls. Keep "
                                  f"DPConfig(preflight=True), which finds such layers and gives them per-sample "
                                  f"gradients, or use clipping='hooks' or 'auto'") from None

        def capture_backprops_hook(self, module, grad_input, grad_output, *a, **k):
            if not module.__dict__.get("activations") and not module.training:
                return None  # an eval-mode forward recorded nothing; the engine refuses the step that follows
            pad = module.padding_idx if isinstance(module, nn.Embedding) else None
            acts = module.__dict__.get("activations")
            if pad is not None and self.hooks_enabled and acts and isinstance(grad_output[0], torch.Tensor):
                # autograd gives the padding row no gradient; Opacus's embedding norm (and per-sample gradient)
                # would count the output gradient at padding positions: mask it so the norm is autograd's
                ids = acts[-1][0]
                g = grad_output[0]
                if ids.shape == g.shape[:-1]:
                    grad_output = (g * (ids != pad).unsqueeze(-1).to(g.dtype),) + tuple(grad_output[1:])
            return self._call(super().capture_backprops_hook, module, grad_input, grad_output, *a, **k)

    return _GhostHooks


class GhostLoss:
    """Stands in for the model's loss under ghost clipping: ``backward()`` runs the two passes.

    Scaling (``loss / k``, ``loss * k``) changes only the reported value: the gradient is always the clipped
    per-example gradient, which is what the accountant assumes. Adding other terms is refused (their gradient
    would not be clipped).
    """

    def __init__(self, engine: Any, per_sample: torch.Tensor, reported: torch.Tensor) -> None:
        self.engine = engine
        self.per_sample = per_sample
        self.reported = reported

    def _scaled(self, v: torch.Tensor) -> "GhostLoss":
        return GhostLoss(self.engine, self.per_sample, v)

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
        self.engine._ghost_backward(self.per_sample)

    def __repr__(self) -> str:
        return f"GhostClippedLoss({self.item():.4f})"
