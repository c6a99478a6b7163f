"""The one-run empirical lower bound on epsilon (Steinke, Nasr and Jagielski, NeurIPS 2023).

The setting: ``m`` canaries, each put into the training data by an independent fair coin. After training,
an auditor guesses "in" or "out" for some canaries (it may abstain on the rest) from their scores alone. The
paper's theorem (Theorem 3.1, stated here in our words): if training is (epsilon, delta)-DP and the auditor
makes ``r`` guesses of which ``W`` are right, then for every ``v``

    P[W >= v] <= f(v) + 2 m delta * max_{1 <= i <= v} (f(v - i) - f(v)) / i,

where ``f(v) = P[Binomial(r, q) >= v]`` and ``q = e^eps / (1 + e^eps)``, the accuracy of eps-DP randomised
response. With delta = 0 the number of correct guesses is stochastically dominated by that binomial.

So observing ``v`` correct guesses out of ``r`` rejects "the training was (eps, delta)-DP" at level
``beta = 1 - confidence`` whenever the right-hand side is below ``beta``; the lower bound is the largest
eps rejected. :func:`one_run_bound` tries several guess counts, fixed before the scores are seen, and takes
the best; to stay a valid bound at the stated confidence it tests each at ``beta / (number tried)`` (a
union bound, the Bonferroni correction for trying several), so the maximum is still a lower bound with
probability at least ``confidence``. That correction is ours; the p-value itself follows the paper's Appendix D
code, and ``tests/audit/test_audit_paper_values.py`` reproduces the values the paper prints (as quoted by public
implementations of it): 0.702, 0.699 and 0.673 for 75 right out of 100 guesses.

Example:
    >>> round(epsilon_lower_bound(m=1000, r=1000, v=1000, delta=0.0, beta=0.05), 3)  # closed form: see below
    5.809
    >>> epsilon_lower_bound(m=1000, r=100, v=50, delta=0.0, beta=0.05)   # chance: nothing learned
    0.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["BoundResult", "default_guess_counts", "epsilon_lower_bound", "guess_counts_grid", "one_run_bound",
           "p_value"]

#: the search stops here: a bound of 60 means every guess was right with more guesses than any test uses
EPS_CAP = 60.0


class _Tail:
    """The theorem's right-hand side for fixed ``m``, ``r``, ``v`` and ``delta``, as a function of eps (the
    binomial coefficients are computed once, in float64 log space so large ``r`` stays accurate)."""

    def __init__(self, m: int, r: int, v: int, delta: float) -> None:
        self.m, self.r, self.v, self.delta = m, r, v, delta
        k = np.arange(r + 1, dtype=np.float64)
        self.k = k
        self.log_c = np.array([math.lgamma(r + 1) - math.lgamma(i + 1) - math.lgamma(r - i + 1) for i in range(r + 1)])
        self.inv_i = 1.0 / np.arange(1, v + 1, dtype=np.float64)

    def __call__(self, eps: float) -> float:
        if self.v <= 0:
            return 1.0
        # log q and log(1 - q) for q = e^eps / (1 + e^eps), without overflow
        log_q, log_1q = -math.log1p(math.exp(-eps)), -eps - math.log1p(math.exp(-eps))
        pmf = np.exp(self.log_c + self.k * log_q + (self.r - self.k) * log_1q)
        tail = float(pmf[self.v:].sum())  # f(v)
        extra = 0.0
        if self.delta > 0:
            # f(v - i) - f(v) = P[v - i <= Bin < v] for i = 1 .. v: cumulative sums of the pmf going down from v - 1
            below = np.cumsum(pmf[:self.v][::-1])
            extra = 2.0 * self.m * self.delta * float((below * self.inv_i).max())
        return min(1.0, tail + extra)


def p_value(*, m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The largest probability, under (eps, delta)-DP, of ``v`` or more correct guesses out of ``r`` with ``m``
    canaries (the right-hand side of the theorem in the module docstring, capped at 1).

    Example:
        >>> round(p_value(m=10, r=10, v=10, eps=0.0, delta=0.0), 6)   # ten fair coins all right
        0.000977
    """
    _check_counts(m, r, v)
    if not math.isfinite(eps) or eps < 0:
        raise ConfigError.bad("eps", eps, "a finite number >= 0")
    if not 0 <= delta <= 1:
        raise ConfigError.bad("delta", delta, "a number in [0, 1]")
    return _Tail(m, r, v, delta)(eps)


