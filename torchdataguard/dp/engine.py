"""The DP engine: wires DP-SGD into a model and its optimizer (see :mod:`torchdataguard.dp` for what it
guarantees and how). Built by :func:`~torchdataguard.dp.loop.make_private` and by the Trainer's
:class:`~torchdataguard.integrations.dp_trainer.DPCallback`.

The engine owns the parts every clipping mode shares: the micro-batch records (forward hooks on the model),
the per-example loss rule, the preflight and the choice of the clipper (:mod:`.selection`), the step refusals
(:mod:`.stepguard`), the noise and the ledger. What differs between modes is a clipper object
(:mod:`.clipping`) picked by name.

Example:
    >>> import torch, torch.nn as nn
    >>> from torchdataguard.dp import DPConfig
    >>> model = nn.Linear(4, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> eng = DPEngine(model, opt, DPConfig(noise_multiplier=1.0, delta=1e-3), num_units=100, sample_rate=0.1)
    >>> eng.mode, eng.report()["steps"]  # no preflight batch: book-keeping is not checked, so not chosen
    ('hooks', 0)
    >>> eng.detach()
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError, StateError
from .accounting import PrivacyBudgetExhausted, PrivacyLedger
from .batch import UNIT_KEY, batch_rows, default_forward, output_field
from .clipping import CLIPPERS, Clipper, PreflightFacts
from .config import DPConfig, planned_steps_of
from .epsilon import noise_for_target
from .losses import LossRule, per_sample_loss, token_counts
from .micro import ONE_FORWARD, MicroBatch, SamplerCursor, loss_scale
from .noise import CLIPPED_INPUT_ATTR, opacus_optimizer, release_noisy_mean
from .preflight import BroadcastExpander, PreflightReport, padding_embeddings
from .report import privacy_report
from .sampling import PoissonBatchSampler
from .selection import PreflightState, choose_clipping, run_preflight
from .stepchecks import ledger_next_to_model, same_draws, setup_problems, untracked_message, untracked_trainables
from .stepguard import StepGuard

__all__ = ["DPEngine"]

# Opacus's full backward hooks fire on the first layer even though its inputs need no gradient; expected here.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to "
                        "module outputs", category=UserWarning)


class DPEngine:
    """Wires Opacus into a model and its optimizer: hooks, per-micro-batch clipping, noise, accounting, budget.

    Built by :func:`~torchdataguard.dp.loop.make_private` (plain loop) and by
    :class:`~torchdataguard.integrations.dp_trainer.DPCallback` (Trainer); use those. The engine attaches to the
    *user's* optimizer through a step pre-hook: before every ``optimizer.step()`` it clips the pending
    micro-batch, adds the noise, writes the private gradient into ``p.grad`` and accounts the step.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: DPConfig, *, num_units: int,
                 sample_rate: float, sampler: Optional[PoissonBatchSampler] = None,
                 planned_steps: Optional[int] = None, preflight_batch: Any = None,
                 forward: Callable[[nn.Module, Any], Any] = default_forward,
                 loss_fn: Optional[Callable[[Any, Any], torch.Tensor]] = None, trainer: bool = False,
                 resuming: bool = False, approximate_reason: Optional[str] = None,
                 default_accumulation: int = 1, unit_ids_given: bool = False,
                 batch_stages: Sequence[Any] = (), release_at_step: bool = True) -> None:
        self.config = config
        #: False: the caller calls :meth:`release` after the backward pass and before the update (Lightning's
        #: ``on_before_optimizer_step``: its closure runs the backward inside ``optimizer.step()``)
        self.release_at_step = bool(release_at_step)
        self.model = model
        self.trainer = trainer
        self.sampler = sampler
        self.num_units = int(num_units)
        self.sample_rate = float(sample_rate)
        self.expected_batch = self.sample_rate * self.num_units
        self.approximate_reason = approximate_reason
        self.default_accumulation = int(default_accumulation)
        self.unit_ids_given = unit_ids_given
        self.notes: List[str] = []
        self._handles: List[Any] = []
        self._attached_handles: List[Any] = []
        self.clipper: Optional[Clipper] = None
        self.mode = ""
        self.params: List[nn.Parameter] = []
        self.expander: Optional[BroadcastExpander] = None
        self.budget_stopped = False
        self.steps_before_sampler = 0
        self.batch_stages = list(batch_stages)
        self.cursor = SamplerCursor(sampler)
        self.step_guard = StepGuard(self)
        self.new_ledger_declared = False
        self.ledger_source = ledger_next_to_model(model)
        self._preflight_args = (preflight_batch, forward, loss_fn)
        delta = config.delta if config.delta is not None else min(1e-5, 0.1 / max(self.num_units, 1))
        problems = setup_problems(model, optimizer, trainer=trainer, resuming=resuming, sample_rate=self.sample_rate,
                                  num_units=self.num_units, delta=delta)
        if problems:
            raise ConfigError.collect(problems, "DP-SGD setup")
        self.delta = float(delta)
        self.optimizer = optimizer
        self._read_params()
        # noise
        if config.noise_multiplier is not None:
            self.noise_multiplier = float(config.noise_multiplier)
        else:
            steps = planned_steps_of(config, sampler=sampler, sample_rate=self.sample_rate, planned=planned_steps)
            if steps is None:
                raise ConfigError("the DPConfig has target_epsilon but no sampling plan to calibrate the noise: give "
                                  "epochs= or steps= (the planned length of training), or noise_multiplier=")
            self.noise_multiplier = noise_for_target(target_epsilon=config.target_epsilon, delta=self.delta,
                                                     sample_rate=self.sample_rate, steps=int(steps),
                                                     accountant=config.accountant)
            self.notes.append(f"noise multiplier calibrated to epsilon {config.target_epsilon} over {steps} steps")
        self.ledger = PrivacyLedger(delta=self.delta, accountant=config.accountant, unit=config.unit,
                                    target_epsilon=config.target_epsilon if config.enforce_budget else None)
        self.ledger.horizon = planned_steps_of(config, sampler=sampler, sample_rate=self.sample_rate,
                                               planned=planned_steps)
        # preflight and mode
        self.current: Optional[MicroBatch] = None  # the micro-batch recorded by the last training forward pass
        self.preflight = PreflightState()
        self.facts = PreflightFacts()
        self.keep_grads = True  # False while attached: parameter gradients are dropped (clippers form their own)
        self.loss_rule = LossRule(self.notes.append)
        self.report_preflight = PreflightReport()
        # registered last, so that batch stages applied by earlier forward pre-hooks (augmentation views and their
        # unit ids) are seen before the unit ids are popped
        self._handles.append(model.register_forward_pre_hook(self._pre_forward, with_kwargs=True))
        self.expander = BroadcastExpander(model, self.current_rows)
        try:
            self._select()
            self._attach()
        except BaseException:
            self.detach()  # leave the user's model and optimizer as they were
            raise

    def _read_params(self) -> None:
        """The parameters the engine clips: the optimizer's, those that require a gradient."""
        self.params = [p for g in self.optimizer.param_groups for p in g["params"] if p.requires_grad]
        names = {id(p): n for n, p in self.model.named_parameters()}
        self.param_names = [names.get(id(p), "?") for p in self.params]
        self._param_index = {id(p): i for i, p in enumerate(self.params)}
        self.param_ids = frozenset(self._param_index)
        self.pads = {id(w): idx for w, idx in padding_embeddings(self.model).values()}

    def same_draws(self):
        """A context in which a preflight pass draws the same random numbers as every other preflight pass
        (torch's generators and the augmentation stages' streams, restored afterwards)."""
        dev = next((p.device for p in self.params), torch.device("cpu"))
        return same_draws([dev] if dev.type == "cuda" else [], self.batch_stages)

    @contextlib.contextmanager
    def preflight_pass(self, capture: Optional[Dict[str, Any]] = None) -> Iterator[None]:
        """Run the block as a preflight pass: the model in training mode, nothing recorded for training, the
        inputs' labels and unit ids noted in ``capture``; the model's mode is put back afterwards."""
        was_training = self.model.training
        self.preflight.active = True
        self.preflight.capture = capture
        try:
            self.model.train()
            yield
        finally:
            self.preflight.active = False
            self.preflight.capture = None
            self.current = None
            self.model.train(was_training)

    def current_rows(self) -> Optional[int]:
        """Rows of the micro-batch being recorded (``None`` between micro-batches)."""
        return self.current.rows if self.current is not None else None

    def scale(self, micro: MicroBatch) -> Any:
        """Per-row factor turning per-sample gradients into per-example-loss gradients (see
        :func:`~torchdataguard.dp.micro.loss_scale`)."""
        return loss_scale(micro, trainer=self.trainer, default_accumulation=self.default_accumulation,
                          rule=self.loss_rule.name, fixed_divisor=not self.release_at_step)

    # -- the clipper ---------------------------------------------------------------------------------------------
    def _select(self) -> None:
        """Run the preflight on its batch and choose the clipping mode (:mod:`.selection`)."""
        self.facts = run_preflight(self, *self._preflight_args)
        self.mode = choose_clipping(self, self.facts)

    def _attach(self) -> None:
        self.clipper = CLIPPERS.get(self.mode)(self)
        self.clipper.attach()
        self._attached_handles.append(self.model.register_forward_hook(self._post_forward, with_kwargs=True))
        self.opacus_optimizer = opacus_optimizer(self.optimizer, noise_multiplier=self.noise_multiplier,
                                                 max_grad_norm=self.config.max_grad_norm,
                                                 expected_batch=self.expected_batch,
                                                 secure_mode=self.config.secure_mode)
        for p in self.params:
            self._attached_handles.append(p.register_post_accumulate_grad_hook(self._drop_grad))
        self.keep_grads = False
        if self.release_at_step:
            self._attached_handles.append(self.optimizer.register_step_pre_hook(self._before_step))

    def _unattach(self) -> None:
        """Remove what :meth:`_attach` added (the clipping hooks); the forward pre-hook and the ledger stay."""
        for h in self._attached_handles:
            h.remove()
        self._attached_handles = []
        if self.clipper is not None:
            self.clipper.detach()
            self.clipper = None
        self.keep_grads = True

    def reattach(self) -> None:
        """Clip the parameters the optimizer holds now: after unfreezing layers (and adding them to the optimizer
        with ``optimizer.add_param_group``), call this between two optimizer steps. The preflight runs again on
        its batch and the clipping mode is chosen again; the ledger goes on."""
        pending = (self.current is not None or self.cursor.since_step or self._pending()
                   or any(getattr(p, "summed_grad", None) is not None for p in self.params))
        if pending:
            raise StateError("reattach() was called with micro-batches waiting for an optimizer step: call it right "
                             "after optimizer.step() (or before the first forward pass)")
        names = untracked_trainables(self.model, [p for g in self.optimizer.param_groups for p in g["params"]])
        if names:
            raise ConfigError(untracked_message(names, at_setup=True))
        old = self.mode
        self._unattach()
        if self.expander is not None:
            self.expander.remove()
        self._read_params()
        self.expander = BroadcastExpander(self.model, self.current_rows)
        self.report_preflight = PreflightReport()
        self._select()
        self._attach()
        self.notes.append(f"re-attached at step {self.ledger.steps} to {len(self.params)} trainable parameter "
                          f"tensor(s) (clipping {old} -> {self.mode})")

    # -- hooks on the model ------------------------------------------------------------------------------------------
    def _drop_grad(self, p: torch.Tensor) -> None:
        if not self.keep_grads:
            if not self.model.training and not self.preflight.active:
                # the engine records micro-batches only in training mode: this gradient belongs to none of them
                self.step_guard.eval_backward = True
            if self.current is not None and not self.preflight.active:
                self.clipper.on_param_grad(self.param_names[self._param_index.get(id(p), 0)])
            p.grad = None

    def _pre_forward(self, module: nn.Module, args: tuple, kwargs: dict):
        units = kwargs.pop(UNIT_KEY, None) if UNIT_KEY in kwargs else None
        if not (module.training and torch.is_grad_enabled()):
            return args, kwargs
        preflight = self.preflight.active
        if self.current is not None and not preflight and self._pending():
            # several micro-batches before one optimizer step (gradient accumulation in a plain loop): clip the
            # previous one now, before its records make way for this one
            self.after_backward()
        capture = self.preflight.capture
        if capture is not None:
            if "labels" in kwargs:
                capture["labels"] = kwargs["labels"]
            if units is not None:
                capture["units_seen"] = True
        plan = None if preflight else self.cursor.next_plan()
        if not preflight:
            # after the plan is counted: the loop may go on with the next batch
            self.step_guard.refuse_untracked()
        rows = batch_rows(args, kwargs)
        if rows is None:
            raise ConfigError("the DP engine found no tensor with a batch dimension in the model's inputs")
        if plan is not None and units is None and plan.rows != rows:
            raise StateError(f"the micro-batch has {rows} rows but the DP sampler drew {plan.rows}: the loader and the "
                             f"training loop are out of step. {ONE_FORWARD}")
        if units is not None:
            units = torch.as_tensor(units).to(torch.long).flatten()
            if units.numel() != rows:
                raise ConfigError(f"batch[{UNIT_KEY!r}] has {units.numel()} entries for {rows} rows: one unit id per "
                                  f"row (int64 [N])")
        self.current = MicroBatch(rows, units, plan, kwargs.get("num_items_in_batch"), kwargs.get("labels"))
        if self.clipper is not None and not preflight:
            self.clipper.begin(rows)
        return args, kwargs

    def _post_forward(self, module: nn.Module, args: tuple, kwargs: dict, output: Any):
        """Read per-example losses from the output: learn how the model reduces its loss (so per-sample
        gradients can be rescaled to per-example gradients) and let the clipper replace the loss (ghost)."""
        if not (module.training and torch.is_grad_enabled()) or self.preflight.active or self.current is None:
            return None
        micro = self.current
        loss = output_field(output, "loss")
        logits = output_field(output, "logits")
        labels = micro.labels
        counts = token_counts(module, logits, labels) if isinstance(loss, torch.Tensor) else None
        if counts is None:
            self.clipper.missing_losses(None)
            return None
        ni = micro.num_items
        ni = None if ni is None else float(ni.sum().item() if isinstance(ni, torch.Tensor) else ni)
        per = None
        if self.clipper.needs_per_example_losses or self.loss_rule.undecided:
            got = per_sample_loss(module, logits, labels)
            if got is None:
                self.clipper.missing_losses((tuple(logits.shape), tuple(labels.shape)))
                return None
            per = got[0]
            if self.loss_rule.undecided:
                self.loss_rule.identify(per.detach(), counts, loss.detach(), ni)
        micro.weights = self.loss_rule.weights(counts, ni)
        return self.clipper.on_output(output, per, loss)

    # -- the step ----------------------------------------------------------------------------------------------------
    def after_backward(self) -> None:
        """Clip the pending micro-batch's gradients into the step's sum (what the clipper has not done already)."""
        micro, self.current = self.current, None
        self.clipper.clip(micro)

    def can_step(self) -> bool:
        """Whether one more step stays within the budget (always true without a target)."""
        return self.ledger.can_step(self.noise_multiplier, self.sample_rate)

    def _before_step(self, optimizer, args, kwargs) -> None:
        self.release()

    def _pending(self) -> bool:
        """Whether the current micro-batch was back-propagated and its gradients wait to be clipped."""
        return self.clipper is not None and self.clipper.pending()

    def release(self) -> None:
        """Clip what is pending, add the noise, average and account one step (writes ``p.grad``)."""
        self.step_guard.check_before_step()
        self.after_backward()
        self.step_guard.check_one_logical_step()
        if self.config.enforce_budget and not self.can_step():
            for p in self.params:
                p.summed_grad = None
                p.grad = None
            self.budget_stopped = True
            raise PrivacyBudgetExhausted(
                f"one more step would spend more than target_epsilon={self.config.target_epsilon} "
                f"(epsilon so far {self.ledger.epsilon():.4g} after {self.ledger.steps} steps); stop training here")
        release_noisy_mean(self.opacus_optimizer, self.params, noise_multiplier=self.noise_multiplier,
                           max_grad_norm=self.config.max_grad_norm, expected_batch=self.expected_batch,
                           secure_mode=self.config.secure_mode)
        self.ledger.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def expect_skip(self, micro_batches: int) -> None:
        """The next pass over the loader starts ``micro_batches`` in (the Trainer skips batches on resume)."""
        self.cursor.expect_skip(micro_batches)

    # -- reporting and state -----------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        return self.ledger.epsilon()

    def report(self) -> Dict[str, Any]:
        """The JSON-able privacy section (see :func:`~torchdataguard.dp.report.privacy_report`)."""
        return privacy_report(self)

    def state_dict(self) -> Dict[str, Any]:
        return {"ledger": self.ledger.state_dict(),
                "sampler": self.sampler.state_dict() if self.sampler is not None else None}

    def load_state_dict(self, state: Dict[str, Any], *, expect_steps: Optional[int] = None) -> None:
        if "ledger" not in state:
            raise StateError("no privacy ledger in this state: a DP run cannot resume without it")
        self.ledger.load_state_dict(state["ledger"], expect_steps=expect_steps, expect_noise=self.noise_multiplier,
                                    expect_rate=self.sample_rate)
        self.step_guard.first_step_checked = False
        if state.get("sampler") is not None and self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])

    def load_ledger(self, directory, *, expect_steps: Optional[int] = None) -> None:
        """Continue the ledger saved in ``directory``: its delta, accountant, unit, noise multiplier and sampling
        rate must be this run's, and its checksum must match (see :meth:`PrivacyLedger.load_state_dict`)."""
        self.ledger.load(directory, expect_steps=expect_steps, expect_noise=self.noise_multiplier,
                         expect_rate=self.sample_rate)
        self.step_guard.first_step_checked = False

    def continue_ledger(self, previous: PrivacyLedger) -> None:
        """Go on from the ledger of an earlier run in this process (a second ``trainer.train()`` call): its steps
        stay accounted, whatever noise and sampling rate they had."""
        state = previous.state_dict()
        self.ledger.load_state_dict(state)
        self.notes.append(f"continued the privacy ledger of the previous run in this process ({previous.steps} "
                          f"steps)")

    def detach(self) -> None:
        """Remove every hook and Opacus attribute; the model and optimizer are plain again."""
        for h in self._handles:
            h.remove()
        self._handles = []
        if self.expander is not None:
            self.expander.remove()
        self._unattach()
        for p in self.params:
            for attr in ("summed_grad", CLIPPED_INPUT_ATTR):
                if hasattr(p, attr):
                    delattr(p, attr)
        for m in self.model.modules():
            for attr in ("activations", "max_batch_len"):
                if attr in m.__dict__:  # wrappers (peft's ModulesToSaveWrapper) forward getattr to what they wrap
                    delattr(m, attr)
