"""The refusals at each optimizer step: every step is the one accounted, or it is refused (``StateError``,
nothing applied).

A step is refused when a parameter that requires a gradient is not clipped by the engine (unfrozen after
set-up without ``reattach()``, or held by another optimizer), when a backward pass of an eval-mode forward ran
since the last step, when the micro-batches come from two Poisson draws, and (first step only) when the
optimizer state or the model folder shows DP training the ledger does not account.

Example:
    >>> import torch, torch.nn as nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from torchdataguard.dp import DPConfig, make_private
    >>> model = nn.Linear(4, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> dp = make_private(model, opt, DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4),
    ...                   DPConfig(noise_multiplier=1.0, delta=1e-3), loss_fn=lambda out, b: out.sum())
    >>> _ = model.eval(); model(torch.randn(2, 4)).sum().backward()
    >>> try:
    ...     opt.step()
    ... except StateError as exc:
    ...     print(str(exc)[:64])
    a backward pass ran with the model in eval mode since the last o
    >>> dp.close()
"""
from __future__ import annotations

from ..errors import StateError
from .accounting import LEDGER_FILE
from .stepchecks import optimizer_steps_taken, untracked_message, untracked_trainables

__all__ = ["StepGuard"]


class StepGuard:
    """The step refusals of one DP engine (see the module docstring).

    ``eval_backward``: a gradient arrived while the model was in eval mode since the last step (set by the engine).
    ``first_step_checked``: the first-step checks ran (cleared when a ledger is loaded).
    """

    def __init__(self, engine) -> None:
        self.engine = engine
        self.eval_backward = False
        self.first_step_checked = False

    def discard_step(self) -> None:
        """Forget everything gathered for the step being refused (no gradient is left for the optimizer)."""
        eng = self.engine
        eng.current = None
        eng.cursor.take_since_step()
        if eng.clipper is not None:
            eng.clipper.discard()
        for p in eng.model.parameters():
            if getattr(p, "summed_grad", None) is not None:
                p.summed_grad = None
            if p.requires_grad:
                p.grad = None

    def refuse_untracked(self) -> None:
        """Refuse parameters that require a gradient but are not clipped by the engine."""
        names = untracked_trainables(self.engine.model, self.engine.param_ids)
        if names:
            self.discard_step()
            raise StateError(untracked_message(names, at_setup=False))

    def check_one_logical_step(self) -> None:
        """A plain loop must step once per logical batch the Poisson sampler drew (or its ``accumulation``
        micro-batches): an update built from two draws is a different mechanism from the one accounted."""
        eng = self.engine
        plans = eng.cursor.take_since_step()
        if eng.trainer or eng.sampler is None or not plans:
            return
        steps = {(eng.sampler.generation, p.step) for p in plans}
        if len(steps) > 1 or len(plans) > plans[0].step_len:
            for p in eng.params:
                p.summed_grad = None
            raise StateError(
                f"optimizer.step() after {len(plans)} micro-batches from {len(steps)} logical batches of the DP "
                f"sampler (each logical batch is {plans[0].step_len} micro-batch(es)): an update that merges "
                f"several Poisson draws is not what the accountant counts. Step once per batch of the private "
                f"loader, or give make_private(..., accumulation=k) and step every k batches")

    def check_before_step(self) -> None:
        """Refuse a step the accountant would not describe: one whose gradients came from an eval-mode forward,
        one that would train parameters the engine does not clip, one of a resumed run whose ledger was not
        loaded."""
        eng = self.engine
        if self.eval_backward:
            self.eval_backward = False
            self.discard_step()
            eng.cursor.mark_out_of_step()
            raise StateError("a backward pass ran with the model in eval mode since the last optimizer step: the DP "
                             "engine records micro-batches only in training mode, so this step would train on noise "
                             "alone and the Poisson sampler's micro-batches would fall out of step with the loop "
                             "(padding rows that were never drawn would then be trained on). Call model.train() "
                             "before the forward pass of every training step (e.g. after evaluating)")
        self.refuse_untracked()
        if self.first_step_checked:
            return
        self.first_step_checked = True
        led = eng.ledger.steps
        taken, any_state = optimizer_steps_taken(eng.optimizer)
        if taken > led or (led == 0 and any_state):
            self.discard_step()
            raise StateError(
                f"the optimizer's state shows {taken if taken else 'earlier'} step(s) but the privacy ledger accounts "
                f"{led}: this run continues a training run without its ledger, so the epsilon reported would leave "
                f"out the steps already taken. Load the ledger saved with the checkpoint right after make_private "
                f"(dp.load(checkpoint_dir); it is written by dp.save), or, with the Trainer, resume through "
                f"trainer.train(resume_from_checkpoint=...) with the DPCallback; or start from a fresh optimizer")
        if eng.ledger_source is not None and led == 0 and not eng.new_ledger_declared:
            self.discard_step()
            raise StateError(
                f"the model was loaded from {eng.ledger_source!r}, which holds a privacy ledger ({LEDGER_FILE}) "
                f"from DP training, but this run starts a new ledger at 0 steps. To continue that run's epsilon, load "
                f"it: dp.load({eng.ledger_source!r}) (Trainer: DPCallback(resume_from=...)). If this run trains on "
                f"other data and its guarantee is a separate one, say so: dp.start_new_ledger() (Trainer: "
                f"DPCallback(new_ledger=True))")
