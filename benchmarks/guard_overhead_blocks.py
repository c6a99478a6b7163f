"""What a guard costs while training, in one process: guarded and plain blocks of steps taking turns.

``benchmarks/guard_overhead.py`` runs each side in a fresh process, one after the other, a minute apart. On the
shared 2-core benchmark machine the same plain run's step time moves by 10-30% from one process to the next
(other tenants, the host), so with a few rounds its median overhead swung between -13% and +9% on the same code
(2026-12-07). Here both sides run in the same process, on the same model, seconds apart:

* one model (the same small BERT, AdamW, batch 16, sequence 128), warmed up on a fixed batch;
* guarded: ``DataLoader(guard.wrap(Stream(rows)), batch_size=16, num_workers=2, collate_fn=collate)`` with the
  guard of guard_overhead.py (``Normalize, QualityFilter, PIIScrubber, ExactDedup, NearDedup``, defaults); one
  iterator for the whole run (one epoch), as a training loop holds it;
* plain: one loader over the same rows (``Batches``, two workers, the same collate) whose batch sampler replays
  the batches of an untimed pass of another guard of the same stages, taken first. ``same_batches`` says how many
  timed batches were equal on both sides: a race between the workers (which copy of a duplicate reaches the
  decisions first) moves a row now and then, after which that worker's batches differ by a row. A step's cost
  does not depend on which rows: every sequence is padded to 128 (``benchmarks/guard_overhead.py`` replays the
  very batches, across processes).

Rounds of a guarded and a plain block of ``--block`` steps, the two sides taking turns going first. Both loaders
start (fork, the guard's first chunk) and run ``--warm`` steps untimed first: right after a fork the training
process's writes copy its pages, which slows the next steps of whichever side comes first (the guarded loader's
first batch is reported, ``guarded_first_batch_s``). A loader's workers keep prefetching (up to two batches each)
after its block ends, so a little guard work spills into the plain block that follows: the guarded workers' and
the decision threads' CPU during plain blocks is measured (``spill_ms_per_step``), and the figures come twice:
as measured, and with the spill moved to the guarded side (the plain step made faster and the guarded one slower by
all of it, as if every cycle of it had stalled training: an upper bound, ``..._upper``).

Figures: the median over rounds of ``guarded / plain - 1``, the ratio of the totals, and the guard's own CPU a
step (its workers beyond the plain workers, wherever it fell, plus this process's ``torchdataguard-*`` decision
threads) as a share of a plain step's wall time. On a 2-core machine every other process slows the two training
threads badly (they wait for each other): run it on a quiet machine.

Usage:
    python benchmarks/guard_overhead_blocks.py [--device cpu] [--block 15] [--rounds 9] [--warm 5] [--quick]
Writes benchmarks/results/guard_overhead_blocks.json (guard_overhead_blocks_cuda.json for a CUDA device).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from statistics import median
from typing import Any, Dict, List

import torch
from torch.utils.data import DataLoader

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import guard_overhead as G  # noqa: E402  (corpus, collate, model, one step, /proc CPU readers)

STAGES = ["normalize", "quality", "pii", "exact", "near"]


def _workers_cpu(it: Any) -> float:
    return sum(G._proc_cpu(w.pid) for w in getattr(it, "_workers", None) or [])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def block(it: Any, other: Any, m: Any, opt: Any, device: torch.device, steps: int) -> Dict[str, Any]:
    """``steps`` training steps on ``it``'s batches: wall seconds a step, the batches (row indices), CPU seconds a
    step of this process, of the loader's workers, of the guard's decision threads (``torchdataguard-*``) and of
    the ``other`` loader's workers (their prefetching spilling into this block)."""
    seen: List[List[int]] = []
    c0 = (time.process_time(), _workers_cpu(it), G._guard_threads_cpu(), _workers_cpu(other))
    t0 = time.perf_counter()
    for _ in range(steps):
        b = next(it)
        seen.append(b.pop("idx").tolist())
        G._step(m, opt, b, device)
    _sync(device)
    wall = time.perf_counter() - t0
    c1 = (time.process_time(), _workers_cpu(it), G._guard_threads_cpu(), _workers_cpu(other))
    return {"wall": wall / steps, "seen": seen, "main_cpu": (c1[0] - c0[0]) / steps,
            "workers_cpu": (c1[1] - c0[1]) / steps, "decision_cpu": (c1[2] - c0[2]) / steps,
            "other_workers_cpu": (c1[3] - c0[3]) / steps}


