"""Clipping mode ``"ghost"``: ghost clipping (Li et al. 2022) through Opacus's hooks. The first backward pass of
the per-example losses gives each example's gradient norm without forming its gradient; the second back-propagates
the losses re-weighted by the clipping factors. Layers whose ghost norm cannot work or costs more (tied weights,
layers called twice, linear layers at long sequence lengths) fall back to per-sample gradients.

* :func:`ghost_hooks_class`: Opacus's ghost-clipping hooks with that per-layer fallback, with the output gradient
  at an ``nn.Embedding``'s ``padding_idx`` positions masked so that each example's norm is autograd's (the
  padding row gets no gradient), and a clear error where Opacus cannot follow a shared layer.
* :class:`GhostClipper`: the mode; the model's loss becomes a :class:`~.ghost_loss.GhostLoss`.

Example:
    >>> import torch.nn as nn
    >>> cls = ghost_hooks_class()
    >>> hooks = cls(nn.Linear(2, 2), no_ghost=set(), batch_first=True, loss_reduction="mean", strict=False,
    ...             max_grad_norm=1.0, use_ghost_clipping=True)
    >>> hooks.cleanup()
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Set, Tuple

import torch
import torch.nn as nn

from ...errors import ConfigError, StateError
from ..micro import ONE_FORWARD, MicroBatch, unit_groups
from ..stepchecks import inplace_off
from .base import CLIPPERS, Clipper, PreflightFacts
from .ghost_loss import GhostLoss

__all__ = ["GhostClipper", "ghost_hooks_class"]


def ghost_hooks_class() -> type:
    """Opacus's ghost-clipping hooks with a per-layer fallback to per-sample gradients (see the module docstring)."""
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
                                  f"gradients, or use clipping='hooks' or 'auto'. If each layer runs once: "
                                  f"{ONE_FORWARD}") from None

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


