"""A Lightning callback: guard counters in Lightning's logger, guard state in Lightning checkpoints, the report at
the end of ``fit``, and DP-SGD with ``privacy=DPConfig(...)`` (exported as ``tdg.LightningGuardCallback``).

Under DP the callback replaces the training DataLoader's batch sampler with Poisson sampling (one Bernoulli draw
per privacy unit and logical step, split into ``accumulate_grad_batches`` micro-batches), clips every example's
gradient after each backward pass, adds the noise at ``on_before_optimizer_step`` (Lightning runs the backward
inside ``optimizer.step(closure)``, so the noise cannot be added before the step is called), accounts each step,
logs ``dp/epsilon_prv`` and ``dp/epsilon_rdp``, stops at the budget, and saves the ledger and the sampler's
state in every checkpoint. Refused with the fix: ``gradient_clip_val`` (it would clip the noisy sum, not each
example), 16-bit mixed precision (its loss scaler scales each gradient before clipping and skips steps on
overflow), a shuffling or custom sampler, ``drop_last``, several devices.

Example:
    >>> import torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    >>> cb = tdg.LightningGuardCallback(guard)
    >>> # trainer = lightning.Trainer(callbacks=[cb]); trainer.fit(module, DataLoader(guard.wrap(rows), ...))
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from ..core.arrays import tensors_of
from ..core.guard import Guard
from ..dp.batch import to_device
from ..dp.config import DPConfig
from ..dp.engine import DPEngine
from ..dp.sampling import PoissonBatchSampler, loader_sampling_problems
from ..errors import ConfigError, StateError
from ..report import save_report
from .counters import guard_counters
from .datacheck import check_training_data

__all__ = ["CHECKPOINT_KEY", "GuardCallback", "LightningGuardCallback"]

#: the key of torchdataguard's state in a Lightning checkpoint
CHECKPOINT_KEY = "torchdataguard"


def training_step_forward(module: Any, batch: Any) -> Any:
    """The preflight's forward pass: the module's ``training_step`` on the batch, with ``self.log`` silenced."""
    module.log = lambda *a, **k: None  # an instance attribute over the method, removed right after
    module.log_dict = lambda *a, **k: None
    try:
        return module.training_step(batch, 0)
    finally:
        del module.log, module.log_dict


def training_step_loss(output: Any, batch: Any) -> torch.Tensor:
    """The loss of a ``training_step`` output (a tensor, or a mapping with ``"loss"``)."""
    return output if isinstance(output, torch.Tensor) else output["loss"]


class LightningGuardCallback(Callback):
    """Wire a :class:`~torchdataguard.Guard` (and DP-SGD) into an unmodified ``lightning.Trainer``.

    * logs the guard's counters (``tdg/seen``, ``tdg/kept``, ``tdg/dropped``, ``tdg/dropped/<reason>``,
      ``tdg/<counter>``) through the LightningModule's ``log_dict`` at every training batch (the logger writes them
      every ``log_every_n_steps``);
    * applies the guard's batch stages (augmentation) to each training batch on the device, in
      ``on_train_batch_start`` (the batch must be a dict of tensors; validation batches are never augmented);
    * saves the guard's state (tensors + JSON) into every Lightning checkpoint under ``"torchdataguard"`` and
      restores it when ``fit(ckpt_path=...)`` resumes, so decisions and counters continue;
    * writes ``report.json`` and ``report.html`` into ``report_dir`` (default ``trainer.default_root_dir``) at the
      end of ``fit``;
    * with ``privacy=DPConfig(...)``, DP-SGD as described in the module docstring. The training step must call the
      module itself (``self(x)``): the DP hooks are on the LightningModule, and its loss must be a mean over rows.

    Args:
        guard: the guard whose wrapped data the training DataLoader reads.
        privacy: a ``DPConfig`` for DP-SGD, or ``None``.
        unit_ids: the privacy unit of each training row (rows of one user share an id).
        report_dir: where to write the final report.
        apply_batch_stages: apply the guard's batch stages during training.
        preflight_forward: how the DP preflight runs the module on a batch (default: its ``training_step`` with
            logging silenced).
        preflight_loss: how the preflight gets the loss from that output (default: the loss it returns).
    """

    def __init__(self, guard: Guard, *, privacy: Optional[DPConfig] = None, unit_ids: Optional[Sequence[int]] = None,
                 report_dir: Optional[str] = None, apply_batch_stages: bool = True, log_prefix: str = "tdg",
                 preflight_forward: Callable[[Any, Any], Any] = training_step_forward,
                 preflight_loss: Callable[[Any, Any], torch.Tensor] = training_step_loss) -> None:
        if not isinstance(guard, Guard):
            raise ConfigError(f"the Lightning GuardCallback needs a torchdataguard.Guard, got {type(guard).__name__} "
                              f"(DistributedGuard is for the transformers Trainer for now)")
        if privacy is not None and not isinstance(privacy, DPConfig):
            raise ConfigError.bad("privacy", type(privacy).__name__, "a tdg.DPConfig or None")
        self.guard = guard
        self.privacy = privacy
        self.unit_ids = list(unit_ids) if unit_ids is not None else None
        self.report_dir = report_dir
        self.apply_batch_stages = apply_batch_stages
        self.prefix = log_prefix
        self.preflight_forward = preflight_forward
        self.preflight_loss = preflight_loss
        self.engine: Optional[DPEngine] = None
        self.sampler: Optional[PoissonBatchSampler] = None
        self._loaded_dp: Optional[Dict[str, Any]] = None
        self._t0: Optional[float] = None
        self._train_info: Dict[str, Any] = {}
        self._eps: Dict[str, Any] = {}

    # -- refusals --------------------------------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.privacy is None or stage != "fit":
            return
        p = []
        if trainer.gradient_clip_val:
            p.append(f"gradient_clip_val={trainer.gradient_clip_val}: it would clip the noisy sum, not each example; "
                     f"remove it (DP-SGD clips every example at DPConfig.max_grad_norm={self.privacy.max_grad_norm})")
        if str(trainer.precision).startswith("16"):
            p.append(f"precision={trainer.precision!r}: the fp16 loss scaler scales each gradient before clipping and "
                     f"skips steps on overflow (two Poisson draws merged into one update); use 'bf16-mixed' or '32-true'")
        if trainer.world_size > 1:
            p.append(f"{trainer.world_size} processes: Poisson sampling and noise across ranks are not wired yet; "
                     f"train on one device (devices=1)")
        if p:
            raise ConfigError.collect(p, "Lightning Trainer under DP-SGD")

    # -- start -----------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._t0 = time.time()
        loader = trainer.train_dataloader
        if isinstance(loader, DataLoader):  # the training data did not come out of the guard: refused
            check_training_data(self.guard, self.guard, loader)
        if self.privacy is not None:
            self._start_dp(trainer, pl_module)

    def _start_dp(self, trainer: Any, pl_module: Any) -> None:
        cfg = self.privacy
        loader = trainer.train_dataloader
        if not isinstance(loader, DataLoader):
            raise ConfigError(f"DP-SGD needs one training DataLoader, got {type(loader).__name__}")
        problems = loader_sampling_problems(loader)
        if problems:
            raise ConfigError.collect(problems, "training DataLoader under DP-SGD")
        if len(trainer.optimizers) != 1:
            raise ConfigError(f"DP-SGD needs exactly one optimizer, got {len(trainer.optimizers)}")
        num_rows = len(loader.dataset)
        if self.unit_ids is not None and len(self.unit_ids) != num_rows:
            raise ConfigError(f"unit_ids has {len(self.unit_ids)} entries for {num_rows} training rows")
        num_units = len(set(self.unit_ids)) if self.unit_ids is not None else num_rows
        k = int(trainer.accumulate_grad_batches)
        micro = int(loader.batch_size or 0)
        if micro < 1:
            raise ConfigError("DP-SGD needs the DataLoader's batch_size (micro-batch; logical batch = batch_size x "
                              "accumulate_grad_batches)")
        q = micro * k / max(num_units, 1)
        if q > 1:
            raise ConfigError(f"the logical batch ({micro} x {k}) is larger than the {num_units} units: lower "
                              f"batch_size or accumulate_grad_batches")
        # as many micro-batches as Lightning counted for the epoch (its limits are set before this hook); a
        # shorter last group is one Poisson step of fewer micro-batches, its loss still divided by k by Lightning
        per_epoch = len(loader)
        self.sampler = PoissonBatchSampler(num_rows, sample_rate=q, micro_batches_per_epoch=per_epoch,
                                           accumulation=k, unit_ids=self.unit_ids, seed=cfg.seed)
        batch = None
        if cfg.preflight and num_rows:
            batch = to_device(loader.collate_fn([loader.dataset[i] for i in range(min(num_rows, 2))]),
                              pl_module.device)
        steps_per_epoch = int(math.ceil(per_epoch / k))
        planned = None
        if trainer.max_steps and trainer.max_steps > 0:
            planned = int(trainer.max_steps)
        elif trainer.max_epochs and trainer.max_epochs > 0:
            planned = int(trainer.max_epochs) * steps_per_epoch
        resuming = int(trainer.global_step) > 0
        self.engine = DPEngine(pl_module, trainer.optimizers[0], cfg, num_units=num_units, sample_rate=q,
                               sampler=self.sampler, planned_steps=planned, preflight_batch=batch,
                               forward=self.preflight_forward, loss_fn=self.preflight_loss, trainer=True,
                               resuming=resuming, default_accumulation=k, unit_ids_given=self.unit_ids is not None,
                               batch_stages=self.guard.batch_stages, release_at_step=False)
        if resuming:
            if self._loaded_dp is None:
                raise StateError(f"fit resumes at step {trainer.global_step} but the checkpoint holds no privacy "
                                 f"ledger: resuming DP-SGD without it would under-report epsilon; resume from a "
                                 f"checkpoint saved with this callback")
            self.engine.load_state_dict(self._loaded_dp, expect_steps=int(trainer.global_step))
            if self._loaded_dp.get("torch_rng") is not None:  # the noise continues as in an uninterrupted run
                torch.set_rng_state(torch.as_tensor(self._loaded_dp["torch_rng"], dtype=torch.uint8))
            self.engine.notes.append(f"resumed the privacy ledger at step {trainer.global_step}")
        if cfg.target_epsilon is not None and cfg.enforce_budget:
            eng = self.engine
            eng.steps_before_sampler = eng.ledger.steps - self.sampler.logical_steps_drawn
            self.sampler.step_allowed = lambda n: eng.ledger.allows(eng.noise_multiplier, eng.sample_rate,
                                                                    eng.steps_before_sampler + n)
        # DataLoader locks batch_sampler after construction; Lightning already made the epoch's iterator from the
        # old one, so the fetcher makes a new one (the engine checks every micro-batch against the sampler's plan)
        object.__setattr__(loader, "batch_sampler", self.sampler)
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        if fetcher is None:
            raise ConfigError("this Lightning version has no fit_loop data fetcher to restart with Poisson sampling")
        iter(fetcher)

    # -- batches ---------------------------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if not (self.apply_batch_stages and self.guard.batch_stages):
            return
        if not isinstance(batch, dict):
            raise ConfigError(f"the guard's batch stages need dict batches of tensors, got {type(batch).__name__}: "
                              f"return dicts from the collate function, or run them there (guard.collator())")
        tensors = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        batch.update(self.guard.apply_batch(tensors))
        if self.privacy is None:
            batch.pop("tdg_unit_ids", None)

    def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
        if self.engine is not None and self.engine.current is not None:
            self.engine.after_backward()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.engine is not None:
            self.engine.release()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        logs = self.counters()
        eng = self.engine
        if eng is not None:
            steps = eng.ledger.steps
            if steps != self._eps.get("step"):  # an optimizer step happened: the accountant runs once per step
                if self.privacy.target_epsilon is not None and self.privacy.enforce_budget and not eng.can_step():
                    eng.budget_stopped = True
                    trainer.should_stop = True
                if steps % max(1, int(trainer.log_every_n_steps)) == 0 or trainer.should_stop or steps == 1:
                    pt = eng.ledger.record_point(steps)
                    self._eps = {"step": steps, "dp/epsilon_prv": pt["epsilon_prv"],
                                 "dp/epsilon_rdp": pt["epsilon_rdp"]}
            logs.update({k: v for k, v in self._eps.items() if k != "step"})
        pl_module.log_dict({k: float(v) for k, v in logs.items() if v is not None}, on_step=True, on_epoch=False,
                           logger=True)

    def counters(self) -> Dict[str, float]:
        """The guard's counters under ``<prefix>/``."""
        return guard_counters(self.guard, self.prefix)

    # -- checkpoints -----------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: Dict[str, Any]) -> None:
        # NumPy arrays of the state as tensors: Lightning loads checkpoints with torch.load(weights_only=True)
        state: Dict[str, Any] = {"guard": tensors_of(self.guard.state_dict())}
        if self.engine is not None:
            state["privacy"] = dict(self.engine.state_dict(), torch_rng=torch.get_rng_state())
        checkpoint[CHECKPOINT_KEY] = state

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: Dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            raise StateError(f"the checkpoint holds no torchdataguard state (key {CHECKPOINT_KEY!r}): resume from a "
                             f"checkpoint saved with the GuardCallback, or start a fresh run")
        self.guard.load_state_dict(state["guard"])
        self._loaded_dp = state.get("privacy")

    # -- end -------------------------------------------------------------------------------------------------------
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.engine is not None:
            self.engine.ledger.record_point(int(trainer.global_step))
            self.engine.detach()
        self._train_info = {"global_step": int(trainer.global_step), "epoch": int(trainer.current_epoch),
                            "train_seconds": round(time.time() - self._t0, 2) if self._t0 else None}

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            save_report(self.report(), self.report_dir or trainer.default_root_dir)

    def epsilon(self) -> float:
        """Epsilon spent so far by the configured accountant (0 before training)."""
        return self.engine.epsilon() if self.engine is not None else 0.0

    def report(self) -> Dict[str, Any]:
        """The guard's report plus the training and (under DP) privacy sections."""
        rep = self.guard.report()
        if self._train_info:
            rep["training"] = dict(self._train_info)
        if self.engine is not None:
            rep["privacy"] = self.engine.report()
        return rep

    def save_report(self, directory: str, extra: Optional[Dict[str, Any]] = None) -> str:
        """Write ``report.json`` and ``report.html`` into ``directory``; returns the JSON path."""
        rep = self.report()
        if extra:
            rep.update(extra)
        return save_report(rep, os.fspath(directory))["json"]


#: the name inside this module (``from torchdataguard.integrations.lightning import GuardCallback``)
GuardCallback = LightningGuardCallback
