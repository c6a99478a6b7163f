"""What ``guard.worker_nice`` does to a data-bound training loop, on a quiet machine and beside other busy processes.

``guard.worker_nice = N`` makes the DataLoader workers that run a guard's stream raise their nice value by N
(``torchdataguard/data/priority.py``). On a machine whose cores the training step keeps busy, that lets training
win the CPU (``benchmarks/guard_overhead_blocks.py --worker-nice N``). But a lowered worker yields to every
process, not only to training: where the loop waits for data (an accelerator's step) and other processes keep the
cores busy (other jobs, other loaders, a tokenizer's threads), the batches arrive late. This measures that loop:

* the guarded loader of benchmarks/guard_overhead.py (``Normalize, QualityFilter, PIIScrubber, ExactDedup,
  NearDedup`` at their defaults over the SpamAssassin bodies with 20% planted copies, batch 16, two workers);
* the main process sleeps ``--step-ms`` a step instead of training (an accelerator's step: nothing to yield to);
* each ``worker_nice`` in ``--nice`` (each in a fresh process, one after the other), first alone, then beside
  ``--busy`` processes that spin on the CPU at the default priority (the other tenants of a shared machine).

Figures: milliseconds a step over ``--steps`` steps after 5 untimed ones (``step_ms`` is the floor), and the
first batch's seconds (fork and first chunk).

Usage:
    python benchmarks/worker_priority.py [--nice 0,10,19] [--busy 2] [--step-ms 20] [--steps 60]
Writes benchmarks/results/worker_priority.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {here!r}); sys.path.insert(0, {root!r})
from torch.utils.data import DataLoader
import guard_overhead as G
import torchdataguard as tdg
nice, step_ms, steps = {nice}, {step_ms}, {steps}
guard = tdg.Guard([tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup()],
                  progress=False)
guard.worker_nice = nice
it = iter(DataLoader(guard.wrap(G.Stream(G.corpus())), batch_size=16, num_workers=2, collate_fn=G.collate))
t0 = time.perf_counter(); next(it); first = time.perf_counter() - t0
for _ in range(5):
    next(it); time.sleep(step_ms / 1000)
t0 = time.perf_counter()
for _ in range(steps):
    next(it); time.sleep(step_ms / 1000)
per = (time.perf_counter() - t0) / steps
guard.close()
print(json.dumps({{"first_batch_s": round(first, 3), "ms_per_step": round(per * 1000, 1)}}))
"""


def _spin() -> None:  # a busy process of another tenant
    while True:
        pass


def run(nice: int, step_ms: float, steps: int) -> Dict[str, Any]:
    code = CHILD.format(here=HERE, root=os.path.dirname(HERE), nice=nice, step_ms=step_ms, steps=steps)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    p = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"worker_nice={nice} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nice", default="0,10,19", help="comma-separated guard.worker_nice values")
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="spinning processes beside the loop")
    ap.add_argument("--step-ms", type=float, default=20.0, help="the accelerator's step the main process waits")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "worker_priority.json"))
    a = ap.parse_args()
    sys.path.insert(0, HERE)
    from _machine import machine, write_result

    nices: List[int] = [int(x) for x in a.nice.split(",")]
    info = machine("cpu")
    rows: List[Dict[str, Any]] = []
    for busy in (0, a.busy):
        spinners = [mp.Process(target=_spin, daemon=True) for _ in range(busy)]
        for s in spinners:
            s.start()
        try:
            for n in nices:
                r = {"busy_processes": busy, "worker_nice": n, **run(n, a.step_ms, a.steps)}
                rows.append(r)
                print(f"busy {busy}  worker_nice {n:2d}: {r['ms_per_step']:7.1f} ms a step (floor {a.step_ms:g}), "
                      f"first batch {r['first_batch_s']:.2f} s", flush=True)
        finally:
            for s in spinners:
                s.terminate()
                s.join()
    res = {"machine": info, "step_ms": a.step_ms, "steps": a.steps, "rows": rows,
           "command": f"python benchmarks/worker_priority.py --nice {a.nice} --busy {a.busy} --step-ms {a.step_ms:g} "
                      f"--steps {a.steps}"}
    write_result(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
