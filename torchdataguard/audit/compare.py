"""The audit's lower bound next to the accountant's epsilon: a lower bound above it means a broken guarantee.

Example:
    >>> out = compare_with_accountant({"epsilon_lower_bound": 2.5}, {"epsilon": 1.0, "delta": 1e-5})
    >>> out["accountant_epsilon"], out["exceeds_accountant"]
    (1.0, True)
    >>> compare_with_accountant({"epsilon_lower_bound": 2.5}, None)["accountant_epsilon"]   # no DP
    'inf'
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

__all__ = ["accountant_epsilon", "compare_with_accountant"]


def accountant_epsilon(privacy: Optional[Mapping[str, Any]]) -> float:
    """The epsilon of the accountant in force in a privacy report (``epsilon_<accountant>``, else ``epsilon``);
    infinite without DP or without a finite figure."""
    if not privacy:
        return math.inf
    name = str(privacy.get("accountant") or "").lower()
    for key in (f"epsilon_{name}", "epsilon"):
        v = privacy.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return math.inf


def compare_with_accountant(result: Mapping[str, Any], privacy: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``result`` plus ``accountant_epsilon`` (``"inf"`` without DP), ``exceeds_accountant`` and, when the lower
    bound is above the accountant's epsilon, a ``warning`` that says the DP guarantee is broken."""
    out = dict(result)
    eps = accountant_epsilon(privacy)
    lower = float(result.get("epsilon_lower_bound") or 0.0)
    out["accountant_epsilon"] = eps if math.isfinite(eps) else "inf"
    out["exceeds_accountant"] = lower > eps
    if lower > eps:
        out["warning"] = (
            f"BROKEN PRIVACY GUARANTEE: the audit's lower bound epsilon >= {lower:.3g} (at confidence "
            f"{result.get('confidence')}) is above the accountant's epsilon = {eps:.3g}. Training cannot be as "
            f"private as reported: look for a DP bug (examples seen outside Poisson sampling, clipping not applied "
            f"to every parameter, noise not added, the wrong sample rate) before relying on this epsilon.")
    return out
