"""Per-example losses read from a model's output, and how the model reduces them to its loss.

* :func:`per_sample_loss`: each example's loss for classification, regression, multi-label and token-level
  outputs (ghost clipping back-propagates them; the preflight checks them against the model's loss).
* :class:`LossRule`: which weighted sum of per-example losses the model's loss is (a mean over rows, a mean
  over tokens, a sum over the Trainer's ``num_items_in_batch``), learnt from the first batches, so that
  each example's gradient can be rescaled to that of its own loss before clipping.

Example:
    >>> import torch, torch.nn as nn
    >>> logits, labels = torch.randn(3, 4), torch.tensor([0, 1, 3])
    >>> per, batch = per_sample_loss(nn.Identity(), logits, labels)
    >>> rule = LossRule()
    >>> rule.identify(per, token_counts(nn.Identity(), logits, labels), batch, None); rule.name
    'row_mean'
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import torch
import torch.nn as nn

__all__ = ["LossRule", "is_causal_lm", "per_sample_loss", "token_counts"]


def is_causal_lm(model: nn.Module) -> bool:
    """Whether the model predicts the next token (its labels are shifted by one before the loss)."""
    name = type(model).__name__
    if "CausalLM" in name or name.endswith("LMHeadModel"):
        return True
    cfg = getattr(model, "config", None)
    return bool(getattr(cfg, "is_decoder", False)) and not bool(getattr(cfg, "is_encoder_decoder", False))


def token_counts(model: nn.Module, logits: Any, labels: Any) -> Optional[torch.Tensor]:
    """How many loss terms each row contributes (1 per row for sequence-level tasks), or ``None``."""
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor) or logits.shape[0] != labels.shape[0]:
        return None
    n = logits.shape[0]
    if logits.dim() == 2 and (labels.dim() == 1 or labels.shape == logits.shape):
        return torch.ones(n, device=logits.device)
    if logits.dim() == 3 and labels.dim() == 2 and not labels.is_floating_point():
        lab = labels[:, 1:] if is_causal_lm(model) else labels
        return (lab != -100).sum(1).to(logits.device, torch.float32)
    return None


def per_sample_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor
                    ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """Per-example losses ``[N]`` of a Hugging Face-style output, and the batch loss the model would report.

    Handles single-label classification (cross-entropy), regression (MSE), multi-label (BCE) and token-level
    losses (cross-entropy over tokens, shifted for causal LMs, ``-100`` ignored; one example's loss is the mean
    over its tokens). Returns ``None`` for anything else.

    Example:
        >>> logits, labels = torch.randn(3, 4), torch.tensor([0, 1, 3])
        >>> per, batch = per_sample_loss(nn.Identity(), logits, labels)
        >>> per.shape, torch.allclose(batch, nn.functional.cross_entropy(logits, labels))
        (torch.Size([3]), True)
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor) or logits.shape[0] != labels.shape[0]:
        return None
    f = nn.functional
    n = logits.shape[0]
    cfg = getattr(model, "config", None)
    problem = getattr(cfg, "problem_type", None)
    if logits.dim() == 2 and labels.dim() == 1:
        if logits.shape[1] == 1 and (labels.is_floating_point() or problem == "regression"):
            per = f.mse_loss(logits.squeeze(-1).float(), labels.float(), reduction="none")
            return per, per.mean()
        if not labels.is_floating_point():
            per = f.cross_entropy(logits.float(), labels, reduction="none")
            return per, per.mean()
        return None
    if labels.shape == logits.shape and labels.is_floating_point() and logits.dim() == 2:
        el = f.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
        return el.mean(-1), el.mean()
    if logits.dim() == 3 and labels.dim() == 2 and not labels.is_floating_point():
        if is_causal_lm(model):
            logits, labels = logits[:, :-1], labels[:, 1:]
        tok = f.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100,
                              reduction="none").view(n, -1)
        valid = (labels != -100).sum(1)
        per = tok.sum(1) / valid.clamp(min=1)
        return per, tok.sum() / valid.sum().clamp(min=1)
    return None


class LossRule:
    """How the model's loss weighs its per-example losses: ``loss = sum_i w_i l_i``.

    Candidates: ``"sum_over_items"`` (``w_i`` = the row's loss terms over ``num_items_in_batch``),
    ``"row_mean"`` (``1/n``) and ``"token_mean"`` (the row's loss terms over all of the batch's). The rule that
    reproduces the model's loss is kept; while several do (rows of equal length), later batches are looked at
    again (up to 20). ``"unknown"`` when none does (``notes`` receives why).
    """

    def __init__(self, notes: Optional[Callable[[str], None]] = None) -> None:
        self.name: Optional[str] = None
        self.ambiguous = False
        self.checks = 0
        self._note = notes or (lambda msg: None)

    @property
    def undecided(self) -> bool:
        """Whether the next batch's per-example losses are needed to learn (or confirm) the rule."""
        return self.name is None or self.ambiguous

    def weights(self, counts: torch.Tensor, num_items: Optional[float]) -> Optional[torch.Tensor]:
        """Each row's weight ``w_i`` under the rule (``None`` when unknown)."""
        n = counts.shape[0]
        rule = self.name
        if rule == "row_mean":
            return torch.full_like(counts, 1.0 / n)
        if rule == "token_mean":
            return counts / counts.sum().clamp(min=1)
        if rule == "sum_over_items" and num_items:
            return counts / num_items
        return None

    def identify(self, per: torch.Tensor, counts: torch.Tensor, loss: torch.Tensor,
                 num_items: Optional[float]) -> None:
        """Learn the rule from one batch: per-example losses, loss terms per row, the model's loss."""
        n = counts.shape[0]
        cands: List[Tuple[str, torch.Tensor]] = []
        if num_items:
            cands.append(("sum_over_items", counts / num_items))
        cands += [("row_mean", torch.full_like(counts, 1.0 / n)), ("token_mean", counts / counts.sum().clamp(min=1))]
        target = float(loss.float().item())
        hits = [name for name, w in cands
                if abs(float((w.to(per.device) * per.float()).sum().item()) - target) <= 1e-4 * max(1.0, abs(target))]
        if not hits:
            self.name = "unknown"
            self.ambiguous = False
            self._note("the model's loss is not a weighted sum of per-example losses that the engine "
                       "recognises; per-sample gradients are taken as those of a mean over rows")
            return
        if self.name in hits:  # an earlier batch could not tell the rules apart; keep the one still valid
            hits.remove(self.name)
            hits.insert(0, self.name)
        self.name = hits[0]
        self.checks += 1
        # several rules give the same weights on this batch (equal lengths): look again on later batches
        self.ambiguous = len(hits) > 1 and self.checks < 20
