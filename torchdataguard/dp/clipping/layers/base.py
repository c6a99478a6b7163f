"""The contract of a book-keeping layer rule, and the registry of rules by module type.

Book-keeping clipping (:mod:`~torchdataguard.dp.clipping.bookkeeper`) forms each example's gradient norm and
the clipped gradient sum of a layer from the layer's input ``A`` (kept at the forward pass) and its output
gradient ``G`` (received during the one backward pass). How depends on the layer type: one
:class:`LayerRule` per type, registered as Opacus registers its grad samplers::

    @register_layer_rule(nn.Linear)
    class LinearRule(LayerRule): ...

A rule applies to its type and to subclasses that keep the base forward and parameters; other layers for
which Opacus has a per-sample gradient function use :class:`PerSampleRule`'s Opacus subclass.

Example:
    >>> import torch.nn as nn
    >>> from torchdataguard.dp.clipping.layers import rule_for
    >>> type(rule_for(nn.Linear(2, 2))).__name__, rule_for(nn.LSTM(2, 2)) is None
    ('LinearRule', True)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol

import torch
import torch.nn as nn

from ....registry import Registry

__all__ = ["LAYER_RULES", "MAX_SLICE", "BookKeeping", "LayerRecord", "LayerRule", "PerSampleRule", "UnitSums",
           "keep_output_grad", "register_layer_rule", "rule_key"]

#: materialising per-sample weight gradients is done in slices of at most this many elements
MAX_SLICE = 1 << 25

#: module type (``rule_key``) -> the :class:`LayerRule` for it
LAYER_RULES: Registry["LayerRule"] = Registry("book-keeping layer rule")


class BookKeeping(Protocol):
    """What a rule reads from the book-keeper while it works on one micro-batch."""

    rows: Optional[int]
    padding: Dict[int, int]

    def trains(self, p: Optional[torch.Tensor]) -> bool: ...


@dataclass
class LayerRecord:
    """One call of a trainable layer in the recorded forward pass.

    ``a``: its input (detached); ``g``: its output gradient, summed over the backward passes (rules that keep
    ``G``); ``extra``: what the rule keeps besides (per-sample gradients, flags), and ``"done"`` once a backward
    pass reached the layer.
    """

    module: nn.Module
    rule: "LayerRule"
    a: Optional[torch.Tensor]
    g: Optional[torch.Tensor] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class UnitSums:
    """Squared gradient norms per privacy unit, accumulated layer by layer (see ``BookKeeper.finish_units``).

    ``w``: each row's weight (0 leaves the row out), ``u``: each row's unit index, ``sq``: the sums so far.
    """

    def __init__(self, w: torch.Tensor, u: torch.Tensor, n_units: int, rows: int, device: torch.device) -> None:
        self.w, self.u, self.n_units, self.rows, self.device = w, u, n_units, rows, device
        self.sq = torch.zeros(n_units, dtype=torch.float32, device=device)

    def add_rows(self, per_row: torch.Tensor) -> None:
        """Add the squared norms of per-row gradients ``[rows, ...]`` (already weighted), summed by unit."""
        acc = torch.zeros((self.n_units,) + tuple(per_row.shape[1:]), dtype=torch.float32, device=self.device)
        acc.index_add_(0, self.u, per_row.float())
        self.sq.add_(acc.reshape(self.n_units, -1).square().sum(1))


def keep_output_grad(rec: LayerRecord, g: torch.Tensor) -> None:
    """Keep a layer's output gradient ``G`` (summed over several backward passes of one forward pass)."""
    rec.g = g if rec.g is None else rec.g + g
    rec.extra["done"] = True


def rule_key(module_type: type) -> str:
    """The registry key of a module type (its qualified name)."""
    return f"{module_type.__module__}.{module_type.__qualname__}"


def register_layer_rule(module_type: type) -> Callable[[type], type]:
    """Class decorator: register the rule for ``module_type`` (refused if that type has one already)."""

    def deco(cls: type) -> type:
        LAYER_RULES.register(rule_key(module_type))(cls(module_type))
        return cls

    return deco


