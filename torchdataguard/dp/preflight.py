"""Preflight audit of a model for DP-SGD, on one batch, before training.

Per-sample gradients are only right when every row of the batch flows through the model on its own. The
audit checks that, fixes what can be fixed without touching the user's model, and refuses the rest with one
error that lists every problem and its fix (as Opacus's ``ModuleValidator`` does):

* **Modules** that mix rows or have no per-sample gradient: BatchNorm (batch statistics mix examples),
  trainable ``nn.LSTM``/``nn.GRU``/``nn.RNN`` and ``nn.MultiheadAttention`` (use Opacus's DP layers),
  trainable layers that hold buffers. All listed at once; :func:`fix_model` swaps them with Opacus's fixers.
* **Broadcast inputs**: Hugging Face encoders slice ``position_ids`` / ``token_type_ids`` buffers of shape
  ``[1, T]`` and let broadcasting do the rest; per-sample gradients of those embeddings then have one row
  for the whole batch. :class:`BroadcastExpander` expands such inputs to ``[N, T]`` at the embedding (the
  model's own code is untouched).
* **padding_idx**: autograd gives the padding row of an ``nn.Embedding(padding_idx=...)`` no gradient, but
  Opacus's embedding grad sampler does; the DP engine zeroes that row of every per-sample gradient.
* **Per-sample gradients summed == ordinary gradient** on the batch, parameter by parameter (this catches
  custom layers, wrappers such as LoRA, and anything the above missed).
* **Rows independent** (:mod:`~torchdataguard.dp.rowcheck`, run by the DP engine): changing one row of
  the batch must leave the other rows' layer inputs and outputs as they were (a model that mixes rows without
  parameters, such as ``h - h.mean(0)``, passes the summed-gradient check but not this one).
* **Tied weights** (one parameter in several modules, e.g. GPT-2's embedding and LM head): ghost clipping
  cannot compute their norms, so those layers fall back to per-sample gradients.

Example:
    >>> import torch.nn as nn
    >>> problems = audit_modules(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    >>> [(p.name, p.kind) for p in problems]
    [('1', 'BatchNorm1d')]
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from ..errors import ConfigError
from .stepchecks import inplace_off

__all__ = [
    "BroadcastExpander",
    "ModuleProblem",
    "PreflightError",
    "PreflightReport",
    "UnsupportedModulesError",
    "audit_modules",
    "check_per_sample_gradients",
    "fix_model",
    "padding_embeddings",
    "tied_parameters",
]


@dataclass(frozen=True)
class ModuleProblem:
    """One module that DP-SGD cannot train as it is."""

    name: str
    kind: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.name or '<root>'} ({self.kind}): {self.problem}. Fix: {self.fix}"


class UnsupportedModulesError(ConfigError):
    """The model has modules that break per-sample gradients; every one is listed with its fix."""

    def __init__(self, problems: List[ModuleProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p.line()}" for p in self.problems)
        super().__init__(f"{len(self.problems)} module(s) cannot be trained with DP-SGD as they are:\n{lines}\n"
                         f"torchdataguard.dp.preflight.fix_model(model) applies the fixes (build the optimizer "
                         f"afterwards).")


class PreflightError(ConfigError):
    """The per-sample gradients of the audit batch do not add up to the ordinary gradient."""


def _direct_trainable(m: nn.Module) -> bool:
    return any(p.requires_grad for p in m.parameters(recurse=False))


def audit_modules(model: nn.Module) -> List[ModuleProblem]:
    """Every module that breaks DP-SGD, with the fix (empty list: nothing found).

    Example:
        >>> audit_modules(nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 2)))[0].fix[:22]
        'use opacus.layers.DPLS'
    """
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.instancenorm import _InstanceNorm

    out: List[ModuleProblem] = []
    for name, m in model.named_modules():
        kind = type(m).__name__
        trainable = _direct_trainable(m)
        if isinstance(m, _BatchNorm):
            if trainable or m.training:
                out.append(ModuleProblem(name, kind, "batch statistics mix the examples of a batch, so no "
                                         "per-example gradient exists", "replace it with nn.GroupNorm "
                                         "(fix_model does), or freeze it and keep it in eval mode"))
            continue
        if isinstance(m, _InstanceNorm) and m.track_running_stats and (trainable or m.training):
            out.append(ModuleProblem(name, kind, "running statistics are updated from every example",
                                     "set track_running_stats=False (fix_model does)"))
            continue
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.max_norm is not None:
            out.append(ModuleProblem(name, kind, f"max_norm={m.max_norm} rescales the rows it looks up in place at "
                                     f"every forward pass, outside clipping and noise: which rows changed shows "
                                     f"which tokens the training data holds", f"set {name or 'the module'}.max_norm = "
                                     f"None (trained or frozen)"))
            continue
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse and trainable:
            out.append(ModuleProblem(name, kind, "sparse=True makes its gradient a sparse tensor, which per-example "
                                     "clipping and the noise (added to every row) cannot take", "set sparse=False"))
            continue
        if isinstance(m, nn.RNNBase) and any(p.requires_grad for p in m.parameters()):
            dp = {"LSTM": "DPLSTM", "GRU": "DPGRU"}.get(kind, "DPRNN")
            out.append(ModuleProblem(name, kind, "cuDNN recurrent layers have no per-sample gradient",
                                     f"use opacus.layers.{dp} (fix_model does)"))
            continue
        if isinstance(m, nn.MultiheadAttention) and any(p.requires_grad for p in m.parameters()):
            out.append(ModuleProblem(name, kind, "its fused projection has no per-sample gradient",
                                     "use opacus.layers.DPMultiheadAttention (fix_model does)"))
            continue
        if trainable and any(True for _ in m.buffers(recurse=False)):
            out.append(ModuleProblem(name, kind, "a trainable layer holding buffers (state shared across examples)",
                                     "move the buffer out of the trainable layer or freeze the layer"))
    return out


def fix_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with Opacus's fixers applied (BatchNorm -> GroupNorm, LSTM -> DPLSTM ...).

    The copy has new parameters: create the optimizer from the returned model.

    Example:
        >>> fixed = fix_model(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
        >>> type(fixed[1]).__name__, audit_modules(fixed)
        ('GroupNorm', [])
    """
    from opacus.validators import ModuleValidator

    fixed = ModuleValidator.fix(model)
    left = audit_modules(fixed)
    if left:
        raise UnsupportedModulesError(left)
    return fixed


