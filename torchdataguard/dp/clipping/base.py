"""The contract of a clipper (one per clipping mode) and the registry that picks it by name.

A clipper turns the micro-batches the DP engine records into clipped per-unit gradient sums
(``p.summed_grad``), which the engine noises and releases at the optimizer step. The engine calls it at
fixed points: :meth:`Clipper.attach` / :meth:`Clipper.detach`, :meth:`Clipper.begin` at each training
forward pass, :meth:`Clipper.on_output` on the model's output, :meth:`Clipper.clip` once the micro-batch's
backward pass is over, :meth:`Clipper.pending` and :meth:`Clipper.discard` around the step.

Clippers are registered by name (``@CLIPPERS.register("hooks")``); ``DPConfig(clipping=...)`` names one, or
``"auto"`` lets :mod:`~torchdataguard.dp.selection` choose from what the preflight found
(:class:`PreflightFacts`).

Example:
    >>> from torchdataguard.dp.clipping import CLIPPERS
    >>> CLIPPERS.names()
    ['bk', 'ghost', 'hooks']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import torch

from ...registry import Registry
from ..micro import MicroBatch

__all__ = ["CLIPPERS", "Clipper", "PreflightFacts"]

#: clipping mode name -> :class:`Clipper` subclass
CLIPPERS: Registry[type] = Registry("clipping mode")


@dataclass
class PreflightFacts:
    """What the preflight found that decides which clipper can train the model exactly.

    Attributes:
        batch: the preflight batch (``None`` when there is none); ``forward`` / ``loss_fn``: how to run it.
        checked: a batch was run (``batch`` given and ``DPConfig.preflight`` on).
        per_sample_ok: per-example losses can be read from the model's output (they add up to its loss).
        has_units: a privacy unit may hold several rows (unit ids given, or ``"tdg_unit_ids"`` in the batch).
        seq_len: the sequence length of the output's logits (token-level tasks), or ``None``.
        opacus_check_failed: Opacus's hooks could not follow the model (an in-place op on a layer's output).
    """

    batch: Any = None
    forward: Optional[Callable[..., Any]] = None
    loss_fn: Optional[Callable[..., torch.Tensor]] = None
    checked: bool = False
    per_sample_ok: bool = False
    has_units: bool = False
    seq_len: Optional[int] = None
    opacus_check_failed: bool = False


class Clipper:
    """Clips each privacy unit's gradient of the micro-batches one DP engine records (see the module docstring).

    ``engine`` is the :class:`~torchdataguard.dp.engine.DPEngine` that built the clipper (the model, the clipped
    parameters, the current micro-batch, the loss scale). Subclasses set :attr:`name` (their registry name) and
    override what their mode needs; the defaults do nothing.
    """

    #: the registry name (``DPConfig.clipping``)
    name = ""
    #: whether the mode runs on Opacus's full backward hooks (which cannot follow an in-place op on a layer output)
    uses_opacus_hooks = False

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @classmethod
    def check_selected(cls, engine: Any, facts: PreflightFacts) -> None:
        """Refuse (``ConfigError``) when the user named this mode and it cannot train the model exactly."""

    def attach(self) -> None:
        """Attach to the engine's model (hooks, layer forwards)."""

    def detach(self) -> None:
        """Remove what :meth:`attach` added."""

    def begin(self, rows: int) -> None:
        """A training forward pass of ``rows`` rows starts."""

    def on_param_grad(self, name: str) -> None:
        """Autograd wrote a gradient of parameter ``name`` during a recorded micro-batch."""

    def missing_losses(self, shapes: Optional[Tuple[tuple, tuple]]) -> None:
        """The per-example losses of the output cannot be formed (``shapes``: the logits' and labels' shapes, or
        ``None`` when the output has no loss, logits or labels). Modes that need them refuse here."""

    @property
    def needs_per_example_losses(self) -> bool:
        """Whether :meth:`on_output` needs the per-example losses of every output."""
        return False

    def on_output(self, output: Any, per_example: Optional[torch.Tensor], loss: torch.Tensor) -> Any:
        """What the model's forward returns instead of ``output`` (``None``: the output as it is)."""
        return None

    def clip(self, micro: Optional[MicroBatch]) -> None:
        """Clip the micro-batch whose backward pass is over and add it to ``p.summed_grad``."""

    def pending(self) -> bool:
        """Whether a backward pass left gradients that :meth:`clip` has not taken yet."""
        return False

    def discard(self) -> None:
        """Forget what was gathered for a step that is refused."""
