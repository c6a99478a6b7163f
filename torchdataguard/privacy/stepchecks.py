"""Small checks and context managers the DP engine runs around the preflight and at every optimizer step.

* :func:`same_draws`: every preflight pass draws the same random numbers (torch's generators *and* the
  streams of the guard's augmentation stages, which are restored afterwards, so the preflight neither
  changes training's draws nor adds to the augmentation counters).
* :func:`inplace_off`: modules such as ``nn.ReLU(inplace=True)`` compute out of place while Opacus's full
  backward hooks are attached (an in-place op on a hooked layer's output is an autograd error there); the
  result is the same, only a buffer is not reused.
* :func:`untracked_trainables`: parameters that would be trained without clipping and noise.
* :func:`optimizer_steps_taken`: how many steps an optimizer's state says it took (to catch a resumed run
  whose privacy ledger was not loaded).
* :func:`ledger_next_to_model`: the checkpoint folder a Hugging Face model was loaded from, if it holds a
  privacy ledger.

Example:
    >>> import torch.nn as nn
    >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(inplace=True))
    >>> restore = inplace_off(m); m[1].inplace
    False
    >>> restore(); m[1].inplace
    True
    >>> untracked_trainables(m, held=[m[0].weight])
    ['0.bias']
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .accounting import LEDGER_FILE

__all__ = ["inplace_off", "ledger_next_to_model", "optimizer_steps_taken", "same_draws", "untracked_trainables"]


@contextlib.contextmanager
def same_draws(devices: Sequence[torch.device], stages: Iterable[Any] = (), seed: int = 0) -> Iterator[None]:
    """Run the block from a fixed random state and leave every random state as it was.

    ``stages``: objects with ``state_dict()`` / ``load_state_dict()`` (the guard's batch stages); their state is
    saved before the block and put back after it, so two blocks see the same augmentation draws.
    """
    saved = [(st, st.state_dict()) for st in stages if hasattr(st, "state_dict") and hasattr(st, "load_state_dict")]
    with torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            for st, state in saved:
                st.load_state_dict(state)


def inplace_off(model: nn.Module) -> Callable[[], None]:
    """Set ``inplace=False`` on every module that has it set; returns a function that restores them."""
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in changed:
        m.inplace = False

    def restore() -> None:
        for m in changed:
            m.inplace = True
        changed.clear()

    return restore


def untracked_trainables(model: nn.Module, held: Iterable[Any]) -> List[str]:
    """Names of the model's parameters that require a gradient but are not in ``held`` (the clipped ones: the
    tensors, or a set of their ``id()``)."""
    ids = held if isinstance(held, (set, frozenset)) else {id(p) for p in held}
    if all(id(p) in ids for p in model.parameters() if p.requires_grad):  # the per-step case: no names built
        return []
    return [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in ids]


def optimizer_steps_taken(optimizer: torch.optim.Optimizer) -> Tuple[int, bool]:
    """``(the largest step count in the optimizer's state, whether any state is held at all)``.

    Adam-like optimizers count steps per parameter (``state["step"]``); SGD with momentum keeps a buffer but no
    count (then the count is 0 and the second value tells that steps were taken).
    """
    most, any_state = 0, False
    for st in optimizer.state.values():
        if not st:
            continue
        any_state = True
        step = st.get("step") if hasattr(st, "get") else None
        if isinstance(step, torch.Tensor) and step.numel() == 1:
            most = max(most, int(step.item()))
        elif isinstance(step, (int, float)):
            most = max(most, int(step))
    return most, any_state


def ledger_next_to_model(model: nn.Module) -> Optional[str]:
    """The folder a Hugging Face model was loaded from (``config._name_or_path``) if it holds a privacy ledger."""
    cfg = getattr(model, "config", None)
    for src in (getattr(cfg, "_name_or_path", None), getattr(model, "name_or_path", None)):
        if isinstance(src, str) and src and os.path.isfile(os.path.join(src, LEDGER_FILE)):
            return src
    return None
