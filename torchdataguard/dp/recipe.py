"""Settings of DP-SGD that learn: :func:`recommend` (also ``tdg.DPConfig.recommend``) and the :class:`DPRecipe` it
returns.

DP-SGD adds Gaussian noise of norm about ``sigma * C * sqrt(d) / B`` to a clipped mean gradient of norm at most
``C`` (``d`` trained parameters, ``B`` the expected logical batch). What makes it learn, in the literature and in
``benchmarks/dp_utility.py`` (see ``docs/private-fine-tuning.md``):

* few trained parameters: a head on a frozen pretrained encoder, or LoRA adapters, not the whole model;
* a large expected logical batch (Poisson sampling, split into micro-batches by gradient accumulation): at a fixed
  epsilon and number of epochs the noise multiplier grows more slowly than the batch, so the noise on the mean
  gradient shrinks (Li et al. 2022; De et al. 2022; Ponomareva et al. 2023);
* more epochs than without DP, and a learning rate raised with the batch.

The recipe's noise is calibrated by the accountant for exactly the sampling it plans (``sample_rate =
logical_batch / num_examples`` for ``steps = epochs * ceil(num_examples / logical_batch)``), and the recipe's
``epsilon`` is that accountant's figure for the plan: at most ``target_epsilon``.

Example:
    >>> from torchdataguard.dp.config import DPConfig
    >>> r = recommend(DPConfig, 1292, target_epsilon=8.0)
    >>> r.logical_batch, r.epochs, r.epsilon <= 8.0, r.config.noise_multiplier == r.noise_multiplier
    (256, 30, True, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..errors import ConfigError
if TYPE_CHECKING:  # the owner's type, for annotations only: DPConfig.recommend passes the class in
    from .config import DPConfig
from .epsilon import epsilon_prv, epsilon_rdp, noise_for_target

__all__ = ["DPRecipe", "RECIPES", "recommend"]

#: Per trained part: the logical batch as a fraction of the training set, epochs, the optimizer, a learning-rate
#: range and (LoRA) the new head's own learning rate. "head": chosen on a validation split at epsilon 8 by
#: benchmarks/dp_utility.py on the demo task (the best setting, and the rates within a point of it). "lora": the
#: setting of that table's LoRA rows (benchmarks/results/dp_utility.json): logical batch 128 (1/8 of 1,036-1,295
#: emails), AdamW 1e-3 on the adapters and 5e-2 on the freshly initialised head (a non-private probe on the
#: validation split: 0.969 after 3 epochs against 0.822 with the head at 1e-3), the epochs validation chose at
#: epsilon 8 (4 of 6). "full": the literature's (Li et al. 2022), not validated here: that table's full rows (batch
#: 128, at most 2 epochs, AdamW 5e-5 or 5e-4 chosen on validation) stayed at the majority class at epsilon 1, 3
#: and 8, so a head or LoRA is what to train under DP at this data size.
RECIPES: Dict[str, Dict[str, Any]] = {
    "head": {"batch_fraction": 1 / 4, "epochs": 30, "optimizer": "SGD momentum 0.9", "lr": (1.0, 2.0),
             "micro_batch": 256},
    "lora": {"batch_fraction": 1 / 8, "epochs": 4, "optimizer": "AdamW", "lr": (1e-3, 1e-3), "head_lr": 5e-2,
             "micro_batch": 16},
    "full": {"batch_fraction": 1 / 4, "epochs": 3, "optimizer": "AdamW", "lr": (2e-4, 5e-4), "micro_batch": 16},
}


@dataclass
class DPRecipe:
    """What :func:`recommend` returns: a :class:`DPConfig` with the noise set, and the loop around it.

    Attributes:
        config: the DP settings (``noise_multiplier`` calibrated, ``target_epsilon`` a hard cap, ``epochs`` set).
        logical_batch: the expected logical batch ``B`` (the DataLoader's ``batch_size`` for ``make_private``; for
            the Trainer ``per_device_train_batch_size * gradient_accumulation_steps``).
        micro_batch / accumulation: how the logical batch is split (``micro_batch * accumulation == logical_batch``).
        epochs / steps: the planned training length; ``steps = epochs * ceil(num_examples / logical_batch)``.
        sample_rate: ``logical_batch / num_examples`` (the Poisson rate the accountant uses).
        noise_multiplier: sigma, calibrated by the accountant for this plan.
        epsilon: the accountant's epsilon for the plan (at most ``target_epsilon``); ``epsilon_rdp`` the other one.
        learning_rate: the range of learning rates that worked (low, high); for ``"lora"`` the adapters'.
        head_learning_rate: the new classification head's own learning rate (an optimizer parameter group), where
            one was measured (``"lora"``); ``None`` otherwise (every trained parameter at ``learning_rate``).
        optimizer: the optimizer they worked with.
        trainable: what was trained (``"head"``, ``"lora"`` or ``"full"``).
        notes: why, in words.
    """

    config: DPConfig
    logical_batch: int
    micro_batch: int
    accumulation: int
    epochs: int
    steps: int
    sample_rate: float
    noise_multiplier: float
    epsilon: float
    epsilon_rdp: float
    learning_rate: Tuple[float, float]
    optimizer: str
    trainable: str
    notes: List[str] = field(default_factory=list)
    head_learning_rate: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        out = {k: getattr(self, k) for k in ("logical_batch", "micro_batch", "accumulation", "epochs", "steps",
                                             "sample_rate", "noise_multiplier", "epsilon", "epsilon_rdp",
                                             "optimizer", "trainable", "notes", "head_learning_rate")}
        out["learning_rate"] = list(self.learning_rate)
        out["config"] = self.config.to_dict()
        return out


def _power_of_two_at_most(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


def recommend(config_class: "type[DPConfig]", num_examples: int, epochs: Optional[int] = None,
              target_epsilon: float = 8.0, *,
              trainable: str = "head", delta: Optional[float] = None, max_grad_norm: float = 1.0,
              logical_batch: Optional[int] = None, micro_batch: Optional[int] = None,
              accountant: str = "prv", seed: Optional[int] = None) -> DPRecipe:
    """Settings of DP-SGD that learn for ``num_examples`` privacy units at ``target_epsilon`` (see the module).

    Args:
        config_class: :class:`DPConfig` (``DPConfig.recommend`` passes it: this module does not import it).
        num_examples: privacy units in the training set (after filtering).
        epochs: planned epochs (default: what worked for ``trainable``).
        target_epsilon: the budget; the returned plan's epsilon is at most this.
        trainable: ``"head"`` (a head on a frozen encoder), ``"lora"`` (adapters and head) or ``"full"``.
        delta: default ``min(1e-5, 0.1 / num_examples)`` (as :class:`DPConfig`).
        max_grad_norm: the clipping bound C (the learning rates assume 1.0).
        logical_batch: override the expected logical batch (default: a quarter of the data, as a power of two).
        micro_batch: rows per forward pass (default: what fits a CPU for ``trainable``); the logical batch is
            rounded down to a multiple of it.
        accountant: ``"prv"`` or ``"rdp"`` (calibrates the noise and enforces the budget).
        seed: the Poisson sampler's seed.

    Example:
        >>> from torchdataguard.dp.config import DPConfig
        >>> r = DPConfig.recommend(1000, 10, 3.0, trainable="lora")
        >>> r.micro_batch * r.accumulation == r.logical_batch, r.epsilon <= 3.0
        (True, True)
    """
    p: List[str] = []
    if not (isinstance(num_examples, int) and not isinstance(num_examples, bool) and num_examples >= 2):
        p.append(f"num_examples={num_examples!r}: expected the number of privacy units, an integer >= 2")
    if trainable not in RECIPES:
        p.append(f"trainable={trainable!r}: expected one of {', '.join(repr(k) for k in RECIPES)}")
    if epochs is not None and not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        p.append(f"epochs={epochs!r}: expected a positive integer")
    for name, v in (("logical_batch", logical_batch), ("micro_batch", micro_batch)):
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            p.append(f"{name}={v!r}: expected a positive integer")
    if p:
        raise ConfigError.collect(p, "DPConfig.recommend")
    base = RECIPES[trainable]
    n = int(num_examples)
    epochs = int(epochs if epochs is not None else base["epochs"])
    batch = int(logical_batch) if logical_batch is not None else _power_of_two_at_most(base["batch_fraction"] * n)
    if batch > n:
        raise ConfigError(f"logical_batch={batch} is larger than the {n} examples: the sampling rate would exceed 1")
    micro = min(int(micro_batch) if micro_batch is not None else int(base["micro_batch"]), batch)
    accumulation = batch // micro
    batch = micro * accumulation
    steps = epochs * int(math.ceil(n / batch))
    q = batch / n
    # validate the rest (target, delta, C, accountant) before the search, with DPConfig's messages
    probe = config_class(target_epsilon=target_epsilon, delta=delta, max_grad_norm=max_grad_norm, noise_multiplier=1.0,
                     accountant=accountant, epochs=epochs, seed=seed)  # type: ignore[arg-type]
    d = float(delta) if delta is not None else min(1e-5, 0.1 / n)
    sigma = noise_for_target(target_epsilon=float(target_epsilon), delta=d, sample_rate=q, steps=steps,
                             accountant=accountant)  # type: ignore[arg-type]
    eps_prv = epsilon_prv([(sigma, q, steps)], d)
    eps_rdp = epsilon_rdp([(sigma, q, steps)], d)
    spent = eps_prv if accountant == "prv" else eps_rdp
    if spent > target_epsilon:  # the search's tolerance: one notch more noise
        sigma *= 1.01
        eps_prv, eps_rdp = epsilon_prv([(sigma, q, steps)], d), epsilon_rdp([(sigma, q, steps)], d)
        spent = eps_prv if accountant == "prv" else eps_rdp
    config = replace(probe, delta=d, noise_multiplier=float(sigma))
    notes = [f"train the {trainable}: " + {
        "head": "a few hundred parameters, so the noise (norm ~ sigma C sqrt(d) / B) stays small; on the demo "
                "task 0.86 / 0.92 / 0.92 test accuracy at epsilon 1 / 3 / 8 against 0.93 without DP",
        "lora": "adapters and head: far fewer parameters than the model, so less noise than full fine-tuning; "
                "the new head at its own AdamW rate (head_learning_rate), or its logits stay near 0 for hundreds "
                "of steps; on the demo task (1,295 emails, logical batch 128, 4 epochs chosen on validation) test "
                "accuracy 0.840 at epsilon 8, 0.818 at 3 and 0.753 at 1 against 0.970 without DP: below the head "
                "alone under DP (0.92 at epsilon 8) at this data size, so choose the epochs on a validation split",
        "full": "every parameter: needs far more data than a few thousand examples to beat the noise under DP; "
                "these settings are the literature's; on the demo task a DP run of all parameters (at most 2 "
                "epochs, AdamW 5e-5) stayed at the majority class (0.725) at epsilon 8"}[trainable],
        f"expected logical batch {batch} (sample rate {q:.4g}, Poisson), {accumulation} micro-batch(es) of {micro}",
        f"{epochs} epochs = {steps} steps; noise multiplier {sigma:.4g} gives epsilon {spent:.4g} by {accountant}"]
    return DPRecipe(config=config, logical_batch=batch, micro_batch=micro, accumulation=accumulation, epochs=epochs,
                    steps=steps, sample_rate=q, noise_multiplier=float(sigma), epsilon=float(spent),
                    epsilon_rdp=float(eps_rdp), learning_rate=tuple(base["lr"]), optimizer=str(base["optimizer"]),
                    trainable=trainable, notes=notes, head_learning_rate=base.get("head_lr"))
