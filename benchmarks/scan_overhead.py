"""``torchdataguard scan`` end to end, this tree against another (a baseline checkout), with the outputs compared.

For each input (a JSONL file of ``{"id", "text"}`` records, e.g. the rows of benchmarks/dedup_vs_datasketch.py
written out), ``python -m torchdataguard.cli scan INPUT --out DIR --stages exact,near --text-field text
--id-field id`` runs as a subprocess with ``PYTHONPATH`` set to each tree in turn, alternating which goes
first, ``--repeat`` times. Each run's wall time and CPU time (user + system, of the child) are recorded;
the figures are medians, and the median of the paired ratios new / old.

Every pair of runs is checked for identical outputs: ``kept.jsonl`` and ``dropped.jsonl`` byte for byte,
``report.json`` and ``report.html`` after the fields that are durations or paths are masked (``busy_seconds``,
both ``examples_per_second``, ``throughput.wall_seconds``, and the output folder in ``outputs``).

``--bytecode cached`` (the default) runs with compiled modules, as an installed package has them: a
``PYTHONPYCACHEPREFIX`` folder is filled by one untimed run per tree (``PYTHONDONTWRITEBYTECODE`` is dropped
from the children's environment). ``--bytecode off`` sets ``PYTHONDONTWRITEBYTECODE=1`` without a cache, so
that every run compiles the package's modules from source: what a source checkout costs when bytecode
writing is turned off in the environment.

Usage:
    python benchmarks/scan_overhead.py --old /path/to/baseline/checkout --inputs a.jsonl,b.jsonl
        [--repeat 3] [--bytecode cached|off] [--out FILE]
Writes benchmarks/results/scan_overhead.json (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from _machine import machine, write_result  # noqa: E402

#: report fields that are durations (they differ from run to run)
TIMED = ("busy_seconds", "examples_per_second")


def run_scan(root: str, inp: str, out: str, env: Dict[str, str]) -> Tuple[float, float]:
    """One scan with ``root`` first on the path: ``(wall seconds, child CPU seconds)``."""
    cmd = [sys.executable, "-m", "torchdataguard.cli", "scan", inp, "--out", out, "--stages", "exact,near",
           "--text-field", "text", "--id-field", "id"]
    child_env = dict(env, PYTHONPATH=root)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode("utf-8", "replace") if p.stderr else ""
    if p.stderr:
        p.stderr.close()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} (PYTHONPATH={root}) failed ({p.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


#: the cells of report.html that show a duration or a rate: the speed card, and the rows named by these labels
_TIMED_HTML = [re.compile(r'(<div class="card-value">)[^<]*(</div><div class="card-sub">examples/s over)')] + [
    re.compile(r"(<code>" + label + r" \u2014 [^<]*</code></td><td>)[^<]*(</td>)")
    for label in ("wall_seconds", "examples_per_second", "guard_busy_seconds", "guard_examples_per_second")]


def masked_report(out: str) -> Tuple[Dict[str, Any], str]:
    """``report.json`` with durations and the output folder masked, and ``report.html`` likewise."""
    with open(os.path.join(out, "report.json"), encoding="utf-8") as fh:
        rep = json.load(fh)
    with open(os.path.join(out, "report.html"), encoding="utf-8") as fh:
        html = fh.read()
    for key in TIMED:
        rep[key] = "T"
    tp = rep.get("throughput", {})
    for key in ("wall_seconds", "examples_per_second"):
        tp[key] = "T"
    rep["outputs"] = {k: os.path.basename(v) for k, v in rep.get("outputs", {}).items()}
    html = html.replace(out, "OUT")
    for pattern in _TIMED_HTML:
        html, n = pattern.subn(r"\1T\2", html)
        if n != 1:
            raise RuntimeError(f"report.html in {out}: {n} cells match {pattern.pattern!r} (expected one)")
    return rep, html


def same_outputs(a: str, b: str) -> List[str]:
    """What differs between two scan output folders (empty: the same, durations and paths aside)."""
    diffs = []
    for name in ("kept.jsonl", "dropped.jsonl"):
        with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
            if fa.read() != fb.read():
                diffs.append(name)
    ra, ha = masked_report(a)
    rb, hb = masked_report(b)
    if ra != rb:
        diffs.append("report.json")
    if ha != hb:
        diffs.append("report.html")
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="the baseline tree (a checkout holding torchdataguard/)")
    ap.add_argument("--new", default=ROOT, help="the tree measured against it (default: this one)")
    ap.add_argument("--inputs", required=True, help="comma-separated JSONL files of {id, text} records")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bytecode", default="cached", choices=["cached", "off"])
    ap.add_argument("--out", default=os.path.join(HERE, "results", "scan_overhead.json"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tdg-scan-overhead-")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    if a.bytecode == "cached":
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    trees = {"old": os.path.abspath(a.old), "new": os.path.abspath(a.new)}
    rows = []
    try:
        for inp in a.inputs.split(","):
            outs = {side: os.path.join(tmp, side) for side in trees}
            for side, root in trees.items():  # untimed: fills the bytecode cache, warms the file cache
                run_scan(root, inp, outs[side], env)
            t: Dict[str, Dict[str, List[float]]] = {s: {"wall": [], "cpu": []} for s in trees}
            diffs: List[str] = []
            for r in range(a.repeat):
                for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                    wall, cpu = run_scan(trees[side], inp, outs[side], env)
                    t[side]["wall"].append(wall)
                    t[side]["cpu"].append(cpu)
                diffs += [d for d in same_outputs(outs["old"], outs["new"]) if d not in diffs]
            row = {"input": os.path.basename(inp), "runs": a.repeat, "differing_outputs": diffs,
                   "seconds": {side: {k: [round(x, 3) for x in v] for k, v in t[side].items()} for side in trees}}
            for kind in ("wall", "cpu"):
                for side in trees:
                    row[f"{side}_{kind}_s"] = round(statistics.median(t[side][kind]), 3)
                row[f"{kind}_ratio_new_old"] = round(statistics.median(
                    n / o for n, o in zip(t["new"][kind], t["old"][kind])), 3)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "seconds"}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_result(a.out, {"benchmark": "scan_overhead", "bytecode": a.bytecode, "old": trees["old"],
                         "new": trees["new"], "repeat": a.repeat, "rows": rows, "machine": machine("cpu")})


if __name__ == "__main__":
    main()
