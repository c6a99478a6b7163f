"""Whether a set of scores forms two groups: a two-component Gaussian mixture fitted by EM (batched, so that one
code path fits the data and the draws that calibrate the test), Ashman's D and its cut-off.

The cut-off (:func:`min_separation`) is calibrated by a parametric bootstrap: the mixture is fitted to
500-4,000 (:data:`NULL_DRAWS`) seeded draws of ``n`` values from each of two single-group families, a normal and a
Gamma(2, 1) (skewness 1.4, a group with a long tail), and the cut-off is the larger ``1 - FALSE_SPLIT_RATE``
quantile of the statistic the decision uses (D where the mixture beats one normal by BIC with at least
:data:`MIN_GROUP_SIZE` examples per component, else 0), and never below Ashman's :data:`MIN_SEPARATION`.
D does not change when the scores are shifted or scaled (Otsu's start, EM and the spread floor all move with
them), so fitting the families' location and scale to the data at hand would not change the cut-off: it
depends on ``n`` alone and is cached per ``n``.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> two = torch.cat([torch.randn(90, generator=g), torch.randn(10, generator=g) + 6])
    >>> split, d = two_groups(two)
    >>> split, d >= min_separation(100) >= MIN_SEPARATION
    (True, True)
"""
from __future__ import annotations

import functools
import math
from typing import Tuple

import torch

from ..errors import ConfigError

__all__ = ["FALSE_SPLIT_RATE", "MIN_GROUP_SIZE", "MIN_SEPARATION", "NULL_DRAWS", "NULL_MAX_N", "NULL_SEED",
           "bimodal_separation", "min_separation", "mixture_fits", "null_separation", "otsu_cuts", "two_groups"]

#: two normal components are cleanly apart only from D > 2 (Ashman, Bird and Zepf 1994): the cut-off's floor
MIN_SEPARATION = 2.0
#: the fewest examples (effective, from the mixture's responsibilities) each of two groups must hold
MIN_GROUP_SIZE = 3.0
#: the share of single groups (normal or Gamma(2, 1), any size) that :func:`two_groups` may split
FALSE_SPLIT_RATE = 0.01
#: bootstrap draws per single-group family for ``n`` scores: ``clamp(1,000,000 // n, 500, 4,000)``, so that the
#: draws hold about a million values while the quantile's Monte Carlo error stays small (the achieved rate's
#: standard error is ``sqrt(0.01 * 0.99 / draws)``: 0.45 points at 500 draws)
NULL_DRAWS = (500, 4000)
#: fixed seed of the bootstrap draws: the cut-off is a deterministic function of ``n``
NULL_SEED = 20261206
#: above this many scores the cut-off of this many is used: the null quantile of D falls as ``n`` grows (measured
#: in ``tests/dynamics/test_separation.py``), so this errs towards not splitting and bounds the cost
NULL_MAX_N = 5000
#: values per batch of bootstrap draws (bounds memory: about 20 float64 tensors of this size at once)
_CHUNK = 1_000_000


