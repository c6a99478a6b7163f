"""The epsilon of a DP-SGD history ``[(noise_multiplier, sample_rate, steps), ...]``: PRV and RDP side by side,
and the noise multiplier that reaches a target epsilon.

* **PRV** (Gopi et al. 2021, Opacus's default): numerical composition of privacy loss random variables;
  the epsilon reported is Opacus's upper bound (``eps_error=0.01``).
* **RDP** (Mironov 2017): Renyi DP of the sampled Gaussian mechanism from Opacus's ``compute_rdp``,
  converted to ``(epsilon, delta)`` with the *classic* conversion
  ``epsilon = min_alpha RDP(alpha) - log(delta) / (alpha - 1)``. This is the conversion behind the published
  tables (Opacus's MNIST README, TF-Privacy's tutorials), so the figures can be checked against them; it is
  slightly looser than the conversion Opacus's own ``RDPAccountant`` uses today.

Example:
    >>> round(epsilon_rdp([(1.1, 256 / 60000, 14062)], 1e-5), 2)   # TF-Privacy tutorial: 60 epochs
    3.01
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, List, Literal, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, StateError

__all__ = ["DEFAULT_ORDERS", "Accountant", "History", "check_history", "classic_rdp_to_dp", "epsilon_prv",
           "epsilon_rdp", "noise_for_target", "quiet_prv_domain"]

#: RDP orders searched by the classic conversion (Opacus's default orders plus a few large ones).
DEFAULT_ORDERS: Tuple[float, ...] = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
                                          + [80, 96, 128, 256, 512])

Accountant = Literal["prv", "rdp"]
History = List[Tuple[float, float, int]]


@contextmanager
def quiet_prv_domain():
    """Silence Opacus's "Optimal order is the largest alpha" warning inside a PRV computation, and only there.

    Opacus's PRV accountant sizes the grid it discretises the privacy loss on with an RDP bound at a tiny
    delta (``compute_safe_domain_size``); at such a delta the best RDP order is the largest one Opacus tries,
    and its RDP code warns on every call, i.e. on every normal run. That bound only chooses how wide the grid
    is (a looser bound gives a wider grid, never a smaller epsilon); the PRV epsilon's accuracy comes from the
    mesh size (``eps_error``), not from it. So the warning says nothing about the epsilon reported, and is
    silenced here; the RDP epsilon this module reports (:func:`epsilon_rdp`) uses its own orders and conversion
    and never raises it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Optimal order is the (largest|smallest) alpha",
                                category=UserWarning)
        yield


@lru_cache(maxsize=256)
def _rdp_per_step(noise_multiplier: float, sample_rate: float, orders: Tuple[float, ...]) -> np.ndarray:
    from opacus.accountants.analysis.rdp import compute_rdp

    return np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(orders)),
                      dtype=np.float64)


def classic_rdp_to_dp(orders: Sequence[float], rdp: Sequence[float], delta: float) -> Tuple[float, float]:
    """The classic RDP -> (epsilon, delta) conversion: ``min_a rdp(a) - log(delta) / (a - 1)``.

    Returns ``(epsilon, best_order)``.

    Example:
        >>> classic_rdp_to_dp([2.0, 4.0], [0.5, 1.0], 1e-5)[0] > 0
        True
    """
    o = np.asarray(orders, dtype=np.float64)
    r = np.asarray(rdp, dtype=np.float64)
    eps = r - math.log(delta) / (o - 1)
    if np.all(np.isnan(eps)):
        return math.inf, float("nan")
    i = int(np.nanargmin(eps))
    return float(max(eps[i], 0.0)), float(o[i])


def check_history(history: Sequence[Sequence[Any]]) -> History:
    """``history`` as ``[(noise, rate, steps), ...]``; a malformed entry is a ``StateError`` naming it."""
    out: History = []
    for i, item in enumerate(history):
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise StateError(f"privacy history entry {i} is {item!r}; expected [noise_multiplier, sample_rate, steps]")
        s, q, n = item
        if not (isinstance(n, int) and n >= 0) or not (float(q) > 0 and float(q) <= 1) or not float(s) >= 0:
            raise StateError(f"privacy history entry {i} is {item!r}: expected noise >= 0, 0 < rate <= 1, steps >= 0")
        out.append((float(s), float(q), int(n)))
    return out


