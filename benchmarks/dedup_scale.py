"""Cost of exact + near dedup as the corpus grows: time and peak memory for 100k, 1M and 5M short documents.

Documents are synthesised from real text: each is one or two real short texts (the 5-30-word bucket of
benchmarks/_corpora.py: fortunes, chat turns, Brown and SpamAssassin sentences) joined, so there are far more
distinct documents than source texts; 5% are exact copies of an earlier document (case or spacing changed)
and 5% near copies (one word of an earlier document of 20 words or more replaced). They stream through
``tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()]).process(...)`` with default settings (the ledger
remembering every decision), each size in its own process so that peak memory (``ru_maxrss``) is that
size's alone. The table reports seconds, documents per second, peak RSS, RSS above the process after
growth of RSS from the first 20,000 documents to the end next to the growth of the indexes over the same
span (memory is bounded by the index), and the indexes' bytes per kept document.

Usage:
    python benchmarks/dedup_scale.py [--sizes 100000,1000000,5000000] [--timeout 1800]
Writes benchmarks/results/dedup_scale.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)


def documents(n: int, seed: int = 0) -> Iterator[str]:
    """``n`` synthesised documents (see the module docstring), streamed."""
    import _corpora as C

    rng = random.Random(seed)
    base = C.cached_base("5-30", 100000, seed)
    recent: List[str] = []  # earlier documents to copy from (a bounded, refreshed sample)
    for i in range(n):
        r = rng.random()
        if recent and r < 0.05:
            d = recent[rng.randrange(len(recent))]
            yield d.upper() if rng.random() < 0.5 else "  " + d.replace(" ", "  ")
            continue
        if recent and r < 0.10:
            w = recent[rng.randrange(len(recent))].split()
            if len(w) >= 20:
                w[rng.randrange(len(w))] = rng.choice(base).split()[0] + "q"
                yield " ".join(w)
                continue
        d = rng.choice(base) if rng.random() < 0.4 else rng.choice(base) + " " + rng.choice(base)
        if len(recent) < 50000:
            recent.append(d)
        else:
            recent[rng.randrange(len(recent))] = d
        yield d


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one(n: int) -> Dict[str, Any]:
    import torchdataguard as tdg

    import gc

    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], progress=False)
    warm = min(n, 20000)  # RSS is read after this many documents, and at the end
    t0 = time.perf_counter()
    kept = seen = 0
    rss_warm = index_warm = 0.0
    for _, drop, _ in guard.process(documents(n)):
        kept += drop is None
        seen += 1
        if seen == warm:
            gc.collect()
            rss_warm = rss_mb()
            index_warm = sum(st.memory_bytes() for st in guard.index_stages)
    dt = time.perf_counter() - t0
    rep = guard.report()
    stages = {s["name"]: s for s in rep["stages"]}
    index_bytes = sum(s.get("index_bytes", 0) for s in stages.values())
    return {"documents": n, "seconds": round(dt, 1), "docs_per_s": round(n / dt, 1), "kept": kept,
            "dropped_by_reason": rep["dropped_by_reason"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_growth_after_warmup_mb": round(rss_mb() - rss_warm, 1),
            "index_growth_after_warmup_mb": round((index_bytes - index_warm) / 2**20, 1),
            "index_bytes": index_bytes, "index_bytes_per_kept": round(index_bytes / max(1, kept), 1),
            "near_bytes_per_indexed": stages["near"].get("index_bytes_per_example"),
            "exact_bytes_per_indexed": stages["exact"].get("index_bytes_per_example")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per size")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "dedup_scale.json"))
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one)))
        return 0
    from _machine import machine, write_result

    rows: List[Dict[str, Any]] = []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"{'documents':>10s} {'seconds':>8s} {'docs/s':>8s} {'kept':>9s} {'peak MB':>8s} {'+RSS MB':>8s} "
          f"{'+index MB':>9s} {'idx B/kept':>10s}")
    for n in [int(x) for x in a.sizes.split(",") if x]:
        try:
            p = subprocess.run([sys.executable, __file__, "--one", str(n)], env=env, capture_output=True, text=True,
                               timeout=a.timeout)
        except subprocess.TimeoutExpired:
            rows.append({"documents": n, "error": f"did not finish in {a.timeout} s"})
            print(f"{n:10d} did not finish in {a.timeout} s")
            continue
        if p.returncode:
            rows.append({"documents": n, "error": p.stderr[-2000:]})
            print(f"{n:10d} failed: {p.stderr[-500:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{n:10d} {r['seconds']:8.1f} {r['docs_per_s']:8.0f} {r['kept']:9d} {r['peak_rss_mb']:8.0f} "
              f"{r['rss_growth_after_warmup_mb']:8.0f} {r['index_growth_after_warmup_mb']:9.0f} "
              f"{r['index_bytes_per_kept']:10.1f}", flush=True)
    write_result(a.out, {"machine": machine("cpu"), "rows": rows,
                         "command": "tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()]).process(stream)"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
