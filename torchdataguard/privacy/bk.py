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
forms add up to autograd's gradient of the loop's loss (:meth:`~torchdataguard.privacy.dp.DPEngine`).

A layer keeps its own forward outside training steps (eval mode, ``torch.no_grad``, no :meth:`begin`); a
forward already installed on the instance (an accelerate hook) is called with detached parameters and put back
by :meth:`detach`.

Layers: ``nn.Linear``, ``nn.Embedding`` and ``nn.LayerNorm`` have their own fast paths; other layer types for
which Opacus has a per-sample gradient function (convolutions, GroupNorm, RMSNorm ...) use Opacus's function
on ``(A, G)``; subclasses with their own forward or extra parameters are other layers (Opacus's path for its
exact types, else refused). A parameter shared by two layers (tied weights) or a layer called twice in one
forward pass is refused (its norm is not the sum of its parts); the automatic choice then uses ghost clipping.

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

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, StateError

__all__ = ["BookKeeper"]

# materialising per-sample weight gradients is done in slices of at most this many elements
_MAX_SLICE = 1 << 25


def _opacus_samplers() -> Dict[type, Callable]:
    try:
        from opacus.grad_sample import GradSampleModule
    except ImportError:  # pragma: no cover - opacus is a core dependency
        return {}
    return dict(GradSampleModule.GRAD_SAMPLERS)