def otsu_cuts(v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Otsu's threshold of each row of ``v`` (``[rows, n]``, finite) and its effectiveness (between-group over
    total variance, 0..1); ``(inf, 0)`` for a row with fewer than two distinct values."""
    s = v.double().sort(dim=1).values
    rows, n = s.shape
    if n < 2:
        return torch.full((rows,), float("inf"), dtype=torch.float64), torch.zeros(rows, dtype=torch.float64)
    cs = s.cumsum(1)
    i = torch.arange(1, n, dtype=torch.float64, device=s.device)
    m0 = cs[:, :-1] / i
    m1 = (cs[:, -1:] - cs[:, :-1]) / (n - i)
    between = (i / n) * (1 - i / n) * (m0 - m1) ** 2
    k = between.argmax(1, keepdim=True)
    cut = ((s.gather(1, k) + s.gather(1, k + 1)) / 2).squeeze(1)
    eta = between.gather(1, k).squeeze(1) / s.var(dim=1, unbiased=False).clamp(min=1e-300)
    flat = (s[:, -1] - s[:, 0]) == 0
    return torch.where(flat, torch.full_like(cut, float("inf")), cut), torch.where(flat, torch.zeros_like(eta), eta)


def mixture_fits(v: torch.Tensor, iters: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EM fits of two normal components to each row of ``v`` (``[rows, n]``, finite), started from Otsu's two
    groups: ``(D, delta_bic, smaller_weight)`` per row. ``delta_bic`` is the two-component fit's BIC gain over one
    normal (positive: the mixture wins); ``smaller_weight`` the effective number of values in the smaller
    component. A row with one distinct value, or whose component falls under half a value, gives
    ``(0, -inf, 0)``. Each row stops when its responsibilities move less than 1e-6, or after ``iters`` passes."""
    if not (isinstance(iters, int) and iters >= 1):
        raise ConfigError(f"iters={iters!r}: expected a positive integer (EM passes)")
    v = v.double()
    rows_n, n = v.shape
    d = torch.zeros(rows_n, dtype=torch.float64)
    gain = torch.full((rows_n,), float("-inf"), dtype=torch.float64)
    smaller = torch.zeros(rows_n, dtype=torch.float64)
    if n < 2:
        return d, gain, smaller
    cut, _ = otsu_cuts(v)
    rows = torch.isfinite(cut).nonzero().flatten()
    if rows.numel() == 0:
        return d, gain, smaller
    x = v[rows]
    r = (x > cut[rows, None]).double()  # responsibility of the upper component
    # a component's spread is floored relative to the data's: tied scores would otherwise collapse a component
    # onto the tie, and D and the BIC gain would grow without bound
    floor = (0.05 * x.std(dim=1, unbiased=False)).clamp(min=1e-6)[:, None]
    ll1 = -0.5 * n * (torch.log(x.var(dim=1, unbiased=False).clamp(min=1e-300)) + 1.0)
    for it in range(iters):
        w1 = r.sum(1, keepdim=True)
        ok = ((w1 >= 0.5) & (n - w1 >= 0.5)).squeeze(1)
        if not bool(ok.all()):  # a component emptied: (0, -inf, 0) stays
            rows, x, r, floor, ll1, w1 = rows[ok], x[ok], r[ok], floor[ok], ll1[ok], w1[ok]
        if rows.numel() == 0:
            break
        w0 = n - w1
        mu0, mu1 = ((1 - r) * x).sum(1, keepdim=True) / w0, (r * x).sum(1, keepdim=True) / w1
        sd0 = (((1 - r) * (x - mu0) ** 2).sum(1, keepdim=True) / w0).sqrt().maximum(floor)
        sd1 = ((r * (x - mu1) ** 2).sum(1, keepdim=True) / w1).sqrt().maximum(floor)
        l0 = torch.log(w0 / n) - torch.log(sd0) - 0.5 * ((x - mu0) / sd0) ** 2
        l1 = torch.log(w1 / n) - torch.log(sd1) - 0.5 * ((x - mu1) / sd1) ** 2
        new = torch.sigmoid(l1 - l0)
        end = (new - r).abs().amax(1) < 1e-6
        if it == iters - 1:
            end = torch.ones_like(end)
        if bool(end.any()):
            e = rows[end]
            d[e] = (2 ** 0.5 * (mu1 - mu0).abs() / (sd0 ** 2 + sd1 ** 2).sqrt()).squeeze(1)[end]
            # log-likelihoods without the common -n/2 log(2 pi); 5 parameters against 2
            ll2 = torch.logaddexp(l0[end], l1[end]).sum(1)
            gain[e] = 2.0 * (ll2 - ll1[end]) - 3.0 * math.log(n)
            smaller[e] = torch.minimum(w1, w0).squeeze(1)[end]
        keep = ~end
        rows, x, r, floor, ll1 = rows[keep], x[keep], new[keep], floor[keep], ll1[keep]
    return d, gain, smaller


def _statistic(v: torch.Tensor, iters: int) -> torch.Tensor:
    """D of each row where the mixture beats one normal by BIC and each component holds enough values, else 0."""
    d, gain, smaller = mixture_fits(v, iters)
    return torch.where((gain > 0) & (smaller >= MIN_GROUP_SIZE), d, torch.zeros_like(d))


