"""A ``transformers`` Trainer callback: counters in the Trainer's logs, guard state in every checkpoint."""
from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any, Dict, Optional

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..audit import PrivacyAudit
from ..audit.compare import compare_with_accountant
from ..audit.insert import CANARY_MARK
from ..core.guard import Guard
from ..distributed import DistributedGuard
from ..errors import ConfigError, StateError
from ..report import save_report
from .counters import guard_counters
from .datacheck import check_training_data
from .dp_trainer import DPCallback
from .dynamics_hooks import DynamicsHooks, check_dynamics, keep_id_column
from .ordering import move_to_front

__all__ = ["GuardCallback", "LOG_MODES", "STATE_DIR", "SUMMARY_COUNTERS"]

#: ``GuardCallback(log=...)``: the summary set every line and the rest on change, or every counter every line
LOG_MODES = ("summary", "all")
#: counters logged in every log line with ``log="summary"``
SUMMARY_COUNTERS = ("seen", "kept", "dropped")
#: the guard's own scan speed (examples over the seconds spent inside the guard): not training speed
SCAN_SPEED = "guard_examples_per_second"

logger = logging.getLogger(__name__)

#: the audit figures added to the Trainer's logs (as ``audit/<name>``)
AUDIT_LOGGED = ("epsilon_lower_bound", "auc", "exposure_mean", "exposure_max", "guesses", "correct")

#: sub-folder of each checkpoint holding the guard's state (safetensors + JSON)
STATE_DIR = "torchdataguard"
#: the checkpoint sub-folder of TrainingDynamics state
DYNAMICS_DIR = "torchdataguard_dynamics"
_EVENTS = ("on_init_end", "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_step_begin",
           "on_pre_optimizer_step", "on_optimizer_step", "on_substep_end", "on_step_end", "on_evaluate",
           "on_predict", "on_save", "on_log", "on_prediction_step", "on_push_begin")


