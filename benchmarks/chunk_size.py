"""What ``Guard(chunk_size=...)`` costs in time and memory, by document length (the choice of the default).

For each length bucket of ``benchmarks/dedup_vs_datasketch.py`` (the same cached corpora) and each chunk size,
a fresh interpreter runs ``tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], chunk_size=C).wrap(records)`` over
the bucket's records ``--repeat`` times and reports the best time, the records kept (the same for every chunk
size: decisions do not depend on it) and the growth of its peak resident memory over what it held once the
records were loaded. The chunk sizes run in turn within each bucket.

Usage:
    python benchmarks/chunk_size.py [--rows 5-30,30-130] [--sizes 1024,4096,16384,auto] [--repeat 2]
Writes benchmarks/results/chunk_size.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import _corpora as C  # noqa: E402
from _machine import machine, write_result  # noqa: E402

CHILD = """
import json, resource, sys, time
import torchdataguard as tdg
path, repeat = sys.argv[1], int(sys.argv[3])
cs = None if sys.argv[2] == "auto" else int(sys.argv[2])  # auto: the default (chunk_size=None)
with open(path, encoding="utf-8") as fh:
    records = [{"id": i, "text": t} for i, t in enumerate(json.load(fh)["docs"])]
tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], chunk_size=cs).wrap(records[:64])  # first-use imports
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    kept = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], chunk_size=cs).wrap(records)
    times.append(time.perf_counter() - t0)
    n = len(kept)
    del kept
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": min(times), "kept": n, "peak_growth_mb": (peak - base) / 1024}))
"""


def main() -> int:
    import dedup_vs_datasketch as B

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(b[0] for b in C.BUCKETS))
    ap.add_argument("--sizes", default="1024,4096,16384,auto", help="'auto': the default, chunk_size=None")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "chunk_size.json"))
    a = ap.parse_args()
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows: List[Dict[str, Any]] = []
    for row in [r for r in a.rows.split(",") if r]:
        n = B.SIZES.get(row, 5000)
        B.corpus(row, n)  # builds the cached bucket if needed
        path = os.path.join(C.CACHE, "buckets", f"{row.replace('>', 'gt')}-{n}-0.json")
        out: Dict[str, Any] = {"row": row, "by_chunk_size": {}}
        for cs in sizes:
            p = subprocess.run([sys.executable, "-c", CHILD, path, cs, str(a.repeat)], env=env,
                               capture_output=True, text=True, check=True)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            out["by_chunk_size"][cs] = {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
            print(f"{row:>9s} chunk_size {cs:>5s}: {r['seconds']:.3f} s, kept {r['kept']}, peak +{r['peak_growth_mb']:.0f} MB",
                  flush=True)
        rows.append(out)
    write_result(a.out, {"machine": machine("cpu"), "repeat": a.repeat, "sizes": sizes, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
