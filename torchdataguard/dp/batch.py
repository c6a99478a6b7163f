"""What the DP engine reads from a batch and from a model's output (shared by the engine, the clippers, the
preflight and the plain loop).

Example:
    >>> import torch
    >>> batch_rows((), {"input_ids": torch.zeros(3, 5)}), output_field({"loss": 1.0}, "loss")
    (3, 1.0)
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn

from .preflight import PreflightError

__all__ = ["UNIT_KEY", "batch_rows", "default_forward", "output_field", "preflight_rows", "surrogate_loss",
           "to_device"]

#: batch key holding the privacy unit id of each row (int64 [N]); popped before the model's forward.
UNIT_KEY = "tdg_unit_ids"


def batch_rows(args: tuple, kwargs: dict) -> Optional[int]:
    """The batch dimension of a model call's inputs (the first tensor found, preferring the usual keys)."""
    for key in ("input_ids", "inputs_embeds", "pixel_values", "input_values", "input_features", "attention_mask",
                "labels"):
        v = kwargs.get(key)
        if isinstance(v, torch.Tensor) and v.dim() >= 1:
            return int(v.shape[0])
    for v in list(args) + list(kwargs.values()):
        if isinstance(v, torch.Tensor) and v.dim() >= 1:
            return int(v.shape[0])
    return None


def preflight_rows(batch: Any) -> int:
    """The rows of a collated batch (tensor, tuple/list or mapping); refused when it holds no batched tensor."""
    n = batch_rows((batch,) if isinstance(batch, torch.Tensor) else tuple(batch) if isinstance(batch, (list, tuple))
                   else (), dict(batch) if hasattr(batch, "keys") else {})
    if n is None:
        raise PreflightError("the preflight batch holds no tensor with a batch dimension")
    return n


def to_device(batch: Any, device) -> Any:
    """``batch`` (tensor, mapping, list or tuple, nested) with every tensor moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()}) if type(batch) is dict else \
            {k: to_device(v, device) for k, v in batch.items()}
    if hasattr(batch, "items") and hasattr(batch, "keys"):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def output_field(output: Any, key: str) -> Any:
    """``output.key`` or ``output[key]`` (Hugging Face ModelOutput, dict, or anything else)."""
    if isinstance(output, torch.Tensor):
        return None
    if isinstance(output, dict):
        return output.get(key)
    return getattr(output, key, None)


def default_forward(model: nn.Module, batch: Any) -> Any:
    """How the preflight calls the model: ``model(**batch)`` for mappings, ``model(batch[0])`` for tuples."""
    if hasattr(batch, "keys"):
        return model(**dict(batch))
    if isinstance(batch, (list, tuple)):
        return model(batch[0])
    return model(batch)


def surrogate_loss(out: Any) -> torch.Tensor:
    """A row-separable scalar of a model's output (for the preflight when no loss is given)."""
    if isinstance(out, torch.Tensor):
        return out.float().pow(2).mean()
    logits = output_field(out, "logits")
    if isinstance(logits, torch.Tensor):
        return logits.float().pow(2).mean()
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], torch.Tensor):
        return out[0].float().pow(2).mean()
    raise PreflightError("the preflight could not find a tensor in the model's output to check per-sample "
                         "gradients; pass loss_fn= to make_private or set DPConfig(preflight=False)")
