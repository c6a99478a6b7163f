"""Exact + near dedup as users run it, against datasketch doing the same work in the same run, by document length.

Rows are real-text buckets (benchmarks/_corpora.py): 5-30 words, 30-130, 130-400, 400-2,000, over 2,000, each
base document cut from a real one, plus 30% planted near-duplicates whose exact Jaccard with their source is
computed; and ``cjk`` (benchmarks/_cjk_corpus.py, registered through ``_corpora.register_bucket``): real
Chinese text of mixed lengths (short lines to multi-paragraph texts, median about 100 characters) from
manpages-zh and fortunes-zh, with 30% planted near copies made as benchmarks/dedup_zh.py makes them. The
``cjk`` row is in the default rows when those packages are found (``--cjk-root``, ``$TDG_CJK_ROOT``, or
``$TDG_BENCH_CACHE/cjk-x``); when they are not, the run says so and records it under ``skipped``. For each
row, alternating the two sides:

* **scan**: ``torchdataguard scan INPUT --out DIR --stages exact,near --text-field text --id-field id`` as a
  subprocess (reading JSONL, writing kept/dropped/report, ledger on, default settings) against
  ``benchmarks/_datasketch_pipeline.py INPUT DIR`` as a subprocess (json reading and writing, an exact
  BLAKE2b set, word 5-gram shingles, ``MinHash.bulk`` per 1,024 records, keep-first ``MinHashLSH(0.8, 128)``;
  for ``cjk`` with ``--shingles script``: the script-aware shingles NearDedup uses, character 5-grams on Han
  and word 5-grams on other words, written again in plain Python in that script, which imports neither torch
  nor torchdataguard; the row reports on how many of its documents they equal ``hashing.shingles``).
  Documents per second of wall time, start-up included (``scan_inner``: the seconds each process reports
  for its own work, imports excluded). torchdataguard's modules are compiled to bytecode first, as installing
  the wheel does (:func:`compile_package`);
* **wrap**: ``tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()]).wrap(records)`` over a list of dicts against the
  same datasketch pipeline over the same list, in process;
* **signatures**: NearDedup's keyer (text -> keys) against shingling + ``MinHash.bulk``, blocks of 1,024;
* **index bytes per kept document**: the scan report's near index (``index_bytes_per_example``) against
  tracemalloc of datasketch's ``MinHashLSH`` while it is built (a separate, untimed run);
* **quality**, from the scans' ``dropped.jsonl``: recall of planted pairs with exact J >= 0.9 and in [0.8, 0.9),
  drops of planted pairs in [0.7, 0.8); false drops (a near drop whose exact J with its match, for datasketch
  the best of its candidates, is below threshold - 0.1), and short texts (under 16 words) dropped below the
  threshold. For ``cjk`` the bins are the exact Jaccard on the script-aware shingles (character 5-grams on
  Chinese, as in benchmarks/dedup_zh.py) and short texts are those under 16 characters.

Corpora other than SpamAssassin are cached outside the repository; ``python benchmarks/_corpora.py --fetch``
fetches them (see that module). Timings on a shared machine are noisy: each figure is the best of
``--repeat`` alternating runs and the ratio is taken within this run.

Usage:
    python benchmarks/dedup_vs_datasketch.py [--rows 5-30,30-130,cjk] [--scale 1.0] [--repeat 2] [--quick]
        [--cjk-root DIR] [--out FILE]
Writes benchmarks/results/dedup_vs_datasketch.json (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import _cjk_corpus as K  # noqa: E402
import _corpora as C  # noqa: E402
import _datasketch_pipeline as DS  # noqa: E402
from _machine import machine, write_result  # noqa: E402

#: base documents per row (planted variants add 30%)
SIZES = {"5-30": 20000, "30-130": 12000, "130-400": 6000, "400-2000": 3000, ">2000": 500, "cjk": 6000}
THRESHOLD = 0.8
#: rows whose datasketch peer shingles by script (``_datasketch_pipeline.py --shingles script``)
SCRIPT_ROWS = {"cjk"}


def corpus(row: str, n: int, seed: int = 0, cjk_root: str = "") -> Tuple[List[str], List[tuple]]:
    """Documents and planted pairs of a row, cached under the corpus cache."""
    if row in SCRIPT_ROWS:
        return K.planted_corpus(cjk_root, n, seed)
    path = os.path.join(C.CACHE, "buckets", f"{row.replace('>', 'gt')}-{n}-{seed}.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            d = json.load(fh)
        return d["docs"], [tuple(p) for p in d["pairs"]]
    docs, pairs = C.with_planted(C.base_documents(row, n, seed), 0.3, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"docs": docs, "pairs": pairs}, fh)
    return docs, pairs


def compile_package() -> None:
    """Write torchdataguard's bytecode, as pip does when it installs a wheel. Run from a checkout (an editable
    install) with ``PYTHONDONTWRITEBYTECODE`` set, as on the benchmark machine, every scan would compile the
    package's ~80 modules from source first (about 0.15-0.19 s of CPU, ninth session), which an installed
    copy never does; datasketch and torch, installed by pip, load theirs compiled."""
    import compileall

    compileall.compile_dir(os.path.join(ROOT, "torchdataguard"), quiet=1)


def scan_command(inp: str, out: str) -> List[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "torchdataguard")
    head = [exe] if os.path.exists(exe) else [sys.executable, "-c", "import sys; from torchdataguard.cli import command; "
                                                                    "sys.argv[0] = 'torchdataguard'; command()"]
    return head + ["scan", inp, "--out", out, "--stages", "exact,near", "--text-field", "text", "--id-field", "id"]


def timed(cmd: Sequence[str], env: Dict[str, str]) -> float:
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"   scan wall {dt:.3f} user {r1.ru_utime-r0.ru_utime:.3f} sys {r1.ru_stime-r0.ru_stime:.3f} minflt {r1.ru_minflt-r0.ru_minflt} majflt {r1.ru_majflt-r0.ru_majflt} nivcsw {r1.ru_nivcsw-r0.ru_nivcsw}", flush=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return dt


def read_drops(path: str) -> Dict[int, Tuple[str, Any]]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            out[int(r["id"])] = (r["reason"], r.get("matched"))
    return out


def quality(docs: Sequence[str], pairs, drops: Dict[int, Tuple[str, Any]]) -> Dict[str, Any]:
    """Recall by exact Jaccard of planted pairs; false drops against the exact Jaccard with the match."""
    cache: Dict[int, frozenset] = {}

    def s(i: int) -> frozenset:
        if i not in cache:
            cache[i] = C.shingle_set(docs[i])
        return cache[i]

    bins = {">=0.9": [], "0.8-0.9": [], "0.7-0.8": [], "<0.5": []}
    for v, src in pairs:
        j = C.jaccard(s(v), s(src))
        key = ">=0.9" if j >= 0.9 else "0.8-0.9" if j >= 0.8 else "0.7-0.8" if j >= 0.7 else "<0.5" if j < 0.5 else None
        if key:
            bins[key].append(v in drops)
    false = short_false = near = 0
    for i, (reason, m) in drops.items():
        if reason != "duplicate/near":
            continue
        near += 1
        cands = m if isinstance(m, list) else [m]
        j = max(C.jaccard(s(i), s(int(c))) for c in cands)
        false += j < THRESHOLD - 0.1
        short_false += (len(C.words(docs[i])) < 16) and j < THRESHOLD - 1e-9
    return {"recall": {k: [round(sum(v) / len(v), 4) if v else None, len(v)] for k, v in bins.items()},
            "dropped": len(drops), "near_drops": near, "false_drops": false,
            "false_drop_rate": round(false / len(docs), 6), "short_false_drops": short_false}


def wrap_ours(records: List[Dict[str, Any]]) -> Tuple[float, int]:
    import torchdataguard as tdg

    t0 = time.perf_counter()
    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()])
    kept = guard.wrap(records)
    return time.perf_counter() - t0, len(kept)


def wrap_datasketch(records: List[Dict[str, Any]], shingler: str = "words") -> Tuple[float, int]:
    t0 = time.perf_counter()
    kept = [rec for _, rec, reason, _ in DS.dedup(records, text_of=lambda r: r["text"], id_of=lambda i, r: i,
                                                  threshold=THRESHOLD, shingles_of=DS.SHINGLERS[shingler])
            if reason is None]
    return time.perf_counter() - t0, len(kept)


def signatures(docs: Sequence[str], repeat: int, shingler: str = "words") -> Tuple[float, float]:
    import torchdataguard as tdg
    from datasketch import MinHash
    from torchdataguard.core.stage import Example

    keyer = tdg.NearDedup().keyer()
    exs = [Example(i, d, d) for i, d in enumerate(docs)]
    ours, theirs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for a in range(0, len(exs), 1024):
            keyer(exs[a:a + 1024])
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for a in range(0, len(docs), 1024):
            MinHash.bulk([DS.SHINGLERS[shingler](d) for d in docs[a:a + 1024]], num_perm=DS.NUM_PERM)
        theirs.append(time.perf_counter() - t0)
    return len(docs) / min(ours), len(docs) / min(theirs)


def datasketch_index_bytes(docs: Sequence[str], shingler: str = "words") -> float:
    """tracemalloc bytes of building datasketch's MinHashLSH, per inserted document (untimed)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=DS.NUM_PERM)
    mhs = MinHash.bulk([DS.SHINGLERS[shingler](d) for d in docs], num_perm=DS.NUM_PERM)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    n = 0
    for i, m in enumerate(mhs):
        if not lsh.query(m):
            lsh.insert(i, m)
            n += 1
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / max(1, n)


