"""DP-SGD through Opacus: the settings, the engine that wires it, and ``make_private`` for a plain loop.

Opacus computes the per-sample gradients (hooks attached to the model without wrapping it, so Hugging Face
models keep ``generate`` and ``save_pretrained``) and accounts for the noise; the default clipping mode,
book-keeping (:mod:`~torchdataguard.privacy.bk`), gets the same clipped sum with one backward pass and is
checked against Opacus's per-sample gradients on the preflight batch before it is used.
This module wires those pieces so that the epsilon reported is what happened:

* **Sampling**: Poisson sampling by privacy unit (:mod:`~torchdataguard.privacy.sampling`); the sampling rate
  accounted is the expected logical batch over the dataset size after filtering.
* **Clipping per micro-batch**: each physical micro-batch's per-sample gradients are clipped as soon as its
  backward pass ends and summed; noise is added once per logical step, so gradient accumulation neither
  keeps every per-sample gradient in memory nor changes the guarantee.
* **Loss scaling**: the per-sample gradients are rescaled so that the loop's own division of the loss (by the
  accumulation steps, or by the number of label tokens) does not shrink them before clipping.
* **Privacy units**: rows that share a unit id (the batch key ``"tdg_unit_ids"``, int64 ``[N]``, from the
  augmentation stages; or per-row unit ids given to the sampler) have their per-sample gradients averaged
  (augmentation views, ``unit_reduction="mean"``) or summed (several rows of one user, ``"sum"``) before
  clipping; a negative unit id marks a row that must not count. The key is popped before the model's forward.
* **Clipping modes**: ``"hooks"`` (per-sample gradients), ``"ghost"`` (ghost clipping: per-sample gradient norms
  without the gradients, then a second backward pass of the re-weighted per-sample losses), ``"bk"``
  (book-keeping: norms and clipped sum from one backward pass, units of several rows included) and ``"auto"``:
  book-keeping if every trained layer supports it and its per-row gradients add up to autograd's gradient on the
  preflight batch; else ghost when the per-sample losses can be read from the model's output (``logits`` and
  ``labels``) and no unit groups several rows (with per-layer fallback to per-sample gradients where ghost norms
  cost more or cannot work, e.g. tied weights); otherwise hooks.
* **Noise**: ``N(0, (sigma C)^2)`` per coordinate, drawn straight into the gradient buffer (Opacus's own
  ``_generate_noise`` under ``secure_mode``).
* **Budget**: with a ``target_epsilon``, no step is taken that would exceed it: the Poisson loader stops, and
  ``optimizer.step()`` refuses.
* **Every step is the one accounted, or it is refused** (``StateError``, nothing applied): a parameter that
  requires a gradient but is not clipped by the engine (unfrozen after set-up without :meth:`DPEngine.reattach`,
  or held by another optimizer), a backward pass of an eval-mode forward, micro-batches of two Poisson draws, and
  the first step of a run whose optimizer state or model folder shows DP training its ledger does not account.
* **Preflight** (:mod:`~torchdataguard.privacy.preflight`, :mod:`~torchdataguard.privacy.rowcheck`): modules,
  summed per-sample gradients, rows that influence each other, layers called twice; every pass draws the same
  random numbers (:func:`~torchdataguard.privacy.stepchecks.same_draws`).

Example:
    >>> import torch, torch.nn as nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> torch.manual_seed(0) and None
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> dp = make_private(model, opt, DataLoader(data, batch_size=16), DPConfig(noise_multiplier=1.0, delta=1e-3))
    >>> model, opt, loader = dp
    >>> for x, y in loader:
    ...     opt.zero_grad(); nn.functional.cross_entropy(model(x), y).backward(); opt.step()
    >>> dp.report()["steps"], dp.epsilon() > 0
    (4, True)
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..errors import ConfigError, StateError
from .bk import BookKeeper
from .accounting import LEDGER_FILE, PrivacyBudgetExhausted, PrivacyLedger, noise_for_target
from .preflight import (BroadcastExpander, PreflightError, PreflightReport, UnsupportedModulesError, audit_modules,
                        check_per_sample_gradients, padding_embeddings, tied_parameters)
from .opacus_hooks import GhostLoss, ghost_hooks_class, hooks_class
from .rowcheck import check_row_independence
from .sampling import PoissonBatchSampler, loader_sampling_problems, poisson_loader
from .stepchecks import (inplace_off, ledger_next_to_model, optimizer_steps_taken, same_draws,
                         untracked_trainables)

__all__ = ["DPConfig", "DPEngine", "PrivateTraining", "UNIT_KEY", "make_private", "per_sample_loss"]

#: batch key holding the privacy unit id of each row (int64 [N]); popped before the model's forward.
UNIT_KEY = "tdg_unit_ids"

# Opacus's full backward hooks fire on the first layer even though its inputs need no gradient; expected here.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to "
                        "module outputs", category=UserWarning)

Clipping = Literal["auto", "hooks", "ghost", "bk"]


@dataclass(kw_only=True)
class DPConfig:
    """Settings of DP-SGD. Give a ``target_epsilon`` (noise calibrated to it, budget enforced), a
    ``noise_multiplier`` (epsilon reported as it grows), or both (the target is then a hard cap).

    Args:
        target_epsilon: the privacy budget; training stops before a step would exceed it.
        delta: the delta of the guarantee; must be below 1/N (N = privacy units). Default: ``min(1e-5, 0.1/N)``.
        max_grad_norm: the clipping bound C of each unit's gradient.
        noise_multiplier: sigma (noise std = sigma x C); calibrated from ``target_epsilon`` when omitted.
        epochs / steps: the planned length of training, needed to calibrate the noise for a plain loop
            (the Trainer knows its ``max_steps``).
        accountant: the accountant that states the guarantee and enforces the budget (``"prv"``, Opacus's
            default, or ``"rdp"``); both epsilons are always reported.
        clipping: ``"auto"``, ``"hooks"`` (per-sample gradients), ``"ghost"`` (ghost clipping, two backward
            passes) or ``"bk"`` (book-keeping: one backward pass; see :mod:`~torchdataguard.privacy.bk`).
        unit: what one privacy unit is, in words, for the report (``"example"``, ``"user"`` ...).
        unit_reduction: how rows of one unit combine before clipping: ``"mean"`` (augmented views of one
            example) or ``"sum"`` (several rows of one user).
        accept_approximate: keep a shuffling / ``drop_last`` / weighted sampler instead of refusing it; the
            epsilon is then computed as if sampling were Poisson and the report says it is approximate.
        enforce_budget: stop at ``target_epsilon`` (on by default).
        preflight: audit the model on one batch before training (modules, broadcast inputs, per-sample
            gradients summed == gradient) and refuse what would make the guarantee or the gradients wrong.
        seed: seed of the Poisson sampler (default: drawn from torch's generator).
        secure_mode: Opacus's floating-point-attack-resistant noise (needs ``torchcsprng``).

    Example:
        >>> DPConfig(target_epsilon=8.0, delta=1e-5).clipping
        'auto'
        >>> DPConfig(target_epsilon=0.0)
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: 1 problem(s) with the DPConfig:
          - target_epsilon=0.0: expected a finite epsilon > 0 (e.g. 8.0); epsilon <= 0 would mean no training at all
    """

    target_epsilon: Optional[float] = None
    delta: Optional[float] = None
    max_grad_norm: float = 1.0
    noise_multiplier: Optional[float] = None
    epochs: Optional[float] = None
    steps: Optional[int] = None
    accountant: Literal["prv", "rdp"] = "prv"
    clipping: Clipping = "auto"
    unit: str = "example"
    unit_reduction: Literal["mean", "sum"] = "mean"
    accept_approximate: bool = False
    enforce_budget: bool = True
    preflight: bool = True
    seed: Optional[int] = None
    secure_mode: bool = False

    def __post_init__(self) -> None:
        p: List[str] = []

        def num(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if self.target_epsilon is None and self.noise_multiplier is None:
            p.append("neither target_epsilon nor noise_multiplier is set: give target_epsilon=8.0 (noise calibrated "
                     "to it) or noise_multiplier=1.0 (epsilon reported as it grows)")
        if self.target_epsilon is not None and not (num(self.target_epsilon) and self.target_epsilon > 0):
            p.append(f"target_epsilon={self.target_epsilon!r}: expected a finite epsilon > 0 (e.g. 8.0); epsilon <= 0 "
                     f"would mean no training at all")
        if self.delta is not None and not (num(self.delta) and 0 < self.delta < 1):
            p.append(f"delta={self.delta!r}: expected a float in (0, 1), well below 1/N (e.g. 1e-5)")
        if not (num(self.max_grad_norm) and self.max_grad_norm > 0):
            p.append(f"max_grad_norm={self.max_grad_norm!r}: expected a clipping bound > 0 (e.g. 1.0)")
        if self.noise_multiplier is not None and not (num(self.noise_multiplier) and self.noise_multiplier > 0):
            p.append(f"noise_multiplier={self.noise_multiplier!r}: expected a float > 0 (0 gives no privacy)")
        if self.epochs is not None and not (num(self.epochs) and self.epochs > 0):
            p.append(f"epochs={self.epochs!r}: expected a positive number of epochs")
        if self.steps is not None and not (isinstance(self.steps, int) and not isinstance(self.steps, bool)
                                           and self.steps >= 1):
            p.append(f"steps={self.steps!r}: expected a positive integer number of optimizer steps")
        if self.epochs is not None and self.steps is not None:
            p.append("both epochs and steps are set: give one of them")
        if self.accountant not in ("prv", "rdp"):
            p.append(f"accountant={self.accountant!r}: expected 'prv' or 'rdp'")
        if self.clipping not in ("auto", "hooks", "ghost", "bk"):
            p.append(f"clipping={self.clipping!r}: expected 'auto', 'hooks', 'ghost' or 'bk'")
        if self.unit_reduction not in ("mean", "sum"):
            p.append(f"unit_reduction={self.unit_reduction!r}: expected 'mean' (augmented views) or 'sum' (rows of "
                     f"one user)")
        if not isinstance(self.unit, str) or not self.unit.strip():
            p.append(f"unit={self.unit!r}: expected a short description such as 'example' or 'user'")
        if self.seed is not None and not (isinstance(self.seed, int) and not isinstance(self.seed, bool)):
            p.append(f"seed={self.seed!r}: expected an integer or None")
        if p:
            raise ConfigError.collect(p, "DPConfig")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# -- per-sample losses read from a model's output ---------------------------------------------------------------
def _is_causal_lm(model: nn.Module) -> bool:
    name = type(model).__name__
    if "CausalLM" in name or name.endswith("LMHeadModel"):
        return True
    cfg = getattr(model, "config", None)
    return bool(getattr(cfg, "is_decoder", False)) and not bool(getattr(cfg, "is_encoder_decoder", False))


def _token_counts(model: nn.Module, logits: Any, labels: Any) -> Optional[torch.Tensor]:
    """How many loss terms each row contributes (1 per row for sequence-level tasks), or ``None``."""
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor) or logits.shape[0] != labels.shape[0]:
        return None
    n = logits.shape[0]
    if logits.dim() == 2 and (labels.dim() == 1 or labels.shape == logits.shape):
        return torch.ones(n, device=logits.device)
    if logits.dim() == 3 and labels.dim() == 2 and not labels.is_floating_point():
        lab = labels[:, 1:] if _is_causal_lm(model) else labels
        return (lab != -100).sum(1).to(logits.device, torch.float32)
    return None


def per_sample_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor
                    ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """Per-example losses ``[N]`` of a Hugging Face-style output, and the batch loss the model would report.

    Handles single-label classification (cross-entropy), regression (MSE), multi-label (BCE) and token-level
    losses (cross-entropy over tokens, shifted for causal LMs, ``-100`` ignored; one example's loss is the mean
    over its tokens). Returns ``None`` for anything else.

    Example:
        >>> logits, labels = torch.randn(3, 4), torch.tensor([0, 1, 3])
        >>> per, batch = per_sample_loss(nn.Identity(), logits, labels)
        >>> per.shape, torch.allclose(batch, nn.functional.cross_entropy(logits, labels))
        (torch.Size([3]), True)
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor) or logits.shape[0] != labels.shape[0]:
        return None
    f = nn.functional
    n = logits.shape[0]
    cfg = getattr(model, "config", None)
    problem = getattr(cfg, "problem_type", None)
    if logits.dim() == 2 and labels.dim() == 1:
        if logits.shape[1] == 1 and (labels.is_floating_point() or problem == "regression"):
            per = f.mse_loss(logits.squeeze(-1).float(), labels.float(), reduction="none")
            return per, per.mean()
        if not labels.is_floating_point():
            per = f.cross_entropy(logits.float(), labels, reduction="none")
            return per, per.mean()
        return None
    if labels.shape == logits.shape and labels.is_floating_point() and logits.dim() == 2:
        el = f.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
        return el.mean(-1), el.mean()
    if logits.dim() == 3 and labels.dim() == 2 and not labels.is_floating_point():
        if _is_causal_lm(model):
            logits, labels = logits[:, :-1], labels[:, 1:]
        tok = f.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100,
                              reduction="none").view(n, -1)
        valid = (labels != -100).sum(1)
        per = tok.sum(1) / valid.clamp(min=1)
        return per, tok.sum() / valid.sum().clamp(min=1)
    return None



