"""The micro-batches the DP engine records: which Poisson draw each came from, its privacy units, and the
factor that turns the loop's loss into each example's own loss.

* :class:`MicroBatch`: one forward pass in training mode (rows, unit ids, the sampler's plan, the loss weights).
* :class:`SamplerCursor`: matches each forward pass to the micro-batch the Poisson sampler drew (refusing a
  loop that reads batches from elsewhere) and keeps the plans of the micro-batches since the last step.
* :func:`unit_groups` and :func:`loss_scale`: what every clipper needs to clip each unit's gradient.

Example:
    >>> import torch
    >>> idx, n, counts = unit_groups(MicroBatch(rows=4, unit_ids=torch.tensor([7, 7, 3, -1]), plan=None))
    >>> idx.tolist(), n, counts.tolist()
    ([1, 1, 0, -1], 2, [1, 2])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch

from ..errors import ConfigError, StateError
from .batch import UNIT_KEY
from .sampling import MicroPlan, PoissonBatchSampler

__all__ = ["ONE_FORWARD", "MicroBatch", "SamplerCursor", "loss_scale", "unit_groups"]

#: what a training loop must do for DP-SGD to match its forward passes to the Poisson sampler's micro-batches
ONE_FORWARD = ("DP-SGD needs one forward pass in training mode per micro-batch, then its backward pass: a compute_loss "
               "that calls the model twice on a batch (R-drop, a second pass for a regulariser) counts as two "
               "micro-batches; run the extra pass under torch.no_grad() or in eval mode, or train without it")


@dataclass
class MicroBatch:
    """One forward pass the engine recorded.

    Attributes:
        rows: rows of the model's input.
        unit_ids: the batch's ``"tdg_unit_ids"`` (views of one example), or ``None``.
        plan: what the Poisson sampler put into this micro-batch (``None`` without the sampler).
        num_items: the Trainer's ``num_items_in_batch``, if it passed one.
        labels: the batch's ``labels``, if any (to form per-example losses).
        weights: each row's weight in the model's loss (:class:`~torchdataguard.dp.losses.LossRule`).
    """

    rows: int
    unit_ids: Optional[torch.Tensor]
    plan: Optional[MicroPlan]
    num_items: Any = None
    labels: Any = None
    weights: Optional[torch.Tensor] = None


class SamplerCursor:
    """Which micro-batch of the Poisson sampler's current pass the next forward pass is.

    A new pass of the sampler (its ``generation``) starts at micro-batch 0, or at the offset given to
    :meth:`expect_skip` (the Trainer skips batches on resume). After a refused step (:meth:`mark_out_of_step`)
    the rest of that pass is refused.
    """

    def __init__(self, sampler: Optional[PoissonBatchSampler]) -> None:
        self.sampler = sampler
        self.since_step: List[MicroPlan] = []  # the plans of the micro-batches since the last optimizer step
        self._gen = -1
        self._m = 0
        self._skip_offset: Optional[int] = None
        self._out_of_step_gen: Optional[int] = None

    def next_plan(self) -> Optional[MicroPlan]:
        """The plan of the micro-batch a training forward pass is running now (``None`` without a sampler)."""
        if self.sampler is None:
            return None
        g = self.sampler.generation
        if g == self._out_of_step_gen:
            raise StateError("the training loop and the DP sampler are out of step since a step was refused "
                             "(a forward pass in eval mode is not counted): start a new pass over the private "
                             "loader (for batch in dp.loader) before training on")
        if g != self._gen:
            self._gen = g
            self._m = self._skip_offset or 0
            self._skip_offset = None
        plan = self.sampler.plans.get(self._m)
        if plan is None:
            raise StateError(f"micro-batch {self._m} of this epoch was not drawn by the DP Poisson sampler: the "
                             f"training loop reads batches from another loader, or runs more forward passes in "
                             f"training mode than batches; DP accounting cannot vouch for it. {ONE_FORWARD}")
        self._m += 1
        self.since_step.append(plan)
        return plan

    def expect_skip(self, micro_batches: int) -> None:
        """The next pass over the loader starts ``micro_batches`` in."""
        self._skip_offset = int(micro_batches)

    def mark_out_of_step(self) -> None:
        """Refuse the rest of the sampler's current pass (a step of it was refused)."""
        if self.sampler is not None:
            self._out_of_step_gen = self.sampler.generation

    def take_since_step(self) -> List[MicroPlan]:
        """The plans since the last step, forgotten here."""
        plans, self.since_step = self.since_step, []
        return plans


def unit_groups(micro: MicroBatch) -> Tuple[Optional[torch.Tensor], int, Optional[torch.Tensor]]:
    """(group index per row or -1, number of groups, rows per group) for the micro-batch's units.

    ``None`` as the index when every row is its own unit. A negative unit id marks a row that must not count.
    """
    ids = micro.unit_ids
    if ids is not None and micro.plan is not None and micro.plan.units is not None:
        # the sampler's units (rows of one user) and the batch's units (views of one example) would each
        # claim to be the privacy unit; grouping by the finer one would clip a user's rows separately
        raise ConfigError(f"the batch carries {UNIT_KEY!r} (e.g. from Multiplicity) while the DP sampler groups "
                          f"rows by user-level unit_ids: combining both is not supported, because clipping by "
                          f"the batch's ids would bound each view, not each user. Use one kind of unit: drop "
                          f"Multiplicity, or drop unit_ids=")
    if ids is None and micro.plan is not None and micro.plan.units is not None:
        ids = torch.tensor(micro.plan.units, dtype=torch.long)
    if ids is None:
        return None, micro.rows, None
    valid = ids >= 0
    uniq, inv = torch.unique(ids[valid], return_inverse=True)
    idx = torch.full_like(ids, -1)
    idx[valid] = inv
    counts = torch.bincount(inv, minlength=len(uniq))
    return idx, int(len(uniq)), counts


def loss_scale(micro: MicroBatch, *, trainer: bool, default_accumulation: int, rule: Optional[str],
               fixed_divisor: bool = False) -> Any:
    """Per-row factor turning Opacus's per-sample gradients into per-example-loss gradients.

    Opacus (``loss_reduction="mean"``) multiplies by the rows ``n``; the loop's loss is
    ``sum_i w_i l_i / d`` (``w`` learnt from the model's output by the loss ``rule``, ``d`` the Trainer's
    division by the accumulation steps when it does not pass ``num_items_in_batch``). The factor is
    ``d / (n w_i)``: a float, or a tensor with one factor per row. ``fixed_divisor``: the loop divides by
    ``default_accumulation`` even in a shorter last group (Lightning's ``accumulate_grad_batches``).
    """
    d = 1.0
    if trainer and micro.num_items is None:
        d = (float(micro.plan.step_len) if micro.plan is not None and not fixed_divisor
             else float(default_accumulation))
    w = micro.weights
    if rule == "row_mean":
        return d  # n w_i = 1 for every row
    if w is None:
        if trainer and micro.num_items is not None and rule == "unknown":
            ni = micro.num_items
            ni = float(ni.sum().item() if isinstance(ni, torch.Tensor) else ni)
            return ni / max(micro.rows, 1)
        return d
    w = w.float()
    return torch.where(w > 0, d / (micro.rows * w.clamp(min=1e-30)), torch.zeros_like(w))
