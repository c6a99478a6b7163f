"""What a guard costs while training: the same fine-tuning steps on the same batches, with and without it.

A small BERT (built from a config, random initialisation: 4 layers, hidden 256, sequence 128) is fine-tuned
for spam/ham classification on the shipped SpamAssassin emails (plus 20% planted exact and near copies, so
that the guard has work to drop), batch 16, AdamW, two DataLoader workers that tokenise (a word-hash
tokeniser, the same on both sides).

* guarded: ``DataLoader(guard.wrap(stream), num_workers=2)`` with ``tdg.Guard([Normalize(), QualityFilter(),
  PIIScrubber(), ExactDedup(), NearDedup()])``: the record stages and the keys run in the workers, the dedup
  decisions in the main process (the guard's decision service), while the model trains;
* plain: the same batches, recorded from the guarded run, in the same order, from a map-style dataset with
  the same two workers and the same collate function, no guard.

Both run ``--steps`` steps after ``--warmup`` untimed ones; the two runs alternate ``--repeat`` times and the
best time of each is kept. The overhead is ``(guarded - plain) / plain`` of the time per step, best against best;
each round's pair is also reported, and their median (``overhead_median_percent``). With CUDA,
``--device cuda`` trains on the GPU (the guard stays on the CPU workers and the main process).

Usage:
    python benchmarks/guard_overhead.py [--device cpu] [--steps 30] [--repeat 2] [--quick]
Writes benchmarks/results/guard_overhead.json (or guard_overhead_cuda.json for a CUDA device).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
import zlib
from typing import Any, Dict, Iterator, List, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

SEQ = 128
VOCAB = 30522


def corpus(seed: int = 0) -> List[Dict[str, Any]]:
    """SpamAssassin emails (body and label) in a fixed shuffled order, with 20% planted copies."""
    from torchdataguard.assets import load_spamassassin

    rng = random.Random(seed)
    rows = [{"text": r["text"].split("\n\n", 1)[-1], "label": int(r["label"] == "spam")} for r in load_spamassassin()]
    rng.shuffle(rows)
    out = list(rows)
    for _ in range(len(rows) // 5):
        src = dict(rows[rng.randrange(len(rows))])
        w = src["text"].split()
        if w and rng.random() < 0.5:
            w[rng.randrange(len(w))] = "planted"
        src["text"] = " ".join(w) if rng.random() < 0.5 else src["text"].upper()
        out.insert(rng.randrange(len(out) + 1), src)
    for i, r in enumerate(out):
        r["idx"] = i
    return out


def collate(rows: Sequence[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
    """Word-hash tokenisation to ``SEQ`` ids (CLS ... SEP, padded), labels and the rows' indices."""
    ids = torch.zeros(len(rows), SEQ, dtype=torch.long)
    mask = torch.zeros(len(rows), SEQ, dtype=torch.long)
    for i, r in enumerate(rows):
        words = r["text"].split()[: SEQ - 2]
        toks = [101] + [1000 + zlib.crc32(w.lower().encode()) % (VOCAB - 1000) for w in words] + [102]
        ids[i, : len(toks)] = torch.tensor(toks)
        mask[i, : len(toks)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([r["label"] for r in rows]),
            "idx": torch.tensor([r["idx"] for r in rows])}


class Stream(IterableDataset):
    """The corpus as a stream, split between DataLoader workers by position."""

    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        return iter(self.rows[w::n])


class Batches(Dataset):
    """Map-style view of the rows, read by a batch sampler that replays recorded batches."""

    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return self.rows[i]


def model(device: torch.device):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=1024, max_position_embeddings=SEQ, num_labels=2)
    m = BertForSequenceClassification(cfg).to(device)
    return m, torch.optim.AdamW(m.parameters(), lr=5e-5)


def train(loader, device: torch.device, steps: int, warmup: int) -> tuple[float, List[List[int]]]:
    m, opt = model(device)
    m.train()
    seen: List[List[int]] = []
    it = iter(loader)
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        b = next(it)
        seen.append(b.pop("idx").tolist())
        b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        loss = m(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    del it
    return dt / steps, seen


def guarded_run(rows, device, steps, warmup, batch):
    import torchdataguard as tdg

    guard = tdg.Guard([tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup()],
                      device="cpu", progress=False)
    loader = DataLoader(guard.wrap(Stream(rows)), batch_size=batch, num_workers=2, collate_fn=collate)
    per_step, seen = train(loader, device, steps, warmup)
    rep = guard.report()
    guard.close()
    return per_step, seen, rep


def plain_run(rows, seen, device, steps, warmup):
    loader = DataLoader(Batches(rows), batch_sampler=seen, num_workers=2, collate_fn=collate)
    return train(loader, device, steps, warmup)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="6 steps, one repeat (a smoke run)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.quick:
        a.steps, a.repeat, a.warmup = 6, 1, 1
    from _machine import machine, write_result

    device = torch.device(a.device)
    rows = corpus()
    g_times, p_times = [], []
    rep: Dict[str, Any] = {}
    for r in range(a.repeat):
        g, seen, rep = guarded_run(rows, device, a.steps, a.warmup, a.batch)
        p, seen_p = plain_run(rows, seen, device, a.steps, a.warmup)
        assert seen_p == seen, "the plain run must see the guarded run's batches in the same order"
        g_times.append(g)
        p_times.append(p)
        print(f"round {r + 1}: plain {p * 1000:.0f} ms/step, guarded {g * 1000:.0f} ms/step "
              f"({(g - p) / p * 100:+.1f}%)", flush=True)
    g, p = min(g_times), min(p_times)
    paired = sorted((gt - pt) / pt * 100 for gt, pt in zip(g_times, p_times))
    res = {"machine": machine(device), "device": str(device), "steps": a.steps, "warmup": a.warmup,
           "batch": a.batch, "seq": SEQ, "repeat": a.repeat,
           "stages": ["normalize", "quality", "pii", "exact", "near"],
           "plain_ms_per_step": round(p * 1000, 1), "guarded_ms_per_step": round(g * 1000, 1),
           "overhead_percent": round((g - p) / p * 100, 2),
           # each round's guarded run against the plain run right after it (the same batches), and their median
           "rounds": [{"plain_ms_per_step": round(pt * 1000, 1), "guarded_ms_per_step": round(gt * 1000, 1),
                       "overhead_percent": round((gt - pt) / pt * 100, 2)} for gt, pt in zip(g_times, p_times)],
           "overhead_median_percent": round(paired[len(paired) // 2] if len(paired) % 2 else
                                            (paired[len(paired) // 2 - 1] + paired[len(paired) // 2]) / 2, 2),
           "guard_seen": rep.get("seen"), "guard_dropped_by_reason": rep.get("dropped_by_reason"),
           "command": f"python benchmarks/guard_overhead.py --device {a.device} --steps {a.steps} --repeat {a.repeat}"}
    print(f"overhead on {device}: {res['overhead_percent']:+.2f}% of the step, best against best "
          f"(plain {res['plain_ms_per_step']} ms, guarded {res['guarded_ms_per_step']} ms); median of the "
          f"{len(paired)} paired rounds {res['overhead_median_percent']:+.2f}%")
    name = "guard_overhead_cuda.json" if device.type == "cuda" else "guard_overhead.json"
    write_result(a.out or os.path.join(HERE, "results", name), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
