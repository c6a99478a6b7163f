"""What ``import torchdataguard`` and ``torchdataguard --help`` cost, next to ``import torch``.

Each command runs in a fresh interpreter (a subprocess), the commands taking turns, ``--runs`` times (at least
5); the table shows the median wall time and the median CPU time (user + system of the child process, which a
busy machine disturbs less than the wall time). Promised (issue 11): ``import torchdataguard`` costs at most
1.5x ``import torch`` measured in the same run, and ``torchdataguard --help`` answers in under 2 s.

``first use`` is ``import torchdataguard as tdg; tdg.Guard``: the public names are imported on first use, so this
row is what a program that uses the package pays (every stage family, not the integrations, which import
``transformers`` only when ``tdg.GuardCallback`` or ``tdg.DPCallback`` is used).

Usage:
    python benchmarks/import_time.py [--runs 7]
Writes benchmarks/results/import_time.json.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

COMMANDS: Dict[str, List[str]] = {
    "import torch": [sys.executable, "-c", "import torch"],
    "import torchdataguard": [sys.executable, "-c", "import torchdataguard"],
    "torchdataguard --help": [sys.executable, "-c", "import sys; sys.argv = ['torchdataguard', '--help']; "
                              "from torchdataguard.cli import main; sys.exit(main())"],
    "first use (tdg.Guard)": [sys.executable, "-c", "import torchdataguard as tdg; tdg.Guard"],
}

#: the promises checked at the end (exit code 1 when one is broken)
MAX_IMPORT_RATIO = 1.5
MAX_HELP_SECONDS = 2.0


def run_once(command: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``command`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}): "
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh interpreters per command (at least 5)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "import_time.json"))
    args = ap.parse_args()
    if args.runs < 5:
        ap.error(f"--runs {args.runs}: expected at least 5 (the table shows medians)")
    from _machine import machine, write_result  # imports torch: after the argument check, never in a timed run

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for command in COMMANDS.values():  # warm the file cache once, untimed
        run_once(command, env)
    walls: Dict[str, List[float]] = {name: [] for name in COMMANDS}
    cpus: Dict[str, List[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # the commands take turns, so a change of load touches all of them alike
        for name, command in COMMANDS.items():
            wall, cpu = run_once(command, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    rows = {name: {"wall_s_median": statistics.median(walls[name]), "cpu_s_median": statistics.median(cpus[name]),
                   "wall_s": walls[name], "cpu_s": cpus[name]} for name in COMMANDS}
    torch_row = rows["import torch"]
    print(f"{'command':26s} {'wall s (median)':>16s} {'CPU s (median)':>15s} {'x import torch (CPU)':>21s}")
    for name, row in rows.items():
        ratio = row["cpu_s_median"] / torch_row["cpu_s_median"]
        print(f"{name:26s} {row['wall_s_median']:16.3f} {row['cpu_s_median']:15.3f} {ratio:21.2f}")
    ratio_wall = rows["import torchdataguard"]["wall_s_median"] / torch_row["wall_s_median"]
    ratio_cpu = rows["import torchdataguard"]["cpu_s_median"] / torch_row["cpu_s_median"]
    help_s = rows["torchdataguard --help"]["wall_s_median"]
    checks = {
        f"import torchdataguard <= {MAX_IMPORT_RATIO}x import torch (wall and CPU)":
            ratio_wall <= MAX_IMPORT_RATIO and ratio_cpu <= MAX_IMPORT_RATIO,
        f"torchdataguard --help < {MAX_HELP_SECONDS} s (wall)": help_s < MAX_HELP_SECONDS,
    }
    for what, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
    write_result(args.out, {
        "runs": args.runs, "rows": rows,
        "import_ratio_wall": ratio_wall, "import_ratio_cpu": ratio_cpu, "help_wall_s": help_s,
        "checks": checks, "machine": machine(),
    })
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
