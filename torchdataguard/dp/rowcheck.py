"""Preflight check that the rows of a batch do not influence each other, and which layers run twice.

DP-SGD bounds each example's influence by clipping its own gradient. That is only a bound when example ``i``'s
gradient does not depend on example ``j``: a model that normalises over the batch (``h - h.mean(0)``), pools
or attends across rows, routes tokens by batch capacity or scores in-batch negatives has no per-example
gradient, yet its per-row gradients still add up to the batch gradient (so the summed-gradient check cannot
see it). This check looks at the model directly, on the preflight batch:

1. pass A: the batch as it is;
2. pass A': the same again (how much two identical passes differ: the noise floor);
3. pass B: the same batch with its last row replaced by a copy of its first (in the batch itself, so stages that
   rewrite the batch before the model, such as MixUp, are checked with it).

All three passes draw the same random numbers (the caller restores one random state before each, so dropout
masks and augmentation draws repeat). If rows are independent, row 0 of every per-row tensor (the input of
each trainable layer, and every row-shaped tensor of the model's output: logits, hidden states, tuples and
``ModelOutput`` fields alike) is the same in A and B; a change beyond the noise floor means another row moved
it. Pass A also counts how often each trainable layer runs in one forward pass (a layer called twice needs
per-sample gradients under ghost clipping).

Example:
    >>> import torch, torch.nn as nn
    >>> class Centre(nn.Module):
    ...     def __init__(self):
    ...         super().__init__(); self.a = nn.Linear(3, 4); self.b = nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         h = self.a(x); return self.b(h - h.mean(0, keepdim=True))
    >>> model, x = Centre(), torch.randn(2, 3)
    >>> check_row_independence(model, x, model, batch_rows=2, model_rows=lambda: 2).changed
    ['input of b', 'output']
    >>> plain = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    >>> check_row_independence(plain, x, plain, batch_rows=2, model_rows=lambda: 2).changed
    []
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

__all__ = ["RowCheck", "check_row_independence", "copy_first_row", "row_tensors"]

@dataclass
class RowCheck:
    """What :func:`check_row_independence` found (JSON-able through ``dataclasses.asdict``)."""

    rows: int = 0
    points: int = 0
    changed: List[str] = field(default_factory=list)
    worst_change: float = 0.0
    noise_floor: float = 0.0
    called_twice: List[str] = field(default_factory=list)
    skipped: Optional[str] = None


def row_tensors(obj: Any, rows: int, prefix: str = "output", depth: int = 0) -> Dict[str, torch.Tensor]:
    """Every tensor in ``obj`` (tensor, tuple/list, dict, ``ModelOutput``) whose first dimension is ``rows``.

    Example:
        >>> sorted(row_tensors({"loss": torch.tensor(1.0), "logits": torch.zeros(2, 3)}, 2))
        ['output.logits']
    """
    out: Dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        if obj.dim() >= 1 and obj.shape[0] == rows and (obj.is_floating_point() or obj.is_complex()):
            out[prefix] = obj
        return out
    if depth > 3:
        return out
    if hasattr(obj, "items") and hasattr(obj, "keys"):
        for k, v in obj.items():
            out.update(row_tensors(v, rows, f"{prefix}.{k}", depth + 1))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(row_tensors(v, rows, f"{prefix}[{i}]", depth + 1))
    return out


def copy_first_row(batch: Any, rows: int, *, skip: Tuple[str, ...] = ()) -> Tuple[Any, bool]:
    """``batch`` (tensor, tuple/list, mapping) with row ``rows - 1`` of every per-row tensor replaced by row 0,
    and whether that changed anything. Keys in ``skip`` are left as they are.

    Example:
        >>> copy_first_row({"x": torch.tensor([[1], [2]]), "y": torch.tensor([0, 1])}, 2)
        ({'x': tensor([[1],
                [1]]), 'y': tensor([0, 0])}, True)
    """
    changed = False

    def fix(v: Any) -> Any:
        nonlocal changed
        if isinstance(v, torch.Tensor):
            if v.dim() >= 1 and v.shape[0] == rows:
                if not torch.equal(v[rows - 1], v[0]):
                    changed = True
                v = v.clone()
                v[rows - 1] = v[0]
            return v
        if hasattr(v, "items") and hasattr(v, "keys"):
            return {k: (x if k in skip else fix(x)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(fix(x) for x in v) if type(v) in (list, tuple) else v
        return v

    return fix(batch), changed


def check_row_independence(model: nn.Module, batch: Any, run_forward: Callable[[Any], Any], *, batch_rows: int,
                           model_rows: Callable[[], Optional[int]], skip: Tuple[str, ...] = (),
                           rtol: float = 1e-4, atol: float = 1e-6) -> RowCheck:
    """Whether row 0 of the model's per-row tensors moves when only the last row of the batch changes.

    ``run_forward(batch)`` runs one forward pass of ``batch`` in training mode, from the same random state at every
    call (dropout masks and augmentation draws repeat), and returns the model's output. ``batch_rows``: the rows of
    ``batch``; ``model_rows()``: the rows of the model's input during the forward pass (more than ``batch_rows``
    when a stage before the model makes several views of each example; view 0 of example 0 comes first). The row
    is changed in the batch itself, so stages that run on the batch before the model (augmentation) are checked
    too. See the module docstring.
    """
    res = RowCheck()
    names = {id(m): (n or "<root>") for n, m in model.named_modules()}
    trainable = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    state: Dict[str, Any] = {"rows": None, "captures": None, "calls": None}

    def capture(module: nn.Module, args: tuple) -> None:
        calls = state["calls"]
        if calls is None:
            return
        n = calls[id(module)] = calls.get(id(module), 0) + 1
        rows = state["rows"] = model_rows() or state["rows"]
        if rows and args and isinstance(args[0], torch.Tensor):
            x = args[0]
            if x.dim() >= 1 and x.shape[0] == rows and x.is_floating_point():
                key = f"input of {names.get(id(module), '?')}" + (f" (call {n})" if n > 1 else "")
                state["captures"][key] = x[0].detach().clone()

    def one_pass(b: Any) -> Tuple[Dict[str, torch.Tensor], Dict[int, int]]:
        state["captures"], state["calls"], state["rows"] = {}, {}, None
        out = run_forward(b)
        caps = state["captures"]
        if state["rows"]:
            caps.update({k: v[0].detach().clone() for k, v in row_tensors(out, state["rows"]).items()})
        calls = state["calls"]
        state["captures"] = state["calls"] = None
        return caps, calls

    handles = [m.register_forward_pre_hook(capture) for m in trainable]
    try:
        first, calls = one_pass(batch)
        res.rows = int(state["rows"] or batch_rows)
        res.called_twice = sorted(names.get(k, "?") for k, n in calls.items() if n > 1)
        if batch_rows < 2:
            res.skipped = "the preflight batch has fewer than two rows"
            return res
        moved_batch, effective = copy_first_row(batch, batch_rows, skip=skip)
        if not effective:
            res.skipped = "the preflight rows are identical, so changing one row is not possible"
            return res
        again, _ = one_pass(batch)
        try:
            moved, _ = one_pass(moved_batch)
        except Exception as exc:  # noqa: BLE001 - a model that rejects the changed batch: say so, do not crash
            res.skipped = f"the model could not run the batch with one row changed ({type(exc).__name__}: {exc})"[:300]
            return res
    finally:
        for h in handles:
            h.remove()
    floor = 0.0
    unrepeatable = []
    for k, a in first.items():
        b = again.get(k)
        if b is not None and b.shape == a.shape and a.numel():
            d = float((a.float() - b.float()).abs().max())
            floor = max(floor, d)
            if d > atol + rtol * float(a.float().abs().max()):
                unrepeatable.append(k)
    res.noise_floor = floor
    if unrepeatable:
        res.skipped = (f"two identical passes differ at {unrepeatable[:3]}: randomness the preflight cannot repeat "
                       f"(an augmentation stage it was not given: make_private(..., guard=guard); random numbers "
                       f"from numpy or Python)")
        return res
    for k, a in first.items():
        b = moved.get(k)
        if b is None or b.shape != a.shape or a.numel() == 0:
            continue
        res.points += 1
        diff = float((a.float() - b.float()).abs().max())
        scale = float(a.float().abs().max())
        if diff > atol + rtol * scale + 10 * floor:
            res.changed.append(k)
            res.worst_change = max(res.worst_change, diff / max(scale, 1e-12))
    return res
