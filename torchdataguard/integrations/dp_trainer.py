"""DP-SGD for the Hugging Face ``Trainer`` as one callback: ``callbacks=[DPCallback(DPConfig(...))]``.

Nothing else changes in the user's script (no Trainer subclass). At ``on_train_begin`` the callback:

1. refuses what would make the guarantee wrong (several processes, a weighted / length-grouped / custom
   sampler, ``dataloader_drop_last``), unless ``DPConfig(accept_approximate=True)``;
2. swaps the Trainer's random sampler for a :class:`~torchdataguard.dp.sampling.PoissonBatchSampler`
   *in place* (the DataLoader object the Trainer iterates is kept): Poisson sampling of the logical batch
   at rate ``q = per-device batch x accumulation steps x world size / dataset size``, split into the
   Trainer's gradient-accumulation micro-batches;
3. turns the Trainer's own gradient clipping off (``max_grad_norm=0``; DP clips per example instead);
4. runs the preflight audit on a few rows of the training set and attaches Opacus to the model (hooks, no
   wrapper) and to the optimizer (a step pre-hook writes the private gradient into ``p.grad``).

During training each micro-batch is clipped when its backward pass ends (``on_substep_end`` or the optimizer
step), noise is added once per optimizer step, the step is accounted, and training stops before a step would
exceed ``target_epsilon``. Every log gets ``dp/epsilon``, the epsilon of the accountant in force
(``DPConfig.accountant``: the one that enforces the budget), and ``dp/secondary/epsilon_<other>``, the other
accountant's bound on the same training (RDP's is looser than PRV's: a secondary figure above the target is
not an overrun; the report explains it); the Trainer's
``grad_norm`` (the norm of the raw, non-private gradient) is removed from the logs. Every checkpoint gets
the ledger ``tdg_privacy_ledger.json``; resuming without it, or with one from another step, is an error.

Why the sampler is swapped in place: the Trainer builds its DataLoader itself and offers no hook to choose
the sampler short of subclassing it. The swap replaces only the batch sampler of that DataLoader (the one
attribute PyTorch locks after construction), before the first epoch starts.

Example:
    >>> cb = DPCallback(DPConfig(target_epsilon=8.0, delta=1e-5))
    >>> cb.report()["steps"]
    0
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import torch
from transformers import TrainerCallback

from ..errors import ConfigError, StateError
from ..dp.accounting import LEDGER_FILE
from ..dp.batch import to_device
from ..dp.config import DPConfig
from ..dp.engine import DPEngine
from ..dp.sampling import PoissonBatchSampler, loader_sampling_problems

__all__ = ["DPCallback"]

CHECKPOINT_PREFIX = "checkpoint"


def _base_loader(loader: Any) -> Any:
    """The torch DataLoader inside accelerate's DataLoaderShard (or the loader itself)."""
    return getattr(loader, "base_dataloader", loader)


def _install_batch_sampler(loader: Any, sampler: PoissonBatchSampler) -> None:
    base = _base_loader(loader)
    # DataLoader forbids setting batch_sampler after construction; this is the one place where we must.
    object.__setattr__(base, "batch_sampler", sampler)


