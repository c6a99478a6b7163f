"""Near-duplicates of short texts: why texts with few shingles are decided exactly, and what it costs.

Three parts (each can be run alone):

* ``rates``: the probability that a pair of documents with ``k`` distinct shingles each and Jaccard ``J``
  passes verification on 4-bit one-permutation MinHash signatures (estimate ``>= threshold``), computed
  exactly over the 4-bit values (every assignment of values to the first document's shingles, as set
  partitions; the second document's own shingles by convolution) for random placements of the shingles in
  the 128 bins, with the package's densification. This is what ``exact_below = ceil(9 / threshold)`` rests on.
* ``real``: sentences of email bodies from the shipped SpamAssassin corpus, distinct after normalisation,
  through ``guard.wrap`` with ``NearDedup(threshold=0.8)``: drops, and false drops (exact word-5-gram Jaccard
  with the matched text below the threshold, computed here independently), by length.
* ``speed``: seconds for ``guard.wrap`` over 20,000 short texts (1-7 words), 20,000 of 6-30 words and the
  6,046 whole emails (about 3.5 KB), one torch thread; with ``--baseline DIR`` the same run also times the
  package found in DIR (for example a checkout of main), alternating, so both figures come from one run.

Usage:
    python benchmarks/near_short_texts.py [--parts rates,real,speed] [--baseline /path/to/main]
Writes benchmarks/results/near_short_texts.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
import unicodedata
from typing import Dict, List, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, HERE)

WORD = re.compile(r"[a-z0-9\u0080-\U0010ffff]+")


def words(text: str) -> List[str]:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return WORD.findall(text.lower())


def shingles(text: str, ngram: int = 5):
    w = words(text)
    return frozenset([tuple(w)]) if len(w) < ngram else frozenset(tuple(w[i : i + ngram]) for i in range(len(w) - ngram + 1))


def sentences(lo: int, hi: int, limit: int) -> List[str]:
    from torchdataguard.assets import iter_spamassassin

    seen, out = set(), []
    for row in iter_spamassassin():
        text = row["text"]
        body = text.split("\n\n", 1)[1] if "\n\n" in text else text
        for line in body.split("\n"):
            line = line.strip()
            if not line or line.startswith(">"):
                continue
            for sent in re.split(r"(?<=[.!?])\s+", line):
                w = words(sent)
                if lo <= len(w) <= hi and max(len(x) for x in w) <= 40 and tuple(w) not in seen:
                    seen.add(tuple(w))
                    out.append(sent)
                    if len(out) >= limit:
                        return out
    return out


# ---------------------------------------------------------------------------------------------------------
# rates
# ---------------------------------------------------------------------------------------------------------
def _probe_firstpos(P: int, seed: int) -> np.ndarray:
    from torchdataguard.dedup import minhash

    probes = np.asarray(minhash.probe_table(P, seed))  # the package's densification sequences
    first = np.full((P, P), probes.shape[1], dtype=np.int64)
    for b in range(P):
        for t in range(probes.shape[1] - 1, -1, -1):
            first[b, probes[b, t]] = t
    return first


def _sources(bins: np.ndarray, vals: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Which shingle each bin's value comes from, after densification."""
    P = first.shape[0]
    src = np.full(P, -1)
    best = np.full(P, np.inf)
    for e in range(len(bins)):
        if vals[e] < best[bins[e]]:
            best[bins[e]], src[bins[e]] = vals[e], e
    fb = np.unique(bins)
    return np.where(src >= 0, src, src[fb[np.argmin(first[:, fb], axis=1)]])


def _partitions(k: int) -> np.ndarray:
    res = [[0]]
    for _ in range(1, k):
        res = [r + [v] for r in res for v in range(max(r) + 2)]
    return np.array(res, dtype=np.int64)


def pass_probability(k: int, o: int, thr: float, rng, first: np.ndarray, parts: np.ndarray) -> float:
    """P(estimate >= thr) for one random placement of two k-sets sharing o shingles, exact over 4-bit values."""
    P = first.shape[0]
    u = 2 * k - o
    bins, vals = rng.integers(0, P, u), rng.integers(0, 2**32, u)
    A, B = np.arange(k), np.concatenate([np.arange(o), np.arange(k, u)])
    sA, sB = A[_sources(bins[A], vals[A], first)], B[_sources(bins[B], vals[B], first)]
    need = math.ceil((thr + (1 - thr) / 16) * P - 1e-9)
    lab, nb = parts, parts.max(1) + 1
    n = lab.shape[0]
    w = np.exp(np.array([sum(math.log(16 - i) for i in range(m)) for m in range(k + 1)]) - k * math.log(16))[nb]
    shared = sB < k
    dist = np.zeros((n, P + 1))
    dist[np.arange(n), (lab[:, sA[shared]] == lab[:, sB[shared]]).sum(1)] = 1.0
    t = np.arange(P + 1)
    for j in range(k, u):  # the second document's own shingles: independent 4-bit values
        m = sB == j
        if not m.any():
            continue
        cnt = np.zeros((n, k), dtype=np.int64)
        for e in np.unique(sA[m]):
            cnt[np.arange(n), lab[:, e]] += int((sA[m] == e).sum())
        new = dist * ((16 - nb) / 16)[:, None]
        for beta in range(k):
            idx = t[None, :] - cnt[:, beta][:, None]
            g = np.where(idx >= 0, np.take_along_axis(dist, np.clip(idx, 0, P), 1), 0.0)
            new += np.where((beta < nb)[:, None], g / 16, 0.0)
        dist = new
    return float((w * dist[:, need:].sum(1)).sum())


