"""Images: scikit-learn's digits through the guard (exact duplicates), augmented on the device, MixUp.

    python examples/image_digits.py --epochs 5
"""
from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchdataguard as tdg


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    n_train = int(0.8 * len(x))
    guard = tdg.Guard([tdg.ExactDedup(), tdg.ImageAugment(rotate=0.5, degrees=10, noise=0.5, seed=0)],
                      text_field=None, progress=False)
    train = guard.wrap(TensorDataset(x[:n_train], y[:n_train]))    # exact duplicate images dropped
    loader = DataLoader(train, batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(args.epochs):
        for xb, yb in loader:
            batch = guard.apply_batch({"pixel_values": xb})           # per-sample augmentation on the device
            loss = nn.functional.cross_entropy(model(batch["pixel_values"]), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x[n_train:]).argmax(1) == y[n_train:]).float().mean().item()
    rep = guard.report()
    print(f"seen {rep['seen']}, kept {rep['kept']}, dropped {rep['dropped_by_reason']}; augment {rep['counts']}")
    print(f"test accuracy {acc:.3f}")
    return acc, rep


if __name__ == "__main__":
    main()