def drift_corrected(rounds: List[Any]) -> List[float]:
    """``guarded / plain - 1`` for each guarded block that has plain blocks on both sides in time, the plain
    step time interpolated linearly between the nearest plain block before it and the nearest after it (a
    steady drift of the machine's speed cancels). ``rounds``: ``(guarded, plain)`` pairs, the guarded block
    first in even rounds, the plain first in odd ones (g0 p0 p1 g1 g2 p2 ...).

    Example:
        >>> walls = lambda r: ({"wall": 1.0 + (4 * (r // 2) + (0 if r % 2 == 0 else 3))},
        ...                    {"wall": 1.0 + (4 * (r // 2) + (1 if r % 2 == 0 else 2))})
        >>> [round(x, 9) for x in drift_corrected([walls(r) for r in range(4)])]  # a linear drift, no overhead
        [0.0, 0.0]
    """
    seq: List[tuple] = []
    for r, (g, p) in enumerate(rounds):
        seq += [("g", g["wall"]), ("p", p["wall"])] if r % 2 == 0 else [("p", p["wall"]), ("g", g["wall"])]
    out = []
    for i, (side, wall) in enumerate(seq):
        before = [j for j in range(i) if seq[j][0] == "p"]
        after = [k for k in range(i + 1, len(seq)) if seq[k][0] == "p"]
        if side == "g" and before and after:
            j, k = before[-1], after[0]
            out.append(wall / (seq[j][1] + (seq[k][1] - seq[j][1]) * (i - j) / (k - j)) - 1)
    return out