class DPCallback(TrainerCallback):
    """A ``TrainerCallback`` that trains with DP-SGD (Opacus) and accounts for it (see the module docstring).

    Args:
        privacy: the :class:`~torchdataguard.dp.config.DPConfig`.
        unit_ids: the privacy unit of each training row (rows of one user share an id; sampled together and
            summed or averaged per ``privacy.unit_reduction``); each row is a unit by default.
        resume_from: the checkpoint directory holding the ledger when resuming from somewhere other than
            ``output_dir/checkpoint-<step>``; on a run that starts at step 0 (a model loaded from a DP checkpoint,
            trained further on the same data), the ledger there is continued.
        new_ledger: the model was loaded from a folder holding a privacy ledger, but this run trains on other data
            and its guarantee is a separate one (without this, or ``resume_from``, the first step is refused).
        guard: the :class:`~torchdataguard.Guard` (passed by ``GuardCallback``; its batch stages run in a forward
            pre-hook registered before this callback's, so their ``"tdg_unit_ids"`` reach the DP engine).
    """

    def __init__(self, privacy: DPConfig, *, unit_ids: Optional[Sequence[int]] = None,
                 resume_from: Optional[str] = None, guard: Any = None, new_ledger: bool = False) -> None:
        if not isinstance(privacy, DPConfig):
            raise ConfigError.bad("privacy", type(privacy).__name__, "a tdg.DPConfig")
        self.privacy = privacy
        self.unit_ids = list(unit_ids) if unit_ids is not None else None
        self.resume_from = resume_from
        self.guard = guard
        self.new_ledger = bool(new_ledger)
        self.engine: Optional[DPEngine] = None
        self.sampler: Optional[PoissonBatchSampler] = None
        self._saved_max_grad_norm: Optional[float] = None
        self._last: Dict[str, Any] = {}

    # -- setup -------------------------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None, train_dataloader=None, **kwargs):
        previous = None
        if self.engine is not None:  # a second trainer.train() call: its steps add to the same guarantee
            self.engine.detach()
            previous = self.engine.ledger
            self.engine = None
        cfg = self.privacy
        if model is None or optimizer is None or train_dataloader is None:
            raise ConfigError("DPCallback needs the Trainer's model, optimizer and train dataloader at on_train_begin")
        world = int(getattr(args, "world_size", 1) or 1)
        if world > 1:
            raise ConfigError(f"DPCallback runs on one process for now (world_size={world}): Poisson sampling and "
                              f"noise across ranks are not wired yet; train on one device")
        if getattr(args, "n_gpu", 1) and getattr(args, "n_gpu", 1) > 1:
            raise ConfigError(f"DPCallback does not support DataParallel over {args.n_gpu} GPUs; use one device "
                              f"(CUDA_VISIBLE_DEVICES=0)")
        if getattr(args, "fp16", False):
            raise ConfigError("DPCallback refuses fp16=True: its loss scaler multiplies every example's gradient before "
                              "clipping (so clipping bounds the scaled gradient) and skips optimizer steps on overflow "
                              "(so one update would merge two Poisson draws the accountant counts as one). Use "
                              "bf16=True, which needs no loss scaling, or fp32")
        if args.max_grad_norm and args.max_grad_norm > 0:
            self._saved_max_grad_norm = float(args.max_grad_norm)
            args.max_grad_norm = 0.0  # DP clips each example; the Trainer's clipping of the sum is turned off
        inner_opt = getattr(optimizer, "optimizer", optimizer)
        loader = train_dataloader
        problems = loader_sampling_problems(_base_loader(loader), trainer_default_shuffle_ok=True)
        if problems and not cfg.accept_approximate:
            raise ConfigError.collect(problems + ["or set DPConfig(accept_approximate=True) to keep this sampler; the "
                                                  "report then marks the guarantee approximate"],
                                      "Trainer's data loading under DP-SGD")
        dataset = loader.dataset
        num_rows = len(dataset)
        if self.unit_ids is not None and len(self.unit_ids) != num_rows:
            raise ConfigError(f"unit_ids has {len(self.unit_ids)} entries but the training set has {num_rows} rows "
                              f"(after filtering): give one unit id per row of the dataset the Trainer sees")
        num_units = len(set(self.unit_ids)) if self.unit_ids is not None else num_rows
        ga = int(args.gradient_accumulation_steps)
        per_device = int(args.train_batch_size)
        q = per_device * ga * world / max(num_units, 1)
        if q > 1:
            raise ConfigError(f"the logical batch ({per_device} x {ga} accumulation steps = {per_device * ga}) is larger "
                              f"than the training set ({num_units} units): lower per_device_train_batch_size or "
                              f"gradient_accumulation_steps")
        micro_per_epoch = len(loader)
        resuming = int(state.global_step) > 0
        prior_steps = previous.steps if previous is not None and not resuming else 0
        approx = None
        if problems:
            approx = "; ".join(problems)
            self.sampler = None
        else:
            # a fresh stream at every (re)start: a resumed run must not replay the draws of its first steps
            base = cfg.seed if cfg.seed is not None else int(args.seed)
            # (a second train() call continues the ledger: its draws must be new ones too)
            seed = int(base) * 1_000_003 + int(state.global_step) + prior_steps
            self.sampler = PoissonBatchSampler(num_rows, sample_rate=q, micro_batches_per_epoch=micro_per_epoch,
                                               accumulation=ga, unit_ids=self.unit_ids, seed=seed)
            self.sampler.batch_size = per_device  # read by accelerate (expected micro-batch size)
            self.sampler.drop_last = False
            _install_batch_sampler(loader, self.sampler)
        batch = None
        smoothing = float(getattr(args, "label_smoothing_factor", 0) or 0) > 0
        if cfg.preflight and num_rows:
            k = min(num_rows, 2)  # two rows: enough to see rows mixed or inputs broadcast; memory rows x params
            batch = to_device(loader.collate_fn([dataset[i] for i in range(k)]), args.device)
            if smoothing and hasattr(batch, "pop"):
                self._check_smoothing(batch.pop("labels", None))  # the model is called without them, as here
        self.engine = DPEngine(model, inner_opt, cfg, num_units=num_units, sample_rate=q, sampler=self.sampler,
                               planned_steps=int(state.max_steps) if state.max_steps else None,
                               preflight_batch=batch, trainer=True, resuming=resuming or prior_steps > 0,
                               approximate_reason=approx, default_accumulation=ga,
                               unit_ids_given=self.unit_ids is not None,
                               batch_stages=self.guard.batch_stages if self.guard is not None else ())
        self.engine.new_ledger_declared = self.new_ledger
        if smoothing:  # the Trainer's label smoother: a sum over the rows' losses divided as the model's would be
            self.engine.loss_rule.name = "unknown"
            self.engine.notes.append(f"label_smoothing_factor={args.label_smoothing_factor}: the Trainer computes the "
                                     f"loss outside the model; each row is one loss term")
        if prior_steps:
            self.engine.continue_ledger(previous)
        if self._saved_max_grad_norm is not None:
            self.engine.notes.append(f"the Trainer's max_grad_norm={self._saved_max_grad_norm} was turned off: DP-SGD "
                                     f"clips each example at {cfg.max_grad_norm}")
        if resuming:
            self._restore(args, state)
            if self.sampler is not None and not getattr(args, "ignore_data_skip", False):
                updates_per_epoch = micro_per_epoch // ga + int(micro_per_epoch % ga > 0)
                self.engine.expect_skip((int(state.global_step) % updates_per_epoch) * ga)
        elif self.resume_from and not prior_steps:
            if not os.path.exists(os.path.join(self.resume_from, LEDGER_FILE)):
                raise StateError(f"DPCallback(resume_from={self.resume_from!r}) but that folder holds no privacy ledger "
                                 f"({LEDGER_FILE}); give the checkpoint folder saved with DPCallback")
            self.engine.load_ledger(self.resume_from)
            self.engine.notes.append(f"continued the privacy ledger of {self.resume_from} "
                                     f"({self.engine.ledger.steps} steps)")
        if approx:
            self.engine.notes.append("approximate guarantee accepted by the user")
        return control

    @staticmethod
    def _check_smoothing(labels: Any) -> None:
        """Refuse label smoothing of token-level labels: the Trainer takes the labels out of the model's inputs, so
        how many loss terms each row has, which each example's gradient must be rescaled by, cannot be known."""
        if isinstance(labels, torch.Tensor) and labels.dim() > 1:
            raise ConfigError(f"DPCallback cannot train with label_smoothing_factor > 0 on token-level labels (shape "
                              f"{tuple(labels.shape)}): the Trainer's label smoother takes the labels out of the "
                              f"model's inputs, so DP-SGD cannot tell how many tokens each example's loss sums and "
                              f"would clip gradients weighted by length, not each example's mean. Set "
                              f"label_smoothing_factor=0, or smooth the labels in the model's own loss")

    def _checkpoint_dir(self, args, step: int) -> str:
        return os.path.join(args.output_dir, f"{CHECKPOINT_PREFIX}-{step}")

    def _restore(self, args, state) -> None:
        step = int(state.global_step)
        candidates = [d for d in (self.resume_from, self._checkpoint_dir(args, step)) if d]
        for d in candidates:
            if os.path.exists(os.path.join(d, LEDGER_FILE)):
                self.engine.load_ledger(d, expect_steps=step)
                self.engine.notes.append(f"resumed the privacy ledger at step {step}")
                return
        raise StateError(f"the Trainer resumed at step {step} but no privacy ledger ({LEDGER_FILE}) was found in "
                         f"{candidates}: resuming DP-SGD without it would under-report epsilon. Resume from a "
                         f"checkpoint saved with DPCallback, pass DPCallback(..., resume_from=<checkpoint dir>), or "
                         f"start a fresh run")

    # -- training events ---------------------------------------------------------------------------------------------
    def on_substep_end(self, args, state, control, **kwargs):
        if self.engine is not None:
            self.engine.after_backward()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        eng = self.engine
        if eng is None:
            return control
        if self.privacy.enforce_budget and self.privacy.target_epsilon is not None and not eng.can_step():
            eng.budget_stopped = True
            control.should_training_stop = True
            control.should_log = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.engine is None or logs is None:
            return control
        # the Trainer logs the norm of the raw, non-private gradient: not part of a DP release
        logs.pop("grad_norm", None)
        if state.log_history and isinstance(state.log_history[-1], dict):
            state.log_history[-1].pop("grad_norm", None)
        if "loss" in logs or "train_loss" in logs or state.global_step != self._last.get("step"):
            pt = self.engine.ledger.record_point(int(state.global_step))
            self._last = pt
            extra = self.log_keys(pt)
            logs.update(extra)
            if state.log_history and isinstance(state.log_history[-1], dict):
                state.log_history[-1].update(extra)
        return control

    def log_keys(self, point: Dict[str, Any]) -> Dict[str, Any]:
        """``dp/epsilon`` (the accountant in force) and ``dp/secondary/epsilon_<other>`` from a ledger point.

        Example:
            >>> DPCallback(DPConfig(target_epsilon=8.0, delta=1e-5)).log_keys({"epsilon_prv": 7.99, "epsilon_rdp": 11.41})
            {'dp/epsilon': 7.99, 'dp/secondary/epsilon_rdp': 11.41}
        """
        used = self.privacy.accountant
        other = "rdp" if used == "prv" else "prv"
        return {"dp/epsilon": point[f"epsilon_{used}"], f"dp/secondary/epsilon_{other}": point[f"epsilon_{other}"]}

    def on_save(self, args, state, control, **kwargs):
        if self.engine is not None:
            directory = self._checkpoint_dir(args, int(state.global_step))
            if os.path.isdir(directory) or getattr(args, "should_save", True):
                self.engine.ledger.save(directory)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.engine is not None:
            self.engine.ledger.record_point(int(state.global_step))
            self.engine.detach()
        if self._saved_max_grad_norm is not None:
            args.max_grad_norm = self._saved_max_grad_norm
            self._saved_max_grad_norm = None
        return control

    def reattach(self) -> None:
        """Clip the parameters the Trainer's optimizer holds now (after unfreezing layers and adding them to it with
        ``optimizer.add_param_group``); call it from a callback's ``on_step_end``. See ``DPEngine.reattach``."""
        if self.engine is None:
            raise StateError("DPCallback.reattach() before training started: unfreeze the layers before train()")
        self.engine.reattach()

    # -- report ------------------------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        """Epsilon spent so far (the configured accountant); 0 before training."""
        return self.engine.epsilon() if self.engine is not None else 0.0

    def report(self) -> Dict[str, Any]:
        """The JSON-able privacy section (``report["privacy"]``): unit, delta, accountant, noise multiplier,
        sampling rate, steps, ``epsilon_prv`` / ``epsilon_rdp``, ``approximate`` (+ ``approximate_reason``),
        the preflight and ``history`` (``[{"step", "epsilon_prv", "epsilon_rdp"}]``)."""
        if self.engine is None:
            cfg = self.privacy
            return {"unit": cfg.unit, "delta": cfg.delta, "accountant": cfg.accountant,
                    "noise_multiplier": cfg.noise_multiplier, "sample_rate": None, "steps": 0, "epsilon_prv": 0.0,
                    "epsilon_rdp": 0.0, "target_epsilon": cfg.target_epsilon, "approximate": cfg.accept_approximate,
                    "approximate_reason": None, "history": []}
        return self.engine.report()
