"""LoRA and full fine-tuning rows of ``benchmarks/dp_utility.py``: the number of epochs (and a learning rate from
at most a few candidates) chosen on the validation split, then one run on the whole training split scored once
on the test split.

The choice, per row (one target epsilon or none):

1. for each candidate ``(lr, head_lr)``, train on the fit split for ``max_epochs`` epochs (DP-SGD: the noise
   calibrated for ``max_epochs`` epochs) and score the validation split after every epoch: one curve per
   candidate, at the cost of one run;
2. the best validation accuracy over the candidates and epochs is chosen (ties: fewer epochs, then the earlier
   candidate);
3. train on the whole training split for the chosen epochs, the noise calibrated for exactly that many epochs
   (``DPConfig(epochs=...)``), and score the test split once. The epsilon reported is the accountant's for the
   steps that ran (``privacy_info``).

AdamW with two parameter groups: the encoder's trained parameters (LoRA adapters, or every weight) at ``lr`` and
the freshly initialised head at ``head_lr``. The head reads an L2-normalised embedding, so its logits stay near 0
until its weights grow to a few units: at the encoder's learning rate (1e-3 and below) that takes hundreds of
steps, more than a small data set gives.

Example:
    >>> choose([[0.7, 0.9, 0.9], [0.8, 0.85, 0.9]])
    (0, 2)
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

__all__ = ["choose", "evaluate", "train_encoder", "select_and_test"]


def evaluate(model: nn.Module, data: Sequence[Dict[str, Any]], collate: Any) -> float:
    """Accuracy of ``model`` on ``data`` (batches of 64, evaluation mode, no gradient); the mode is put back."""
    was_training = model.training
    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(data), 64):
            b = collate(list(data[i:i + 64]))
            out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            hits += int((out["logits"].argmax(1) == b["labels"]).sum())
    model.train(was_training)
    return round(hits / max(len(data), 1), 4)


def choose(curves: Sequence[Sequence[float]]) -> Tuple[int, int]:
    """``(candidate index, epochs)`` of the best validation accuracy in ``curves`` (one list per candidate, entry
    ``e - 1`` the accuracy after ``e`` epochs); ties go to fewer epochs, then to the earlier candidate."""
    best = max(((acc, -(e + 1), -c) for c, curve in enumerate(curves) for e, acc in enumerate(curve)))
    return -best[2], -best[1]


def train_encoder(model: nn.Module, data: Sequence[Dict[str, Any]], collate: Any, *, epsilon: Optional[float],
                  batch: int, micro: int, epochs: int, lr: float, head_lr: float, delta: float, seed: int,
                  val: Optional[Sequence[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Train ``model`` (its trainable parameters; ``model.head`` at ``head_lr``, the rest at ``lr``) on ``data`` for
    ``epochs`` epochs with AdamW, a logical batch of ``batch`` split into micro-batches of ``micro``; DP-SGD through
    ``tdg.make_private`` (Poisson sampling, C = 1.0, the noise calibrated for ``epochs`` epochs) when ``epsilon`` is
    set. With ``val``, its accuracy after every epoch is in ``"val_curve"``."""
    import torchdataguard as tdg

    head = [p for p in model.head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    opt = torch.optim.AdamW([{"params": rest, "lr": lr}, {"params": head, "lr": head_lr}], lr=lr, weight_decay=0.0)
    accumulation = max(1, batch // micro)
    model.train()
    if epsilon is None:
        loader = DataLoader(list(data), batch_size=micro, shuffle=True, collate_fn=collate,
                            generator=torch.Generator().manual_seed(seed))
        dp = None
    else:
        config = tdg.DPConfig(target_epsilon=epsilon, delta=delta, epochs=epochs, max_grad_norm=1.0, seed=seed)
        dp = tdg.make_private(model, opt, DataLoader(list(data), batch_size=batch, collate_fn=collate), config,
                              accumulation=accumulation)
        loader = dp.loader
    curve: List[float] = []
    eval_seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        n = 0
        for b in loader:
            loss = model(**b)["loss"]
            (loss if dp is not None else loss / accumulation).backward()
            n += 1
            if n % accumulation == 0:
                opt.step()
                opt.zero_grad()
        if dp is None and n % accumulation:
            opt.step()
            opt.zero_grad()
        if val is not None:
            t1 = time.perf_counter()
            curve.append(evaluate(model, val, collate))
            eval_seconds += time.perf_counter() - t1
    info: Dict[str, Any] = {"train_seconds": round(time.perf_counter() - t0 - eval_seconds, 1),
                            "trainable_parameters": sum(p.numel() for p in head + rest)}
    if val is not None:
        info.update(val_curve=curve, val_seconds=round(eval_seconds, 1))
    if dp is not None:
        r = dp.report()
        info.update(epsilon=round(r["epsilon_prv"], 3), epsilon_rdp=round(r["epsilon_rdp"], 3), steps=r["steps"],
                    noise_multiplier=round(r["noise_multiplier"], 4), sample_rate=round(r["sample_rate"], 5))
        dp.close()
    return info


def select_and_test(build: Callable[[], nn.Module], data: Dict[str, Sequence[Dict[str, Any]]], collate: Any, *,
                    epsilon: Optional[float], batch: int, micro: int, max_epochs: int,
                    lrs: Sequence[Tuple[float, float]], delta: float, seed: int,
                    test: bool = True) -> Dict[str, Any]:
    """The choice of the module docstring for one row: ``build()`` a fresh model per run; ``data`` holds the
    ``"fit"``, ``"val"``, ``"train"`` and ``"test"`` splits. Returns the row's settings, the validation curves and,
    with ``test``, the final run's test accuracy and privacy figures."""
    tried = []
    for lr, head_lr in lrs:
        info = train_encoder(build(), data["fit"], collate, epsilon=epsilon, batch=batch, micro=micro,
                             epochs=max_epochs, lr=lr, head_lr=head_lr, delta=delta, seed=seed, val=data["val"])
        tried.append({"lr": lr, "head_lr": head_lr, **info})
        print(f"  validation, eps={epsilon}, lr {lr:g} / head {head_lr:g}: {info['val_curve']} "
              f"({info['train_seconds']} s)", flush=True)
    c, epochs = choose([t["val_curve"] for t in tried])
    row: Dict[str, Any] = {"target_epsilon": epsilon, "val_accuracy": tried[c]["val_curve"][epochs - 1],
                           "batch": batch, "micro_batch": micro, "max_epochs": max_epochs, "epochs": epochs,
                           "lr": tried[c]["lr"], "head_lr": tried[c]["head_lr"], "optimizer": "AdamW",
                           "validation_runs": tried, "test_accuracy": None}
    if test:
        model = build()
        info = train_encoder(model, data["train"], collate, epsilon=epsilon, batch=batch, micro=micro, epochs=epochs,
                             lr=row["lr"], head_lr=row["head_lr"], delta=delta, seed=seed)
        row.update(info)
        row["test_accuracy"] = evaluate(model, data["test"], collate)
    return row
