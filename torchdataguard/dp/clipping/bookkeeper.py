"""Book-keeping clipping: per-example clipping with a single backward pass.

Ghost clipping (Li et al. 2022, Opacus's ``grad_sample_mode="ghost"``) runs two backward passes: one to find
each example's gradient norm, one for the clipped gradient. Book-keeping (Bu et al., ICML 2023) needs one:

1. Every trainable layer runs with its parameters detached, so autograd computes activation gradients only
   and never the (unclipped) parameter gradients.
2. A tensor hook on each layer's output receives its output gradient ``G`` during that one backward pass;
   with the layer's input ``A`` kept from the forward pass, it adds the layer's share of each example's squared
   gradient norm (the ghost norm ``<A_i A_i^T, G_i G_i^T>`` or the norm of the materialised ``G_i^T A_i``,
   whichever costs fewer operations at this shape).
3. After the pass, every example's clipping factor ``c_i = min(1, C / ||g_i||)`` is known and each layer's
   clipped gradient is one matrix product, ``(c * G)^T A``, which replaces the weight gradient autograd skipped.

So the extra work over non-private training is the norms; no second backward pass, no per-sample gradient of
a large layer is ever stored. The backward pass can be that of any loss that sums per-row terms (the engine
rescales each row by the weight the loop's loss gives it); several backward passes of one forward pass add up.
Before the DP engine picks it automatically, it checks on the preflight batch that the per-row gradients it
forms add up to autograd's gradient of the loop's loss (:mod:`~torchdataguard.dp.clipping.bk`).

A layer keeps its own forward outside training steps (eval mode, ``torch.no_grad``, no :meth:`begin`); a
forward already installed on the instance (an accelerate hook) is called with detached parameters and put back
by :meth:`detach`.

Layers: how each layer type's norms and clipped sum are formed is a rule registered by module type
(:mod:`~torchdataguard.dp.clipping.layers`): ``nn.Linear``, ``nn.Embedding`` and ``nn.LayerNorm`` have their own
fast paths; other layer types for which Opacus has a per-sample gradient function (convolutions, GroupNorm,
RMSNorm ...) use Opacus's function on ``(A, G)``; subclasses with their own forward or extra parameters are
other layers (Opacus's path for its exact types, else refused). A parameter shared by two layers (tied
weights) or a layer called twice in one forward pass is refused (its norm is not the sum of its parts); the
automatic choice then uses ghost clipping.

Example:
    >>> import torch, torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> bk = BookKeeper(net, list(net.parameters()))
    >>> bk.problems()
    []
    >>> bk.attach(); bk.begin(rows=3)
    >>> out = net(torch.randn(3, 4))
    >>> per_example = out.pow(2).sum(1)                          # one loss per example
    >>> norms = bk.backward(per_example)                           # one backward pass
    >>> grads = bk.clipped_sum(torch.clamp(1.0 / norms, max=1.0))  # C = 1
    >>> sorted(g.shape for g in grads.values())[-1]
    torch.Size([8, 4])
    >>> bk.detach()
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from ...errors import ConfigError, StateError
from ..micro import ONE_FORWARD
from .layers import LayerRecord, LayerRule, UnitSums, rule_for

__all__ = ["BookKeeper"]


class BookKeeper:
    """Single-backward per-example clipping for the trainable layers of ``model`` (see the module docstring).

    Args:
        model: the model; its trainable layers get a forward that detaches their parameters while active.
        params: the parameters that are trained (the optimizer's); only these are clipped.
        padding: ``{id(embedding weight): padding_idx}``; padding rows get no gradient, as in autograd.
        active: called at each layer call; book-keeping applies only when it returns True (training steps).
    """

    def __init__(self, model: nn.Module, params: List[nn.Parameter], *, padding: Optional[Dict[int, int]] = None,
                 active: Optional[Callable[[], bool]] = None) -> None:
        self.model = model
        self.params = list(params)
        self._pid = {id(p) for p in self.params}
        self.padding = dict(padding or {})
        self.active = active or (lambda: True)
        self.modules: List[Tuple[str, nn.Module]] = []
        self._rules: Dict[int, LayerRule] = {}
        self._uncovered: List[str] = []
        self._unsupported: List[str] = []
        self._shared: List[str] = []
        owner: Dict[int, str] = {}
        names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        for mname, m in model.named_modules(remove_duplicate=False):
            own = [p for p in m.parameters(recurse=False) if id(p) in self._pid]
            if not own:
                continue
            rule = rule_for(m)
            if rule is None:
                self._unsupported.append(f"{mname} ({type(m).__name__})")
                continue
            why = rule.unsupported(m)
            if why is not None:
                self._unsupported.append(f"{mname} ({why})")
                continue
            for p in own:
                if id(p) in owner and owner[id(p)] != mname:
                    self._shared.append(f"{names.get(id(p), '?')} ({owner[id(p)]} and {mname})")
                owner[id(p)] = mname
            if all(m is not x for _, x in self.modules):
                self.modules.append((mname, m))
                self._rules[id(m)] = rule
        for p in self.params:
            if id(p) not in owner:
                self._uncovered.append(names.get(id(p), "?"))
        self._recs: List[LayerRecord] = []
        #: rows of the micro-batch being recorded (``None`` between micro-batches)
        self.rows: Optional[int] = None
        self._sq: Optional[torch.Tensor] = None
        self._anchor: Optional[torch.Tensor] = None
        self._attached = False
        self._calls: Dict[int, int] = {}
        self._saved_forward: Dict[int, Any] = {}

    def trains(self, p: Optional[torch.Tensor]) -> bool:
        """Whether ``p`` is one of the clipped parameters and requires a gradient now."""
        return p is not None and p.requires_grad and id(p) in self._pid

    # -- set-up ------------------------------------------------------------------------------------------------------
    def problems(self) -> List[str]:
        """Why book-keeping cannot clip this model exactly (empty when it can)."""
        out = []
        if self._unsupported:
            out.append(f"layers without a per-sample gradient rule: {self._unsupported[:5]}")
        if self._uncovered:
            out.append(f"trainable parameters outside any supported layer: {self._uncovered[:5]}")
        if self._shared:
            out.append(f"parameters shared by several layers (tied weights): {self._shared[:5]}")
        return out

    def attach(self) -> None:
        """Give each trainable layer the book-keeping forward (an instance attribute; :meth:`detach` restores what
        was there before, e.g. an accelerate hook's forward)."""
        if self._attached:
            return
        probs = self.problems()
        if probs:
            raise ConfigError("book-keeping clipping cannot clip this model exactly: " + "; ".join(probs)
                              + ". Use DPConfig(clipping='ghost') or 'hooks'")
        for _, m in self.modules:
            self._saved_forward[id(m)] = m.__dict__.get("forward")
            m.forward = self._make_forward(m)
        self._attached = True

    def detach(self) -> None:
        for _, m in self.modules:
            if id(m) not in self._saved_forward:
                continue
            prev = self._saved_forward.pop(id(m))
            if prev is not None:
                m.forward = prev
            elif "forward" in m.__dict__:
                del m.forward
        self._attached = False
        self.end()

    def _make_forward(self, m: nn.Module) -> Callable:
        rule = self._rules[id(m)]
        inst = self._saved_forward.get(id(m))
        cls_forward = type(m).forward

        def orig(*a, **k):
            return inst(*a, **k) if inst is not None else cls_forward(m, *a, **k)

        def detached_call(x):
            """The layer's own forward (or the wrapper that was installed on it) with detached parameters."""
            saved = {n: p for n, p in m._parameters.items() if p is not None}
            try:
                for n, p in saved.items():
                    m._parameters[n] = p.detach()
                return orig(x)
            finally:
                for n, p in saved.items():
                    m._parameters[n] = p

        def forward(x, *a, **k):
            if a or k or not (m.training and self._on()):
                return orig(x, *a, **k)
            out = rule.forward(m, x) if inst is None and rule.fast_forward else detached_call(x)
            if not isinstance(out, torch.Tensor):
                raise ConfigError(f"book-keeping clipping needs {type(m).__name__} to return one tensor")
            return self._record(m, rule, x, out)

        return forward

    def _on(self) -> bool:
        return self._attached and self.rows is not None and torch.is_grad_enabled() and self.active()

    # -- one micro-batch ---------------------------------------------------------------------------------------------
    def begin(self, rows: int) -> None:
        """A forward pass of ``rows`` examples starts (records of an earlier forward without backward are dropped)."""
        self.end()
        self.rows = int(rows)
        self._sq = None
        self._calls = {}

    def end(self) -> None:
        # the hooks' closures outlive this step with the graph (the caller's loss keeps it): empty the records so
        # that they no longer hold activations and output gradients
        for rec in self._recs:
            rec.a = rec.g = None
            rec.extra.clear()
        self._recs = []
        self.rows = None
        self._sq = None

    def _record(self, m: nn.Module, rule: LayerRule, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] != self.rows:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise StateError(f"book-keeping clipping: the input of {type(m).__name__} has shape {shape} for a "
                             f"micro-batch of {self.rows} rows (an input shared by the batch?); use "
                             f"DPConfig(clipping='hooks')")
        n = self._calls.get(id(m), 0) + 1
        self._calls[id(m)] = n
        if n > 1:
            raise ConfigError(f"book-keeping clipping: {type(m).__name__} is called {n} times in one forward pass "
                              f"(a shared layer); its per-example gradient norm is not the sum of its calls' norms. "
                              f"Use DPConfig(clipping='ghost') or 'hooks'")
        if not out.requires_grad:
            # the first layers see inputs that need no gradient: a zero anchor makes their output differentiable
            if self._anchor is None or self._anchor.device != out.device:
                self._anchor = torch.zeros((), device=out.device, requires_grad=True)
            out = out + self._anchor.to(out.dtype)
        rec = LayerRecord(m, rule, x.detach())
        rule.on_record(rec, x)
        self._recs.append(rec)
        target = out
        if out._is_view():
            # a hook on a view is lost when the view is modified in place (nn.ReLU(inplace=True) after a Linear
            # with bias): hook the whole-tensor base instead, or work on a copy
            base = out._base
            if (base is not None and base.numel() == out.numel() and out.is_contiguous() and base.is_contiguous()
                    and base.data_ptr() == out.data_ptr()):
                target = base
            else:
                out = target = out.clone()
        shape = out.shape
        target.register_hook(lambda g, rec=rec: self._on_grad(rec, g.reshape(shape)))
        return out

    def _on_grad(self, rec: LayerRecord, g: torch.Tensor) -> None:
        if rec.a is None:  # a later forward pass made way for its own records before this one's backward pass
            raise StateError(f"book-keeping clipping: the backward pass reached {type(rec.module).__name__} after a "
                             f"newer forward pass replaced its records. {ONE_FORWARD}")
        return rec.rule.on_grad(self, rec, g)

    def backward(self, per_example: torch.Tensor) -> torch.Tensor:
        """Back-propagate the sum of the per-example losses once; return each example's gradient norm."""
        if self.rows is None:
            raise StateError("book-keeping clipping: backward() without a recorded forward pass")
        if per_example.shape[0] != self.rows:
            raise StateError(f"{per_example.shape[0]} per-example losses for a micro-batch of {self.rows} rows")
        per_example.sum().backward()
        norms = self.finish()
        return norms if norms is not None else torch.zeros(self.rows, device=per_example.device)

    def finish(self) -> Optional[torch.Tensor]:
        """After the backward pass of any loss: each row's gradient norm (``None`` if no layer got a gradient).

        A row's gradient here is that of the loss as back-propagated (a mean over rows scales it by 1/rows).
        """
        if self._anchor is not None:
            self._anchor.grad = None
        self._sq = None
        self._norms()
        return None if self._sq is None else self._sq.sqrt()

    def finish_units(self, weights: torch.Tensor, units: torch.Tensor, n_units: int) -> Optional[torch.Tensor]:
        """After the backward pass: the gradient norm of each privacy unit whose rows share an id.

        A unit's gradient is ``sum_{i in unit} weights_i g_i`` (``g_i`` the row's recorded gradient; a weight of 0, or
        a unit id < 0, leaves a row out). Per-row weight gradients are formed in slices and summed by unit, so memory
        stays at ``units x layer`` per layer. Returns ``None`` if no layer got a gradient. :meth:`clipped_sum` then
        takes, for each row, ``c_unit(i) x weights_i``.
        """
        if self._anchor is not None:
            self._anchor.grad = None
        done = [rec for rec in self._recs if rec.extra.get("done")]
        if not done:
            return None
        dev = next((r.g.device for r in done if r.g is not None), weights.device)
        keep = units >= 0
        w = torch.where(keep, weights.float(), torch.zeros_like(weights, dtype=torch.float32)).to(dev)
        u = torch.where(keep, units, torch.zeros_like(units)).to(dev)
        sums = UnitSums(w, u, n_units, self.rows, dev)
        for rec in done:
            rec.rule.add_unit_sq_norms(self, rec, sums)
        return sums.sq.sqrt()

    def pending(self) -> bool:
        """Whether a backward pass has reached the recorded layers and their gradients are not yet clipped."""
        return any(rec.extra.get("done") for rec in self._recs)

    # -- norms, after the backward pass ------------------------------------------------------------------------------
    def _add(self, v: torch.Tensor) -> None:
        if self._sq is None:
            self._sq = torch.zeros(self.rows, dtype=torch.float32, device=v.device)
        self._sq += v.to(self._sq.device, torch.float32)

    def _rules_in_order(self) -> List[LayerRule]:
        out: List[LayerRule] = []
        for rec in self._recs:
            if all(rec.rule is not r for r in out):
                out.append(rec.rule)
        return out

    def _norms(self) -> None:
        """Each record's share of the squared per-row norms, then the shares of records taken together."""
        for rec in self._recs:
            if rec.extra.get("done"):
                rec.rule.add_sq_norms(self, rec, self._add)
        for rule in self._rules_in_order():
            for sq in rule.shared_sq_norms(self, self._recs):
                self._add(sq)

    # -- the clipped sum ---------------------------------------------------------------------------------------------
    def clipped_sum(self, coef: torch.Tensor) -> Dict[nn.Parameter, torch.Tensor]:
        """``sum_i coef_i * grad_i`` for every trained parameter (float32 for float32 parameters)."""
        out: Dict[nn.Parameter, torch.Tensor] = {}

        def put(p: nn.Parameter, v: torch.Tensor) -> None:
            v = v.to(p.dtype).reshape(p.shape)
            out[p] = v if p not in out else out[p] + v

        states = {id(rule): rule.begin_sum(self._recs) for rule in self._rules_in_order()}
        for rec in self._recs:
            if not rec.extra.get("done"):
                continue  # the layer's output did not reach the loss: its gradient is zero
            c = coef.to(self._dev(rec), torch.float32)
            rec.rule.add_clipped(rec, c, put, states[id(rec.rule)])
        self.end()
        return out

    @staticmethod
    def _dev(rec: LayerRecord) -> torch.device:
        if rec.g is not None:
            return rec.g.device
        gs = rec.extra.get("gs") or {}
        for v in gs.values():
            return v.device
        return rec.module.weight.device