def run_rates(max_k: int, structures: int) -> Dict[str, List[Dict[str, float]]]:
    first = _probe_firstpos(128, 1)
    rng = np.random.default_rng(0)
    out: Dict[str, List[Dict[str, float]]] = {}
    for thr in (0.8, 0.5):
        rows = []
        for k in range(1, max_k + 1):
            parts = _partitions(k)
            done = set()
            for jt in (0.0, 0.2, 0.4, 0.6):
                o = int(math.floor(2 * k * jt / (1 + jt) + 1e-9))  # the largest overlap with J <= jt
                if o in done:
                    continue
                done.add(o)
                p = float(np.mean([pass_probability(k, o, thr, rng, first, parts) for _ in range(structures)]))
                rows.append({"shingles": k, "jaccard": round(o / (2 * k - o), 3), "pass_probability": p})
                print(f"threshold {thr}  k={k:2d}  J={o / (2 * k - o):.2f}  P(pass)={p:.2e}", flush=True)
        out[str(thr)] = rows
    return out


# ---------------------------------------------------------------------------------------------------------
# real texts and speed
# ---------------------------------------------------------------------------------------------------------
def run_real(limit: int) -> List[Dict[str, float]]:
    import torchdataguard as tdg

    out = []
    for lo, hi in ((1, 7), (8, 15), (16, 30)):
        texts = sentences(lo, hi, limit)
        g = tdg.Guard([tdg.NearDedup(threshold=0.8)], progress=False)
        res = list(g.process([{"text": t} for t in texts]))
        sh = [shingles(t) for t in texts]
        Js = [len(sh[ex.id] & sh[d.matched]) / len(sh[ex.id] | sh[d.matched]) for ex, d, _ in res if d is not None]
        row = {"words": f"{lo}-{hi}", "texts": len(texts), "dropped": len(Js),
               "false_drops": sum(J < 0.8 - 1e-9 for J in Js), "false_drops_below_0.7": sum(J < 0.7 for J in Js),
               "index_bytes_per_text": g.report()["stages"][0].get("index_bytes_per_example")}
        print(row, flush=True)
        out.append(row)
    return out


def _time_wrap(kind: str, n: int) -> Tuple[float, int]:
    """(seconds, kept) for guard.wrap over one workload (runs in whatever package is importable)."""
    import torch

    import torchdataguard as tdg

    torch.set_num_threads(1)
    if kind == "emails":
        from torchdataguard.assets import load_spamassassin

        texts = [r["text"] for r in load_spamassassin(limit=n)]
    else:
        lo, hi = (1, 7) if kind == "short" else (6, 30)
        texts = sentences(lo, hi, n)
    g = tdg.Guard([tdg.NearDedup(threshold=0.8)], progress=False)
    g.wrap(texts[:50])  # warm-up (imports, first allocations)
    g.reset()
    t0 = time.perf_counter()
    kept = len(g.wrap(texts))
    return time.perf_counter() - t0, kept


def run_speed(baseline: str | None, timeout: int, repeat: int) -> List[Dict[str, object]]:
    out = []
    for kind, n in (("short", 20000), ("medium", 20000), ("emails", 6046)):
        row: Dict[str, object] = {"workload": kind, "texts": n}
        runs: Dict[str, List[float]] = {}
        for _ in range(repeat):  # alternate the two packages so that both see the same load
            for label, path in (("this", os.path.abspath(ROOT)), ("baseline", baseline)):
                if path is None:
                    continue
                env = dict(os.environ, PYTHONPATH=path)
                cmd = [sys.executable, os.path.abspath(__file__), "--time-one", kind, str(n)]
                try:
                    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=path)
                    sec, kept = json.loads(res.stdout.strip().splitlines()[-1])
                    runs.setdefault(label, []).append(sec)
                    row[f"{label}_kept"] = kept
                except subprocess.TimeoutExpired:
                    runs.setdefault(label, []).append(float("inf"))
        for label, secs in runs.items():
            row[f"{label}_seconds_min"] = round(min(secs), 3)
            row[f"{label}_seconds_median"] = round(sorted(secs)[len(secs) // 2], 3)
        print(row, flush=True)
        out.append(row)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="rates,real,speed")
    ap.add_argument("--max-k", type=int, default=8, help="largest shingle count for the exact rates (Bell(k) work)")
    ap.add_argument("--structures", type=int, default=60, help="random bin placements averaged per rate")
    ap.add_argument("--limit", type=int, default=20000, help="texts per length bucket in 'real'")
    ap.add_argument("--baseline", default=None, help="a directory holding another torchdataguard (e.g. main)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds allowed per timed workload")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each workload and package")
    ap.add_argument("--time-one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "near_short_texts.json"))
    args = ap.parse_args()
    if args.time_one:
        print(json.dumps(_time_wrap(args.time_one[0], int(args.time_one[1]))))
        return 0
    sys.path.insert(0, ROOT)
    from _machine import machine, write_result

    parts = set(args.parts.split(","))
    res: Dict[str, object] = {"machine": machine(timed_with_torch_threads=1)}
    if "rates" in parts:
        res["rates"] = run_rates(args.max_k, args.structures)
    if "real" in parts:
        res["real"] = run_real(args.limit)
    if "speed" in parts:
        res["speed"] = run_speed(args.baseline, args.timeout, args.repeat)
    write_result(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