@dataclass
class _Micro:
    rows: int
    unit_ids: Optional[torch.Tensor]
    plan: Any
    num_items: Any
    labels: Any
    weights: Optional[torch.Tensor] = None


def _batch_rows(args: tuple, kwargs: dict) -> Optional[int]:
    for key in ("input_ids", "inputs_embeds", "pixel_values", "input_values", "input_features", "attention_mask",
                "labels"):
        v = kwargs.get(key)
        if isinstance(v, torch.Tensor) and v.dim() >= 1:
            return int(v.shape[0])
    for v in list(args) + list(kwargs.values()):
        if isinstance(v, torch.Tensor) and v.dim() >= 1:
            return int(v.shape[0])
    return None


def _to_device(batch: Any, device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return type(batch)({k: _to_device(v, device) for k, v in batch.items()}) if type(batch) is dict else \
            {k: _to_device(v, device) for k, v in batch.items()}
    if hasattr(batch, "items") and hasattr(batch, "keys"):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _out(output: Any, key: str) -> Any:
    """``output.key`` or ``output[key]`` (Hugging Face ModelOutput, dict, or anything else)."""
    if isinstance(output, torch.Tensor):
        return None
    if isinstance(output, dict):
        return output.get(key)
    return getattr(output, key, None)


def _default_forward(model: nn.Module, batch: Any) -> Any:
    if hasattr(batch, "keys"):
        return model(**dict(batch))
    if isinstance(batch, (list, tuple)):
        return model(batch[0])
    return model(batch)


def _surrogate_loss(out: Any) -> torch.Tensor:
    """A row-separable scalar of a model's output (for the preflight when no loss is given)."""
    if isinstance(out, torch.Tensor):
        return out.float().pow(2).mean()
    logits = _out(out, "logits")
    if isinstance(logits, torch.Tensor):
        return logits.float().pow(2).mean()
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], torch.Tensor):
        return out[0].float().pow(2).mean()
    raise PreflightError("the preflight could not find a tensor in the model's output to check per-sample "
                         "gradients; pass loss_fn= to make_private or set DPConfig(preflight=False)")


def _untracked_message(names: List[str], *, at_setup: bool) -> str:
    shown = f"{names[:5]}{' ...' if len(names) > 5 else ''}"
    if at_setup:
        return (f"{len(names)} parameter(s) require a gradient but are not in the optimizer given to DP-SGD: {shown}. "
                f"They would get the raw gradient of the batch (another optimizer would train them without clipping "
                f"or noise while epsilon is reported). Give every trainable parameter to this one optimizer (param "
                f"groups may have their own learning rates), or freeze the others with requires_grad_(False)")
    return (f"{len(names)} parameter(s) require a gradient but are not clipped by the DP engine: {shown}. They were "
            f"unfrozen after make_private (or the DPCallback started), or are held by another optimizer, so they would "
            f"train on the raw gradient without clipping or noise. Unfreeze every layer you will train before "
            f"make_private; or, at a step boundary, add them to the DP optimizer (optimizer.add_param_group) and call "
            f"dp.reattach() (Trainer: DPCallback.reattach()); or freeze them again")