def tied_parameters(model: nn.Module) -> Dict[str, List[str]]:
    """Trainable parameters held by more than one module: ``{parameter name: [module names]}``.

    Example:
        >>> emb = nn.Embedding(10, 4); head = nn.Linear(4, 10, bias=False); head.weight = emb.weight
        >>> tied_parameters(nn.ModuleDict({"emb": emb, "head": head}))
        {'emb.weight': ['emb', 'head']}
    """
    owners: Dict[int, List[str]] = {}
    first_name: Dict[int, str] = {}
    for mname, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            owners.setdefault(id(p), []).append(mname)
            first_name.setdefault(id(p), f"{mname}.{pname}" if mname else pname)
    return {first_name[k]: v for k, v in owners.items() if len(v) > 1}


def padding_embeddings(model: nn.Module) -> Dict[str, Tuple[nn.Parameter, int]]:
    """Trainable ``nn.Embedding`` modules with a ``padding_idx``: ``{module name: (weight, padding_idx)}``."""
    return {name: (m.weight, int(m.padding_idx)) for name, m in model.named_modules()
            if isinstance(m, nn.Embedding) and m.padding_idx is not None and m.weight.requires_grad}


class BroadcastExpander:
    """Expands batch-1 inputs of trainable embeddings to the batch size (broadcast ``position_ids`` etc.).

    ``batch_size`` is a callable returning the current batch's row count (the DP engine records it from the
    model's inputs). The names of embeddings that received a broadcast input are kept in :attr:`seen`.

    Example:
        >>> emb = nn.Embedding(8, 2)
        >>> exp = BroadcastExpander(emb, lambda: 3)
        >>> emb(torch.arange(4)[None]).shape
        torch.Size([3, 4, 2])
        >>> exp.seen, exp.remove()
        (['<root>'], None)
    """

    def __init__(self, model: nn.Module, batch_size: Callable[[], Optional[int]]) -> None:
        self.batch_size = batch_size
        self.seen: List[str] = []
        self._handles = []
        for name, m in model.named_modules():
            if isinstance(m, nn.Embedding) and m.weight.requires_grad:
                self._handles.append(m.register_forward_pre_hook(self._make_hook(name or "<root>")))

    def _make_hook(self, name: str):
        def hook(module, args):
            if not args or not isinstance(args[0], torch.Tensor) or not (module.training and torch.is_grad_enabled()):
                return None
            x = args[0]
            n = self.batch_size()
            if n is not None and n > 1 and x.dim() >= 2 and x.shape[0] == 1:
                if name not in self.seen:
                    self.seen.append(name)
                return (x.expand(n, *x.shape[1:]).contiguous(),) + tuple(args[1:])
            if not x.is_contiguous():  # e.g. a buffer expanded by the model; Opacus's samplers need a dense layout
                return (x.contiguous(),) + tuple(args[1:])
            return None

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@dataclass
class PreflightReport:
    """What the audit found and did (JSON-able through :meth:`to_dict`)."""

    batch_rows: int = 0
    unsupported: List[ModuleProblem] = field(default_factory=list)
    broadcast_inputs: List[str] = field(default_factory=list)
    padding_idx: List[str] = field(default_factory=list)
    tied: Dict[str, List[str]] = field(default_factory=dict)
    checked_parameters: int = 0
    max_relative_error: float = 0.0
    mismatched: Dict[str, str] = field(default_factory=dict)
    #: rows checked not to influence each other (True), found to (False), or not checked (None)
    rows_independent: Optional[bool] = None
    rows_checked: int = 0
    #: trainable layers that run several times in one forward pass
    called_twice: List[str] = field(default_factory=list)
    clipping: str = ""
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unsupported and not self.mismatched and self.rows_independent is not False

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["unsupported"] = [p.line() for p in self.unsupported]
        d["ok"] = self.ok
        return d


