"""A LightningModule trained with tdg.LightningGuardCallback: dedup before training, counters in the logger,
DP-SGD at --epsilon with Poisson sampling and accumulation, the report at the end of fit.

Run:  python examples/lightning_guard.py [--epsilon 8] [--epochs 3] [--out runs/lightning]
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

import torchdataguard as tdg


def main(argv: Optional[Sequence[str]] = None):
    import lightning as L

    ap = argparse.ArgumentParser()
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--out", default="runs/lightning")
    a = ap.parse_args(argv)

    class Model(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch["x"]), batch["labels"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5, momentum=0.9)

    torch.manual_seed(0)
    x = torch.randn(a.rows, 8)
    rows = [{"id": i, "text": f"record {i % (a.rows - a.rows // 10)}", "x": x[i].tolist(), "label": int(x[i, 0] > 0)}
            for i in range(a.rows)]  # the last tenth repeats earlier texts: exact dedup drops them
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    train = guard.wrap(rows)
    cb = tdg.LightningGuardCallback(guard, privacy=tdg.DPConfig(target_epsilon=a.epsilon, epochs=a.epochs, seed=0))
    trainer = L.Trainer(callbacks=[cb], max_epochs=a.epochs, accumulate_grad_batches=4, accelerator="cpu",
                        devices=1, default_root_dir=a.out, enable_progress_bar=False, enable_model_summary=False,
                        log_every_n_steps=5)

    def collate(batch):
        return {"x": torch.tensor([r["x"] for r in batch]), "labels": torch.tensor([r["label"] for r in batch])}

    trainer.fit(Model(), DataLoader(train, batch_size=16, collate_fn=collate))
    rep = cb.report()
    print(f"kept {rep['kept']} of {rep['seen']}, epsilon {rep['privacy']['epsilon_prv']:.3f} after "
          f"{rep['privacy']['steps']} steps; report in {a.out}/report.html")
    return rep


if __name__ == "__main__":
    main()
