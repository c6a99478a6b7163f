"""Exact + near dedup of real Chinese text with planted near copies, against datasketch on the SAME shingles.

Rows (base documents from manpages-zh and fortunes-zh unpacked under ``--root``; without it, the files of
``tests/fixtures/zh``): ``short`` (2-40 characters: man-page descriptions, lines of the Tang and Song poems,
short lines of the Chinese fortunes, short paragraphs), ``40-150`` and ``150-600`` characters (man-page
paragraphs, many mixing in command names; fortunes), ``600-3000`` (a page's paragraphs read as one text),
each distinct after normalisation, plus 30% planted near copies (``tests/dedup/zh_stream.py``: Han
characters replaced, inserted or deleted, adjacent two-character words swapped, punctuation changed (ASCII,
other forms, dropped), width changed, a prefix or suffix cut, several at once, exact copies). Two English
rows are measured in the same run (``benchmarks/_corpora.py`` buckets of 5-30, 30-130 and 130-400 words:
SpamAssassin, Brown, fortunes, chat turns) so the speed class can be compared on one machine at one time.

For each row, alternating the two sides, best of ``--repeat``:

* **dedup**: ``Guard([ExactDedup(), NearDedup()]).process(records)`` against the datasketch pipeline of
  ``benchmarks/_datasketch_pipeline.py`` (exact BLAKE2b set, ``MinHash.bulk`` per 1,024 records, keep-first
  ``MinHashLSH(0.8, 128)``) fed the same script-aware shingles as strings
  (:func:`torchdataguard.dedup.hashing.shingles`: character 5-grams for Han, word 5-grams elsewhere);
* **signatures**: NearDedup's keyer against ``shingles`` + ``MinHash.bulk``, blocks of 1,024;
* **quality**: recall of planted pairs by their exact character-5-gram Jaccard (>= 0.9, [0.8, 0.9)), drops of
  pairs in [0.7, 0.8), false drops (a near drop whose exact Jaccard with its match is below 0.7; for
  datasketch the best of its candidates), short texts (under 16 characters) dropped below 0.8.

``--sweep 2,3,4,5,6,8``: the same quality and speed of our side for each character n-gram size (the
Jaccard bins stay character-5-gram ones: the measure the targets are stated in), the measurement behind
the default ``char_ngram=5``.

Usage:
    python benchmarks/dedup_zh.py --root /tmp/debroot [--repeat 3] [--scale 1.0] [--sweep 2,3,4,5,6,8]
Writes benchmarks/results/dedup_zh.json.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from typing import Any, Dict, List, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "dedup"))

import _corpora as C  # noqa: E402
import _datasketch_pipeline as DS  # noqa: E402
import zh_stream as Z  # noqa: E402
from _debian_text import NON_GFDL_PAGES, fortunes, man_pages, read_man, roff_sections  # noqa: E402
from _machine import machine, write_result  # noqa: E402

import torchdataguard as tdg  # noqa: E402
from torchdataguard.core.stage import Example  # noqa: E402
from torchdataguard.dedup.hashing import shingle_tokens, shingles  # noqa: E402

THRESHOLD = 0.8
SIZES = {"short": 8000, "en 5-30": 8000, "40-150": 6000, "en 30-130": 6000, "150-600": 3000, "en 130-400": 3000,
         "600-3000": 800}
HAN = re.compile("[\u3400-\u9fff]")


def _han_share(t: str) -> float:
    letters = sum(c.isalpha() for c in t)
    return len(HAN.findall(t)) / letters if letters else 0.0


def chinese_pool(root: str) -> Dict[str, List[str]]:
    """Candidate base texts by row: man-page paragraphs and descriptions, fortunes, poem lines."""
    pool: Dict[str, List[str]] = {"short": [], "40-150": [], "150-600": [], "600-3000": []}

    def add(t: str) -> None:
        t = t.strip()
        n = len(t)
        if _han_share(t) < 0.4:
            return
        row = "short" if 2 <= n <= 40 else "40-150" if n < 150 else "150-600" if n < 600 else "600-3000" if n < 3000 else None
        if row:
            pool[row].append(t)

    if not root:
        for t in Z.passages() + Z.short_lines():
            add(t)
        for t in Z.pieces(Z.passages(), 40, 150):
            add(t)
        return pool
    for lang in ("zh_CN", "zh_TW"):
        for page, path in man_pages(root, lang).items():
            if page in NON_GFDL_PAGES:
                continue
            secs = roff_sections(read_man(path) or "")
            whole = []
            for i, (_, paras) in enumerate(secs[1:]):
                for j, p in enumerate(paras):
                    name_line = i == 0 and j == 0 and " - " in p  # "ls - 列出目录内容": the description
                    add(p.split(" - ", 1)[1] if name_line else p)
                    whole.append(p)
            add("\n".join(whole)[:2999])
    for name in ("chinese", "tang300", "song100"):
        for paras, _ in fortunes(os.path.join(root, "usr/share/games/fortunes", name)):
            add("\n".join(paras))
            for p in paras:
                add(p)
                if name != "chinese":
                    for line in re.split("[，。？！；]", p):
                        add(line)
    return pool


def base_documents(row: str, n: int, pool: Dict[str, List[str]], seed: int = 0) -> List[str]:
    if row.startswith("en "):
        return C.cached_base(row[3:], n, seed)
    rng = random.Random(seed)
    cands = list(pool[row])
    rng.shuffle(cands)
    seen, out = set(), []
    for t in cands:
        key = " ".join(shingle_tokens(t))
        if key and key not in seen:
            seen.add(key)
            out.append(t)
            if len(out) >= n:
                break
    return out


def encoded_shingles(text: str) -> List[bytes]:
    """The script-aware shingles as datasketch takes them."""
    return [s.encode("utf-8", "surrogatepass") for s in shingles(text)]


def run_ours(docs: Sequence[str], **near: Any) -> Tuple[float, Dict[int, Any]]:
    t0 = time.perf_counter()
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(**near)], device="cpu", progress=False)
    drops = {i: (None if d.reason == "duplicate/exact" else d.matched)
             for i, (_, d, _) in enumerate(g.process([{"text": t} for t in docs])) if d is not None}
    return time.perf_counter() - t0, drops


def run_datasketch(docs: Sequence[str]) -> Tuple[float, Dict[int, Any]]:
    t0 = time.perf_counter()
    drops = {i: (None if reason == "duplicate/exact" else list(m))
             for i, _, reason, m in DS.dedup(docs, text_of=lambda t: t, id_of=lambda i, t: i, threshold=THRESHOLD,
                                             shingles_of=encoded_shingles) if reason is not None}
    return time.perf_counter() - t0, drops


def signatures(docs: Sequence[str], repeat: int) -> Tuple[float, float]:
    from datasketch import MinHash

    keyer = tdg.NearDedup().keyer()
    exs = [Example(i, d, d) for i, d in enumerate(docs)]
    ours, theirs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for a in range(0, len(exs), 1024):
            keyer(exs[a : a + 1024])
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for a in range(0, len(docs), 1024):
            MinHash.bulk([encoded_shingles(d) for d in docs[a : a + 1024]], num_perm=DS.NUM_PERM)
        theirs.append(time.perf_counter() - t0)
    return len(docs) / min(ours), len(docs) / min(theirs)


def planted(row: str, n: int, pool: Dict[str, List[str]]) -> Tuple[List[str], List[Tuple[int, int, str]]]:
    base = base_documents(row, n, pool)
    if row.startswith("en "):
        docs, pairs = C.with_planted(base, 0.3, 0)
        return docs, [(v, s, "en") for v, s in pairs]
    return Z.with_planted(base, 0.3, seed=0)


def run_row(row: str, n: int, pool: Dict[str, List[str]], repeat: int) -> Dict[str, Any]:
    docs, pairs = planted(row, n, pool)
    chars = sorted(len(d) for d in docs)
    toks = sum(len(shingle_tokens(d)) for d in docs) / len(docs)
    print(f"[{row}] {len(docs)} documents ({len(pairs)} planted), median {chars[len(chars) // 2]} characters",
          flush=True)
    t_ours, t_ds = [], []
    for _ in range(repeat):
        t, d_ours = run_ours(docs)
        t_ours.append(t)
        t, d_ds = run_datasketch(docs)
        t_ds.append(t)
    sig_ours, sig_ds = signatures(docs, repeat)
    N = len(docs)
    res = {"row": row, "documents": N, "planted": len(pairs), "median_chars": chars[len(chars) // 2],
           "mean_tokens": round(toks, 1), "megabytes": round(sum(len(d.encode()) for d in docs) / 1e6, 2),
           "dedup_docs_per_s": {"torchdataguard": round(N / min(t_ours), 1), "datasketch": round(N / min(t_ds), 1),
                                "ratio": round(min(t_ds) / min(t_ours), 2)},
           "signatures_per_s": {"torchdataguard": round(sig_ours, 1), "datasketch": round(sig_ds, 1),
                                "ratio": round(sig_ours / sig_ds, 2)}}
    if not row.startswith("en "):
        res["quality"] = {"torchdataguard": Z.quality(docs, pairs, d_ours), "datasketch": Z.quality(docs, pairs, d_ds)}
    print_row(res)
    return res


HEAD = (f"{'row':>10s} {'docs':>6s} {'chars':>5s} | {'dedup/s':>7s} {'ds/s':>6s} {'x':>5s} | {'sig/s':>7s} {'ds/s':>6s} "
        f"{'x':>5s} | {'R>=.9':>11s} {'R.8-.9':>11s} {'D.7-.8':>11s} | {'false':>7s} {'short':>5s}")


def print_row(r: Dict[str, Any], head: bool = True) -> None:
    if head:
        print(HEAD)
    line = (f"{r['row']:>10s} {r['documents']:6d} {r['median_chars']:5d} | {r['dedup_docs_per_s']['torchdataguard']:7.0f} "
            f"{r['dedup_docs_per_s']['datasketch']:6.0f} {r['dedup_docs_per_s']['ratio']:5.1f} | "
            f"{r['signatures_per_s']['torchdataguard']:7.0f} {r['signatures_per_s']['datasketch']:6.0f} "
            f"{r['signatures_per_s']['ratio']:5.1f} |")
    if "quality" in r:
        qo, qd = r["quality"]["torchdataguard"], r["quality"]["datasketch"]

        def rr(k: str) -> str:
            a, b = qo["recall"][k][0], qd["recall"][k][0]
            return "/".join("-" if v is None else f"{v:.3f}" for v in (a, b))
        line += (f" {rr('>=0.9'):>11s} {rr('0.8-0.9'):>11s} {rr('0.7-0.8'):>11s} | "
                 f"{qo['false_drops']:3d}/{qd['false_drops']:<3d} {qo['short_false_drops']}/{qd['short_false_drops']}")
    print(line, flush=True)


def sweep(sizes: Sequence[int], rows: Sequence[str], n_of: Dict[str, int], pool) -> List[Dict[str, Any]]:
    out = []
    print(f"\nsweep: character n-gram size (quality binned by character-5-gram Jaccard)\n{'row':>10s} {'n':>2s} | "
          f"{'R>=.9':>6s} {'R.8-.9':>6s} {'D.7-.8':>6s} {'D<.5':>6s} | {'false':>5s} {'short':>5s} | {'s':>6s}")
    for row in rows:
        docs, pairs = planted(row, n_of[row], pool)
        for n in sizes:
            t, drops = run_ours(docs, char_ngram=n)
            q = Z.quality(docs, pairs, drops)
            out.append({"row": row, "char_ngram": n, "seconds": round(t, 3), "quality": q})
            r = q["recall"]
            print(f"{row:>10s} {n:2d} | {r['>=0.9'][0]:6.3f} {r['0.8-0.9'][0] or 0:6.3f} {r['0.7-0.8'][0] or 0:6.3f} "
                  f"{r['<0.5'][0] or 0:6.3f} | {q['false_drops']:5d} {q['short_false_drops']:5d} | {t:6.2f}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="", help="folder manpages-zh and fortunes-zh were unpacked into (dpkg-deb -x); "
                                               "default: the small fixture corpus of tests/fixtures/zh")
    ap.add_argument("--rows", default=",".join(SIZES))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sweep", default="", help="comma-separated character n-gram sizes to compare (e.g. 2,3,4,5,6,8)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "dedup_zh.json"))
    a = ap.parse_args()
    pool = chinese_pool(a.root)
    rows = [r for r in a.rows.split(",") if r]
    n_of = {r: max(50, int(SIZES[r] * a.scale)) for r in rows}
    res: Dict[str, Any] = {"machine": machine("cpu"), "threshold": THRESHOLD, "num_perm": DS.NUM_PERM,
                           "repeat": a.repeat, "root": a.root or "tests/fixtures/zh",
                           "shingles": "script-aware: character 5-grams for Han/kana/Thai..., word 5-grams elsewhere; "
                                       "the same strings for datasketch",
                           "command": "python benchmarks/dedup_zh.py " + " ".join(sys.argv[1:]), "rows": []}
    for row in rows:
        res["rows"].append(run_row(row, n_of[row], pool, a.repeat))
    print("\nall rows (R: recall of planted pairs by exact character-5-gram Jaccard, ours/datasketch):")
    print(HEAD)
    for r in res["rows"]:
        print_row(r, head=False)
    if a.sweep:
        res["sweep"] = sweep([int(x) for x in a.sweep.split(",")], [r for r in rows if not r.startswith("en ")],
                             n_of, pool)
    write_result(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