def run_row(row: str, n: int, repeat: int, tmp: str, env: Dict[str, str], cjk_root: str = "") -> Dict[str, Any]:
    docs, pairs = corpus(row, n, cjk_root=cjk_root)
    shingler = "script" if row in SCRIPT_ROWS else "words"
    inp = os.path.join(tmp, "input.jsonl")
    with open(inp, "w", encoding="utf-8") as fh:
        for i, d in enumerate(docs):
            fh.write(json.dumps({"id": i, "text": d}, ensure_ascii=False) + "\n")
    nw = sorted(len(C.words(d)) for d in docs)
    nc = sorted(len(d) for d in docs)
    print(f"[{row}] {len(docs)} documents ({len(pairs)} planted), median {nw[len(nw) // 2]} words, "
          f"{nc[len(nc) // 2]} characters", flush=True)
    ours_out, ds_out = os.path.join(tmp, "ours"), os.path.join(tmp, "ds")
    ds_cmd = [sys.executable, os.path.join(HERE, "_datasketch_pipeline.py"), inp, ds_out, "--threshold", str(THRESHOLD)]
    ds_cmd += ["--shingles", shingler] if shingler != "words" else []
    scan_t, scan_inner, ds_t, ds_inner = [], [], [], []
    for _ in range(repeat):
        shutil.rmtree(ours_out, ignore_errors=True)
        scan_t.append(timed(scan_command(inp, ours_out), env))
        with open(os.path.join(ours_out, "report.json")) as fh:
            rep = json.load(fh)
        scan_inner.append(rep["throughput"]["wall_seconds"])
        shutil.rmtree(ds_out, ignore_errors=True)
        t0 = time.perf_counter()
        p = subprocess.run(ds_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
        ds_t.append(time.perf_counter() - t0)
        ds_inner.append(json.loads(p.stdout.strip().splitlines()[-1])["seconds"])
    near = next(s for s in rep["stages"] if s["name"] == "near")
    judge = K.quality if row in SCRIPT_ROWS else quality
    q_ours = judge(docs, pairs, read_drops(os.path.join(ours_out, "dropped.jsonl")))
    q_ds = judge(docs, pairs, read_drops(os.path.join(ds_out, "dropped.jsonl")))
    records = [{"id": i, "text": d} for i, d in enumerate(docs)]
    w_ours, w_ds = [], []
    for _ in range(repeat):
        w_ours.append(wrap_ours(records))
        w_ds.append(wrap_datasketch(records, shingler))
    kept_wrap = w_ours[0][1]
    sig_ours, sig_ds = signatures(docs, repeat, shingler)
    N = len(docs)
    res = {
        "row": row, "documents": N, "planted": len(pairs), "median_words": nw[len(nw) // 2],
        "mean_words": round(sum(nw) / N, 1), "median_chars": nc[len(nc) // 2],
        "scan_docs_per_s": {"torchdataguard": round(N / min(scan_t), 1), "datasketch": round(N / min(ds_t), 1),
                            "ratio": round(min(ds_t) / min(scan_t), 2)},
        "scan_inner_docs_per_s": {"torchdataguard": round(N / min(scan_inner), 1),
                                  "datasketch": round(N / min(ds_inner), 1),
                                  "ratio": round(min(ds_inner) / min(scan_inner), 2)},
        "wrap_docs_per_s": {"torchdataguard": round(N / min(t for t, _ in w_ours), 1),
                            "datasketch": round(N / min(t for t, _ in w_ds), 1),
                            "ratio": round(min(t for t, _ in w_ds) / min(t for t, _ in w_ours), 2)},
        "signatures_per_s": {"torchdataguard": round(sig_ours, 1), "datasketch": round(sig_ds, 1),
                             "ratio": round(sig_ours / sig_ds, 2)},
        "index_bytes_per_kept_document": {"torchdataguard": near.get("index_bytes_per_example"),
                                          "datasketch": round(datasketch_index_bytes(docs, shingler), 1)},
        "kept": {"scan": rep["kept"], "wrap": kept_wrap, "datasketch": N - q_ds["dropped"],
                 "datasketch_wrap": w_ds[0][1]},
        "quality": {"torchdataguard": q_ours, "datasketch": q_ds},
        "commands": {"scan": "torchdataguard scan INPUT --out DIR --stages exact,near --text-field text --id-field id",
                     "datasketch": "python benchmarks/_datasketch_pipeline.py INPUT DIR"
                                   + (f" --shingles {shingler}" if shingler != "words" else ""),
                     "wrap": "tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()]).wrap(records)"},
    }
    if row in SCRIPT_ROWS:
        res["source"] = "tests/fixtures/zh (smoke)" if K.is_fixtures(cjk_root) else \
            f"manpages-zh + fortunes-zh under {cjk_root}"
        res["lengths"] = K.length_profile(docs)
        res["shingle_agreement"] = K.shingle_agreement(docs)
        res["quality_measure"] = ("exact Jaccard of script-aware shingles (character 5-grams on Han); short texts: "
                                  f"under {K.SHORT_CHARS} characters")
        a = res["shingle_agreement"]
        print(f"[{row}] the pipeline's script-aware shingles equal hashing.shingles on {a['identical_sets']} of "
              f"{a['documents']} documents (as ordered lists: {a['identical_lists']})", flush=True)
    print_row(res)
    return res


HEAD = (f"{'row':>9s} {'docs':>6s} {'len':>5s} | {'scan/s':>7s} {'ds/s':>6s} {'x':>5s} | {'wrap/s':>7s} {'ds/s':>6s} "
        f"{'x':>5s} | {'sig x':>5s} | {'B/doc':>5s} {'ds B':>6s} | {'R>=.9':>11s} {'R.8-.9':>11s} | "
        f"{'false':>7s} {'short':>5s}")


def print_row(r: Dict[str, Any], head: bool = True) -> None:
    qo, qd = r["quality"]["torchdataguard"], r["quality"]["datasketch"]

    def rr(q, k):
        v = q["recall"][k][0]
        return "-" if v is None else f"{v:.3f}"
    if head:
        print(HEAD)
    size = f"{r['median_chars']}c" if r["row"] in SCRIPT_ROWS else f"{r['median_words']}w"
    print(f"{r['row']:>9s} {r['documents']:6d} {size:>5s} | {r['scan_docs_per_s']['torchdataguard']:7.0f} "
          f"{r['scan_docs_per_s']['datasketch']:6.0f} {r['scan_docs_per_s']['ratio']:5.2f} | "
          f"{r['wrap_docs_per_s']['torchdataguard']:7.0f} {r['wrap_docs_per_s']['datasketch']:6.0f} "
          f"{r['wrap_docs_per_s']['ratio']:5.2f} | {r['signatures_per_s']['ratio']:5.2f} | "
          f"{r['index_bytes_per_kept_document']['torchdataguard'] or 0:5.0f} "
          f"{r['index_bytes_per_kept_document']['datasketch']:6.0f} | {rr(qo, '>=0.9')}/{rr(qd, '>=0.9')} "
          f"{rr(qo, '0.8-0.9')}/{rr(qd, '0.8-0.9')} | {qo['false_drops']:3d}/{qd['false_drops']:<3d} "
          f"{qo['short_false_drops']}/{qd['short_false_drops']}", flush=True)


def choose_rows(rows: Optional[str], cjk_root: str) -> Tuple[List[str], List[Dict[str, str]]]:
    """``(rows to run, rows skipped with the reason)``. ``rows`` None: every bucket, and ``cjk`` when its sources
    are under ``cjk_root`` (registered as a bucket then); a ``cjk`` asked for by name without them is an error."""
    why = K.missing(cjk_root)
    if why is None:
        C.register_bucket("cjk", lambda n, seed: K.base_documents(cjk_root, n, seed))
    wanted = [r for r in (rows or ",".join([b[0] for b in C.BUCKETS] + ["cjk"])).split(",") if r]
    unknown = [r for r in wanted if r not in SIZES]
    if unknown:
        raise ValueError(f"--rows: unknown row(s) {unknown}; expected some of {list(SIZES)}")
    if "cjk" not in wanted or why is None:
        return wanted, []
    if rows:
        raise ValueError(f"--rows cjk: {why}")
    return [r for r in wanted if r != "cjk"], [{"row": "cjk", "reason": why}]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=None, help="comma-separated rows (default: every bucket, and cjk when its "
                                                 "sources are found)")
    ap.add_argument("--cjk-root", default=K.default_root(),
                    help="folder manpages-zh and fortunes-zh were unpacked into (dpkg-deb -x), or tests/fixtures/zh "
                         f"for a smoke run (default: ${K.ROOT_ENV}, else $TDG_BENCH_CACHE/cjk-x)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every row's document count")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="a tenth of the documents, one repeat (a smoke run)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "dedup_vs_datasketch.json"))
    a = ap.parse_args()
    if a.quick:
        a.scale, a.repeat = a.scale * 0.1, 1
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    compile_package()
    try:
        wanted, skipped = choose_rows(a.rows, a.cjk_root)
    except ValueError as e:
        ap.error(str(e))
    for s in skipped:
        print(f"[{s['row']}] SKIPPED: {s['reason']}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in wanted:
            rows.append(run_row(row, max(50, int(SIZES.get(row, 5000) * a.scale)), a.repeat, tmp, env, a.cjk_root))
    print("\nall rows:")
    print(HEAD)
    for r in rows:
        print_row(r, head=False)
    for s in skipped:
        print(f"{s['row']:>9s} skipped: {s['reason']}")
    res = {"machine": machine("cpu"), "threshold": THRESHOLD, "num_perm": DS.NUM_PERM, "repeat": a.repeat,
           "bytecode": "torchdataguard compiled first (compile_package), as a pip install of the wheel would",
           "command": "python benchmarks/dedup_vs_datasketch.py " + " ".join(sys.argv[1:]), "rows": rows,
           "skipped": skipped}
    write_result(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
