"""NearDedup's decisions against another checkout: CPU time, and that every decision is the same.

For each row of ``benchmarks/dedup_vs_datasketch.py`` (the same cached corpora; ``cjk`` needs ``--cjk-root``), a
fresh interpreter per run times ``tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()]).wrap(records)`` with
``time.process_time`` (after a warm-up wrap of 2,000 records), and within it the CPU seconds spent in
``NearDedup.decide``. With ``--old DIR`` (another checkout, e.g. ``git archive main | tar -x -C /tmp/old``)
the two codes run in turn, ``--rounds`` times each, and the medians and their ratio are printed; with
``--check`` each code also writes the reason, the matched id and the score of every record for several chunk
sizes (``Guard(chunk_size=...)``; ``n...``: NearDedup alone, so that exact copies reach it), and the two
lists are compared.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/near_decide.py --rows 5-30,cjk --cjk-root DIR \\
        [--old /tmp/old] [--rounds 5] [--check] [--chunks auto,16384,4096,1000,97,n16384,n97] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
import torchdataguard as tdg
from torchdataguard.dedup import near
mode, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as fh:
    records = [{"id": i, "text": t} for i, t in enumerate(json.load(fh))]
if mode == "time":
    spent = [0.0]
    decide = near.NearDedup.decide
    def timed(self, *a, **k):
        t0 = time.process_time()
        try:
            return decide(self, *a, **k)
        finally:
            spent[0] += time.process_time() - t0
    near.NearDedup.decide = timed
    tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], progress=False).wrap(records[:2000])
    spent[0] = 0.0
    t0 = time.process_time()
    kept = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], progress=False).wrap(records)
    print(json.dumps({"wrap": time.process_time() - t0, "decide": spent[0], "kept": len(kept), "package": tdg.__file__}))
else:
    out = {}
    for c in sys.argv[3].split(","):
        size = c.lstrip("n")
        stages = ([] if c.startswith("n") else [tdg.ExactDedup()]) + [tdg.NearDedup()]
        g = tdg.Guard(stages, chunk_size=None if size == "auto" else int(size), progress=False)
        out[c] = [None if d is None else [d.reason, d.matched, d.score] for _, d, _ in g.process(records)]
    print(json.dumps(out))
"""


def child(code: str, args: List[str], cwd: str) -> Any:
    """Run CHILD on ``code``'s package (from ``cwd``, a folder without one: ``python -c`` puts the working
    folder first on the path)."""
    env = dict(os.environ, PYTHONPATH=code + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", CHILD] + args, env=env, capture_output=True, text=True, check=True,
                       cwd=cwd)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if "package" in out and not os.path.abspath(out["package"]).startswith(os.path.abspath(code) + os.sep):
        raise RuntimeError(f"the run meant for {code} imported {out['package']}")
    return out


def main() -> int:
    import dedup_vs_datasketch as B

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="5-30,cjk")
    ap.add_argument("--cjk-root", default=os.environ.get("TDG_CJK_ROOT", ""))
    ap.add_argument("--old", default="", help="another checkout to run in turn with this one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--check", action="store_true", help="compare every decision with --old's")
    ap.add_argument("--chunks", default="auto,16384,4096,1000,97,n16384,n97")
    ap.add_argument("--tmp", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "tdg-near-decide"))
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    os.makedirs(a.tmp, exist_ok=True)
    codes = {"this": ROOT, **({"old": os.path.abspath(a.old)} if a.old else {})}
    result: Dict[str, Any] = {"codes": codes, "rounds": a.rounds, "rows": {}}
    for row in [r for r in a.rows.split(",") if r]:
        docs, _ = B.corpus(row, B.SIZES[row], cjk_root=a.cjk_root)
        path = os.path.join(a.tmp, f"{row.replace('>', 'gt')}.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(docs, fh)
        runs: Dict[str, List[Dict[str, float]]] = {name: [] for name in codes}
        for _ in range(a.rounds):
            for name, code in codes.items():
                runs[name].append(child(code, ["time", path], a.tmp))
        r: Dict[str, Any] = {"documents": len(docs)}
        for name in codes:
            r[name] = {k: round(statistics.median(x[k] for x in runs[name]), 4) for k in ("wrap", "decide")}
            r[name]["kept"] = runs[name][0]["kept"]
        line = f"{row:>8s} ({len(docs)}): " + "; ".join(
            f"{n} wrap {r[n]['wrap']:.3f} s, decide {r[n]['decide']:.3f} s" for n in codes)
        if a.old:
            r["ratio_this_over_old"] = {k: round(r["this"][k] / r["old"][k], 3) for k in ("wrap", "decide")}
            line += f"; this/old wrap {r['ratio_this_over_old']['wrap']:.3f}, decide {r['ratio_this_over_old']['decide']:.3f}"
        print(line, flush=True)
        if a.check and a.old:
            got = {n: child(c, ["check", path, a.chunks], a.tmp) for n, c in codes.items()}
            same: Dict[str, Optional[int]] = {}
            for c in a.chunks.split(","):
                diff = [i for i, (x, y) in enumerate(zip(got["this"][c], got["old"][c])) if x != y]
                same[c] = len(diff)
                drops = sum(d is not None for d in got["this"][c])
                print(f"{'':>10s}chunks {c:>6s}: {drops} drops, {len(diff)} records decided otherwise", flush=True)
            r["records_decided_otherwise"] = same
        result["rows"][row] = r
    if a.out:
        with open(a.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
