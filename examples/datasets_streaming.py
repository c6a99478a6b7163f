"""Streaming a Hugging Face ``datasets`` corpus through the guard, with DataLoader workers.

A ``datasets.IterableDataset`` goes in and a ``datasets.IterableDataset`` comes out; workers compute the
expensive keys (hashes, MinHash signatures) and the main process keeps the dedup index, so duplicates across
workers are found. Here the stream is read from a JSON-lines file (the shipped SpamAssassin sample), as
``load_dataset("json", ..., streaming=True)`` would read your own files.

    python examples/datasets_streaming.py --limit 3000 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import datasets
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "emails.jsonl")
    with open(path, "w") as fh:
        for r in load_spamassassin(limit=args.limit):
            fh.write(json.dumps({"id": r["id"], "text": r["text"], "label": r["label"]}) + "\n")
    stream = datasets.load_dataset("json", data_files=path, split="train", streaming=True)
    stream = stream.shard(num_shards=1, index=0) if stream.n_shards < 1 else stream
    guard = tdg.Guard([tdg.QualityFilter(), tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], id_field="id",
                      progress=False)
    clean = guard.wrap(stream)                       # still a datasets.IterableDataset
    loader = DataLoader(clean, batch_size=64, num_workers=args.workers, collate_fn=lambda rows: rows)
    n = sum(len(b) for b in loader)
    rep = guard.report()
    print(f"streamed {rep['seen']} records, kept {n}: {rep['dropped_by_reason']}")
    return rep, n


if __name__ == "__main__":
    main()