def check_per_sample_gradients(model: nn.Module, run_loss: Callable[[], torch.Tensor], *,
                               batch_rows: int | Callable[[], int],
                               fix_padding: bool = True, rtol: float = 1e-3, atol: float = 1e-6,
                               report: Optional[PreflightReport] = None) -> PreflightReport:
    """Attach Opacus's per-sample hooks, run ``run_loss()`` (forward on one batch) and backward once, and
    compare, for every trainable parameter, the per-sample gradients summed with the ordinary gradient.

    ``batch_rows`` is the number of rows of the batch (each parameter must get that many per-sample
    gradients), or a callable asked after the forward pass (when pre-hooks change the batch). The model's
    gradients are restored afterwards and the hooks removed. When a trainable layer computes in 16 bits (bf16
    or fp16 parameters, or autocast, as the Trainer's ``bf16=True`` sets up), ``rtol`` is raised to four times
    that format's machine epsilon: rounding, not a missing per-sample gradient, then separates the two sums.

    Example:
        >>> m = nn.Sequential(nn.Linear(3, 2)); x = torch.randn(5, 3)
        >>> rep = check_per_sample_gradients(m, lambda: m(x).pow(2).mean(), batch_rows=5)
        >>> rep.ok, rep.checked_parameters
        (True, 2)
    """
    from opacus.grad_sample import GradSampleHooks

    rep = report if report is not None else PreflightReport()
    names = {id(p): n for n, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    pads = {id(w): idx for w, idx in padding_embeddings(model).values()}
    rep.padding_idx = sorted(padding_embeddings(model))
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    hooks = GradSampleHooks(model, batch_first=True, loss_reduction="mean", strict=False)
    # an in-place module (nn.ReLU(inplace=True)) on a hooked layer's output is an autograd error under Opacus's
    # full backward hooks: such modules compute out of place during the check (the same values)
    restore_inplace = inplace_off(model)
    low: List[torch.dtype] = []  # the 16-bit dtypes trainable layers compute in (rounding widens the gap)
    watch = [m.register_forward_hook(lambda m, a, out: low.append(out.dtype) if isinstance(out, torch.Tensor)
                                     and out.dtype in (torch.bfloat16, torch.float16) else None)
             for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    try:
        try:
            loss = run_loss()
        finally:
            for h in watch:
                h.remove()
        if low:
            rtol = max(rtol, 4 * max(torch.finfo(d).eps for d in low))
            rep.notes.append(f"trainable layers compute in {sorted({str(d) for d in low})}: the summed per-sample "
                             f"gradients were compared within a relative {rtol:.2g}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            loss.backward()
        batch_rows = int(batch_rows() if callable(batch_rows) else batch_rows)
        rep.batch_rows = batch_rows
        worst = 0.0
        for p in params:
            name = names.get(id(p), "?")
            gs = p.grad_sample
            if isinstance(gs, list):
                gs = torch.cat(gs, 0) if len(gs) == 1 else torch.stack([g for g in gs]).sum(0)
            g = p.grad
            if gs is None and g is None:
                continue
            rep.checked_parameters += 1
            if gs is None:
                rep.mismatched[name] = "no per-sample gradient (the layer is invisible to Opacus's hooks)"
                continue
            if gs.shape[0] != batch_rows:
                rep.mismatched[name] = (f"per-sample gradient has {gs.shape[0]} rows for a batch of {batch_rows} "
                                        f"(a broadcast input such as position_ids)")
                continue
            gs = gs.detach().clone()
            if fix_padding and id(p) in pads:
                gs[:, pads[id(p)]] = 0
            total = gs.sum(0) / batch_rows
            if g is None:
                g = torch.zeros_like(p)
            err = (total - g).abs().max().item()
            scale = g.abs().max().item()
            rel = err / max(scale, 1e-12)
            worst = max(worst, rel if scale > atol else err)
            if err > atol + rtol * scale:
                rep.mismatched[name] = f"summed per-sample gradient differs from the gradient by {rel:.2e} (relative)"
        rep.max_relative_error = float(worst)
    finally:
        restore_inplace()
        hooks.cleanup()
        for p, g in zip(params, saved):
            p.grad = g
        for m in model.modules():
            for attr in ("activations", "max_batch_len"):
                if attr in m.__dict__:  # wrappers (peft) forward getattr to the module they wrap
                    delattr(m, attr)
    return rep
