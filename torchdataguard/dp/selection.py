"""The preflight passes the DP engine runs on one batch before training, and the choice of the clipper.

1. :func:`run_preflight`: audit the modules, check that per-sample gradients add up to the gradient
   (:func:`~torchdataguard.dp.preflight.check_per_sample_gradients`) and that rows do not influence each other
   (:mod:`~torchdataguard.dp.rowcheck`); every refusal lists its fix. What decides the clipper is returned as
   :class:`~torchdataguard.dp.clipping.base.PreflightFacts`.
2. :func:`choose_clipping`: the clipper the user named (checked that it can train the model exactly), or for
   ``"auto"``: book-keeping if every trained layer supports it and its per-row gradients add up to autograd's
   gradient on the preflight batch; else ghost clipping when per-example losses can be read from the model's
   output and no unit groups several rows; otherwise per-sample gradients (hooks).

Example:
    >>> import torch, torch.nn as nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from torchdataguard.dp import DPConfig, make_private
    >>> data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    >>> model = nn.Sequential(nn.Linear(4, 2))
    >>> dp = make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data, batch_size=4),
    ...                   DPConfig(noise_multiplier=1.0, delta=1e-3))
    >>> dp.report()["preflight"]["clipping"]
    "bk (auto: one backward pass; matched autograd's gradient on the preflight batch)"
    >>> dp.close()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import torch

from ..errors import ConfigError
from .batch import UNIT_KEY, output_field, preflight_rows, surrogate_loss
from .clipping import CLIPPERS, GhostClipper, PreflightFacts, bk_trial
from .losses import per_sample_loss
from .preflight import (PreflightError, UnsupportedModulesError, audit_modules, check_per_sample_gradients,
                        tied_parameters)
from .rowcheck import check_row_independence
from .stepchecks import inplace_off

__all__ = ["PreflightState", "check_buffers", "check_rows", "choose_clipping", "run_preflight"]


@dataclass
class PreflightState:
    """Whether a preflight pass is running (the engine then records nothing), and the dict it fills with what the
    model's inputs showed (``labels``, whether unit ids were seen)."""

    active: bool = False
    capture: Optional[Dict[str, Any]] = None


def run_preflight(engine, batch: Any, forward: Callable, loss_fn: Optional[Callable]) -> PreflightFacts:
    """Audit the model on ``batch`` (see the module docstring); refuse what would make the guarantee or the
    gradients wrong; fill ``engine.report_preflight``."""
    cfg = engine.config
    model = engine.model
    rep = engine.report_preflight
    rep.tied = tied_parameters(model)
    facts = PreflightFacts(batch=batch, forward=forward, loss_fn=loss_fn, checked=batch is not None and cfg.preflight,
                           has_units=engine.unit_ids_given)
    if batch is None:
        if cfg.preflight:
            rep.unsupported = audit_modules(model)
            if rep.unsupported:
                raise UnsupportedModulesError(rep.unsupported)
            rep.notes.append("no batch was available: only the modules were audited")
        return facts
    if not cfg.preflight:
        return facts
    rep.unsupported = audit_modules(model)
    if rep.unsupported:
        raise UnsupportedModulesError(rep.unsupported)
    if hasattr(batch, "keys") and UNIT_KEY in batch:
        facts.has_units = True
    rows = None
    captured: Dict[str, Any] = {}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}  # state a forward pass must not change

    def run_loss():
        nonlocal rows
        out = forward(model, batch)
        rows = engine.current.rows if engine.current is not None else None
        if loss_fn is not None:
            return loss_fn(out, batch)
        loss = output_field(out, "loss")
        if isinstance(loss, torch.Tensor) and loss.dim() == 0:
            logits = output_field(out, "logits")
            labels = captured.get("labels")
            got = per_sample_loss(model, logits, labels) if labels is not None else None
            if got is not None:
                per, batch_loss = got
                if torch.allclose(batch_loss.detach().float(), loss.detach().float(), rtol=1e-4, atol=1e-5):
                    captured["per_sample_ok"] = True
            if isinstance(logits, torch.Tensor) and logits.dim() == 3:
                captured["seq_len"] = int(logits.shape[1])
            return loss
        rep.notes.append("no loss in the model's output: the per-sample gradient check used the mean "
                         "square of the output")
        return surrogate_loss(out)

    with engine.preflight_pass(captured):
        # Opacus's full backward hooks cannot see an in-place op on a hooked layer's output: compute out of place
        restore_inplace = inplace_off(model)
        try:
            with engine.same_draws():
                check_per_sample_gradients(model, run_loss, batch_rows=lambda: rows or preflight_rows(batch),
                                           report=rep)
        except RuntimeError as exc:
            if "inplace" not in str(exc).replace("in-place", "inplace"):
                raise
            if cfg.clipping != "auto" and CLIPPERS.get(cfg.clipping).uses_opacus_hooks:
                raise ConfigError(
                    f"clipping={cfg.clipping!r} cannot train this model: an in-place operation modifies the output "
                    f"of a trainable layer (a functional in-place op such as x.relu_() or F.relu(x, inplace=True); "
                    f"modules with inplace=True are handled), and Opacus's hooks cannot follow it (autograd: "
                    f"{str(exc)[:120]}...). Write the operation out of place, or use clipping='bk' or 'auto'"
                ) from None
            facts.opacus_check_failed = True
            rep.notes.append("Opacus's per-sample gradient check could not run (an in-place operation on a "
                             "layer's output); book-keeping's own check on this batch decides instead")
        finally:
            restore_inplace()
    rep.broadcast_inputs = list(engine.expander.seen)
    if rep.mismatched:
        lines = "\n".join(f"  - {k}: {v}" for k, v in rep.mismatched.items())
        raise PreflightError(
            f"per-sample gradients do not add up to the gradient for {len(rep.mismatched)} parameter(s):\n"
            f"{lines}\nCommon causes: a custom layer Opacus has no grad sampler for (register one with "
            f"opacus.grad_sample.register_grad_sampler), a layer that mixes rows (BatchNorm, attention "
            f"over the batch), an input shared by the whole batch, or activation checkpointing inside forward "
            f"(torch.utils.checkpoint(..., use_reentrant=False) hides the layers it recomputes from the hooks: "
            f"call the layers directly). Freeze the layer, replace it, or set DPConfig(preflight=False) if you "
            f"have checked it yourself.")
    check_rows(engine, batch, forward)
    check_buffers(model, buffers)
    facts.per_sample_ok = bool(captured.get("per_sample_ok"))
    facts.has_units = facts.has_units or bool(captured.get("units_seen"))
    facts.seq_len = captured.get("seq_len")
    return facts