def null_separation(n: int, *, iters: int = 100) -> Tuple[float, float]:
    """The ``1 - FALSE_SPLIT_RATE`` quantiles (normal, Gamma(2, 1)) of the two-groups statistic (D where the
    mixture beats one normal by BIC with at least :data:`MIN_GROUP_SIZE` per component, else 0) over
    :data:`NULL_DRAWS` seeded draws of ``min(n, NULL_MAX_N)`` values from each family. Deterministic; cached.

    Cost (measured on one CPU core, see ``docs/training-dynamics.md``): well under a second at ``n`` = 1,000, a
    few seconds from :data:`NULL_MAX_N` on (so also at 50,000), once per ``n`` in a process.
    """
    if not (isinstance(iters, int) and iters >= 1):
        raise ConfigError(f"iters={iters!r}: expected a positive integer (EM passes)")
    return _null_quantiles(min(max(int(n), 1), NULL_MAX_N), iters)


@functools.lru_cache(maxsize=256)
def _null_quantiles(m: int, iters: int) -> Tuple[float, float]:
    if m < 2:
        return 0.0, 0.0
    g = torch.Generator().manual_seed(NULL_SEED)
    per = max(1, _CHUNK // m)
    draws = min(NULL_DRAWS[1], max(NULL_DRAWS[0], 1_000_000 // m))
    out = []
    for family in ("normal", "gamma"):
        stats = []
        for start in range(0, draws, per):
            b = min(per, draws - start)
            if family == "normal":
                draw = torch.randn(b, m, generator=g, dtype=torch.float64)
            else:  # Gamma(2, 1) is the sum of two unit exponentials
                u = torch.rand(2, b, m, generator=g, dtype=torch.float64).clamp(min=1e-300)
                draw = -torch.log(u).sum(0)
            stats.append(_statistic(draw, iters))
        s = torch.cat(stats)
        out.append(float(torch.quantile(s, 1.0 - FALSE_SPLIT_RATE, interpolation="higher")))
    return out[0], out[1]


def min_separation(n: int, *, iters: int = 100) -> float:
    """The separation D that :func:`two_groups` requires of ``n`` scores: the larger of Ashman's
    :data:`MIN_SEPARATION` and the bootstrap quantiles of :func:`null_separation`, so that one normal or
    Gamma(2, 1) group of ``n`` values splits with probability about :data:`FALSE_SPLIT_RATE` at most.

    Example:
        >>> min_separation(1000) == max(MIN_SEPARATION, *null_separation(1000))
        True
    """
    return max(MIN_SEPARATION, *null_separation(n, iters=iters))


def bimodal_separation(score: torch.Tensor, *, iters: int = 100) -> float:
    """Ashman's D of a two-component Gaussian mixture fitted to ``score`` by EM (started from Otsu's two groups):
    ``sqrt(2) * |mu1 - mu0| / sqrt(sd0**2 + sd1**2)``. For large samples a unimodal (even skewed) distribution
    gives D below about 2 and two distinct groups give more; for small samples the free variances overfit and a
    single group often gives D above 2, so decide with :func:`two_groups`, which accounts for the sample size.
    0 for fewer than two distinct finite values or when a component holds less than half an example.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> one = torch.randn(500, generator=g)
        >>> two = torch.cat([one, torch.randn(60, generator=g) + 6])
        >>> bimodal_separation(one) < 2 < bimodal_separation(two)
        True
    """
    return float(mixture_fits(score[torch.isfinite(score)].double()[None], iters)[0][0])


def two_groups(score: torch.Tensor, *, iters: int = 100) -> Tuple[bool, float]:
    """Whether the finite values of ``score`` form two groups, and their separation D
    (:func:`bimodal_separation`). Two groups when all of: D >= :func:`min_separation` of the sample size, the
    two-component mixture beats one normal by BIC, and each component holds at least :data:`MIN_GROUP_SIZE`
    examples. The cut-off is calibrated so that a single normal or Gamma(2, 1) group splits at a rate of about
    :data:`FALSE_SPLIT_RATE` (1%) at any size: EM with a free variance per component overfits small samples, and
    with D >= 2 alone one normal group of 10 values "split" 46 times in 50.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> one = torch.randn(20, generator=g)
        >>> two = torch.cat([torch.randn(90, generator=g), torch.randn(10, generator=g) + 6])
        >>> two_groups(one)[0], two_groups(two)[0]
        (False, True)
    """
    v = score[torch.isfinite(score)].double()
    d, gain, smaller = (float(t[0]) for t in mixture_fits(v[None], iters))
    return bool(d >= min_separation(v.numel(), iters=iters) and gain > 0 and smaller >= MIN_GROUP_SIZE), d