class LayerRule:
    """How book-keeping forms one layer type's per-example gradient norms and clipped sum.

    The book-keeper calls, for each record of a layer of this type: :meth:`forward` (the layer's output with
    detached parameters, so autograd never forms the unclipped parameter gradient), :meth:`on_record`,
    :meth:`on_grad` (during the backward pass), then :meth:`add_sq_norms` (and once per micro-batch
    :meth:`shared_sq_norms`) or :meth:`add_unit_sq_norms`, and :meth:`add_clipped` (after :meth:`begin_sum`).
    """

    #: whether :meth:`forward` computes the output itself (else the layer's own forward runs, parameters detached)
    fast_forward = True

    def __init__(self, module_type: type) -> None:
        self.module_type = module_type

    def applies(self, m: nn.Module) -> bool:
        """Whether ``m`` is this rule's type and keeps its forward and parameters."""
        base = self.module_type
        return (isinstance(m, base) and type(m).forward is base.forward
                and set(m._parameters) <= {"weight", "bias"})

    def unsupported(self, m: nn.Module) -> Optional[str]:
        """Why this layer cannot be clipped exactly (``None``: it can)."""
        return None

    def forward(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def on_record(self, rec: LayerRecord, x: torch.Tensor) -> None:
        """Called when the layer's call is recorded (``x``: its input)."""

    def on_grad(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> None:
        raise NotImplementedError

    def add_sq_norms(self, bk: BookKeeping, rec: LayerRecord, add: Callable[[torch.Tensor], None]) -> None:
        raise NotImplementedError

    def shared_sq_norms(self, bk: BookKeeping, recs: List[LayerRecord]) -> Iterable[torch.Tensor]:
        """Squared norms shared by several records of this rule (added after every record's own)."""
        return ()

    def add_unit_sq_norms(self, bk: BookKeeping, rec: LayerRecord, units: UnitSums) -> None:
        raise NotImplementedError

    def begin_sum(self, recs: List[LayerRecord]) -> Any:
        """State shared by the records of one :meth:`add_clipped` pass (``recs``: every record)."""
        return None

    def add_clipped(self, rec: LayerRecord, c: torch.Tensor, put: Callable[[nn.Parameter, torch.Tensor], None],
                    state: Any) -> None:
        raise NotImplementedError


class PerSampleRule(LayerRule):
    """A rule that forms each row's parameter gradients at once (``rec.extra["gs"]``: parameter -> ``[rows, ...]``),
    for layers whose per-sample gradients are small (normalisation layers) or that only Opacus knows."""

    def per_sample_grads(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> Dict[nn.Parameter, torch.Tensor]:
        raise NotImplementedError

    def on_grad(self, bk: BookKeeping, rec: LayerRecord, g: torch.Tensor) -> None:
        grads = self.per_sample_grads(bk, rec, g)
        old = rec.extra.get("gs")
        rec.extra["gs"] = grads if old is None else {p: old[p] + v for p, v in grads.items()}
        rec.extra["done"] = True

    def add_sq_norms(self, bk: BookKeeping, rec: LayerRecord, add: Callable[[torch.Tensor], None]) -> None:
        for gs in rec.extra["gs"].values():
            add(gs.reshape(bk.rows, -1).float().square().sum(1))

    def add_unit_sq_norms(self, bk: BookKeeping, rec: LayerRecord, units: UnitSums) -> None:
        for gs in rec.extra["gs"].values():
            units.add_rows(gs.reshape(units.rows, -1).float() * units.w.view(-1, 1))

    def add_clipped(self, rec: LayerRecord, c: torch.Tensor, put: Callable[[nn.Parameter, torch.Tensor], None],
                    state: Any) -> None:
        for p, gs in rec.extra["gs"].items():
            put(p, torch.tensordot(c.to(gs.dtype), gs, dims=1))