def check_buffers(model: torch.nn.Module, before: Dict[str, torch.Tensor]) -> None:
    """Refuse a model whose forward pass in training mode changes a buffer (running statistics of a frozen or
    custom layer, a counter): that state is computed from the examples without clipping or noise. The buffers are
    put back as they were before the preflight."""
    now = dict(model.named_buffers())
    changed = [n for n, b in before.items() if n in now and not torch.equal(now[n], b.to(now[n].device))]
    if not changed:
        return
    with torch.no_grad():
        for n in changed:
            now[n].copy_(before[n])
    raise PreflightError(
        f"the model's forward pass in training mode changed {len(changed)} buffer(s): {changed[:4]}"
        f"{' ...' if len(changed) > 4 else ''}. A buffer updated from the data (running statistics, an average, a "
        f"counter) is released with the model without clipping or noise, so it is not covered by the guarantee. "
        f"Keep such layers in eval mode, stop them updating during training, or remove the buffer")


def check_rows(engine, batch: Any, forward: Callable) -> None:
    """Refuse a model whose rows influence each other (see :mod:`~torchdataguard.dp.rowcheck`); record the layers
    that run several times in one forward pass."""
    rep = engine.report_preflight

    def run_forward(b):
        try:
            with engine.same_draws(), torch.enable_grad():
                return forward(engine.model, b)
        finally:
            engine.current = None

    with engine.preflight_pass():
        rc = check_row_independence(engine.model, batch, run_forward, batch_rows=preflight_rows(batch),
                                    model_rows=engine.current_rows, skip=(UNIT_KEY,))
    rep.called_twice = rc.called_twice
    rep.rows_checked = rc.points
    if rc.skipped:
        rep.notes.append(f"rows were not checked for independence: {rc.skipped}")
    if rc.changed:
        rep.rows_independent = False
        shown = f"{rc.changed[:4]}{' ...' if len(rc.changed) > 4 else ''}"
        raise PreflightError(
            f"the rows of a batch influence each other: on the preflight batch, changing only its last row changed "
            f"row 0 at {shown} (by up to {rc.worst_change:.2e} relative; identical passes differ by "
            f"{rc.noise_floor:.2e}). Each example's gradient then depends on the other examples of its batch, so "
            f"clipping it does not bound one example's influence and the epsilon would not hold. Common causes: "
            f"statistics over the batch dimension (x - x.mean(0), x / x.std(0), a BatchNorm-like custom layer), "
            f"attention or pooling across rows, in-batch negatives (contrastive losses), routing by batch capacity "
            f"(mixture of experts), an augmentation that blends examples (MixUp, CutMix: one example then shapes "
            f"two rows). Compute such statistics per example (over features or tokens, e.g. "
            f"LayerNorm), or remove the cross-row term. Only if the flagged tensors' first dimension is not the "
            f"batch (a sequence-first layout), set DPConfig(preflight=False) after checking it yourself.")
    rep.rows_independent = None if rc.skipped else True


def choose_clipping(engine, facts: PreflightFacts) -> str:
    """The name of the clipper to attach (see the module docstring); ``engine.report_preflight.clipping`` says why."""
    cfg = engine.config
    rep = engine.report_preflight
    if cfg.clipping != "auto":
        cls = CLIPPERS.get(cfg.clipping)
        cls.check_selected(engine, facts)
        rep.clipping = f"{cls.name} (selected)"
        return cls.name
    why = bk_trial(engine, facts)
    if why is None:
        rep.clipping = "bk (auto: one backward pass; matched autograd's gradient on the preflight batch)"
        return "bk"
    rep.notes.append(f"book-keeping clipping not used: {why}")
    if facts.opacus_check_failed:
        raise ConfigError(f"this model modifies a trainable layer's output in place (x.relu_(), F.relu(x, "
                          f"inplace=True)), which Opacus's hooks (ghost and hooks clipping) cannot follow, and "
                          f"book-keeping clipping cannot be used either ({why}). Write the operation out of place")
    reason = GhostClipper.auto_refusal(engine, facts)
    if reason is not None:
        rep.clipping = f"hooks (auto: {reason})"
        return "hooks"
    rep.clipping = "ghost (auto)"
    return "ghost"
