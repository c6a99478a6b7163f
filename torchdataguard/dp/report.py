"""The privacy section of a report (``report["privacy"]``), as the plain loop and the Trainer callback give it.

Example:
    >>> from torchdataguard.dp import DPConfig
    >>> unit_description(DPConfig(noise_multiplier=1.0), unit_ids_given=True)
    'example (all rows sharing a unit id; their gradients are summed before clipping)'
"""
from __future__ import annotations

from typing import Any, Dict

from .batch import UNIT_KEY
from .config import DPConfig

__all__ = ["privacy_report", "unit_description"]


def unit_description(config: DPConfig, *, unit_ids_given: bool) -> str:
    """What one privacy unit is, in words, and how its rows combine before clipping."""
    u = config.unit
    if unit_ids_given or config.unit_reduction == "sum":
        return f"{u} (all rows sharing a unit id; their gradients are summed before clipping)"
    return f"{u} (rows sharing a '{UNIT_KEY}' value, such as augmented views, are averaged before clipping)"


def privacy_report(engine) -> Dict[str, Any]:
    """The JSON-able privacy section of a DP engine: unit, delta, accountant, noise, sampling rate, steps, PRV and
    RDP epsilons, whether the guarantee is approximate (and why), the clipping mode, the preflight, the history
    and the engine's notes."""
    cfg = engine.config
    led = engine.ledger
    if not led.points or led.points[-1]["step"] != led.steps:
        led.record_point()
    last = led.points[-1]
    return {
        "unit": unit_description(cfg, unit_ids_given=engine.unit_ids_given),
        "delta": engine.delta,
        "accountant": cfg.accountant,
        "rdp_conversion": "classic: min over orders of RDP(a) - log(delta)/(a-1)",
        "noise_multiplier": engine.noise_multiplier,
        "max_grad_norm": cfg.max_grad_norm,
        "sample_rate": engine.sample_rate,
        "expected_batch_units": engine.expected_batch,
        "dataset_units": engine.num_units,
        "steps": led.steps,
        "epsilon_prv": last["epsilon_prv"],
        "epsilon_rdp": last["epsilon_rdp"],
        "epsilon": last["epsilon_prv"] if cfg.accountant == "prv" else last["epsilon_rdp"],
        "epsilon_unbounded": last["epsilon_prv"] is None or last["epsilon_rdp"] is None,
        "target_epsilon": cfg.target_epsilon,
        "budget_stopped": engine.budget_stopped,
        "approximate": engine.approximate_reason is not None,
        "approximate_reason": engine.approximate_reason,
        "clipping": engine.mode,
        "sampling": "poisson" if engine.sampler is not None else "the loader's own (approximate)",
        "history": [dict(p) for p in led.points],
        "history_ledger": led.history,
        "preflight": engine.report_preflight.to_dict(),
        "notes": list(engine.notes),
    }