@CLIPPERS.register("ghost")
class GhostClipper(Clipper):
    """Two backward passes per micro-batch: per-example norms (ghost), then the clipped gradient."""

    name = "ghost"
    uses_opacus_hooks = True

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.hooks = None
        self._restore_inplace: Optional[Callable[[], None]] = None

    @classmethod
    def check_selected(cls, engine, facts: PreflightFacts) -> None:
        if engine.unit_ids_given:
            raise ConfigError("clipping='ghost' cannot combine several rows into one privacy unit (ghost "
                              "clipping never forms per-sample gradients); use clipping='hooks' or 'auto'")
        if facts.checked and not facts.per_sample_ok and facts.loss_fn is None:
            raise ConfigError("clipping='ghost' needs per-example losses: the model's output must carry "
                              "'logits' and the batch 'labels' (classification, regression or token-level "
                              "cross-entropy); use clipping='hooks' or 'auto'")

    @staticmethod
    def auto_refusal(engine, facts: PreflightFacts) -> Optional[str]:
        """Why ``"auto"`` must not pick ghost clipping (``None``: it may)."""
        if facts.has_units:
            return "a privacy unit may hold several rows"
        if not facts.per_sample_ok:
            return "per-example losses cannot be read from the model's output"
        twice = engine.report_preflight.called_twice
        if twice:
            return f"{twice[:3]} run several times in one forward pass; ghost clipping cannot add up their norms"
        return None

    def _no_ghost(self) -> Set[int]:
        """The modules that use per-sample gradients instead of ghost norms (notes say why)."""
        eng = self.engine
        rep = eng.report_preflight
        model = eng.model
        no_ghost = set()
        tied_modules = {m for mods in rep.tied.values() for m in mods}
        named = dict(model.named_modules())
        for mname in tied_modules:
            no_ghost.add(id(named[mname]))
        if tied_modules:
            rep.notes.append(f"tied weights: {sorted(tied_modules)} use per-sample gradients instead of ghost norms")
        twice = [n for n in rep.called_twice if n in named or n == "<root>"]
        for mname in twice:
            no_ghost.add(id(named.get(mname, model) if mname != "<root>" else model))
        if twice:
            rep.notes.append(f"{twice[:5]} run several times in one forward pass: they use per-sample gradients "
                             f"instead of ghost norms")
        t = eng.facts.seq_len
        if t is not None and eng.config.clipping == "auto":
            slow = []
            for mname, m in named.items():
                if isinstance(m, nn.Linear) and m.weight.requires_grad and 2 * t * t > m.in_features * m.out_features:
                    no_ghost.add(id(m))
                    slow.append(mname)
            if slow:
                rep.notes.append(f"{len(slow)} linear layer(s) use per-sample gradients: at sequence length {t} "
                                 f"their ghost norms cost more")
        return no_ghost

    def attach(self) -> None:
        eng = self.engine
        self.hooks = ghost_hooks_class()(eng.model, no_ghost=self._no_ghost(), batch_first=True,
                                         loss_reduction="mean", strict=False, max_grad_norm=eng.config.max_grad_norm,
                                         use_ghost_clipping=True)
        # Opacus's full backward hooks cannot follow an in-place op on a hooked layer's output: out of place
        self._restore_inplace = inplace_off(eng.model)

    def detach(self) -> None:
        if self.hooks is not None:
            self.hooks.cleanup()
            self.hooks = None
        if self._restore_inplace is not None:
            self._restore_inplace()
            self._restore_inplace = None

    @property
    def needs_per_example_losses(self) -> bool:
        return True

    def missing_losses(self, shapes: Optional[Tuple[tuple, tuple]]) -> None:
        if shapes is None:
            raise ConfigError("ghost clipping needs the model's 'loss' and 'logits' and the batch's 'labels' to "
                              "form per-example losses; use DPConfig(clipping='hooks') or pass labels")
        raise ConfigError("ghost clipping could not form per-example losses for this output (logits "
                          f"{shapes[0]}, labels {shapes[1]}); use clipping='hooks'")

    def on_output(self, output: Any, per_example: Optional[torch.Tensor], loss: torch.Tensor) -> Any:
        output["loss"] = GhostLoss(self, per_example, loss.detach())
        return output

    def backward(self, per: torch.Tensor) -> None:
        """The two passes for the recorded micro-batch's per-example losses ``per`` (``GhostLoss.backward``)."""
        eng = self.engine
        micro: Optional[MicroBatch]
        micro, eng.current = eng.current, None
        if micro is None:
            raise StateError("a ghost-clipped loss was back-propagated twice, or after the optimizer step")
        n = per.shape[0]
        pad = micro.plan is not None and micro.plan.pad
        idx, n_groups, _ = (None, n, None) if pad else unit_groups(micro)
        if idx is not None and n_groups != int((idx >= 0).sum()):
            raise ConfigError("ghost clipping cannot combine several rows into one privacy unit; use "
                              "DPConfig(clipping='hooks')")
        eng.keep_grads = False
        self.hooks.enable_hooks()
        per.mean().backward(retain_graph=not pad)
        norms = []
        normed = set()
        for p in eng.params:
            ns = getattr(p, "_norm_sample", None)
            if ns is not None:
                norms.append(ns.reshape(-1).to(per.device).float())
                normed.add(id(p))
                del p._norm_sample
            p.grad_sample = None
        if pad:
            return
        norm = torch.stack(norms, 0).norm(2, dim=0) if norms else torch.zeros(n, device=per.device)
        coef = (eng.config.max_grad_norm / (norm + 1e-6)).clamp(max=1.0)
        if idx is not None:
            coef = coef * (idx.to(coef.device) >= 0).to(coef.dtype)
        self.hooks.disable_hooks()
        eng.keep_grads = True
        try:
            (coef.detach().to(per.dtype) * per).sum().backward()
        finally:
            self.hooks.enable_hooks()
            eng.keep_grads = False
        unclipped = [name for p, name in zip(eng.params, eng.param_names) if p.grad is not None and id(p) not in normed]
        if unclipped:
            for p in eng.params:
                p.grad = None
            raise ConfigError(f"ghost clipping saw no per-sample norm for parameters {unclipped[:5]}"
                              f"{' ...' if len(unclipped) > 5 else ''} (used outside the modules Opacus hooks), so "
                              f"their gradient would not be clipped; use DPConfig(clipping='hooks') or keep "
                              f"preflight=True, which finds such parameters before training")
        for p in eng.params:
            if p.grad is not None:
                p.summed_grad = p.grad if getattr(p, "summed_grad", None) is None else p.summed_grad + p.grad
                p.grad = None
