"""The guard's own CPU a batch, without training beside it: the guarded loader of ``guard_overhead.py`` against a
plain loader of the same batches, and the same guard in one process (``Guard.filter``).

``benchmarks/guard_overhead_blocks.py`` measures what users feel (the training step's slowdown), but on a 2-core
machine where training keeps both cores busy its CPU figures move by a few ms a step from run to run. This reads
only the CPU that the guard adds, with nothing else running: the five-stage guard (``Normalize, QualityFilter,
PIIScrubber, ExactDedup, NearDedup``, defaults) in ``DataLoader(guard.wrap(stream), batch_size=16,
num_workers=2)`` over the shipped e-mails with 20% planted copies, iterated to the end; then a map-style loader
replaying the same batches with the same two workers and collate function (the peer: no guard). The figure is the
difference in CPU (this process and the workers, from ``/proc``) per batch of 16 kept rows, and beside it the CPU
of ``Guard.filter`` over the same rows in this process (the stages' work without the loader's plumbing: the
decision service, the chunk messages, a score cache per worker).

Usage:
    python benchmarks/guard_loader_cpu.py [--rounds 3]
Writes benchmarks/results/guard_loader_cpu.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from statistics import median
from typing import Any, Dict, List

import torch
from torch.utils.data import DataLoader, Sampler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import guard_overhead as G  # noqa: E402  (corpus, collate, the stream and batch views, /proc CPU readers)


def make_guard() -> Any:
    import torchdataguard as tdg

    return tdg.Guard([tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup()],
                     device="cpu", progress=False)


class _Replay(Sampler):
    def __init__(self, batches: List[List[int]]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def one_round(rows: List[Dict[str, Any]]) -> Dict[str, float]:
    """CPU seconds a batch: the guarded loader (this process, its workers, the decision threads), the plain
    loader of the same batches, and ``Guard.filter`` in this process per 16 kept rows."""
    g = make_guard()
    it = iter(DataLoader(g.wrap(G.Stream(rows)), batch_size=16, num_workers=2, collate_fn=G.collate))
    batches: List[List[int]] = []
    c0 = G._cpu_now(it)
    b = next(it, None)
    last = c0
    while b is not None:
        batches.append(b["idx"].tolist())
        last = G._cpu_now(it)  # read before the workers end (their /proc entries go)
        b = next(it, None)
    n = len(batches)
    it2 = iter(DataLoader(G.Batches(rows), batch_sampler=_Replay(batches), num_workers=2, collate_fn=G.collate))
    p0 = G._cpu_now(it2)
    for _ in range(n - 1):
        next(it2)
    p1 = G._cpu_now(it2)
    del it2
    g.close()
    t0 = time.process_time()
    kept = sum(1 for _ in make_guard().filter(rows))
    inproc = time.process_time() - t0
    guarded = (last[0] - c0[0]) + (last[1] - c0[1])
    plain = (p1[0] - p0[0]) + (p1[1] - p0[1])
    return {"batches": n, "guarded_ms": guarded / (n - 1) * 1e3, "plain_ms": plain / (n - 1) * 1e3,
            "decision_threads_ms": (last[2] - c0[2]) / (n - 1) * 1e3,
            "guard_ms": (guarded - plain) / (n - 1) * 1e3, "in_process_ms": inproc / kept * 16 * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "guard_loader_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from _machine import machine, write_result

    rows = G.corpus(0)
    rounds = [one_round(rows) for _ in range(args.rounds)]
    print(f"{'round':>5} | {'guarded ms':>10} | {'plain ms':>8} | {'guard ms':>8} | {'decisions ms':>12} | "
          f"{'in one process ms':>17}  (CPU a batch of 16 kept rows)")
    for i, r in enumerate(rounds, 1):
        print(f"{i:>5} | {r['guarded_ms']:>10.1f} | {r['plain_ms']:>8.1f} | {r['guard_ms']:>8.1f} | "
              f"{r['decision_threads_ms']:>12.1f} | {r['in_process_ms']:>17.1f}")
    med = {k: median(r[k] for r in rounds) for k in ("guard_ms", "in_process_ms", "plain_ms")}
    print(f"median: the guard adds {med['guard_ms']:.1f} ms of CPU a batch in the loader "
          f"({med['guard_ms'] / med['plain_ms']:.1f}x the plain loader's {med['plain_ms']:.1f} ms), "
          f"{med['in_process_ms']:.1f} ms in one process")
    write_result(args.out, {"rounds": rounds, "median": med, "machine": machine("cpu"), "rows": len(rows),
                            "command": " ".join(sys.argv)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
