"""Data-map measures (Swayamdipta et al. 2020), the area under the margin (Pleiss et al. 2020) and the
one-run label-issue detectors built on them.

From ``view[example, epoch, field]`` (see :mod:`.store`): *confidence* is the mean over epochs of the
probability of the given label, *variability* its standard deviation over epochs, *correctness* the share of
epochs in which the prediction was right, and *aum* the mean margin (given-label logit minus the largest other).
Regions: ``ambiguous`` when variability >= 0.2, else ``easy`` when confidence >= 0.5, else ``hard``.

Detectors (registered by name; a flagged example's ``score`` grows with suspicion):

* ``"aum"`` (default): flag ``aum < threshold`` (default 0: on average over training, the model scored
  another class above the given one); score ``-aum``.
* ``"confidence"``: flag ``confidence < threshold`` (default 0.2); score ``1 - confidence``.

Example:
    >>> import torch
    >>> view = torch.tensor([[[0.9, 1.0, 2.0, 0.1]], [[0.1, 0.0, -2.0, 2.3]]])  # 2 examples, 1 epoch
    >>> m = data_map_measures(view)
    >>> m["aum"].tolist(), regions(m)
    ([2.0, -2.0], ['easy', 'hard'])
    >>> DETECTORS.get("aum").flag(m, None).tolist()
    [False, True]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch

from ..registry import Registry
from .store import CORRECT, LOSS, MARGIN, PROB

__all__ = ["AMBIGUOUS_VARIABILITY", "DETECTORS", "Detector", "data_map_measures", "regions"]

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


@dataclass(frozen=True)
class Detector:
    """A one-run label-issue detector: its default threshold, the flag rule and the suspicion score."""

    name: str
    default_threshold: float
    rule: Callable[[Dict[str, torch.Tensor], float], torch.Tensor]
    scorer: Callable[[Dict[str, torch.Tensor]], torch.Tensor]

    def flag(self, m: Dict[str, torch.Tensor], threshold: Optional[float]) -> torch.Tensor:
        t = self.default_threshold if threshold is None else float(threshold)
        return self.rule(m, t) & (m["epochs_seen"] > 0)

    def score(self, m: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.scorer(m)


#: label-issue detectors by name
DETECTORS: "Registry[Detector]" = Registry("label-issue detector")
DETECTORS.register("aum")(Detector("aum", 0.0, lambda m, t: m["aum"] < t, lambda m: -m["aum"]))
DETECTORS.register("confidence")(Detector("confidence", 0.2, lambda m, t: m["confidence"] < t,
                                          lambda m: 1.0 - m["confidence"]))
