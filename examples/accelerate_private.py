"""DP-SGD in a plain loop run by Hugging Face Accelerate: make_private first (Poisson loader, hooks), then
accelerator.prepare; the accountant's epsilon at the end.

Run:  python examples/accelerate_private.py [--epochs 3] [--epsilon 3]
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import torchdataguard as tdg


def main(argv: Optional[Sequence[str]] = None) -> Tuple[float, dict]:
    from accelerate import Accelerator

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=3.0)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    recipe = tdg.DPConfig.recommend(len(x), a.epochs, a.epsilon, seed=0)  # a head-sized model: the head recipe
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=recipe.learning_rate[0] / 4, momentum=0.9)
    dp = tdg.make_private(model, opt, DataLoader(TensorDataset(x, y), batch_size=recipe.logical_batch), recipe.config)
    accelerator = Accelerator(cpu=True)
    model, opt, loader = accelerator.prepare(dp.model, dp.optimizer, dp.loader)
    for _ in range(recipe.epochs):
        for xb, yb in loader:
            opt.zero_grad()
            accelerator.backward(nn.functional.cross_entropy(model(xb), yb))
            opt.step()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    rep = dp.report()
    print(f"accuracy {acc:.3f}, epsilon {rep['epsilon_prv']:.3f} (target {a.epsilon}) after {rep['steps']} steps")
    dp.close()
    return acc, rep


if __name__ == "__main__":
    main()