class GuardCallback(TrainerCallback):
    """Wire a :class:`~torchdataguard.Guard` into an unmodified ``transformers.Trainer``.

    What it does:

    * adds the guard's counters to the Trainer's logs, so they reach every ``report_to`` integration: with
      ``log="summary"`` (the default) every log line gets ``tdg/seen``, ``tdg/kept`` and ``tdg/dropped`` (and,
      under DP, ``dp/epsilon``), and the other counters (``tdg/dropped/<reason>``, ``tdg/<counter>`` such as
      PII detections and augmentation counts) only in the first log line, when their value changed since
      they were last logged, and all of them in the Trainer's final log line (the one with
      ``train_runtime``); ``tdg/guard_examples_per_second`` (the guard's own scan speed, not training speed)
      in the first and the final line. ``log="all"`` logs every counter every time;
    * applies the guard's batch stages (augmentation) to the model's inputs on the training device, in
      training mode only, through a forward pre-hook (evaluation batches are never augmented);
    * saves the guard's state into every checkpoint (``checkpoint-N/torchdataguard/``) and restores it when
      training resumes from a checkpoint, so decisions and counters continue and nothing is counted twice;
    * writes the report (``report.json`` and ``report.html``) into ``output_dir`` at the end of training, and
      again after each ``evaluate()`` outside training, with the evaluation metrics under
      ``training.evaluation`` (an evaluation during training is kept for the report written at its end);
    * with ``privacy=DPConfig(...)``, runs DP-SGD through :class:`~torchdataguard.DPCallback` and reports epsilon;
    * with ``audit=PrivacyAudit(...)`` (whose canaries are in the training data: ``guard.wrap(audit.wrap(train))``),
      runs the audit after the last step, logs ``audit/epsilon_lower_bound``, ``audit/auc``, ``audit/exposure_*``,
      and puts the result next to the accountant's epsilon in the report (``audit``), with a warning in the log
      and the report when the lower bound is above the accountant's epsilon (a broken DP guarantee).

    The Trainer calls its own callbacks first (``report_to`` integrations such as TensorBoard or W&B), then
    those passed as ``callbacks=[...]``. For the counters to reach those integrations (and, under DP, for
    ``grad_norm`` to be removed before they see it), the callback moves itself first when training begins
    (or call :meth:`first_in` after building the Trainer).

    Args:
        guard: the guard whose wrapped data the Trainer trains on, or a ``DistributedGuard`` (then every rank
            saves its part of the index into the checkpoint; the final report and the logged counters sum all
            ranks: every rank takes part in the collective at each logging step, as the Trainer logs on every
            rank).
        privacy: a ``DPConfig`` to train with DP-SGD, or ``None``.
        audit: a :class:`~torchdataguard.PrivacyAudit` whose canaries are in the training data, or ``None``.
        resume_from: checkpoint folder to restore the guard from when it is not
            ``output_dir/checkpoint-<global_step>`` (where the Trainer resumes by default).
        report_dir: where to write the final report (default: ``args.output_dir``).
        apply_batch_stages: apply the guard's batch stages on the device during training.
        log: ``"summary"`` (the few counters that matter every log line, the rest on change and at the end) or
            ``"all"`` (every counter in every log line).
        log_prefix: the prefix of the logged keys.
        dynamics: a :class:`~torchdataguard.TrainingDynamics` to record per-example training dynamics (the
            wrapped data then carries each example's id, taken out of the model's inputs by a forward hook);
            refused with ``privacy=`` unless ``allow_with_dp=True``. Its state is saved in every checkpoint
            (``torchdataguard_dynamics``) and its section added to the report.

    Example:
        >>> import torchdataguard as tdg
        >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
        >>> cb = tdg.GuardCallback(guard)
        >>> # trainer = Trainer(model=..., args=..., train_dataset=guard.wrap(train), callbacks=[cb])
        >>> # cb.first_in(trainer)   # with report_to integrations: they see the counters
    """

    def __init__(self, guard, *, privacy: Any = None, audit: Optional[PrivacyAudit] = None, resume_from: Optional[str] = None,
                 report_dir: Optional[str] = None, apply_batch_stages: bool = True, log: str = "summary",
                 log_prefix: str = "tdg", dynamics: Any = None) -> None:
        if not isinstance(guard, (Guard, DistributedGuard)):
            raise ConfigError(f"GuardCallback needs a torchdataguard.Guard or DistributedGuard, got {type(guard).__name__}")
        if log not in LOG_MODES:
            raise ConfigError.bad("log", log, f"one of {LOG_MODES}", "('summary' logs seen/kept/dropped every line and "
                                                                  "the other counters on change and at the end)")
        #: what saves, loads and reports: the guard, or the DistributedGuard around it (collectives on every rank)
        self.holder = guard
        self.distributed = isinstance(guard, DistributedGuard)
        self.guard = guard.guard if self.distributed else guard
        self.privacy = privacy
        self.resume_from = resume_from
        self.report_dir = report_dir
        self.apply_batch_stages = apply_batch_stages
        self.prefix = log_prefix
        self.log = log
        #: the value each counter had when it was last logged (``log="summary"`` logs the others on change)
        self._logged: Dict[str, float] = {}
        self._training = False
        self._eval_info: Dict[str, Any] = {}
        self._hook = None
        self._t0: Optional[float] = None
        self._train_info: Dict[str, Any] = {}
        self.dp = DPCallback(privacy, guard=guard) if privacy is not None else None
        if audit is not None and not isinstance(audit, PrivacyAudit):
            raise ConfigError(f"GuardCallback(audit=...) needs a torchdataguard.PrivacyAudit, got {type(audit).__name__}")
        self.audit = audit
        #: the audit's result next to the accountant's epsilon, once the audit has run
        self.audit_result: Optional[Dict[str, Any]] = None
        self._audit_logged = False
        self.dynamics = check_dynamics(dynamics, guard=self.guard, privacy=privacy, distributed=self.distributed)
        self._dyn_hooks = DynamicsHooks(self.dynamics) if self.dynamics is not None else None

    # -- plumbing -------------------------------------------------------------------------------------
    def _forward(self, event: str, args, state, control, **kwargs):
        if self.dp is not None:
            fn = getattr(self.dp, event, None)
            if fn is not None:
                out = fn(args, state, control, **kwargs)
                if out is not None:
                    control = out
        return control

    def first_in(self, trainer: Any) -> "GuardCallback":
        """Put this callback first among ``trainer``'s callbacks (adding it if it is not there), ahead of the
        ``report_to`` integrations the Trainer registers before the ``callbacks=[...]`` it is given, so that the
        counters this callback adds to each log reach them. Returns ``self``.

        Example:
            >>> # trainer = Trainer(..., callbacks=[cb]); cb.first_in(trainer)
        """
        handler = trainer.callback_handler
        handler.callbacks = [self] + [c for c in handler.callbacks if c is not self]
        return self

    def _move_first(self) -> None:
        move_to_front(self)  # when first_in() was not used: see move_to_front

    # -- events -----------------------------------------------------------------------------------------
    def on_init_end(self, args, state, control, **kwargs):
        self._move_first()
        return self._forward("on_init_end", args, state, control, **kwargs)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._move_first()
        self._t0 = time.time()
        self._training = True
        if state.global_step > 0:
            self._restore(args, state)
        check_training_data(self.guard, self.holder, kwargs.get("train_dataloader"))
        if model is not None and self.apply_batch_stages and self.guard.batch_stages and self._hook is None:
            self._hook = model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        if self._dyn_hooks is not None and model is not None and not self._dyn_hooks.handles:
            keep_id_column(kwargs.get("train_dataloader"), self.dynamics.id_key)
            self._dyn_hooks.install(model)
        return self._forward("on_train_begin", args, state, control, model=model, **kwargs)

    def _pre_forward(self, module, args, kwargs):
        if not module.training or not kwargs:
            return None
        tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        new = self.guard.apply_batch(dict(tensors))
        out = dict(kwargs)
        out.update(new)
        if self.dp is None:
            # privacy-unit ids (Multiplicity) are for the DP engine only; models reject unknown kwargs
            out.pop("tdg_unit_ids", None)
        return args, out

    def _restore(self, args, state) -> None:
        candidates = [self.resume_from] if self.resume_from else []
        candidates.append(os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"))
        for ckpt in candidates:
            path = os.path.join(ckpt, STATE_DIR)
            if os.path.isdir(path):
                self.holder.load(path)
                if self.dynamics is not None:
                    self.dynamics.load(os.path.join(ckpt, DYNAMICS_DIR))
                return
        raise StateError(
            f"training resumes at step {state.global_step} but no guard state was found in {candidates} "
            f"(expected a '{STATE_DIR}' folder saved by GuardCallback); pass GuardCallback(resume_from=<checkpoint "
            f"folder>) or start from a checkpoint saved with the callback")

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero or self.distributed:  # every rank saves its own part of a distributed index
            ckpt = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            self.holder.save(os.path.join(ckpt, STATE_DIR))
            if self.dynamics is not None:
                self.dynamics.save(os.path.join(ckpt, DYNAMICS_DIR))
        return self._forward("on_save", args, state, control, **kwargs)

    def counters(self) -> Dict[str, float]:
        """The numbers logged every logging step (summed over ranks under a ``DistributedGuard``: a collective)."""
        local = self._local_counters()
        if not self.distributed:
            return local
        total: Dict[str, float] = {}
        for part in self.holder.comm.all_gather_json(local):
            for k, v in part.items():
                total[k] = total.get(k, 0) + v
        rate = f"{self.prefix}/{SCAN_SPEED}"
        if rate in total:  # ranks work at once: their rates add up
            total[rate] = round(total[rate], 1)
        return total

    def _local_counters(self) -> Dict[str, float]:
        rep = self.guard.ledger
        out = guard_counters(self.guard, self.prefix)
        if rep.busy_seconds > 0:
            out[f"{self.prefix}/{SCAN_SPEED}"] = round(rep.seen / rep.busy_seconds, 1)
        if self.dynamics is not None:
            out.update(self.dynamics.counters(self.prefix))
        return out

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.dynamics is not None:
            self.dynamics.end_epoch()
        return self._forward("on_epoch_end", args, state, control, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None:
            counters = self.select(self.counters(), final="train_runtime" in logs)  # counters(): every rank
            if self.audit_result is not None and not self._audit_logged:
                counters.update(self.audit_logs())
                self._audit_logged = True
            logs.update(counters)
            hist = state.log_history
            if hist and hist[-1].get("step") == state.global_step:
                hist[-1].update(counters)  # the Trainer copied logs into its history before calling back
        return self._forward("on_log", args, state, control, logs=logs, **kwargs)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        control = self._forward("on_step_end", args, state, control, model=model, **kwargs)
        if self.audit is not None and state.max_steps and state.global_step >= state.max_steps:
            self.run_audit(model, **kwargs)  # after the last step, so the Trainer logs it with the last step
            control.should_log = True
        return control

    def run_audit(self, model: Any, **kwargs: Any) -> Optional[Dict[str, Any]]:
        """Run the audit on ``model`` once (next to the accountant's epsilon, under DP with its delta)."""
        if self.audit is None or self.audit_result is not None or model is None:
            return self.audit_result
        if self.audit.tokenizer is None:
            self.audit.tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        privacy = self.dp.report() if self.dp is not None and hasattr(self.dp, "report") else None
        delta = privacy.get("delta") if isinstance(privacy, dict) else None
        res = compare_with_accountant(self.audit.run(model, delta=delta), privacy)
        seen = self.guard.ledger.counts.get(CANARY_MARK, 0)
        if seen != self.audit.included:
            res["note"] = (f"the guard counted {seen} canaries but the audit put {self.audit.included} into the data: "
                           f"wrap the training data as guard.wrap(audit.wrap(train)) so every canary is trained on")
        if res.get("warning"):
            logger.warning(res["warning"])
            warnings.warn(res["warning"], RuntimeWarning, stacklevel=2)
        self.audit_result = res
        return res

    def audit_logs(self) -> Dict[str, float]:
        """The audit's figures for the Trainer's logs (``audit/<name>``), once it has run."""
        res = self.audit_result or {}
        out = {f"audit/{k}": res[k] for k in AUDIT_LOGGED if isinstance(res.get(k), (int, float))}
        if "exceeds_accountant" in res:
            out["audit/exceeds_accountant"] = int(bool(res["exceeds_accountant"]))
        return out

    def select(self, counters: Dict[str, float], *, final: bool = False) -> Dict[str, float]:
        """The counters to put in this log line (see ``log``); remembers what was logged.

        Example:
            >>> import torchdataguard as tdg
            >>> cb = tdg.GuardCallback(tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False))
            >>> c = {"tdg/seen": 4, "tdg/kept": 3, "tdg/dropped": 1, "tdg/dropped/duplicate/exact": 1}
            >>> sorted(cb.select(c)) == sorted(c)    # the first line: everything
            True
            >>> sorted(cb.select(dict(c, **{"tdg/seen": 5, "tdg/kept": 4})))   # later: the summary, and what changed
            ['tdg/dropped', 'tdg/kept', 'tdg/seen']
        """
        first = not self._logged
        if self.log == "all" or final or first:
            out = dict(counters)
        else:
            summary = {f"{self.prefix}/{k}" for k in SUMMARY_COUNTERS}
            speed = f"{self.prefix}/{SCAN_SPEED}"
            out = {k: v for k, v in counters.items()
                   if k in summary or (k != speed and self._logged.get(k) != v)}
        self._logged.update(out)
        return out

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics:
            own = (f"{self.prefix}/", "dp/")  # the counters this callback logged into the same dict
            self._eval_info = {"step": state.global_step, **{k: v for k, v in metrics.items()
                                                             if isinstance(v, (int, float, str)) and not k.startswith(own)}}
        control = self._forward("on_evaluate", args, state, control, metrics=metrics, **kwargs)
        if not self._training:  # evaluate() after (or without) train(): the report gets its results now
            rep = self.report()  # a collective under DistributedGuard: every rank takes part
            if state.is_world_process_zero:
                save_report(rep, self.report_dir or args.output_dir)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._training = False
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._dyn_hooks is not None:
            self._dyn_hooks.remove()
        control = self._forward("on_train_end", args, state, control, model=model, **kwargs)
        if self.audit is not None and self.audit_result is None:  # training stopped before max_steps
            self.run_audit(model, **kwargs)
        if self.audit_result is not None and not self._audit_logged and state.is_world_process_zero:
            state.log_history.append({**self.audit_logs(), "step": state.global_step})
            self._audit_logged = True
        self._train_info = {"global_step": state.global_step, "epoch": state.epoch,
                            "train_seconds": round(time.time() - self._t0, 2) if self._t0 else None}
        rep = self.report()  # a collective under DistributedGuard: every rank takes part
        if state.is_world_process_zero:
            save_report(rep, self.report_dir or args.output_dir)
        return control

    def report(self) -> Dict[str, Any]:
        """The guard's report plus the training and (under DP) privacy sections (summed over ranks when distributed)."""
        rep = self.holder.report()
        if self._train_info or self._eval_info:
            rep["training"] = dict(self._train_info)
        if self._eval_info:
            rep["training"]["evaluation"] = dict(self._eval_info)
        if self.dp is not None and hasattr(self.dp, "report"):
            rep["privacy"] = self.dp.report()
        if self.dynamics is not None:
            rep["dynamics"] = self.dynamics.report()
        if self.audit_result is not None:
            rep["audit"] = dict(self.audit_result)
        return rep

    def save_report(self, directory: str, extra: Optional[Dict[str, Any]] = None) -> str:
        """Write ``report.json`` and ``report.html`` into ``directory``; returns the JSON path."""
        rep = self.report()
        if extra:
            rep.update(extra)
        return save_report(rep, directory)["json"]


def _make_forwarder(event: str):
    def method(self, args, state, control, **kwargs):
        return self._forward(event, args, state, control, **kwargs)

    method.__name__ = event
    return method


for _ev in _EVENTS:
    if _ev not in GuardCallback.__dict__:
        setattr(GuardCallback, _ev, _make_forwarder(_ev))