def make_guard() -> Any:
    import torchdataguard as tdg

    return tdg.Guard([tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup()],
                     device="cpu", progress=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--block", type=int, default=15, help="steps per block")
    ap.add_argument("--rounds", type=int, default=9, help="rounds of a guarded and a plain block")
    ap.add_argument("--warm", type=int, default=5, help="untimed guarded steps first (the loader's start)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--worker-nice", type=int, default=None,
                    help="set guard.worker_nice (by default the guard's own: torchdataguard.data.priority.WORKER_NICE)")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 3 steps (a smoke run)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.quick:
        a.block, a.rounds, a.warm = 3, 2, 1
    from _machine import machine, write_result

    device = torch.device(a.device)
    rows = G.corpus()
    n_timed = a.warm + a.rounds * a.block
    # the batches the guarded loader yields, from an untimed pass of another guard of the same stages (the same
    # decisions but for cross-worker races on a few rows): the plain loader replays them in the same order
    pre = make_guard()
    order = [b["idx"].tolist() for _, b in zip(range(1 + n_timed), DataLoader(
        pre.wrap(G.Stream(rows)), batch_size=a.batch, num_workers=2, collate_fn=G.collate))]
    pre.close()
    if len(order) < 1 + n_timed:
        print(f"the guarded stream yields {len(order)} batches, fewer than the {1 + n_timed} asked for")
        return 2
    m, opt = G.model(device)
    fixed = G.collate(rows[: a.batch])
    fixed.pop("idx")
    for _ in range(10):
        G._step(m, opt, fixed, device)
    guard = make_guard()
    if a.worker_nice is not None:
        guard.worker_nice = a.worker_nice
    from torchdataguard.data.priority import worker_nice_of

    t0 = time.perf_counter()
    git = iter(DataLoader(guard.wrap(G.Stream(rows)), batch_size=a.batch, num_workers=2, collate_fn=G.collate))
    next(git)
    first = time.perf_counter() - t0
    pit = iter(DataLoader(G.Batches(rows), batch_sampler=order, num_workers=2, collate_fn=G.collate))
    next(pit)
    # the warm blocks: the first steps after the forks (copy-on-write of the training process's pages) are slow
    warm_g, warm_p = block(git, pit, m, opt, device, a.warm), block(pit, git, m, opt, device, a.warm)
    rounds, same = [], 0
    del warm_g, warm_p
    for r in range(a.rounds):
        # the two sides take turns going first (a steady drift of the machine's speed falls on both)
        if r % 2 == 0:
            g = block(git, pit, m, opt, device, a.block)
            p = block(pit, git, m, opt, device, a.block)
        else:
            p = block(pit, git, m, opt, device, a.block)
            g = block(git, pit, m, opt, device, a.block)
        same += sum(x == y for x, y in zip(g.pop("seen"), p.pop("seen")))
        rounds.append((g, p))
        own = (g["workers_cpu"] + p["other_workers_cpu"] + p["decision_cpu"] - p["workers_cpu"] - g["other_workers_cpu"]
               + g["decision_cpu"])
        print(f"round {r + 1}: plain {p['wall'] * 1000:.0f} ms/step, guarded {g['wall'] * 1000:.0f} ms/step "
              f"({(g['wall'] / p['wall'] - 1) * 100:+.1f}%); the guard's own CPU {own * 1000:.1f} ms a step", flush=True)
    rep = guard.report()
    del git, pit
    guard.close()

    def ms(x: float) -> float:
        return round(x * 1000, 1)

    def spill(p: Dict[str, Any]) -> float:
        """The guard's CPU a step during a plain block (its workers' prefetching, its decision threads)."""
        return p["other_workers_cpu"] + p["decision_cpu"]

    def own(g: Dict[str, Any], p: Dict[str, Any]) -> float:
        """The guard's own CPU a step: its workers and decision threads in both blocks, less the plain workers'."""
        return (g["workers_cpu"] + spill(p)) - (p["workers_cpu"] + g["other_workers_cpu"]) + g["decision_cpu"]

    ratios = [g["wall"] / p["wall"] - 1 for g, p in rounds]
    upper = [(g["wall"] + spill(p)) / (p["wall"] - spill(p)) - 1 for g, p in rounds]
    plains = [p["wall"] for _, p in rounds]
    around = drift_corrected(rounds)
    total = sum(g["wall"] for g, _ in rounds) / sum(plains) - 1
    res = {"machine": machine(device), "device": str(device), "method": "interleaved blocks in one process",
           "worker_nice": worker_nice_of(guard), "block": a.block, "rounds": len(rounds), "warm": a.warm, "batch": a.batch, "seq": G.SEQ, "stages": STAGES,
           "overhead_median_percent": round(median(ratios) * 100, 2),
           "overhead_drift_corrected_median_percent": round(median(around) * 100, 2) if around else None,
           "overhead_total_percent": round(total * 100, 2),
           "overhead_upper_median_percent": round(median(upper) * 100, 2),
           "spill_ms_per_step_median": ms(median(spill(p) for _, p in rounds)),
           "guard_cpu_ms_per_step_median": ms(median(own(g, p) for g, p in rounds)),
           "guard_cpu_percent_of_plain_step_median": round(median(own(g, p) / p["wall"] * 100 for g, p in rounds), 2),
           "plain_ms_per_step_median": ms(median(plains)),
           "guarded_ms_per_step_median": ms(median(g["wall"] for g, _ in rounds)),
           "guarded_first_batch_s": round(first, 3),
           "same_batches": f"{same} of {len(rounds) * a.block} timed batches equal on both sides",
           "per_round": [{"plain_ms_per_step": ms(p["wall"]), "guarded_ms_per_step": ms(g["wall"]),
                          "overhead_percent": round((g["wall"] / p["wall"] - 1) * 100, 2),
                          "guard_cpu_ms_per_step": ms(own(g, p)), "spill_ms_per_step": ms(spill(p)),
                          "overhead_upper_percent": round(((g["wall"] + spill(p)) / (p["wall"] - spill(p)) - 1) * 100, 2),
                          "main_cpu_ms_per_step": {"plain": ms(p["main_cpu"]), "guarded": ms(g["main_cpu"])},
                          "workers_cpu_ms_per_step": {"plain": ms(p["workers_cpu"]), "guarded": ms(g["workers_cpu"])}}
                         for g, p in rounds],
           "guard_seen": rep.get("seen"), "guard_dropped_by_reason": rep.get("dropped_by_reason"),
           "command": f"python benchmarks/guard_overhead_blocks.py --device {a.device} --block {a.block} "
                      f"--rounds {a.rounds}" + (f" --worker-nice {a.worker_nice}" if a.worker_nice is not None else "")}
    print(f"overhead (train on {device}, {len(rounds)} rounds of {a.block} steps): median {res['overhead_median_percent']:+.2f}% "
          f"(drift-corrected {res['overhead_drift_corrected_median_percent']}%, totals {res['overhead_total_percent']:+.2f}%, "
          f"upper bound {res['overhead_upper_median_percent']:+.2f}% with the spill of {res['spill_ms_per_step_median']} ms a step); "
          f"plain {res['plain_ms_per_step_median']} ms a step; the guard's own CPU {res['guard_cpu_ms_per_step_median']} ms "
          f"a step ({res['guard_cpu_percent_of_plain_step_median']}% of a plain step); first batch {first:.2f} s")
    name = "guard_overhead_blocks_cuda.json" if device.type == "cuda" else "guard_overhead_blocks.json"
    write_result(a.out or os.path.join(HERE, "results", name), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