def epsilon_rdp(history: Sequence[Sequence[Any]], delta: float, orders: Sequence[float] = DEFAULT_ORDERS) -> float:
    """Epsilon of ``history`` (``[(noise, rate, steps), ...]``) by RDP with the classic conversion.

    Example:
        >>> round(epsilon_rdp([(1.3, 0.004, 3750)], 1e-5), 2)   # Opacus MNIST README, sigma 1.3, 15 epochs
        1.16
    """
    hist = check_history(history)
    if not hist or all(n == 0 for _, _, n in hist):
        return 0.0
    orders_t = tuple(float(o) for o in orders)
    total = np.zeros(len(orders_t))
    for s, q, n in hist:
        if n:
            if s == 0:
                return math.inf
            total = total + _rdp_per_step(s, q, orders_t) * n
    return classic_rdp_to_dp(orders_t, total, delta)[0]


def epsilon_prv(history: Sequence[Sequence[Any]], delta: float, *, eps_error: float = 0.01) -> float:
    """Epsilon of ``history`` with Opacus's PRV accountant (its upper bound, ``eps_error`` accuracy).

    Example:
        >>> 0 < epsilon_prv([(1.1, 0.004, 100)], 1e-5) < epsilon_rdp([(1.1, 0.004, 100)], 1e-5)
        True
    """
    hist = [h for h in check_history(history) if h[2] > 0]
    if not hist:
        return 0.0
    return _epsilon_prv_cached(tuple(hist), float(delta), float(eps_error))


@lru_cache(maxsize=512)
def _epsilon_prv_cached(hist: Tuple[Tuple[float, float, int], ...], delta: float, eps_error: float) -> float:
    from opacus.accountants import PRVAccountant

    if any(s == 0 for s, _, _ in hist):
        return math.inf
    acc = PRVAccountant()
    acc.history = [tuple(h) for h in hist]
    try:
        with np.errstate(all="ignore"), quiet_prv_domain():
            return float(acc.get_epsilon(delta, eps_error=eps_error))
    except (ValueError, OverflowError, MemoryError, FloatingPointError):
        # PRV's discretisation fails when the privacy loss is unbounded in practice (tiny noise): no guarantee
        return math.inf


def noise_for_target(*, target_epsilon: float, delta: float, sample_rate: float, steps: int,
                     accountant: Accountant = "prv", tolerance: float = 0.01) -> float:
    """The noise multiplier that spends ``target_epsilon`` in ``steps`` steps at ``sample_rate`` (Opacus's search).

    The search uses the same accountant that enforces the budget, so the planned number of steps fits.

    Example:
        >>> s = noise_for_target(target_epsilon=3.0, delta=1e-5, sample_rate=0.004, steps=1000, accountant="rdp")
        >>> epsilon_rdp([(s, 0.004, 1000)], 1e-5) <= 3.0
        True
    """
    if steps < 1:
        raise ConfigError.bad("steps", steps, "at least 1 planned optimizer step to calibrate the noise")
    if accountant == "rdp":
        lo, hi = 0.0, 10.0
        while epsilon_rdp([(hi, sample_rate, steps)], delta) > target_epsilon:
            hi *= 2
            if hi > 1e6:
                raise ConfigError(f"target_epsilon={target_epsilon} cannot be reached in {steps} steps at sample "
                                  f"rate {sample_rate:.4g}: raise the budget or take fewer/smaller steps")
        while hi - lo > 1e-4 and target_epsilon - epsilon_rdp([(hi, sample_rate, steps)], delta) > tolerance:
            mid = (lo + hi) / 2
            if epsilon_rdp([(mid, sample_rate, steps)], delta) < target_epsilon:
                hi = mid
            else:
                lo = mid
        return float(hi)
    from opacus.accountants.utils import get_noise_multiplier

    try:
        with quiet_prv_domain():
            return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                              sample_rate=sample_rate, steps=int(steps), accountant=accountant,
                                              epsilon_tolerance=tolerance))
    except ValueError as e:
        raise ConfigError(f"target_epsilon={target_epsilon} cannot be reached in {steps} steps at sample rate "
                          f"{sample_rate:.4g} ({e}); raise the budget or take fewer steps") from None
