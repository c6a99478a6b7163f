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
* :func:`setup_problems`, :func:`optimizer_problems` and :func:`untracked_message`: the set-up refusals.

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
import math
import os
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .accounting import LEDGER_FILE

__all__ = ["inplace_off", "ledger_next_to_model", "optimizer_problems", "optimizer_steps_taken", "same_draws",
           "setup_problems", "untracked_message", "untracked_trainables"]


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


def untracked_message(names: List[str], *, at_setup: bool) -> str:
    """Why a step (``at_setup=False``) or the set-up is refused when ``names`` would train without clipping."""
    shown = f"{names[:5]}{' ...' if len(names) > 5 else ''}"
    if at_setup:
        return (f"{len(names)} parameter(s) require a gradient but are not in the optimizer given to DP-SGD: {shown}. "
                f"They would get the raw gradient of the batch (another optimizer would train them without clipping "
                f"or noise while epsilon is reported). Give every trainable parameter to this one optimizer (param "
                f"groups may have their own learning rates), or freeze the others with requires_grad_(False)")
    return (f"{len(names)} parameter(s) require a gradient but are not clipped by the DP engine: {shown}. They were "
            f"unfrozen after make_private (or the DPCallback started), or are held by another optimizer, so they would "
            f"train on the raw gradient without clipping or noise. Unfreeze every layer you will train before "
            f"make_private; or, at a step boundary, add them to the DP optimizer (optimizer.add_param_group) and call "
            f"dp.reattach() (Trainer: DPCallback.reattach()); or freeze them again")


def optimizer_problems(model: nn.Module, optimizer: Any, resuming: bool) -> List[str]:
    """Why DP-SGD cannot take over ``optimizer`` for ``model`` (empty when it can)."""
    from opacus.optimizers import DPOptimizer

    if isinstance(optimizer, DPOptimizer):
        return ["the optimizer is already an Opacus DPOptimizer: pass the plain torch optimizer"]
    if not isinstance(optimizer, torch.optim.Optimizer):
        return [f"optimizer is {type(optimizer).__name__}; expected a torch.optim.Optimizer"]
    model_params = {id(p) for p in model.parameters()}
    foreign = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in model_params]
    out = []
    if foreign:
        out.append(f"the optimizer holds {len(foreign)} parameter tensor(s) that are not in the model: it was "
                   f"created before the model was changed (fix_model, a LoRA wrapper, a module swap); create the "
                   f"optimizer from the final model, then call make_private")
    untracked = untracked_trainables(model, [p for g in optimizer.param_groups for p in g["params"]])
    if untracked:
        out.append(untracked_message(untracked, at_setup=True))
    if not resuming and any(len(s) for s in optimizer.state.values()):
        out.append("the optimizer has already taken steps (its state holds statistics of non-private "
                   "gradients): create a fresh optimizer before make_private and take every step under DP")
    return out


def setup_problems(model: nn.Module, optimizer: Any, *, trainer: bool, resuming: bool, sample_rate: float,
                   num_units: int, delta: float) -> List[str]:
    """Everything that refuses DP-SGD's set-up: a model in eval mode (plain loop), a sampling rate outside (0, 1],
    ``delta >= 1/N``, gradient checkpointing, and the :func:`optimizer_problems`."""
    problems = []
    if not trainer and not model.training:
        problems.append("the model is in eval mode: Opacus records activations only in training mode; call "
                        "model.train() before make_private")
    if not (0 < sample_rate <= 1):
        problems.append(f"the sampling rate is {sample_rate:.4g} (expected logical batch "
                        f"{sample_rate * num_units:.4g} over {num_units} units): it must be in (0, 1]; use a "
                        f"smaller batch or more data")
    if delta >= 1.0 / num_units:
        problems.append(f"delta={delta!r} >= 1/N = {1.0 / num_units:.3g} (N = {num_units} privacy units): "
                        f"such a guarantee allows revealing a whole unit; choose delta < 1/N, e.g. "
                        f"{10 ** math.floor(math.log10(0.1 / num_units)):.0e}")
    if any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules()):  # Hugging Face layers
        problems.append("gradient checkpointing is on (gradient_checkpointing=True, model.activation_checkpointing_"
                        "enable()): it runs the layers again inside the backward pass, which the per-sample "
                        "gradient hooks cannot follow (each layer is recorded twice, or not at all, and the "
                        "examples' gradients come out wrong); turn it off and save memory with a smaller "
                        "per-device batch and gradient accumulation instead")
    problems.extend(optimizer_problems(model, optimizer, resuming))
    return problems
