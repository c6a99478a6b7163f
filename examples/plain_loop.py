"""A plain PyTorch training loop with torchdataguard: spam filtering on the shipped SpamAssassin emails.

The guard drops exact and near-duplicate emails and scrubs PII (a keyed pseudonym for every address) before
the model sees the text; the model is a tiny bag-of-words classifier so the example runs in seconds.

    python examples/plain_loop.py --limit 2000 --epochs 2
"""
from __future__ import annotations

import argparse
import hashlib
import secrets

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin

BUCKETS = 2**15


class Emails(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def featurise(texts):
    """Hash words into BUCKETS ids (an EmbeddingBag input), deterministically."""
    ids, offsets = [], []
    for t in texts:
        offsets.append(len(ids))
        words = t.lower().split()[:400] or [""]
        ids.extend(int.from_bytes(hashlib.blake2b(w.encode("utf-8", "replace"), digest_size=4).digest(), "little")
                   % BUCKETS for w in words)
    return torch.tensor(ids), torch.tensor(offsets)


def collate(rows):
    ids, offsets = featurise([r["text"] for r in rows])
    return ids, offsets, torch.tensor([int(r["label"] == "spam") for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    rows = load_spamassassin(limit=args.limit)
    split = int(0.8 * len(rows))
    guard = tdg.Guard([tdg.PIIScrubber(key=secrets.token_hex(32)), tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)],
                      progress=False)
    train = guard.wrap(Emails(rows[:split]))          # map-style in, map-style out (filtered length)
    loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate, num_workers=args.workers)
    model = nn.Sequential(nn.EmbeddingBag(BUCKETS, 32), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(args.epochs):
        for ids, offsets, y in loader:
            loss = nn.functional.cross_entropy(model[1](model[0](ids, offsets)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    test = rows[split:]
    with torch.no_grad():
        ids, offsets, y = collate(test)
        acc = (model[1](model[0](ids, offsets)).argmax(1) == y).float().mean().item()
    rep = guard.report()
    print(f"seen {rep['seen']}, kept {rep['kept']}, dropped {rep['dropped_by_reason']}")
    print(f"PII found: { {k: v for k, v in rep['counts'].items() if k.startswith('pii/')} }")
    print(f"test accuracy {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
