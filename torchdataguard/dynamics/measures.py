"""Data-map measures (Swayamdipta et al. 2020), the area under the margin (Pleiss et al. 2020) and the
one-run label-issue detectors built on them.

From ``view[example, epoch, field]`` (see :mod:`.store`): *confidence* is the mean over epochs of the
probability of the given label, *variability* its standard deviation over epochs, *correctness* the share of
epochs in which the prediction was right, and *aum* the mean margin (given-label logit minus the largest other).
Regions: ``ambiguous`` when variability >= 0.2, else ``easy`` when confidence >= 0.5, else ``hard``.

Detectors (registered by name; a flagged example's ``score`` grows with suspicion):

* ``"auto"`` (default, :func:`auto_detect`): per-epoch standardised margins averaged over the epoch prefix that
  separates most clearly, cut by Otsu's method when the scores form two groups (:mod:`.separation`; else
  nothing is flagged); no threshold to tune. Chosen by ``benchmarks/label_issues.py``.
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

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..registry import Registry
from .separation import min_separation, otsu_cuts, two_groups
from .store import CORRECT, LOSS, MARGIN, PROB

__all__ = ["AMBIGUOUS_VARIABILITY", "DETECTORS", "Detector", "auto_detect", "data_map_measures", "margin_z",
           "otsu_split", "regions"]

#: variability at or above which an example is ``ambiguous``
AMBIGUOUS_VARIABILITY = 0.2


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
    cut, eta = otsu_cuts(score[torch.isfinite(score)].double()[None])
    return float(cut[0]), float(eta[0])


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
       Gaussian mixture of them separates by at least :func:`min_separation` of their number (Ashman's D;
       at least 2, more for small samples, calibrated by a parametric bootstrap so that one normal or
       Gamma(2, 1) group splits about 1% of the time), beats one normal by BIC and puts at least 3 examples
       in each component (:mod:`.separation`). Clean labels give one skewed group whose tail holds the hard
       examples, and Otsu's method would cut that tail anyway. With a ``threshold`` the test is
       skipped and ``separation`` and ``min_separation`` are ``None``.
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
    split, sep = (True, None) if threshold is not None else two_groups(sc)
    need = None if threshold is not None else min_separation(int(torch.isfinite(sc).sum()))
    if not split:
        flag = torch.zeros_like(flag)
    return flag, torch.nan_to_num(sc, nan=0.0).float(), {"epochs_used": e, "first_usable_epoch": first,
                                                         "cut": round(cut, 4) if finite else None,
                                                         "separation": None if sep is None else round(sep, 3),
                                                         "min_separation": None if need is None else round(need, 3),
                                                         "split": split}


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
