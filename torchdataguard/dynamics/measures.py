"""Data-map measures (Swayamdipta et al. 2020), the area under the margin (Pleiss et al. 2020) and the
one-run label-issue detectors built on them.

From ``view[example, epoch, field]`` (see :mod:`.store`): *confidence* is the mean over epochs of the
probability of the given label, *variability* its standard deviation over epochs, *correctness* the share of
epochs in which the prediction was right, and *aum* the mean margin (given-label logit minus the largest other).
Regions: ``ambiguous`` when variability >= 0.2, else ``easy`` when confidence >= 0.5, else ``hard``.

Detectors (registered by name; a flagged example's ``score`` grows with suspicion):

* ``"auto"`` (default, :func:`auto_detect`): per-epoch standardised margins averaged over the epoch prefix that
  separates most clearly, cut by Otsu's method when the scores form two groups (else nothing is flagged); no
  threshold to tune. Chosen by ``benchmarks/label_issues.py``.
* ``"aum"``: flag ``aum < threshold`` (default 0: on average over training, the model scored another class
  above the given one); score ``-aum``.
* ``"confidence"``: flag ``confidence < threshold`` (default 0.2); score ``1 - confidence``.

Example:
    >>> import torch
    >>> view = torch.tensor([[[0.9, 1.0, 2.0, 0.1]], [[0.1, 0.0, -2.0, 2.3]]])  # 2 examples, 1 epoch
    >>> m = data_map_measures(view)
    >>> m["aum"].tolist(), regions(m)
    ([2.0, -2.0], ['easy', 'hard'])
    >>> DETECTORS.get("aum").detect(view, None)[0].tolist()
    [False, True]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..errors import ConfigError
from ..registry import Registry
from .store import CORRECT, LOSS, MARGIN, PROB

__all__ = ["AMBIGUOUS_VARIABILITY", "DETECTORS", "Detector", "MIN_GROUP_SIZE", "MIN_SEPARATION",
           "LARGE_SAMPLE", "auto_detect", "bimodal_separation", "data_map_measures", "group_test",
           "margin_z", "min_separation", "otsu_split", "regions", "two_groups"]

#: variability at or above which an example is ``ambiguous``
AMBIGUOUS_VARIABILITY = 0.2
#: the separation (Ashman's D) two groups need at least: two normal components are cleanly apart only from D > 2
#: (Ashman, Bird and Zepf 1994)
MIN_SEPARATION = 2.0
#: the fewest examples (effective, from the mixture's responsibilities) each of two groups must hold
MIN_GROUP_SIZE = 3.0
#: from this many scores on, :func:`two_groups` asks for D >= :data:`MIN_SEPARATION` only: with the ICL test, one
#: group of 1,000 or 2,000 values from any of six families (normal, Gamma(2, 1), exponential, log-normal(0, 0.5),
#: uniform, a normal rounded to whole numbers) reaches D >= 2 in under 1% of 400 seeded draws (99% quantiles 1.85
#: and 1.71; measured 2026-12-06). Below it the small-sample margin ``14 / sqrt(n)`` stays.
LARGE_SAMPLE = 1000


def _nanmean(x: torch.Tensor) -> torch.Tensor:
    return torch.nanmean(x, dim=1)


def data_map_measures(view: torch.Tensor) -> Dict[str, torch.Tensor]:
    """``confidence``, ``variability``, ``correctness``, ``aum``, ``loss`` and ``epochs_seen`` per example."""
    p = view[:, :, PROB]
    seen = (~torch.isnan(p)).sum(1)
    conf = _nanmean(p)
    dev = torch.where(torch.isnan(p), torch.zeros_like(p), p - conf[:, None])
    var = torch.sqrt((dev ** 2).sum(1) / seen.clamp(min=1))
    return {"confidence": conf, "variability": var, "correctness": _nanmean(view[:, :, CORRECT]),
            "aum": _nanmean(view[:, :, MARGIN]), "loss": _nanmean(view[:, :, LOSS]), "epochs_seen": seen}


def regions(m: Dict[str, torch.Tensor]) -> List[str]:
    """The data-map region of each example."""
    out = []
    for c, v in zip(m["confidence"].tolist(), m["variability"].tolist()):
        out.append("ambiguous" if v >= AMBIGUOUS_VARIABILITY else ("easy" if c >= 0.5 else "hard"))
    return out


def otsu_split(score: torch.Tensor) -> Tuple[float, float]:
    """Otsu's threshold on ``score`` (the cut that maximises the between-group variance) and its effectiveness
    (between-group over total variance, 0..1). ``(inf, 0)`` for fewer than two distinct finite values."""
    v = score[torch.isfinite(score)].double().sort().values
    n = v.numel()
    if n < 2 or float(v[-1] - v[0]) == 0.0:
        return float("inf"), 0.0
    cs = v.cumsum(0)
    i = torch.arange(1, n, dtype=torch.float64, device=v.device)
    m0 = cs[:-1] / i
    m1 = (cs[-1] - cs[:-1]) / (n - i)
    between = (i / n) * (1 - i / n) * (m0 - m1) ** 2
    k = int(between.argmax())
    return float((v[k] + v[k + 1]) / 2), float(between[k] / v.var(unbiased=False).clamp(min=1e-300))


def _mixture_fit(v: torch.Tensor, iters: int) -> Tuple[float, float, float, float]:
    """EM fit of two normal components to the finite values ``v`` (float64), started from Otsu's two groups:
    ``(D, delta_bic, delta_icl, smaller_weight)``. ``delta_bic`` is the two-component fit's BIC gain over one normal
    (positive: the mixture wins); ``delta_icl`` the same gain less twice the entropy of the assignments (the
    integrated completed likelihood, Biernacki, Celeux and Govaert 2000); ``smaller_weight`` the effective number of
    examples in the smaller component."""
    if not (isinstance(iters, int) and iters >= 1):
        raise ConfigError(f"iters={iters!r}: expected a positive integer (EM passes)")
    none = (0.0, float("-inf"), float("-inf"), 0.0)
    cut, _ = otsu_split(v)
    if cut == float("inf"):
        return none
    r = (v > cut).double()  # responsibility of the upper component
    n = v.numel()
    # a component's spread is floored relative to the data's: tied scores would otherwise collapse a component
    # onto the tie, and D and the BIC gain would grow without bound
    floor = max(1e-6, 0.05 * float(v.std(unbiased=False)))
    for _ in range(iters):
        w1 = r.sum()
        if float(w1) < 0.5 or float(n - w1) < 0.5:
            return none
        mu0, mu1 = ((1 - r) * v).sum() / (n - w1), (r * v).sum() / w1
        sd0 = (((1 - r) * (v - mu0) ** 2).sum() / (n - w1)).sqrt().clamp(min=floor)
        sd1 = ((r * (v - mu1) ** 2).sum() / w1).sqrt().clamp(min=floor)
        l0 = torch.log((n - w1) / n) - torch.log(sd0) - 0.5 * ((v - mu0) / sd0) ** 2
        l1 = torch.log(w1 / n) - torch.log(sd1) - 0.5 * ((v - mu1) / sd1) ** 2
        new = torch.sigmoid(l1 - l0)
        done = float((new - r).abs().max()) < 1e-6
        r = new
        if done:
            break
    d = float(2 ** 0.5 * (mu1 - mu0).abs() / (sd0 ** 2 + sd1 ** 2).sqrt())
    # log-likelihoods without the common -n/2 log(2 pi); 5 parameters against 2
    ll2 = float(torch.logaddexp(l0, l1).sum())
    ll1 = -0.5 * n * (math.log(float(v.var(unbiased=False).clamp(min=1e-300))) + 1.0)
    bic = 2.0 * (ll2 - ll1) - 3.0 * math.log(n)
    p = r.clamp(1e-12, 1 - 1e-12)
    entropy = float(-(p * p.log() + (1 - p) * (1 - p).log()).sum())
    return d, bic, bic - 2.0 * entropy, float(min(r.sum(), n - r.sum()))


def bimodal_separation(score: torch.Tensor, *, iters: int = 100) -> float:
    """Ashman's D of a two-component Gaussian mixture fitted to ``score`` by EM (started from Otsu's two groups):
    ``sqrt(2) * |mu1 - mu0| / sqrt(sd0**2 + sd1**2)``. Two normal components are cleanly apart only from D > 2,
    but a single group that is not normal (flat-topped, skewed) also gives D above 2 when it is large, and
    small samples overfit; decide with :func:`two_groups`. 0 for fewer than two distinct finite values or when a
    component holds less than half an example.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> one = torch.randn(500, generator=g)
        >>> two = torch.cat([one, torch.randn(60, generator=g) + 6])
        >>> bimodal_separation(one) < 2 < bimodal_separation(two)
        True
    """
    return _mixture_fit(score[torch.isfinite(score)].double(), iters)[0]


def min_separation(n: int) -> float:
    """The separation D that :func:`two_groups` requires of ``n`` scores: ``MIN_SEPARATION + 14 / sqrt(n)`` below
    :data:`LARGE_SAMPLE` scores (2.99 at 200, 2.63 at 500; measured so that one normal or Gamma(2, 1) group of 5
    to 1,000 values passes at most 2 times in 50), :data:`MIN_SEPARATION` from there on."""
    return MIN_SEPARATION if n >= LARGE_SAMPLE else MIN_SEPARATION + 14.0 / math.sqrt(max(n, 1))


def group_test(score: torch.Tensor, *, iters: int = 100) -> Dict[str, Any]:
    """The test behind :func:`two_groups`, with its numbers: ``split``, ``separation`` (Ashman's D),
    ``icl_gain`` (the two-component fit's ICL gain over one normal, per score) and ``smaller`` (the effective
    size of the smaller component)."""
    v = score[torch.isfinite(score)].double()
    d, _, icl, smaller = _mixture_fit(v, iters)
    split = icl > 0 and smaller >= MIN_GROUP_SIZE and d >= min_separation(v.numel())
    return {"split": bool(split), "separation": d, "icl_gain": icl / max(v.numel(), 1) if icl > float("-inf") else None,
            "smaller": smaller}


def two_groups(score: torch.Tensor, *, iters: int = 100) -> Tuple[bool, float]:
    """Whether the finite values of ``score`` form two groups, and their separation D
    (:func:`bimodal_separation`). Two groups when all of:

    * the two-component Gaussian mixture beats one normal by the integrated completed likelihood (ICL: BIC less
      twice the entropy of the assignments; Biernacki, Celeux and Govaert 2000). A single group that is not
      normal (skewed, flat-topped) is fitted better by two overlapping components, and BIC prefers them ever more
      surely as the sample grows; ICL charges for the overlap, so it keeps one group there however large the
      sample, and two where the groups barely overlap;
    * each component holds at least :data:`MIN_GROUP_SIZE` examples;
    * D >= :func:`min_separation` of the sample size: 2 (Ashman) from :data:`LARGE_SAMPLE` scores on, more for
      smaller samples, where EM with a free variance per component overfits and ICL alone does not hold (one
      normal group of 10 values passes D >= 2 46 times in 50; an exponential group of 50 passes ICL 19 times
      in 50).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> one = torch.randn(20, generator=g)
        >>> two = torch.cat([torch.randn(90, generator=g), torch.randn(10, generator=g) + 6])
        >>> flat = torch.rand(5000, generator=g)  # one flat-topped group: D is about 3, but the halves overlap
        >>> two_groups(one)[0], two_groups(two)[0], two_groups(flat)[0]
        (False, True, False)
    """
    t = group_test(score, iters=iters)
    return t["split"], t["separation"]


def margin_z(view: torch.Tensor) -> torch.Tensor:
    """Margins standardised per epoch (minus the epoch's median, over its interquartile range): the scale of
    logits grows as training goes on, so raw margins of late epochs would outweigh early ones."""
    m = view[:, :, MARGIN].double()
    med = torch.nanquantile(m, 0.5, dim=0)
    iqr = torch.nanquantile(m, 0.75, dim=0) - torch.nanquantile(m, 0.25, dim=0)
    return (m - med) / iqr.clamp(min=1e-9)


def auto_detect(view: torch.Tensor, threshold: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, Any]]:
    """The default detector.

    Mislabelled examples are learnt late, if at all, and a large model memorises them in the end; so the
    detector reads the epochs after the model has learnt the bulk of the data and before it memorises:

    1. the first usable epoch is the first whose share of correct predictions reaches 90% of the best share
       in the first half of training (the model has learnt what it learns early);
    2. the score of an example is minus its margin standardised per epoch (:func:`margin_z`), averaged over
       the epochs up to ``e``; ``e`` (from the first usable epoch on) is the one whose scores split most
       clearly in two (Otsu's effectiveness), among those that flag at most half of the examples;
    3. flagged: score above Otsu's cut (or above ``threshold`` when given) and a negative mean raw margin
       over those epochs (the model preferred another class);
    4. without a ``threshold``, only when the scores form two groups (:func:`two_groups`): a two-component
       Gaussian mixture of them beats one normal by the integrated completed likelihood (BIC less the entropy of
       the assignments, which charges for overlapping components), separates by at least
       :func:`min_separation` (Ashman's D >= 2; more for small samples) and puts at least
       :data:`MIN_GROUP_SIZE` examples in each component. Clean labels give one skewed or flat-topped group whose
       tail holds the hard examples; Otsu's method would cut that tail anyway, and a mixture fits it better than
       one normal, but with heavily overlapping components. With a ``threshold`` the test is skipped and
       ``separation`` and ``icl_gain`` are ``None``.
    """
    n, epochs = view.shape[0], view.shape[1]
    if n < 2 or epochs == 0:
        return torch.zeros(n, dtype=torch.bool), torch.zeros(n), {"epochs_used": 0}
    z = margin_z(view)
    raw = view[:, :, MARGIN].double()
    corr = torch.nanmean(view[:, :, CORRECT].double(), dim=0)
    half = max(1, (epochs + 1) // 2)
    target = 0.9 * float(torch.nan_to_num(corr[:half], nan=0.0).max())
    first = int((torch.nan_to_num(corr, nan=0.0) >= target).nonzero()[0]) + 1
    best: Optional[Tuple[Tuple[bool, float], int, float, torch.Tensor, torch.Tensor]] = None
    for e in range(max(first, min(2, epochs)), epochs + 1):
        sc = -torch.nanmean(z[:, :e], dim=1)
        cut, eta = otsu_split(sc)
        cut = cut if threshold is None else float(threshold)
        flag = (torch.nan_to_num(sc, nan=float("-inf")) > cut) & (torch.nan_to_num(torch.nanmean(raw[:, :e], dim=1), nan=0.0) < 0)
        key = (float(flag.double().mean()) <= 0.5, eta)
        if best is None or key > best[0]:
            best = (key, e, cut, sc, flag)
    assert best is not None
    _, e, cut, sc, flag = best
    finite = cut == cut and abs(cut) != float("inf")
    test = {"split": True, "separation": None, "icl_gain": None} if threshold is not None else group_test(sc)
    if not test["split"]:
        flag = torch.zeros_like(flag)
    sep, icl = test["separation"], test["icl_gain"]
    return flag, torch.nan_to_num(sc, nan=0.0).float(), {"epochs_used": e, "first_usable_epoch": first,
                                                         "cut": round(cut, 4) if finite else None,
                                                         "separation": None if sep is None else round(sep, 3),
                                                         "icl_gain": None if icl is None else round(icl, 3),
                                                         "split": test["split"]}


@dataclass(frozen=True)
class Detector:
    """A one-run label-issue detector: ``detect(view, threshold) -> (flag, score, info)``."""

    name: str
    detect: Callable[[torch.Tensor, Optional[float]], Tuple[torch.Tensor, torch.Tensor, Dict[str, Any]]]


def _simple(measure: str, default: float, sign: float) -> Callable[..., Tuple[torch.Tensor, torch.Tensor, Dict[str, Any]]]:
    def detect(view: torch.Tensor, threshold: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, Any]]:
        m = data_map_measures(view)
        t = default if threshold is None else float(threshold)
        value = m[measure]
        flag = (torch.nan_to_num(value, nan=float("inf")) < t) & (m["epochs_seen"] > 0)
        return flag, sign * value + (1.0 if measure == "confidence" else 0.0), {"threshold": t}

    return detect


#: label-issue detectors by name
DETECTORS: "Registry[Detector]" = Registry("label-issue detector")
DETECTORS.register("auto")(Detector("auto", auto_detect))
DETECTORS.register("aum")(Detector("aum", _simple("aum", 0.0, -1.0)))
DETECTORS.register("confidence")(Detector("confidence", _simple("confidence", 0.2, -1.0)))
