"""Membership-inference AUC and exposure (Carlini et al. 2019, "The Secret Sharer").

Example:
    >>> auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])
    1.0
    >>> exposure(0.5, [1.0, 2.0, 3.0])   # lower loss than all 3 candidates: rank 1 of 4
    2.0
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch

from ..errors import ConfigError

__all__ = ["auc", "exposure", "exposures"]


def auc(scores: Sequence[float], coins: Sequence[int]) -> Optional[float]:
    """The area under the ROC curve of ``scores`` (higher: more likely trained on) against ``coins``: the
    probability that a random included canary scores above a random left-out one (ties count half). 0.5 is
    chance; ``None`` when one side is empty.
    """
    s = torch.as_tensor([float(x) for x in scores], dtype=torch.float64)
    c = torch.as_tensor([int(x) for x in coins], dtype=torch.int64)
    if s.numel() != c.numel():
        raise ConfigError(f"auc: {s.numel()} scores but {c.numel()} coins; give one coin per score")
    pos, neg = s[c == 1], s[c == 0]
    if pos.numel() == 0 or neg.numel() == 0:
        return None
    # Mann-Whitney U from average ranks (ties get their mean rank)
    both = torch.cat([pos, neg])
    sorted_vals, order = torch.sort(both, stable=True)
    ranks = torch.empty_like(both)
    ranks[order] = torch.arange(1, both.numel() + 1, dtype=torch.float64)
    uniq, inverse, counts = torch.unique_consecutive(sorted_vals, return_inverse=True, return_counts=True)
    if uniq.numel() < both.numel():  # average the ranks of tied values
        sums = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inverse, ranks[order])
        ranks[order] = (sums / counts.to(torch.float64))[inverse]
    n_pos, n_neg = pos.numel(), neg.numel()
    u = float(ranks[:n_pos].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def exposure(secret_loss: float, candidate_losses: Sequence[float]) -> float:
    """Exposure in bits of a secret whose loss is ``secret_loss``, among ``candidate_losses`` of other secrets
    from the same template: ``log2(N + 1) - log2(rank)``, where ``rank`` is 1 + the number of candidates with a
    lower loss (ties count half) among the ``N + 1`` secrets. The most a sample of ``N`` candidates can show is
    ``log2(N + 1)``; a secret the model never saw has about ``log2(e) = 1.44`` bits on average.
    """
    cands = torch.as_tensor([float(x) for x in candidate_losses], dtype=torch.float64)
    if cands.numel() == 0:
        raise ConfigError("exposure needs at least one candidate secret to rank the secret against")
    if not math.isfinite(secret_loss):
        raise ConfigError(f"exposure: the secret's loss is {secret_loss!r}; expected a finite number")
    rank = 1.0 + float((cands < secret_loss).sum()) + 0.5 * float((cands == secret_loss).sum())
    return math.log2(cands.numel() + 1) - math.log2(rank)


def exposures(secret_losses: Sequence[float], candidate_losses: Sequence[float]) -> List[float]:
    """:func:`exposure` of every secret against the same candidates."""
    return [exposure(float(x), candidate_losses) for x in secret_losses]