@dataclass
class _Rec:
    module: nn.Module
    kind: str
    a: torch.Tensor
    g: Optional[torch.Tensor] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class BookKeeper:
    """Single-backward per-example clipping for the trainable layers of ``model`` (see the module docstring).

    Args:
        model: the model; its trainable layers get a forward that detaches their parameters while active.
        params: the parameters that are trained (the optimizer's); only these are clipped.
        padding: ``{id(embedding weight): padding_idx}``; padding rows get no gradient, as in autograd.
        active: called at each layer call; book-keeping applies only when it returns True (training steps).
    """

    FAST = (nn.Linear, nn.Embedding, nn.LayerNorm)

    def __init__(self, model: nn.Module, params: List[nn.Parameter], *, padding: Optional[Dict[int, int]] = None,
                 active: Optional[Callable[[], bool]] = None) -> None:
        self.model = model
        self.params = list(params)
        self._pid = {id(p) for p in self.params}
        self.padding = dict(padding or {})
        self.active = active or (lambda: True)
        self._samplers = _opacus_samplers()
        self.modules: List[Tuple[str, nn.Module]] = []
        self._uncovered: List[str] = []
        self._unsupported: List[str] = []
        self._shared: List[str] = []
        owner: Dict[int, str] = {}
        names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        for mname, m in model.named_modules(remove_duplicate=False):
            own = [p for p in m.parameters(recurse=False) if id(p) in self._pid]
            if not own:
                continue
            kind = self._kind(m)
            if kind is None:
                self._unsupported.append(f"{mname} ({type(m).__name__})")
                continue
            if kind == "embedding" and (m.sparse or m.max_norm is not None or m.scale_grad_by_freq):
                self._unsupported.append(f"{mname} (Embedding with sparse=True, max_norm or scale_grad_by_freq)")
                continue
            for p in own:
                if id(p) in owner and owner[id(p)] != mname:
                    self._shared.append(f"{names.get(id(p), '?')} ({owner[id(p)]} and {mname})")
                owner[id(p)] = mname
            if all(m is not x for _, x in self.modules):
                self.modules.append((mname, m))
        for p in self.params:
            if id(p) not in owner:
                self._uncovered.append(names.get(id(p), "?"))
        self._recs: List[_Rec] = []
        self._rows: Optional[int] = None
        self._sq: Optional[torch.Tensor] = None
        self._anchor: Optional[torch.Tensor] = None
        self._attached = False
        self._calls: Dict[int, int] = {}
        self._saved_forward: Dict[int, Any] = {}

    _FAST_FORWARDS = {nn.Linear: "linear", nn.Embedding: "embedding", nn.LayerNorm: "layernorm"}

    def _kind(self, m: nn.Module) -> Optional[str]:
        """How a layer's per-example gradients are formed: a fast path, Opacus's function, or None (unsupported).

        The fast paths compute the layer's output themselves, so they apply only where the class keeps the base
        class's forward and parameters (a subclass with its own forward or extra parameters is another layer).
        """
        for base, kind in self._FAST_FORWARDS.items():
            if (isinstance(m, base) and type(m).forward is base.forward
                    and set(m._parameters) <= {"weight", "bias"}):
                return kind
        if type(m) in self._samplers:
            return "opacus"
        return None

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
        kind = self._kind(m)
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

        def compute(x):
            if inst is not None or kind == "opacus":
                return detached_call(x)
            if kind == "linear":
                return F.linear(x, m.weight.detach(), None if m.bias is None else m.bias.detach())
            if kind == "embedding":
                return F.embedding(x, m.weight.detach(), m.padding_idx, m.max_norm, m.norm_type,
                                   m.scale_grad_by_freq, m.sparse)
            w = None if m.weight is None else m.weight.detach()
            b = None if m.bias is None else m.bias.detach()
            return F.layer_norm(x, m.normalized_shape, w, b, m.eps)

        def forward(x, *a, **k):
            if a or k or not (m.training and self._on()):
                return orig(x, *a, **k)
            out = compute(x)
            if not isinstance(out, torch.Tensor):
                raise ConfigError(f"book-keeping clipping needs {type(m).__name__} to return one tensor")
            return self._record(m, kind, x, out)

        return forward

    def _on(self) -> bool:
        return self._attached and self._rows is not None and torch.is_grad_enabled() and self.active()

    # -- one micro-batch ---------------------------------------------------------------------------------------------
    def begin(self, rows: int) -> None:
        """A forward pass of ``rows`` examples starts (records of an earlier forward without backward are dropped)."""
        self.end()
        self._rows = int(rows)
        self._sq = None
        self._calls = {}

    def end(self) -> None:
        # the hooks' closures outlive this step with the graph (the caller's loss keeps it): empty the records so
        # that they no longer hold activations and output gradients
        for rec in self._recs:
            rec.a = rec.g = None
            rec.extra.clear()
        self._recs = []
        self._rows = None
        self._sq = None

    def _record(self, m: nn.Module, kind: str, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] != self._rows:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise StateError(f"book-keeping clipping: the input of {type(m).__name__} has shape {shape} for a "
                             f"micro-batch of {self._rows} rows (an input shared by the batch?); use "
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
        rec = _Rec(m, kind, x.detach())
        if kind == "linear":  # layers fed the same tensor (query, key, value) share its Gram matrix
            rec.extra["key"] = (x.data_ptr(), tuple(x.shape), tuple(x.stride()), x.dtype, x.device)
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

    def backward(self, per_example: torch.Tensor) -> torch.Tensor:
        """Back-propagate the sum of the per-example losses once; return each example's gradient norm."""
        if self._rows is None:
            raise StateError("book-keeping clipping: backward() without a recorded forward pass")
        if per_example.shape[0] != self._rows:
            raise StateError(f"{per_example.shape[0]} per-example losses for a micro-batch of {self._rows} rows")
        per_example.sum().backward()
        norms = self.finish()
        return norms if norms is not None else torch.zeros(self._rows, device=per_example.device)

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
        sq = torch.zeros(n_units, dtype=torch.float32, device=dev)

        def by_unit(per_row: torch.Tensor) -> None:  # per_row: [rows, ...] already weighted
            acc = torch.zeros((n_units,) + tuple(per_row.shape[1:]), dtype=torch.float32, device=dev)
            acc.index_add_(0, u, per_row.float())
            sq.add_(acc.reshape(n_units, -1).square().sum(1))

        b = self._rows
        for rec in done:
            if rec.kind == "linear":
                a, g = rec.a, rec.g
                wa = w.to(g.dtype).view(-1, 1, 1)
                if rec.extra["w"]:
                    acc = torch.zeros(n_units, g.shape[2], a.shape[2], dtype=torch.float32, device=dev)
                    step = max(1, _MAX_SLICE // (a.shape[2] * g.shape[2]))
                    for s0 in range(0, b, step):
                        sl = slice(s0, s0 + step)
                        acc.index_add_(0, u[sl], torch.bmm((g[sl] * wa[sl]).transpose(1, 2), a[sl]).float())
                    sq.add_(acc.reshape(n_units, -1).square().sum(1))
                if rec.extra["b"]:
                    rec.extra["gb"] = rec.g.sum(1)
                    by_unit(rec.extra["gb"] * wa.view(-1, 1))
            elif rec.kind == "embedding":
                ids, g3 = rec.a, rec.g
                v = rec.module.num_embeddings
                key = (u.view(-1, 1) * v + ids).reshape(-1)
                uniq, inv = torch.unique(key, return_inverse=True)
                agg = torch.zeros(len(uniq), g3.shape[-1], device=g3.device, dtype=torch.float32)
                agg.index_add_(0, inv, (g3.float() * w.view(-1, 1, 1)).reshape(-1, g3.shape[-1]))
                sq.index_add_(0, torch.div(uniq, v, rounding_mode="floor"), agg.square().sum(1))
            else:
                for gs in rec.extra["gs"].values():
                    by_unit(gs.reshape(b, -1).float() * w.view(-1, 1))
        return sq.sqrt()

    def pending(self) -> bool:
        """Whether a backward pass has reached the recorded layers and their gradients are not yet clipped."""
        return any(rec.extra.get("done") for rec in self._recs)

    def _linear_groups(self) -> Dict[Any, List[_Rec]]:
        groups: Dict[Any, List[_Rec]] = {}
        for rec in self._recs:
            if rec.kind == "linear" and rec.extra.get("done") and rec.extra.get("w"):
                groups.setdefault(rec.extra["key"], []).append(rec)
        return groups

    # -- norms, during the backward pass -----------------------------------------------------------------------------
    def _add(self, v: torch.Tensor) -> None:
        if self._sq is None:
            self._sq = torch.zeros(self._rows, dtype=torch.float32, device=v.device)
        self._sq += v.to(self._sq.device, torch.float32)

    def _trains(self, p: Optional[torch.Tensor]) -> bool:
        return p is not None and p.requires_grad and id(p) in self._pid

    def _on_grad(self, rec: _Rec, g: torch.Tensor) -> None:
        """Keep the layer's output gradient (summed over several backward passes of one forward pass)."""
        m = rec.module
        b = self._rows
        if rec.kind == "linear":
            a = rec.a.reshape(b, -1, rec.a.shape[-1])
            g3 = g.reshape(b, -1, g.shape[-1])
            dt = torch.promote_types(a.dtype, g3.dtype)
            rec.a, g3 = a.to(dt), g3.to(dt)
            rec.extra["w"] = self._trains(m.weight)
            rec.extra["b"] = self._trains(m.bias)
        elif rec.kind == "embedding":
            ids = rec.a.reshape(b, -1)
            g3 = g.reshape(b, ids.shape[1], -1)
            pad = self.padding.get(id(m.weight), m.padding_idx)
            if pad is not None:
                g3 = g3 * (ids != pad).unsqueeze(-1).to(g3.dtype)
            rec.a = ids
        elif rec.kind == "layernorm":
            shape = tuple(m.normalized_shape)
            x = rec.a.float()
            g32 = g.float()
            dims = tuple(range(1, x.dim() - len(shape)))
            grads = {}
            if self._trains(m.weight):
                xhat = F.layer_norm(x, shape, None, None, m.eps)
                grads[m.weight] = (g32 * xhat).sum(dims) if dims else g32 * xhat
            if self._trains(m.bias):
                grads[m.bias] = g32.sum(dims) if dims else g32
            self._add_gs(rec, grads)
            return
        else:  # Opacus's per-sample gradient function for this layer type
            got = self._samplers[type(m)](m, [rec.a], g)
            self._add_gs(rec, {p: gs for p, gs in got.items() if self._trains(p)})
            return
        rec.g = g3 if rec.g is None else rec.g + g3
        rec.extra["done"] = True

    @staticmethod
    def _add_gs(rec: _Rec, grads: Dict[nn.Parameter, torch.Tensor]) -> None:
        old = rec.extra.get("gs")
        rec.extra["gs"] = grads if old is None else {p: old[p] + v for p, v in grads.items()}
        rec.extra["done"] = True

    def _norms(self) -> None:
        """Each record's share of the squared per-row norms (after the backward passes)."""
        b = self._rows
        for rec in self._recs:
            if not rec.extra.get("done"):
                continue
            if rec.kind == "linear":
                if rec.extra["b"]:
                    gb = rec.g.sum(1)
                    rec.extra["gb"] = gb
                    self._add(gb.float().square().sum(1))
            elif rec.kind == "embedding":
                ids, g3 = rec.a, rec.g
                v = rec.module.num_embeddings
                key = (torch.arange(b, device=ids.device).view(-1, 1) * v + ids).reshape(-1)
                uniq, inv = torch.unique(key, return_inverse=True)
                agg = torch.zeros(len(uniq), g3.shape[-1], device=g3.device, dtype=torch.float32)
                agg.index_add_(0, inv, g3.reshape(-1, g3.shape[-1]).float())
                sq = torch.zeros(b, device=g3.device, dtype=torch.float32)
                sq.index_add_(0, torch.div(uniq, v, rounding_mode="floor"), agg.square().sum(1))
                self._add(sq)
            else:
                for gs in rec.extra["gs"].values():
                    self._add(gs.reshape(b, -1).float().square().sum(1))
        for group in self._linear_groups().values():
            self._add(self._group_sq(group))

    @classmethod
    def _group_sq(cls, group: List[_Rec]) -> torch.Tensor:
        """Summed squared weight-gradient norms of linear layers fed one input ``A``.

        The Gram form shares ``A A^T`` across the group: ``sum_l <A A^T, G_l G_l^T> = <A A^T, sum_l G_l G_l^T>``.
        """
        a = group[0].a
        b, t, din = a.shape
        douts = sum(r.g.shape[2] for r in group)
        if len(group) == 1 or t == 1 or not t * (din + douts) < din * douts:
            return sum(cls._linear_sq(a, r.g.to(a.dtype)) for r in group)
        out = torch.empty(b, dtype=torch.float32, device=a.device)
        step = max(1, _MAX_SLICE // (t * t))
        for s in range(0, b, step):
            sl = slice(s, s + step)
            aa = torch.bmm(a[sl], a[sl].transpose(1, 2))
            gg = None
            for r in group:
                g = r.g[sl].to(a.dtype)
                gg = torch.bmm(g, g.transpose(1, 2)) if gg is None else gg.baddbmm_(g, g.transpose(1, 2))
            out[sl] = (aa * gg).sum((1, 2)).float()
        return out

    @staticmethod
    def _linear_sq(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Squared Frobenius norm of each ``g_i^T a_i``: ghost (Gram) or materialised, whichever is cheaper."""
        b, t, din = a.shape
        dout = g.shape[2]
        if t == 1:
            return (a.float().square().sum((1, 2)) * g.float().square().sum((1, 2)))
        out = torch.empty(b, dtype=torch.float32, device=a.device)
        if t * (din + dout) < din * dout:
            step = max(1, _MAX_SLICE // (t * t))
            for s in range(0, b, step):
                aa = torch.bmm(a[s:s + step], a[s:s + step].transpose(1, 2))
                gg = torch.bmm(g[s:s + step], g[s:s + step].transpose(1, 2))
                out[s:s + step] = (aa * gg).sum((1, 2)).float()
        else:
            step = max(1, _MAX_SLICE // (din * dout))
            for s in range(0, b, step):
                w = torch.bmm(g[s:s + step].transpose(1, 2), a[s:s + step])
                out[s:s + step] = torch.linalg.vector_norm(w, dim=(1, 2)).float().square()
        return out

    # -- the clipped sum ---------------------------------------------------------------------------------------------
    def clipped_sum(self, coef: torch.Tensor) -> Dict[nn.Parameter, torch.Tensor]:
        """``sum_i coef_i * grad_i`` for every trained parameter (float32 for float32 parameters)."""
        out: Dict[nn.Parameter, torch.Tensor] = {}

        def put(p: nn.Parameter, v: torch.Tensor) -> None:
            v = v.to(p.dtype).reshape(p.shape)
            out[p] = v if p not in out else out[p] + v

        sizes = {k: len(v) for k, v in self._linear_groups().items()}
        scaled_inputs: Dict[Any, torch.Tensor] = {}
        for rec in self._recs:
            if not rec.extra.get("done"):
                continue  # the layer's output did not reach the loss: its gradient is zero
            m = rec.module
            c = coef.to(self._dev(rec), torch.float32)
            if rec.kind == "linear":
                a, g = rec.a, rec.g
                if rec.extra.get("w"):
                    cc = c.to(a.dtype).view(-1, 1, 1)
                    key = rec.extra["key"]
                    if a.shape[2] <= g.shape[2] * sizes.get(key, 1):  # scale the input once for its whole group
                        ac = scaled_inputs.get(key)
                        if ac is None:
                            ac = scaled_inputs[key] = (a * cc).reshape(-1, a.shape[2])
                        w = g.reshape(-1, g.shape[2]).t() @ ac
                    else:
                        w = (g * cc).reshape(-1, g.shape[2]).t() @ a.reshape(-1, a.shape[2])
                    put(m.weight, w)
                if "gb" in rec.extra:
                    put(m.bias, c.to(rec.extra["gb"].dtype) @ rec.extra["gb"])
            elif rec.kind == "embedding":
                ids, g = rec.a, rec.g
                w = torch.zeros(m.weight.shape, device=g.device, dtype=torch.promote_types(g.dtype, m.weight.dtype))
                w.index_add_(0, ids.reshape(-1), (g * c.to(g.dtype).view(-1, 1, 1)).reshape(-1, g.shape[-1]).to(w.dtype))
                put(m.weight, w)
            else:
                for p, gs in rec.extra["gs"].items():
                    put(p, torch.tensordot(c.to(gs.dtype), gs, dims=1))
        self.end()
        return out

    def _dev(self, rec: _Rec) -> torch.device:
        if rec.g is not None:
            return rec.g.device
        gs = rec.extra.get("gs") or {}
        for v in gs.values():
            return v.device
        return rec.module.weight.device
