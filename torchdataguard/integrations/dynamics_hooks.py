"""How :class:`~torchdataguard.TrainingDynamics` sees a model's training forward passes under the Trainer.

A forward pre-hook takes the example ids out of the model's inputs (models reject unknown keyword
arguments) and remembers them with the labels; a forward hook then gives the logits to the dynamics and,
under ``action="drop"`` / ``"downweight"``, replaces the output's ``loss`` with the cross-entropy weighted per
example (flagged rows get weight 0 or ``downweight``; a weighted mean over the batch), which is the loss the
Trainer then backpropagates (divided by the accumulation steps as usual). Evaluation passes are left alone.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..dynamics import TrainingDynamics
from ..errors import ConfigError

__all__ = ["DynamicsHooks", "check_dynamics", "keep_id_column"]

_FIX = ("with the Trainer, the ids travel as a column of the training data: wrap a torch Dataset / IterableDataset "
        "or a list with the guard (GuardCallback(guard, dynamics=...) turns the ids on before training), or for "
        "a datasets.Dataset call dynamics.attach(guard) BEFORE guard.wrap(...) and set "
        "TrainingArguments(remove_unused_columns=False)")


def keep_id_column(train_dataloader: Any, key: str) -> bool:
    """Let the id column through the Trainer's column filter (``remove_unused_columns``) of a torch dataset:
    the filter is a collator holding the list of columns the model accepts. True when it was found."""
    collate = getattr(train_dataloader, "collate_fn", None)
    cols = getattr(collate, "signature_columns", None)
    if isinstance(cols, list):
        if key not in cols:
            cols.append(key)
        return True
    return False


def _logits(output: Any) -> Optional[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return output
    try:
        value = output["logits"]
    except (KeyError, TypeError, IndexError):
        value = getattr(output, "logits", None)
    return value if isinstance(value, torch.Tensor) else None


class DynamicsHooks:
    """The two forward hooks on the model being trained (installed by ``GuardCallback``)."""

    def __init__(self, dynamics: TrainingDynamics) -> None:
        self.dynamics = dynamics
        self.handles: list = []
        self._ids: Any = None
        self._labels: Any = None
        self._armed = False

    def install(self, model: torch.nn.Module) -> None:
        self.handles = [model.register_forward_pre_hook(self._pre, with_kwargs=True),
                        model.register_forward_hook(self._post, with_kwargs=True)]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def _pre(self, module: torch.nn.Module, args: Any, kwargs: Any) -> Any:
        key = self.dynamics.id_key
        if kwargs and key in kwargs:
            kwargs = dict(kwargs)
            self._ids = kwargs.pop(key)
            self._labels = kwargs.get("labels")
            self._armed = module.training
            return args, kwargs
        self._armed = False
        if module.training:
            raise ConfigError(f"TrainingDynamics: a training batch arrived without example ids (no {key!r} in the "
                              f"model's inputs); {_FIX}")
        return None

    def _post(self, module: torch.nn.Module, args: Any, kwargs: Any, output: Any) -> Any:
        if not self._armed:
            return None
        self._armed = False
        ids, labels, self._ids, self._labels = self._ids, self._labels, None, None
        logits = _logits(output)
        if labels is None or logits is None:
            raise ConfigError("TrainingDynamics needs the batch's 'labels' and the model's 'logits' in training "
                              "(a model that returns a loss only, or a batch without labels, gives neither)")
        self.dynamics.update(ids, logits, labels)
        loss = self.dynamics.weighted_loss(ids, logits, labels)
        if loss is None:
            return None
        try:
            output["loss"] = loss
        except TypeError as exc:
            raise ConfigError(f"action={self.dynamics.action!r} replaces the model output's 'loss'; this model's "
                              f"output ({type(output).__name__}) cannot hold one") from exc
        return output


def check_dynamics(dynamics: Any, *, guard: Any, privacy: Any, distributed: bool) -> Optional[TrainingDynamics]:
    """``GuardCallback(dynamics=...)``: check it, refuse it under DP unless allowed, and attach it to ``guard``."""
    if dynamics is None:
        return None
    if not isinstance(dynamics, TrainingDynamics):
        raise ConfigError(f"dynamics= takes a tdg.TrainingDynamics, got {type(dynamics).__name__}")
    if distributed:
        raise ConfigError("dynamics= is not supported with a DistributedGuard yet: each rank would see only its "
                          "own examples; run TrainingDynamics in a single process")
    if privacy is not None:
        if not dynamics.allow_with_dp:
            raise ConfigError(
                "TrainingDynamics records per-example statistics of the private training data (losses, margins, "
                "flagged ids); they are not covered by the DP guarantee, and acting on them (drop/downweight) "
                "makes training depend on them. Pass TrainingDynamics(allow_with_dp=True) to accept that (the "
                "report will say so), or train without privacy= to use them")
        dynamics.under_dp = True
    return dynamics.attach(guard)

