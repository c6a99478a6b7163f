"""The settings of DP-SGD: :class:`DPConfig`.

Example:
    >>> DPConfig(noise_multiplier=1.0, delta=1e-5).accountant
    'prv'
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Literal, Optional, Sized, Tuple

from ..errors import ConfigError

__all__ = ["CLIPPING_MODES", "Clipping", "DPConfig", "planned_steps_of"]

Clipping = Literal["auto", "hooks", "ghost", "bk"]
#: The values of ``DPConfig.clipping``: ``"auto"`` and the clippers registered in :mod:`.clipping`.
CLIPPING_MODES: Tuple[str, ...] = ("auto", "hooks", "ghost", "bk")


@dataclass(kw_only=True)
class DPConfig:
    """Settings of DP-SGD. Give a ``target_epsilon`` (noise calibrated to it, budget enforced), a
    ``noise_multiplier`` (epsilon reported as it grows), or both (the target is then a hard cap).

    Args:
        target_epsilon: the privacy budget; training stops before a step would exceed it.
        delta: the delta of the guarantee; must be below 1/N (N = privacy units). Default: ``min(1e-5, 0.1/N)``.
        max_grad_norm: the clipping bound C of each unit's gradient.
        noise_multiplier: sigma (noise std = sigma x C); calibrated from ``target_epsilon`` when omitted.
        epochs: the planned length of training in epochs, needed (or ``steps``) to calibrate the noise for a
            plain loop (the Trainer knows its ``max_steps``).
        steps: the planned length of training in optimizer steps, instead of ``epochs``.
        accountant: the accountant that states the guarantee and enforces the budget (``"prv"``, Opacus's
            default, or ``"rdp"``); both epsilons are always reported.
        clipping: ``"auto"``, ``"hooks"`` (per-sample gradients), ``"ghost"`` (ghost clipping, two backward
            passes) or ``"bk"`` (book-keeping: one backward pass; see :mod:`~torchdataguard.dp.clipping.bookkeeper`).
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
        if self.clipping not in CLIPPING_MODES:
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


def planned_steps_of(config: DPConfig, *, sampler: Any, sample_rate: float, planned: Optional[int]) -> Optional[int]:
    """The planned number of optimizer steps: ``config.steps``, or ``config.epochs`` times the steps of an epoch
    (the Poisson sampler's logical batches, else ``1 / sample_rate``), or ``planned`` (the Trainer's max_steps).

    Example:
        >>> planned_steps_of(DPConfig(noise_multiplier=1.0, epochs=2), sampler=None, sample_rate=0.1, planned=None)
        20
    """
    if config.steps is not None:
        return int(config.steps)
    if config.epochs is not None:
        groups: Optional[Sized] = sampler.groups if sampler is not None else None
        per_epoch = len(groups) if groups is not None else int(math.ceil(1.0 / sample_rate))
        return int(math.ceil(config.epochs * per_epoch))
    return int(planned) if planned else None