class DPEngine:
    """Wires Opacus into a model and its optimizer: hooks, per-micro-batch clipping, noise, accounting, budget.

    Built by :func:`make_private` (plain loop) and by :class:`~torchdataguard.integrations.dp_trainer.DPCallback`
    (Trainer); use those. The engine attaches to the *user's* optimizer through a step pre-hook: before every
    ``optimizer.step()`` it clips the pending micro-batch, adds the noise, writes the private gradient into
    ``p.grad`` and accounts the step.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: DPConfig, *, num_units: int,
                 sample_rate: float, sampler: Optional[PoissonBatchSampler] = None,
                 planned_steps: Optional[int] = None, preflight_batch: Any = None,
                 forward: Callable[[nn.Module, Any], Any] = _default_forward,
                 loss_fn: Optional[Callable[[Any, Any], torch.Tensor]] = None, trainer: bool = False,
                 resuming: bool = False, approximate_reason: Optional[str] = None,
                 default_accumulation: int = 1, unit_ids_given: bool = False,
                 batch_stages: Sequence[Any] = ()) -> None:
        self.config = config
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
        self.hooks = None
        self.bk: Optional[BookKeeper] = None
        self._bk_leaked: List[str] = []
        self._since_step: List[Any] = []  # the sampler's plans of the micro-batches since the last optimizer step
        self.params: List[nn.Parameter] = []
        self.expander: Optional[BroadcastExpander] = None
        self.budget_stopped = False
        self.steps_before_sampler = 0
        self.batch_stages = list(batch_stages)
        self._eval_backward = False  # a gradient arrived while the model was in eval mode since the last step
        self._out_of_step_gen: Optional[int] = None  # the sampler pass in which an eval-mode step was refused
        self._restore_inplace: Optional[Callable[[], None]] = None
        self._first_step_checked = False
        self.new_ledger_declared = False
        self.ledger_source = ledger_next_to_model(model)
        self._preflight_args = (preflight_batch, forward, loss_fn)
        problems = []
        if not trainer and not model.training:
            problems.append("the model is in eval mode: Opacus records activations only in training mode; call "
                            "model.train() before make_private")
        if not (0 < self.sample_rate <= 1):
            problems.append(f"the sampling rate is {self.sample_rate:.4g} (expected logical batch "
                            f"{self.expected_batch:.4g} over {self.num_units} units): it must be in (0, 1]; use a "
                            f"smaller batch or more data")
        delta = config.delta if config.delta is not None else min(1e-5, 0.1 / max(self.num_units, 1))
        if delta >= 1.0 / self.num_units:
            problems.append(f"delta={delta!r} >= 1/N = {1.0 / self.num_units:.3g} (N = {self.num_units} privacy units): "
                            f"such a guarantee allows revealing a whole unit; choose delta < 1/N, e.g. "
                            f"{10 ** math.floor(math.log10(0.1 / self.num_units)):.0e}")
        problems.extend(self._optimizer_problems(model, optimizer, resuming))
        if problems:
            raise ConfigError.collect(problems, "DP-SGD setup")
        self.delta = float(delta)
        self.optimizer = optimizer
        self._read_params()
        # noise
        if config.noise_multiplier is not None:
            self.noise_multiplier = float(config.noise_multiplier)
        else:
            steps = self._planned_steps(planned_steps, sampler)
            if steps is None:
                raise ConfigError("the DPConfig has target_epsilon but no sampling plan to calibrate the noise: give "
                                  "epochs= or steps= (the planned length of training), or noise_multiplier=")
            self.noise_multiplier = noise_for_target(target_epsilon=config.target_epsilon, delta=self.delta,
                                                     sample_rate=self.sample_rate, steps=int(steps),
                                                     accountant=config.accountant)
            self.notes.append(f"noise multiplier calibrated to epsilon {config.target_epsilon} over {steps} steps")
        self.ledger = PrivacyLedger(delta=self.delta, accountant=config.accountant, unit=config.unit,
                                    target_epsilon=config.target_epsilon if config.enforce_budget else None)
        self.ledger.horizon = self._planned_steps(planned_steps, sampler)
        # preflight and mode
        self._cur: Optional[_Micro] = None
        self._preflight_active = False
        self._opacus_check_failed = False
        self._gen = -1
        self._m = 0
        self._skip_offset: Optional[int] = None
        self._keep_grads = True
        self._loss_rule: Optional[str] = None
        self._rule_ambiguous = False
        self._rule_checks = 0
        self.report_preflight = PreflightReport()
        # registered last, so that batch stages applied by earlier forward pre-hooks (augmentation views and their
        # unit ids) are seen before the unit ids are popped
        self._pre = model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)
        self._handles.append(self._pre)
        self.expander = BroadcastExpander(model, self._current_rows)
        try:
            self.mode = self._choose_mode(preflight_batch, forward, loss_fn)
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
        self._param_ids = frozenset(self._param_index)
        self._pads = {id(w): idx for w, idx in padding_embeddings(self.model).values()}

    def _same_draws(self):
        """A context in which a preflight pass draws the same random numbers as every other preflight pass
        (torch's generators and the augmentation stages' streams, restored afterwards)."""
        dev = next((p.device for p in self.params), torch.device("cpu"))
        return same_draws([dev] if dev.type == "cuda" else [], self.batch_stages)

    def _current_rows(self) -> Optional[int]:
        return self._cur.rows if self._cur is not None else None

    def _planned_steps(self, planned_steps: Optional[int], sampler: Optional[PoissonBatchSampler]) -> Optional[int]:
        cfg = self.config
        if cfg.steps is not None:
            return int(cfg.steps)
        if cfg.epochs is not None:
            per_epoch = len(sampler.groups) if sampler is not None else int(math.ceil(1.0 / self.sample_rate))
            return int(math.ceil(cfg.epochs * per_epoch))
        return int(planned_steps) if planned_steps else None

    # -- checks ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _optimizer_problems(model: nn.Module, optimizer: Any, resuming: bool) -> List[str]:
        from opacus.optimizers import DPOptimizer

        if isinstance(optimizer, DPOptimizer):
            return ["the optimizer is already an Opacus DPOptimizer: pass the plain torch optimizer"]
        if not isinstance(optimizer, torch.optim.Optimizer):
            return [f"optimizer is {type(optimizer).__name__}; expected a torch.optim.Optimizer"]
        model_params = {id(p) for p in model.parameters()}
        foreign = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in model_params]
        out = []
        if foreign:
            out.append(f"the optimizer holds {len(foreign)} parameter tensor(s) that are not in the model: it was "
                       f"created before the model was changed (fix_model, a LoRA wrapper, a module swap); create the "
                       f"optimizer from the final model, then call make_private")
        untracked = untracked_trainables(model, [p for g in optimizer.param_groups for p in g["params"]])
        if untracked:
            out.append(_untracked_message(untracked, at_setup=True))
        if not resuming and any(len(s) for s in optimizer.state.values()):
            out.append("the optimizer has already taken steps (its state holds statistics of non-private "
                       "gradients): create a fresh optimizer before make_private and take every step under DP")
        return out

    # -- mode --------------------------------------------------------------------------------------------------------
    def _choose_mode(self, batch: Any, forward: Callable, loss_fn: Optional[Callable]) -> str:
        cfg = self.config
        rep = self.report_preflight
        rep.tied = tied_parameters(self.model)
        per_sample_ok = False
        seq_len = None
        has_units = self.unit_ids_given
        if batch is not None and cfg.preflight:
            rep.unsupported = audit_modules(self.model)
            if rep.unsupported:
                raise UnsupportedModulesError(rep.unsupported)
            if hasattr(batch, "keys") and UNIT_KEY in batch:
                has_units = True
            was_training = self.model.training
            self.model.train()
            rows = None
            captured: Dict[str, Any] = {}

            def run_loss():
                nonlocal rows
                out = forward(self.model, batch)
                rows = self._cur.rows if self._cur is not None else None
                if loss_fn is not None:
                    return loss_fn(out, batch)
                loss = _out(out, "loss")
                if isinstance(loss, torch.Tensor) and loss.dim() == 0:
                    logits = _out(out, "logits")
                    labels = captured.get("labels")
                    got = per_sample_loss(self.model, logits, labels) if labels is not None else None
                    if got is not None:
                        per, batch_loss = got
                        if torch.allclose(batch_loss.detach().float(), loss.detach().float(), rtol=1e-4, atol=1e-5):
                            captured["per_sample_ok"] = True
                    if isinstance(logits, torch.Tensor) and logits.dim() == 3:
                        captured["seq_len"] = int(logits.shape[1])
                    return loss
                rep.notes.append("no loss in the model's output: the per-sample gradient check used the mean "
                                 "square of the output")
                return _surrogate_loss(out)

            self._preflight_active = True
            self._capture = captured
            # Opacus's full backward hooks cannot see an in-place op on a hooked layer's output: compute out of place
            restore_inplace = inplace_off(self.model)
            try:
                with self._same_draws():
                    check_per_sample_gradients(self.model, run_loss,
                                               batch_rows=lambda: rows or self._preflight_rows(batch), report=rep)
            except RuntimeError as exc:
                if "inplace" not in str(exc).replace("in-place", "inplace"):
                    raise
                if cfg.clipping in ("hooks", "ghost"):
                    raise ConfigError(
                        f"clipping={cfg.clipping!r} cannot train this model: an in-place operation modifies the output "
                        f"of a trainable layer (a functional in-place op such as x.relu_() or F.relu(x, inplace=True); "
                        f"modules with inplace=True are handled), and Opacus's hooks cannot follow it (autograd: "
                        f"{str(exc)[:120]}...). Write the operation out of place, or use clipping='bk' or 'auto'"
                    ) from None
                self._opacus_check_failed = True
                rep.notes.append("Opacus's per-sample gradient check could not run (an in-place operation on a "
                                 "layer's output); book-keeping's own check on this batch decides instead")
            finally:
                restore_inplace()
                self._preflight_active = False
                self._capture = None
                self._cur = None
                self.model.train(was_training)
            rep.broadcast_inputs = list(self.expander.seen)
            if rep.mismatched:
                lines = "\n".join(f"  - {k}: {v}" for k, v in rep.mismatched.items())
                raise PreflightError(
                    f"per-sample gradients do not add up to the gradient for {len(rep.mismatched)} parameter(s):\n"
                    f"{lines}\nCommon causes: a custom layer Opacus has no grad sampler for (register one with "
                    f"opacus.grad_sample.register_grad_sampler), a layer that mixes rows (BatchNorm, attention "
                    f"over the batch), or an input shared by the whole batch. Freeze the layer, replace it, or set "
                    f"DPConfig(preflight=False) if you have checked it yourself.")
            self._check_rows(batch, forward)
            per_sample_ok = bool(captured.get("per_sample_ok"))
            has_units = has_units or bool(captured.get("units_seen"))
            seq_len = captured.get("seq_len")
        elif batch is None and cfg.preflight:
            rep.unsupported = audit_modules(self.model)
            if rep.unsupported:
                raise UnsupportedModulesError(rep.unsupported)
            rep.notes.append("no batch was available: only the modules were audited")
        self._seq_len = seq_len
        if cfg.clipping == "hooks":
            rep.clipping = "hooks (selected)"
            return "hooks"
        if cfg.clipping == "bk":
            probs = BookKeeper(self.model, self.params, padding=self._pads).problems()
            if not probs and self._opacus_check_failed:
                why = self._bk_unusable(batch, forward, loss_fn)
                probs = [why] if why else []
            if probs:
                raise ConfigError("clipping='bk' cannot clip this model exactly: " + "; ".join(probs)
                                  + ". Use clipping='ghost', 'hooks' or 'auto'")
            rep.clipping = "bk (selected)"
            return "bk"
        if cfg.clipping == "ghost":
            if self.unit_ids_given:
                raise ConfigError("clipping='ghost' cannot combine several rows into one privacy unit (ghost "
                                  "clipping never forms per-sample gradients); use clipping='hooks' or 'auto'")
            if batch is not None and cfg.preflight and not per_sample_ok and loss_fn is None:
                raise ConfigError("clipping='ghost' needs per-example losses: the model's output must carry "
                                  "'logits' and the batch 'labels' (classification, regression or token-level "
                                  "cross-entropy); use clipping='hooks' or 'auto'")
            rep.clipping = "ghost (selected)"
            return "ghost"
        why = self._bk_unusable(batch, forward, loss_fn)
        if why is None:
            rep.clipping = "bk (auto: one backward pass; matched autograd's gradient on the preflight batch)"
            return "bk"
        rep.notes.append(f"book-keeping clipping not used: {why}")
        if self._opacus_check_failed:
            raise ConfigError(f"this model modifies a trainable layer's output in place (x.relu_(), F.relu(x, "
                              f"inplace=True)), which Opacus's hooks (ghost and hooks clipping) cannot follow, and "
                              f"book-keeping clipping cannot be used either ({why}). Write the operation out of place")
        if has_units:
            rep.clipping = "hooks (auto: a privacy unit may hold several rows)"
            return "hooks"
        if not per_sample_ok:
            rep.clipping = "hooks (auto: per-example losses cannot be read from the model's output)"
            return "hooks"
        if rep.called_twice:
            rep.clipping = (f"hooks (auto: {rep.called_twice[:3]} run several times in one forward pass; ghost "
                            f"clipping cannot add up their norms)")
            return "hooks"
        rep.clipping = "ghost (auto)"
        return "ghost"

    def _check_rows(self, batch: Any, forward: Callable) -> None:
        """Refuse a model whose rows influence each other (see :mod:`~torchdataguard.privacy.rowcheck`); record
        the layers that run several times in one forward pass."""
        rep = self.report_preflight

        def run_forward(b):
            try:
                with self._same_draws(), torch.enable_grad():
                    return forward(self.model, b)
            finally:
                self._cur = None

        was_training = self.model.training
        self._preflight_active = True
        self.model.train()
        try:
            rc = check_row_independence(self.model, batch, run_forward, batch_rows=self._preflight_rows(batch),
                                        model_rows=self._current_rows, skip=(UNIT_KEY,))
        finally:
            self._preflight_active = False
            self.model.train(was_training)
        rep.called_twice = rc.called_twice
        rep.rows_checked = rc.points
        if rc.skipped:
            rep.notes.append(f"rows were not checked for independence: {rc.skipped}")
        if rc.changed:
            rep.rows_independent = False
            shown = f"{rc.changed[:4]}{' ...' if len(rc.changed) > 4 else ''}"
            raise PreflightError(
                f"the rows of a batch influence each other: on the preflight batch, changing only its last row changed "
                f"row 0 at {shown} (by up to {rc.worst_change:.2e} relative; identical passes differ by "
                f"{rc.noise_floor:.2e}). Each example's gradient then depends on the other examples of its batch, so "
                f"clipping it does not bound one example's influence and the epsilon would not hold. Common causes: "
                f"statistics over the batch dimension (x - x.mean(0), x / x.std(0), a BatchNorm-like custom layer), "
                f"attention or pooling across rows, in-batch negatives (contrastive losses), routing by batch capacity "
                f"(mixture of experts), an augmentation that blends examples (MixUp, CutMix: one example then shapes "
                f"two rows). Compute such statistics per example (over features or tokens, e.g. "
                f"LayerNorm), or remove the cross-row term. Only if the flagged tensors' first dimension is not the "
                f"batch (a sequence-first layout), set DPConfig(preflight=False) after checking it yourself.")
        rep.rows_independent = None if rc.skipped else True

    def _bk_unusable(self, batch: Any, forward: Callable, loss_fn: Optional[Callable] = None) -> Optional[str]:
        """Why book-keeping must not be chosen automatically (``None``: it may).

        On the preflight batch, the sum of the per-row gradients it forms (no clipping) must equal the ordinary
        gradient of the loop's loss (same dropout draws), and autograd must have computed no parameter gradient of
        its own (a parameter used outside its layer would escape clipping).
        """
        bk = BookKeeper(self.model, self.params, padding=self._pads)
        probs = bk.problems()
        if probs:
            return "; ".join(probs)
        if batch is None or not self.config.preflight:
            return "no preflight batch to check it on"
        captured: Dict[str, Any] = {}
        was_training = self.model.training

        def run_loss() -> Tuple[torch.Tensor, int]:
            out = forward(self.model, batch)
            rows = self._cur.rows if self._cur is not None else self._preflight_rows(batch)
            if loss_fn is not None:
                return loss_fn(out, batch), rows
            loss = _out(out, "loss")
            if isinstance(loss, torch.Tensor) and loss.dim() == 0:
                return loss, rows
            return _surrogate_loss(out), rows

        self._preflight_active = True
        self._capture = captured
        try:
            self.model.train()
            for p in self.params:
                p.grad = None
            with self._same_draws():  # both passes draw the same dropout masks and augmentations
                loss, rows = run_loss()
                want = torch.autograd.grad(loss, self.params, allow_unused=True)
            bk.attach()
            bk.active = lambda: True
            bk.begin(rows)
            with self._same_draws():
                loss, _ = run_loss()
                loss.backward()
            leaked = [n for p, n in zip(self.params, self.param_names) if p.grad is not None]
            if leaked:
                return f"autograd computed gradients of {leaked[:3]} outside their layers (used directly?)"
            if bk.finish() is None:
                return "no trainable layer took part in the loss"
            got = bk.clipped_sum(torch.ones(rows, device=loss.device))
            for p, n, w in zip(self.params, self.param_names, want):
                g = got.get(p)
                w = torch.zeros_like(p) if w is None else w
                g = torch.zeros_like(p) if g is None else g
                tol = 1e-3 * float(w.abs().max()) + 1e-6
                if float((g.float() - w.float()).abs().max()) > tol:
                    return f"its gradient of {n} differs from autograd's on the preflight batch"
            return None
        except (ConfigError, StateError, RuntimeError) as exc:
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            bk.detach()
            for p in self.params:
                p.grad = None
            self._preflight_active = False
            self._capture = None
            self._cur = None
            self.model.train(was_training)

    @staticmethod
    def _preflight_rows(batch: Any) -> int:
        n = _batch_rows((batch,) if isinstance(batch, torch.Tensor) else tuple(batch) if isinstance(batch, (list, tuple))
                        else (), dict(batch) if hasattr(batch, "keys") else {})
        if n is None:
            raise PreflightError("the preflight batch holds no tensor with a batch dimension")
        return n

    def _attach(self) -> None:
        cfg = self.config
        if self.mode == "hooks":
            self.hooks = hooks_class()(self.model, batch_first=True, loss_reduction="mean", strict=False)
        elif self.mode == "bk":
            self.bk = BookKeeper(self.model, self.params, padding=self._pads,
                                 active=lambda: self._cur is not None and not self._preflight_active)
            self.bk.attach()
        else:
            no_ghost = set()
            tied_modules = {m for mods in self.report_preflight.tied.values() for m in mods}
            named = dict(self.model.named_modules())
            for mname in tied_modules:
                no_ghost.add(id(named[mname]))
            if tied_modules:
                self.report_preflight.notes.append(f"tied weights: {sorted(tied_modules)} use per-sample gradients "
                                                   f"instead of ghost norms")
            twice = [n for n in self.report_preflight.called_twice if n in named or n == "<root>"]
            for mname in twice:
                no_ghost.add(id(named.get(mname, self.model) if mname != "<root>" else self.model))
            if twice:
                self.report_preflight.notes.append(f"{twice[:5]} run several times in one forward pass: they use "
                                                   f"per-sample gradients instead of ghost norms")
            t = self._seq_len
            if t is not None and cfg.clipping == "auto":
                slow = []
                for mname, m in named.items():
                    if isinstance(m, nn.Linear) and m.weight.requires_grad and 2 * t * t > m.in_features * m.out_features:
                        no_ghost.add(id(m))
                        slow.append(mname)
                if slow:
                    self.report_preflight.notes.append(f"{len(slow)} linear layer(s) use per-sample gradients: at "
                                                       f"sequence length {t} their ghost norms cost more")
            cls = ghost_hooks_class()
            self.hooks = cls(self.model, no_ghost=no_ghost, batch_first=True, loss_reduction="mean", strict=False,
                             max_grad_norm=cfg.max_grad_norm, use_ghost_clipping=True)
        if self.mode in ("hooks", "ghost"):
            # Opacus's full backward hooks cannot follow an in-place op on a hooked layer's output (nn.ReLU(inplace=
            # True) after a Linear): such modules compute out of place while attached (same values)
            self._restore_inplace = inplace_off(self.model)
        self._attached_handles.append(self.model.register_forward_hook(self._post_forward, with_kwargs=True))
        self._clipper = self._make_clipper()
        for p in self.params:
            self._attached_handles.append(p.register_post_accumulate_grad_hook(self._drop_grad))
        self._keep_grads = False
        self._attached_handles.append(self.optimizer.register_step_pre_hook(self._before_step))

    def _unattach(self) -> None:
        """Remove what :meth:`_attach` added (the clipping hooks); the forward pre-hook and the ledger stay."""
        for h in self._attached_handles:
            h.remove()
        self._attached_handles = []
        if self.hooks is not None:
            self.hooks.cleanup()
            self.hooks = None
        if self.bk is not None:
            self.bk.detach()
            self.bk = None
        if self._restore_inplace is not None:
            self._restore_inplace()
            self._restore_inplace = None
        self._keep_grads = True

    def reattach(self) -> None:
        """Clip the parameters the optimizer holds now: after unfreezing layers (and adding them to the optimizer
        with ``optimizer.add_param_group``), call this between two optimizer steps. The preflight runs again on
        its batch and the clipping mode is chosen again; the ledger goes on."""
        pending = (self._cur is not None or self._since_step or self._pending()
                   or any(getattr(p, "summed_grad", None) is not None for p in self.params))
        if pending:
            raise StateError("reattach() was called with micro-batches waiting for an optimizer step: call it right "
                             "after optimizer.step() (or before the first forward pass)")
        names = untracked_trainables(self.model, [p for g in self.optimizer.param_groups for p in g["params"]])
        if names:
            raise ConfigError(_untracked_message(names, at_setup=True))
        old = self.mode
        self._unattach()
        if self.expander is not None:
            self.expander.remove()
        self._read_params()
        self.expander = BroadcastExpander(self.model, self._current_rows)
        self.report_preflight = PreflightReport()
        self._opacus_check_failed = False
        batch, forward, loss_fn = self._preflight_args
        self.mode = self._choose_mode(batch, forward, loss_fn)
        self._attach()
        self.notes.append(f"re-attached at step {self.ledger.steps} to {len(self.params)} trainable parameter "
                          f"tensor(s) (clipping {old} -> {self.mode})")

    def _make_clipper(self):
        from opacus.optimizers import DPOptimizer

        class _Clipper(DPOptimizer):
            def _get_flat_grad_sample(self, p):
                return p._tdg_gs

        gen = None
        if self.config.secure_mode:
            try:
                import torchcsprng as csprng  # type: ignore
            except ImportError:
                raise ConfigError("secure_mode=True needs torchcsprng (pip install torchcsprng)") from None
            gen = csprng.create_random_device_generator("/dev/urandom")
        return _Clipper(self.optimizer, noise_multiplier=self.noise_multiplier, max_grad_norm=self.config.max_grad_norm,
                        expected_batch_size=max(1, int(round(self.expected_batch))), loss_reduction="mean",
                        generator=gen, secure_mode=self.config.secure_mode)

    # -- hooks on the model ------------------------------------------------------------------------------------------
    def _drop_grad(self, p: torch.Tensor) -> None:
        if not self._keep_grads:
            if not self.model.training and not self._preflight_active:
                # the engine records micro-batches only in training mode: this gradient belongs to none of them
                self._eval_backward = True
            if self.mode == "bk" and self._cur is not None and not self._preflight_active:
                # under book-keeping autograd computes no parameter gradient: this one escaped the layers
                self._bk_leaked.append(self.param_names[self._param_index.get(id(p), 0)])
            p.grad = None

    def _pre_forward(self, module: nn.Module, args: tuple, kwargs: dict):
        units = kwargs.pop(UNIT_KEY, None) if UNIT_KEY in kwargs else None
        if not (module.training and torch.is_grad_enabled()):
            return args, kwargs
        if self._cur is not None and not self._preflight_active and self._pending():
            # several micro-batches before one optimizer step (gradient accumulation in a plain loop): clip the
            # previous one now, before its records make way for this one
            self.after_backward()
        if self._capture is not None:
            if "labels" in kwargs:
                self._capture["labels"] = kwargs["labels"]
            if units is not None:
                self._capture["units_seen"] = True
        plan = None
        if self.sampler is not None and not self._preflight_active:
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
                                 f"training mode than batches; DP accounting cannot vouch for it")
            self._m += 1
            self._since_step.append(plan)
        if not self._preflight_active:
            self._refuse_untracked()  # after the plan is counted: the loop may go on with the next batch
        rows = _batch_rows(args, kwargs)
        if rows is None:
            raise ConfigError("the DP engine found no tensor with a batch dimension in the model's inputs")
        if plan is not None and units is None and plan.rows != rows:
            raise StateError(f"the micro-batch has {rows} rows but the DP sampler drew {plan.rows}: the loader and the "
                             f"training loop are out of step")
        if units is not None:
            units = torch.as_tensor(units).to(torch.long).flatten()
            if units.numel() != rows:
                raise ConfigError(f"batch[{UNIT_KEY!r}] has {units.numel()} entries for {rows} rows: one unit id per "
                                  f"row (int64 [N])")
        self._cur = _Micro(rows, units, plan, kwargs.get("num_items_in_batch"), kwargs.get("labels"))
        if self.bk is not None and not self._preflight_active:
            self.bk.begin(rows)
        return args, kwargs

    _capture: Optional[Dict[str, Any]] = None

    def _post_forward(self, module: nn.Module, args: tuple, kwargs: dict, output: Any):
        """Read per-example losses from the output: learn how the model reduces its loss (so per-sample
        gradients can be rescaled to per-example gradients) and, under ghost clipping, swap the loss."""
        if not (module.training and torch.is_grad_enabled()) or self._preflight_active or self._cur is None:
            return None
        micro = self._cur
        loss = _out(output, "loss")
        logits = _out(output, "logits")
        labels = micro.labels
        counts = _token_counts(module, logits, labels) if isinstance(loss, torch.Tensor) else None
        if counts is None:
            if self.mode == "ghost":
                raise ConfigError("ghost clipping needs the model's 'loss' and 'logits' and the batch's 'labels' to "
                                  "form per-example losses; use DPConfig(clipping='hooks') or pass labels")
            return None
        ni = micro.num_items
        ni = None if ni is None else float(ni.sum().item() if isinstance(ni, torch.Tensor) else ni)
        per = None
        if self.mode == "ghost" or self._loss_rule is None or self._rule_ambiguous:
            got = per_sample_loss(module, logits, labels)
            if got is None:
                if self.mode == "ghost":
                    raise ConfigError("ghost clipping could not form per-example losses for this output (logits "
                                      f"{tuple(logits.shape)}, labels {tuple(labels.shape)}); use clipping='hooks'")
                return None
            per = got[0]
            if self._loss_rule is None or self._rule_ambiguous:
                self._identify_loss_rule(per.detach(), counts, loss.detach(), ni)
        micro.weights = self._rule_weights(counts, ni)
        if self.mode == "ghost":
            output["loss"] = GhostLoss(self, per, loss.detach())
            return output
        return None

    def _rule_weights(self, counts: torch.Tensor, ni: Optional[float]) -> Optional[torch.Tensor]:
        n = counts.shape[0]
        rule = self._loss_rule
        if rule == "row_mean":
            return torch.full_like(counts, 1.0 / n)
        if rule == "token_mean":
            return counts / counts.sum().clamp(min=1)
        if rule == "sum_over_items" and ni:
            return counts / ni
        return None

    def _identify_loss_rule(self, per: torch.Tensor, counts: torch.Tensor, loss: torch.Tensor,
                            ni: Optional[float]) -> None:
        n = counts.shape[0]
        cands = []
        if ni:
            cands.append(("sum_over_items", counts / ni))
        cands += [("row_mean", torch.full_like(counts, 1.0 / n)), ("token_mean", counts / counts.sum().clamp(min=1))]
        target = float(loss.float().item())
        hits = [name for name, w in cands
                if abs(float((w.to(per.device) * per.float()).sum().item()) - target) <= 1e-4 * max(1.0, abs(target))]
        if not hits:
            self._loss_rule = "unknown"
            self._rule_ambiguous = False
            self.notes.append("the model's loss is not a weighted sum of per-example losses that the engine "
                              "recognises; per-sample gradients are taken as those of a mean over rows")
            return
        if self._loss_rule in hits:  # an earlier batch could not tell the rules apart; keep the one still valid
            hits.remove(self._loss_rule)
            hits.insert(0, self._loss_rule)
        self._loss_rule = hits[0]
        self._rule_checks += 1
        # several rules give the same weights on this batch (equal lengths): look again on later batches
        self._rule_ambiguous = len(hits) > 1 and self._rule_checks < 20

    # -- clipping ----------------------------------------------------------------------------------------------------
    def _groups(self, micro: _Micro) -> Tuple[Optional[torch.Tensor], int, Optional[torch.Tensor]]:
        """(group index per row or -1, number of groups, rows per group) for the micro-batch's units."""
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

    def _scale(self, micro: _Micro) -> Any:
        """Per-row factor turning Opacus's per-sample gradients into per-example-loss gradients.

        Opacus (``loss_reduction="mean"``) multiplies by the rows ``n``; the loop's loss is
        ``sum_i w_i l_i / d`` (``w`` learnt from the model's output, ``d`` the Trainer's division by the
        accumulation steps when it does not pass ``num_items_in_batch``). The factor is ``d / (n w_i)``.
        """
        d = 1.0
        if self.trainer and micro.num_items is None:
            d = float(micro.plan.step_len) if micro.plan is not None else float(self.default_accumulation)
        w = micro.weights
        if self._loss_rule == "row_mean":
            return d  # n w_i = 1 for every row
        if w is None:
            if self.trainer and micro.num_items is not None and self._loss_rule == "unknown":
                ni = micro.num_items
                ni = float(ni.sum().item() if isinstance(ni, torch.Tensor) else ni)
                return ni / max(micro.rows, 1)
            return d
        w = w.float()
        return torch.where(w > 0, d / (micro.rows * w.clamp(min=1e-30)), torch.zeros_like(w))

    def after_backward(self) -> None:
        """Clip the pending micro-batch's per-sample gradients into the step's sum (hooks mode)."""
        micro, self._cur = self._cur, None
        if self.mode == "bk" and micro is not None:
            self._bk_after(micro)
            return
        if self.mode in ("ghost", "bk") or micro is None:
            return
        drop = micro.plan is not None and micro.plan.pad
        idx, n_groups, counts = (None, micro.rows, None) if drop else self._groups(micro)
        scale = self._scale(micro)
        try:
            if not drop:
                for p, name in zip(self.params, self.param_names):
                    gs = p.grad_sample if hasattr(p, "grad_sample") else None
                    if isinstance(gs, list):
                        gs = torch.cat(gs, 0)
                    if gs is None:
                        gs = torch.zeros((micro.rows,) + tuple(p.shape), device=p.device, dtype=p.dtype)
                    if gs.shape[0] != micro.rows:
                        raise StateError(f"the per-sample gradient of {name} has {gs.shape[0]} rows for a micro-batch "
                                         f"of {micro.rows}: an input is broadcast over the batch (see the preflight)")
                    if id(p) in self._pads:
                        gs[:, self._pads[id(p)]] = 0
                    # in place: Opacus's per-sample gradient tensor is discarded after this step anyway
                    if isinstance(scale, torch.Tensor):
                        gs.mul_(scale.to(gs.device, gs.dtype).view(-1, *([1] * (gs.dim() - 1))))
                    elif scale != 1.0:
                        gs.mul_(scale)
                    if idx is not None:
                        keep = idx >= 0
                        out = torch.zeros((n_groups,) + tuple(gs.shape[1:]), device=gs.device, dtype=gs.dtype)
                        out.index_add_(0, idx[keep].to(gs.device), gs[keep.to(gs.device)])
                        if self.config.unit_reduction == "mean":
                            out = out / counts.to(gs.device, gs.dtype).view(-1, *([1] * (gs.dim() - 1)))
                        gs = out
                    p._tdg_gs = gs
                self._clipper.clip_and_accumulate()
        finally:
            for p in self.params:
                p.grad_sample = None
                if hasattr(p, "_tdg_gs"):
                    del p._tdg_gs

    def _ghost_backward(self, per: torch.Tensor) -> None:
        micro, self._cur = self._cur, None
        if micro is None:
            raise StateError("a ghost-clipped loss was back-propagated twice, or after the optimizer step")
        n = per.shape[0]
        pad = micro.plan is not None and micro.plan.pad
        idx, n_groups, _ = (None, n, None) if pad else self._groups(micro)
        if idx is not None and n_groups != int((idx >= 0).sum()):
            raise ConfigError("ghost clipping cannot combine several rows into one privacy unit; use "
                              "DPConfig(clipping='hooks')")
        self._keep_grads = False
        self.hooks.enable_hooks()
        per.mean().backward(retain_graph=not pad)
        norms = []
        normed = set()
        for p in self.params:
            ns = getattr(p, "_norm_sample", None)
            if ns is not None:
                norms.append(ns.reshape(-1).to(per.device).float())
                normed.add(id(p))
                del p._norm_sample
            p.grad_sample = None
        if pad:
            return
        norm = torch.stack(norms, 0).norm(2, dim=0) if norms else torch.zeros(n, device=per.device)
        coef = (self.config.max_grad_norm / (norm + 1e-6)).clamp(max=1.0)
        if idx is not None:
            coef = coef * (idx.to(coef.device) >= 0).to(coef.dtype)
        self.hooks.disable_hooks()
        self._keep_grads = True
        try:
            (coef.detach().to(per.dtype) * per).sum().backward()
        finally:
            self.hooks.enable_hooks()
            self._keep_grads = False
        unclipped = [name for p, name in zip(self.params, self.param_names) if p.grad is not None and id(p) not in normed]
        if unclipped:
            for p in self.params:
                p.grad = None
            raise ConfigError(f"ghost clipping saw no per-sample norm for parameters {unclipped[:5]}"
                              f"{' ...' if len(unclipped) > 5 else ''} (used outside the modules Opacus hooks), so "
                              f"their gradient would not be clipped; use DPConfig(clipping='hooks') or keep "
                              f"preflight=True, which finds such parameters before training")
        for p in self.params:
            if p.grad is not None:
                p.summed_grad = p.grad if getattr(p, "summed_grad", None) is None else p.summed_grad + p.grad
                p.grad = None

    def _bk_after(self, micro: _Micro) -> None:
        """Book-keeping: the backward pass of the loop's own loss gave each row's output gradients; clip and sum.

        The loop's loss is ``sum_i w_i l_i / d`` (see :meth:`_scale`), so row ``i``'s gradient of its own loss is
        ``d / w_i`` times what the pass recorded: norms and the clipped sum are scaled by that factor.
        """
        bk = self.bk
        leaked, self._bk_leaked = self._bk_leaked, []
        if leaked:
            bk.end()
            raise ConfigError(f"book-keeping clipping: autograd computed gradients of {sorted(set(leaked))[:5]} "
                              f"outside their layers (a parameter used directly in a forward pass), so they would not "
                              f"be clipped; use DPConfig(clipping='hooks')")
        if micro.plan is not None and micro.plan.pad:  # a padding micro-batch of the sampler: no gradient at all
            bk.end()
            return
        idx, n_groups, counts = self._groups(micro)
        scale = self._scale(micro)
        factor = (scale.float() if isinstance(scale, torch.Tensor)
                  else torch.full((micro.rows,), float(scale))) * micro.rows
        if idx is not None and n_groups != int((idx >= 0).sum()):
            # rows that share a unit: the unit's gradient is the sum (user rows) or mean (views) of its rows'
            keep = idx >= 0
            w = factor.to(idx.device).clone()
            if self.config.unit_reduction == "mean":
                w = w / counts.to(w.device, w.dtype)[idx.clamp(min=0)]
            w = w * keep.to(w.dtype)
            unit_norm = bk.finish_units(w, idx, n_groups)
            if unit_norm is None:
                bk.end()
                return
            c_unit = (self.config.max_grad_norm / (unit_norm + 1e-6)).clamp(max=1.0)
            coef = c_unit[idx.clamp(min=0).to(c_unit.device)] * w.to(c_unit.device)
        else:
            raw = bk.finish()
            if raw is None:  # no trainable layer took part (a forward without backward)
                bk.end()
                return
            factor = factor.to(raw.device)
            norm = raw * factor.abs()
            coef = (self.config.max_grad_norm / (norm + 1e-6)).clamp(max=1.0) * factor
            if idx is not None:
                coef = coef * (idx.to(coef.device) >= 0).to(coef.dtype)
        for p, g in bk.clipped_sum(coef).items():
            p.summed_grad = g if getattr(p, "summed_grad", None) is None else p.summed_grad + g

    # -- the step ----------------------------------------------------------------------------------------------------
    def can_step(self) -> bool:
        """Whether one more step stays within the budget (always true without a target)."""
        return self.ledger.can_step(self.noise_multiplier, self.sample_rate)

    def _before_step(self, optimizer, args, kwargs) -> None:
        self.release()

    def _pending(self) -> bool:
        """Whether the current micro-batch was back-propagated and its gradients wait to be clipped."""
        if self.mode == "bk":
            return self.bk is not None and self.bk.pending()
        if self.mode == "hooks":
            return any(getattr(p, "grad_sample", None) is not None for p in self.params)
        return False

    def _check_one_logical_step(self) -> None:
        """A plain loop must step once per logical batch the Poisson sampler drew (or its ``accumulation``
        micro-batches): an update built from two draws is a different mechanism from the one accounted."""
        plans, self._since_step = self._since_step, []
        if self.trainer or self.sampler is None or not plans:
            return
        steps = {(self.sampler.generation, p.step) for p in plans}
        if len(steps) > 1 or len(plans) > plans[0].step_len:
            for p in self.params:
                p.summed_grad = None
            raise StateError(
                f"optimizer.step() after {len(plans)} micro-batches from {len(steps)} logical batches of the DP "
                f"sampler (each logical batch is {plans[0].step_len} micro-batch(es)): an update that merges "
                f"several Poisson draws is not what the accountant counts. Step once per batch of the private "
                f"loader, or give make_private(..., accumulation=k) and step every k batches")

    def _discard_step(self) -> None:
        """Forget everything gathered for the step being refused (no gradient is left for the optimizer)."""
        self._cur = None
        self._since_step = []
        if self.bk is not None:
            self.bk.end()
        for p in self.model.parameters():
            if getattr(p, "summed_grad", None) is not None:
                p.summed_grad = None
            if p.requires_grad:
                p.grad = None

    def _refuse_untracked(self) -> None:
        names = untracked_trainables(self.model, self._param_ids)
        if names:
            self._discard_step()
            raise StateError(_untracked_message(names, at_setup=False))

    def _check_before_step(self) -> None:
        """Refuse a step the accountant would not describe: one whose gradients came from an eval-mode forward,
        one that would train parameters the engine does not clip, one of a resumed run whose ledger was not
        loaded."""
        if self._eval_backward:
            self._eval_backward = False
            self._discard_step()
            if self.sampler is not None:
                self._out_of_step_gen = self.sampler.generation
            raise StateError("a backward pass ran with the model in eval mode since the last optimizer step: the DP "
                             "engine records micro-batches only in training mode, so this step would train on noise "
                             "alone and the Poisson sampler's micro-batches would fall out of step with the loop "
                             "(padding rows that were never drawn would then be trained on). Call model.train() "
                             "before the forward pass of every training step (e.g. after evaluating)")
        self._refuse_untracked()
        if self._first_step_checked:
            return
        self._first_step_checked = True
        led = self.ledger.steps
        taken, any_state = optimizer_steps_taken(self.optimizer)
        if taken > led or (led == 0 and any_state):
            self._discard_step()
            raise StateError(
                f"the optimizer's state shows {taken if taken else 'earlier'} step(s) but the privacy ledger accounts "
                f"{led}: this run continues a training run without its ledger, so the epsilon reported would leave "
                f"out the steps already taken. Load the ledger saved with the checkpoint right after make_private "
                f"(dp.load(checkpoint_dir); it is written by dp.save), or, with the Trainer, resume through "
                f"trainer.train(resume_from_checkpoint=...) with the DPCallback; or start from a fresh optimizer")
        if self.ledger_source is not None and led == 0 and not self.new_ledger_declared:
            self._discard_step()
            raise StateError(
                f"the model was loaded from {self.ledger_source!r}, which holds a privacy ledger ({LEDGER_FILE}) "
                f"from DP training, but this run starts a new ledger at 0 steps. To continue that run's epsilon, load "
                f"it: dp.load({self.ledger_source!r}) (Trainer: DPCallback(resume_from=...)). If this run trains on "
                f"other data and its guarantee is a separate one, say so: dp.start_new_ledger() (Trainer: "
                f"DPCallback(new_ledger=True))")

    def release(self) -> None:
        """Clip what is pending, add the noise, average and account one step (writes ``p.grad``)."""
        self._check_before_step()
        self.after_backward()
        self._check_one_logical_step()
        if self.config.enforce_budget and not self.can_step():
            for p in self.params:
                p.summed_grad = None
                p.grad = None
            self.budget_stopped = True
            raise PrivacyBudgetExhausted(
                f"one more step would spend more than target_epsilon={self.config.target_epsilon} "
                f"(epsilon so far {self.ledger.epsilon():.4g} after {self.ledger.steps} steps); stop training here")
        params = [p for p in self.params if p.requires_grad]
        for p in self.params:
            if not p.requires_grad:  # frozen since make_private: not trained, nothing released for it
                p.summed_grad = p.grad = None
            elif getattr(p, "summed_grad", None) is None:
                p.summed_grad = torch.zeros_like(p)
        if self.config.secure_mode:
            self._clipper.add_noise()
            for p in params:
                p.grad = p.grad / self.expected_batch
                p.summed_grad = None
        else:
            # Opacus's Gaussian mechanism (std = noise_multiplier x max_grad_norm per coordinate), drawn straight
            # into the gradient buffer: one pass fewer over every parameter than zeros + normal + add
            std = self.noise_multiplier * self.config.max_grad_norm
            for p in params:
                g = torch.empty_like(p.summed_grad)
                if std > 0:
                    g.normal_(0.0, std, generator=self._clipper.generator)
                else:
                    g.zero_()
                p.grad = g.add_(p.summed_grad).div_(self.expected_batch).view_as(p)
                p.summed_grad = None
        self.ledger.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def expect_skip(self, micro_batches: int) -> None:
        """The next pass over the loader starts ``micro_batches`` in (the Trainer skips batches on resume)."""
        self._skip_offset = int(micro_batches)

    # -- reporting and state -----------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        return self.ledger.epsilon()

    def unit_description(self) -> str:
        u = self.config.unit
        if self.unit_ids_given or self.config.unit_reduction == "sum":
            return f"{u} (all rows sharing a unit id; their gradients are summed before clipping)"
        return f"{u} (rows sharing a '{UNIT_KEY}' value, such as augmented views, are averaged before clipping)"

    def report(self) -> Dict[str, Any]:
        """The JSON-able privacy section (see :meth:`PrivateTraining.report`)."""
        led = self.ledger
        if not led.points or led.points[-1]["step"] != led.steps:
            led.record_point()
        last = led.points[-1]
        return {
            "unit": self.unit_description(),
            "delta": self.delta,
            "accountant": self.config.accountant,
            "rdp_conversion": "classic: min over orders of RDP(a) - log(delta)/(a-1)",
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.config.max_grad_norm,
            "sample_rate": self.sample_rate,
            "expected_batch_units": self.expected_batch,
            "dataset_units": self.num_units,
            "steps": led.steps,
            "epsilon_prv": last["epsilon_prv"],
            "epsilon_rdp": last["epsilon_rdp"],
            "epsilon": last["epsilon_prv"] if self.config.accountant == "prv" else last["epsilon_rdp"],
            "epsilon_unbounded": last["epsilon_prv"] is None or last["epsilon_rdp"] is None,
            "target_epsilon": self.config.target_epsilon,
            "budget_stopped": self.budget_stopped,
            "approximate": self.approximate_reason is not None,
            "approximate_reason": self.approximate_reason,
            "clipping": self.mode,
            "sampling": "poisson" if self.sampler is not None else "the loader's own (approximate)",
            "history": [dict(p) for p in led.points],
            "history_ledger": led.history,
            "preflight": self.report_preflight.to_dict(),
            "notes": list(self.notes),
        }

    def state_dict(self) -> Dict[str, Any]:
        return {"ledger": self.ledger.state_dict(),
                "sampler": self.sampler.state_dict() if self.sampler is not None else None}

    def load_state_dict(self, state: Dict[str, Any], *, expect_steps: Optional[int] = None) -> None:
        if "ledger" not in state:
            raise StateError("no privacy ledger in this state: a DP run cannot resume without it")
        self.ledger.load_state_dict(state["ledger"], expect_steps=expect_steps, expect_noise=self.noise_multiplier,
                                    expect_rate=self.sample_rate)
        self._first_step_checked = False
        if state.get("sampler") is not None and self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])

    def load_ledger(self, directory, *, expect_steps: Optional[int] = None) -> None:
        """Continue the ledger saved in ``directory``: its delta, accountant, unit, noise multiplier and sampling
        rate must be this run's, and its checksum must match (see :meth:`PrivacyLedger.load_state_dict`)."""
        self.ledger.load(directory, expect_steps=expect_steps, expect_noise=self.noise_multiplier,
                         expect_rate=self.sample_rate)
        self._first_step_checked = False

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
            for attr in ("summed_grad", "_tdg_gs"):
                if hasattr(p, attr):
                    delattr(p, attr)
        for m in self.model.modules():
            for attr in ("activations", "max_batch_len"):
                if attr in m.__dict__:  # wrappers (peft's ModulesToSaveWrapper) forward getattr to what they wrap
                    delattr(m, attr)