def epsilon_lower_bound(*, m: int, r: int, v: int, delta: float, beta: float) -> float:
    """The largest eps at which ``v`` correct guesses out of ``r`` (``m`` canaries) has probability below
    ``beta`` under (eps, delta)-DP: training that produced them is not (eps, delta)-DP, at confidence
    ``1 - beta``. 0 when even eps = 0 explains them.

    Example:
        >>> # all of r guesses right, delta 0: p-value q^r, so eps = log(q / (1 - q)) with q = beta^(1/r)
        >>> q = 0.05 ** (1 / 100)
        >>> abs(epsilon_lower_bound(m=100, r=100, v=100, delta=0.0, beta=0.05) - math.log(q / (1 - q))) < 1e-6
        True
    """
    _check_counts(m, r, v)
    if not 0 < beta < 1:
        raise ConfigError.bad("beta", beta, "a number in (0, 1) (1 - confidence, e.g. 0.05)")
    if not 0 <= delta <= 1:
        raise ConfigError.bad("delta", delta, "a number in [0, 1]")
    tail = _Tail(m, r, v, delta)
    if tail(0.0) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while tail(hi) < beta:  # invariant: rejected at lo, not at hi
        lo, hi = hi, hi * 2
        if hi > EPS_CAP:
            return EPS_CAP
    while hi - lo > 1e-8:
        mid = (lo + hi) / 2
        if tail(mid) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def guess_counts_grid(m: int) -> List[int]:
    """The guesses per side tried by default for ``m`` canaries: 1, 2, 5, 10, 20, 50 ... below ``m / 2``, and
    ``m // 2`` itself (the canaries split about evenly between in and out)."""
    if m < 2:
        return []
    half = m // 2
    out: List[int] = []
    base = 1
    while base < half:
        for f in (1, 2, 5):
            k = base * f
            if k < half and k not in out:
                out.append(k)
        base *= 10
    out.append(half)
    return sorted(set(out))


def default_guess_counts(m: int) -> List[int]:
    """:func:`guess_counts_grid` without the smallest counts that can never reach 95% confidence after the
    correction (fewer than 5 guesses per side): they would only dilute the confidence of the others."""
    grid = guess_counts_grid(m)
    kept = [k for k in grid if k >= 5]
    return kept or grid[-1:]


@dataclass(frozen=True)
class BoundResult:
    """The best bound over the guess counts tried.

    Attributes:
        epsilon_lower_bound: the bound (0 when no count gives one).
        confidence: the confidence the bound holds at (after the correction for trying several counts).
        guesses: ``r`` of the best count (guesses made; abstentions not counted).
        correct: ``v`` of the best count.
        per_side: guesses "in" (top scores) and guesses "out" (bottom scores) of the best count.
        tried: the per-side counts tried.
        delta: the delta of the tested (eps, delta)-DP hypothesis.
    """

    epsilon_lower_bound: float
    confidence: float
    guesses: int
    correct: int
    per_side: int
    tried: List[int]
    delta: float


def one_run_bound(scores: Sequence[float], coins: Sequence[int], *, delta: float = 0.0, confidence: float = 0.95,
                  guess_counts: Optional[Sequence[int]] = None) -> BoundResult:
    """The one-run lower bound from canary ``scores`` (higher: more likely trained on) and their ``coins``
    (1: put into the training data, 0: left out).

    For each count ``k`` in ``guess_counts`` (per side; default :func:`default_guess_counts`), guess "in" for
    the ``k`` highest scores and "out" for the ``k`` lowest, count the right guesses, and compute
    :func:`epsilon_lower_bound` at ``beta = (1 - confidence) / len(guess_counts)``; return the best.

    Example:
        >>> coins = [1, 0] * 50
        >>> res = one_run_bound([c + 0.001 * i for i, c in enumerate(coins)], coins)  # perfectly separated
        >>> res.correct == res.guesses == 100, round(res.epsilon_lower_bound, 2)
        (True, 3.11)
    """
    s = torch.as_tensor([float(x) for x in scores], dtype=torch.float64)
    c = torch.as_tensor([int(x) for x in coins], dtype=torch.int64)
    m = int(s.numel())
    problems = []
    if c.numel() != m:
        problems.append(f"scores has {m} values but coins has {c.numel()}; give one coin per score")
    if bool(((c != 0) & (c != 1)).any()):
        problems.append("coins must be 0 (left out) or 1 (trained on)")
    if not bool(torch.isfinite(s).all()):
        problems.append("scores must be finite numbers (a NaN or infinite loss cannot be ranked)")
    if not 0 < confidence < 1:
        problems.append(f"confidence={confidence!r}: expected a number in (0, 1), e.g. 0.95")
    if not 0 <= delta < 1:
        problems.append(f"delta={delta!r}: expected a number in [0, 1)")
    counts = list(default_guess_counts(m) if guess_counts is None else guess_counts)
    for k in counts:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= m // 2:
            problems.append(f"guess count {k!r}: expected an integer in [1, m // 2 = {m // 2}]")
    if problems:
        raise ConfigError.collect(problems, "one-run audit inputs")
    if not counts:
        return BoundResult(0.0, confidence, 0, 0, 0, [], delta)
    order = torch.argsort(s, descending=True, stable=True)
    ranked = c[order]
    beta = (1.0 - confidence) / len(counts)
    best = BoundResult(0.0, confidence, 0, 0, 0, counts, delta)
    for k in counts:
        v = int(ranked[:k].sum()) + int((ranked[m - k:] == 0).sum())
        eps = epsilon_lower_bound(m=m, r=2 * k, v=v, delta=delta, beta=beta)
        if eps > best.epsilon_lower_bound or best.guesses == 0:
            best = BoundResult(eps, confidence, 2 * k, v, k, counts, delta)
    return best


def _check_counts(m: int, r: int, v: int) -> None:
    for name, val in (("m", m), ("r", r), ("v", v)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 0:
            raise ConfigError.bad(name, val, "a non-negative integer")
    if not v <= r <= m:
        raise ConfigError(f"expected correct guesses v <= guesses r <= canaries m, got v={v}, r={r}, m={m}")
