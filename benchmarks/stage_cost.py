"""CPU per e-mail of the guard's record stages: ``Guard([stage]).filter`` over the 6,046 shipped SpamAssassin
bodies (the text after the headers), one thread, ``time.process_time``, best of 3 in each run.

Each measurement runs in a fresh interpreter; with ``--against DIR`` (the root of another checkout, e.g. main
extracted by ``git archive main | tar -x -C DIR``) that checkout's code runs too, the two taking turns for
``--rounds`` rounds, and the table shows the median of each side and the median of the paired ratios.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/stage_cost.py [--stages quality,all] [--rounds 5] [--against DIR]
Writes benchmarks/results/stage_cost.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

STAGES = {
    "normalize": "[tdg.Normalize()]",
    "quality": "[tdg.QualityFilter()]",
    "pii": "[tdg.PIIScrubber()]",
    "dedup": "[tdg.ExactDedup(), tdg.NearDedup()]",
    "all": "[tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup()]",
}

CHILD = """
import time
import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
bodies = [r["text"].split("\\n\\n", 1)[-1] for r in load_spamassassin()]
best = float("inf")
for _ in range(3):
    guard = tdg.Guard({stages}, device="cpu", progress=False)
    start = time.process_time()
    guard.filter(bodies)
    best = min(best, time.process_time() - start)
assert tdg.__file__.startswith({root!r}), tdg.__file__
print(best / len(bodies) * 1e3)
"""


def measure(root: str, stages: str) -> float:
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    # run from the checkout's root: "python -c" puts the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", CHILD.format(stages=STAGES[stages], root=os.path.join(root, ''))], env=env, cwd=root,
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", default="quality,all", help=f"comma-separated, of {sorted(STAGES)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", default=None, help="root of another checkout to run in turn")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {sorted(STAGES)}")
    sides = {"this": ROOT} if args.against is None else {"this": ROOT, "against": os.path.abspath(args.against)}
    runs: Dict[str, Dict[str, List[float]]] = {s: {side: [] for side in sides} for s in stages}
    for r in range(args.rounds):
        for s in stages:
            order = list(sides) if r % 2 == 0 else list(reversed(list(sides)))
            for side in order:
                runs[s][side].append(measure(sides[side], s))
            print(r + 1, s, {side: round(v[-1], 4) for side, v in runs[s].items()}, flush=True)
    summary = {}
    for s in stages:
        row = {f"{side}_median_ms": statistics.median(v) for side, v in runs[s].items()}
        if args.against is not None:
            row["paired_ratio_median"] = statistics.median(
                a / b for a, b in zip(runs[s]["this"], runs[s]["against"]))
        summary[s] = row
        print(s, {k: round(v, 4) for k, v in row.items()})
    load = os.getloadavg()[0]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "stage_cost.json"), "w") as f:
        json.dump({"rounds": runs, "summary": summary, "against": args.against, "load_at_end": load}, f, indent=1)


if __name__ == "__main__":
    main()