class PrivateTraining:
    """What :func:`make_private` returns: unpacks to ``(model, optimizer, loader)`` and also carries the
    accounting (:meth:`epsilon`, :meth:`report`, :meth:`save` / :meth:`load`). Use it as a context manager to
    remove the hooks afterwards.

    The model and the optimizer are the objects you passed in (hooks attached, not wrapped); the loader is a
    new one over the same dataset, batched by Poisson sampling, that stops when the budget is spent.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                 engine: DPEngine) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loader = loader
        self.engine = engine

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.optimizer, self.loader))

    def __enter__(self) -> "PrivateTraining":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def epsilon(self) -> float:
        """Epsilon spent so far, by the configured accountant."""
        return self.engine.epsilon()

    def report(self) -> Dict[str, Any]:
        """The privacy section: unit, delta, accountant, noise, sampling rate, steps, PRV and RDP epsilons,
        whether the guarantee is approximate (and why), the preflight, and the epsilon history."""
        return self.engine.report()

    def state_dict(self) -> Dict[str, Any]:
        return self.engine.state_dict()

    def load_state_dict(self, state: Dict[str, Any], *, expect_steps: Optional[int] = None) -> None:
        self.engine.load_state_dict(state, expect_steps=expect_steps)
        self._rebase()

    def _rebase(self) -> None:
        s = self.engine.sampler
        if s is not None:
            self.engine.steps_before_sampler = self.engine.ledger.steps - s.logical_steps_drawn

    def save(self, directory) -> str:
        """Write the privacy ledger (JSON) into ``directory``, next to your model checkpoint."""
        return self.engine.ledger.save(directory)

    def load(self, directory, *, expect_steps: Optional[int] = None) -> None:
        """Restore the ledger saved in ``directory`` (call it right after :func:`make_private`, before the first
        step); missing, edited, or made with another delta, accountant, unit, noise multiplier or sampling rate
        (or another step count than ``expect_steps``) is an error."""
        self.engine.load_ledger(directory, expect_steps=expect_steps)
        self._rebase()

    def start_new_ledger(self) -> None:
        """Declare that this run's guarantee is a new one although the model was loaded from a folder holding a
        privacy ledger (it trains on other data). Without this (or :meth:`load`) the first step is refused."""
        self.engine.new_ledger_declared = True

    def reattach(self) -> None:
        """Clip the parameters the optimizer holds now (after unfreezing layers and adding them with
        ``optimizer.add_param_group``); call it between two optimizer steps. See :meth:`DPEngine.reattach`."""
        self.engine.reattach()

    def close(self) -> None:
        """Detach the hooks from the model and the optimizer."""
        self.engine.detach()


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, privacy: DPConfig, *,
                 unit_ids: Optional[Sequence[int]] = None,
                 forward: Callable[[nn.Module, Any], Any] = _default_forward,
                 loss_fn: Optional[Callable[[Any, Any], torch.Tensor]] = None,
                 accumulation: int = 1, guard: Any = None) -> PrivateTraining:
    """Make a plain training loop differentially private (DP-SGD through Opacus).

    Args:
        model: the model, in training mode; hooks are attached to it (it is not wrapped).
        optimizer: a fresh optimizer over the model's parameters; the private gradient is written into
            ``p.grad`` right before each of its steps.
        loader: your DataLoader, unshuffled (``shuffle=False``), without ``drop_last`` or a weighted sampler;
            its ``batch_size`` is the expected logical batch. It is replaced by a Poisson-sampled loader.
        privacy: the :class:`DPConfig`.
        unit_ids: the privacy unit of each dataset row (rows of one user share an id); each row is a unit by
            default.
        forward: how the preflight calls the model on a batch (default: ``model(**batch)`` for mappings,
            ``model(batch[0])`` for tuples).
        loss_fn: ``loss_fn(output, batch)`` for the preflight when the output carries no ``loss``.
        accumulation: micro-batches per optimizer step: each Poisson-drawn logical batch (expected size
            ``batch_size``) is split into this many micro-batches, and the loop calls ``optimizer.step()`` after
            every ``accumulation`` batches of the private loader. Back-propagate each micro-batch's loss as it
            is (not divided by ``accumulation``): each example's gradient is clipped on its own.
        guard: the :class:`~torchdataguard.Guard` whose batch stages run on the batch inside the model's forward
            (a forward pre-hook registered before ``make_private``): their random streams are put back after
            each preflight pass, so the passes see the same augmentation draws and training's stream is untouched.
            Not needed when the stages run in the collate function (``guard.collator()``).

    Returns:
        A :class:`PrivateTraining` that unpacks to ``(model, optimizer, loader)``.
    """
    if not isinstance(privacy, DPConfig):
        raise ConfigError.bad("privacy", type(privacy).__name__, "a tdg.DPConfig")
    if not isinstance(loader, DataLoader):
        raise ConfigError.bad("loader", type(loader).__name__, "a torch.utils.data.DataLoader")
    if not isinstance(accumulation, int) or isinstance(accumulation, bool) or accumulation < 1:
        raise ConfigError.bad("accumulation", accumulation, "a positive integer (micro-batches per optimizer step)")
    problems = loader_sampling_problems(loader)
    approx = None
    if problems and not privacy.accept_approximate:
        raise ConfigError.collect(problems + ["or set DPConfig(accept_approximate=True) to keep this loader; the "
                                              "report then marks the guarantee approximate"], "loader under DP-SGD")
    dataset = loader.dataset
    try:
        num_rows = len(dataset)
    except TypeError:
        raise ConfigError("DP-SGD needs the dataset size to set the sampling rate: use a map-style dataset with "
                          "__len__") from None
    batch_size = loader.batch_size or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    if not batch_size:
        raise ConfigError("DP-SGD needs the loader's batch_size (the expected logical batch) to set the sampling "
                          "rate; build the DataLoader with batch_size=")
    if unit_ids is not None and len(unit_ids) != num_rows:
        raise ConfigError(f"unit_ids has {len(unit_ids)} entries for {num_rows} rows: give one unit id per row")
    num_units = len(set(int(u) for u in unit_ids)) if unit_ids is not None else num_rows
    if num_units < 1:
        raise ConfigError("the dataset is empty: nothing to train on")
    q = batch_size / num_units
    if problems:
        approx = "; ".join(problems)
        sampler = None
        new_loader = loader
    else:
        steps_per_epoch = max(1, int(math.ceil(num_units / batch_size)))
        sampler = PoissonBatchSampler(num_rows, sample_rate=min(q, 1.0),
                                      micro_batches_per_epoch=steps_per_epoch * accumulation,
                                      accumulation=accumulation, unit_ids=unit_ids, seed=privacy.seed)
        new_loader = poisson_loader(loader, sampler)
    preflight_batch = None
    if privacy.preflight and num_rows > 0:
        # two rows show what a preflight needs (a layer that mixes rows, an input broadcast over the batch) at a
        # quarter of the memory of eight: Opacus's per-sample gradients of the check cost rows x parameters
        k = min(num_rows, 2)
        preflight_batch = loader.collate_fn([dataset[i] for i in range(k)])
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        preflight_batch = _to_device(preflight_batch, dev)
    engine = DPEngine(model, optimizer, privacy, num_units=num_units, sample_rate=q, sampler=sampler,
                      preflight_batch=preflight_batch, forward=forward, loss_fn=loss_fn, approximate_reason=approx,
                      unit_ids_given=unit_ids is not None,
                      batch_stages=guard.batch_stages if guard is not None else ())
    if sampler is not None and privacy.target_epsilon is not None and privacy.enforce_budget:
        # steps accounted before this sampler's draws (a loaded ledger moves it): the loader stops before a step
        # that would exceed the budget instead of handing out a batch the optimizer must refuse
        engine.steps_before_sampler = engine.ledger.steps
        sampler.step_allowed = lambda n: engine.ledger.allows(engine.noise_multiplier, engine.sample_rate,
                                                              engine.steps_before_sampler + n)
    if approx:
        warnings.warn(f"DP-SGD with an approximate guarantee: {approx}", stacklevel=2)
    return PrivateTraining(model, optimizer, new_loader, engine)
