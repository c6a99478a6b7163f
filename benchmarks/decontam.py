"""Decontamination against a plain-Python 13-gram reference, in one run on real text.

Training stream: the 6,046 shipped SpamAssassin emails and the 500 Brown corpus documents, with evaluation
items planted into some of them (whole items with case, punctuation and spacing changed; windows of 40-60
words; several items in one document). Evaluation sets: the Debian fortunes (``fortunes``, about 15,000
quotations, jokes and poems; real famous quotations also occur in the emails by themselves) and the
chatterbot corpus's English chat turns (``chat``, short: most are skipped as shorter than 13 words).
See ``benchmarks/_corpora.py`` for fetching the last three sources.

The reference (``tests/decontam/decontam_reference.py``) is the GPT-3 paper's definition as
lm-evaluation-harness implements it: lower case, punctuation deleted, split on whitespace, a Python set of
the items' 13-grams joined into strings, every training n-gram looked up in it. Both run here, on the
same data, one after the other (three rounds, the best of each kept):

* agreement: dirty training documents and dirty items, ours against the reference (recall, precision);
* throughput: documents per second of ``guard.process`` with ``Decontaminate`` (CPU, one torch thread) and of
  the reference; their ratio;
* memory per evaluation item: the stage's index bytes (``memory_bytes``) and the reference's set (traced
  with ``tracemalloc``) divided by the number of items.

Usage:
    python benchmarks/decontam.py [--device cpu] [--rounds 3] [--out benchmarks/results/decontam.json]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tracemalloc
from typing import Dict, List, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "decontam"))

import torch  # noqa: E402

import torchdataguard as tdg  # noqa: E402
from _corpora import brown_documents, chat_turns, fortunes, spam_bodies  # noqa: E402
from _machine import machine, write_result  # noqa: E402
from decontam_reference import Reference  # noqa: E402


def perturb(text: str, rng: random.Random) -> str:
    out = []
    for w in text.split():
        w = w.upper() if rng.random() < 0.2 else (w.lower() if rng.random() < 0.3 else w)
        out.append(w.strip(".,;:!?\"'") + rng.choice(["", "", ",", ".", "!", " --"]))
    return "".join(x + rng.choice([" ", "  ", "\n"]) for x in out)


def plant(host: str, piece: str, rng: random.Random) -> str:
    w = host.split(" ")
    at = rng.randrange(0, len(w) + 1)
    return " ".join(w[:at]) + "\n" + piece + "\n" + " ".join(w[at:])


def build_data(seed: int = 0) -> Tuple[List[str], Dict[str, List[str]], Set[int]]:
    rng = random.Random(seed)
    train = spam_bodies() + brown_documents()
    evals = {"fortunes": fortunes(), "chat": chat_turns()}
    evals = {k: v for k, v in evals.items() if v}
    if not evals:
        raise SystemExit("no evaluation set found: fetch the fortunes (see benchmarks/_corpora.py)")
    pool = [t for t in next(iter(evals.values())) if len(t.split()) >= 60]
    planted: Set[int] = set()
    for i in rng.sample(range(len(train)), len(train) // 20):
        kind = rng.randrange(3)
        if kind == 0:
            train[i] = plant(train[i], perturb(rng.choice(pool), rng), rng)
        elif kind == 1:
            w = rng.choice(pool).split()
            a = rng.randrange(0, max(1, len(w) - 60))
            train[i] = plant(train[i], " ".join(w[a : a + rng.randint(40, 60)]), rng)
        else:
            for _ in range(3):
                train[i] = plant(train[i], perturb(rng.choice(pool), rng), rng)
        planted.add(i)
    return train, evals, planted


def run_reference(train: List[str], evals: Dict[str, List[str]]):
    tracemalloc.start()
    t0 = time.perf_counter()
    ref = Reference({k: list(enumerate(v)) for k, v in evals.items()})
    build = time.perf_counter() - t0
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    t0 = time.perf_counter()
    dirty = [ref.dirty(t) for t in train]
    return dirty, build, time.perf_counter() - t0, mem


def run_ours(train: List[str], evals: Dict[str, List[str]], device: str):
    t0 = time.perf_counter()
    stage = tdg.Decontaminate(dict(evals))
    guard = tdg.Guard([stage], device=device, progress=False, chunk_size=1024)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    drops = {ex.id: d for ex, d, _ in guard.process(train) if d is not None}
    if str(guard.device).startswith("cuda"):
        torch.cuda.synchronize()
    return drops, guard.report(), build, time.perf_counter() - t0, stage.memory_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "decontam.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, evals, planted = build_data()
    n_items = sum(len(v) for v in evals.values())
    words = sum(len(t.split()) for t in train)
    print(f"training documents {len(train):,} ({words:,} words, {len(planted)} with planted items); eval sets "
          + ", ".join(f"{k} {len(v):,} items" for k, v in evals.items()))
    ref_times, our_times = [], []
    for r in range(args.rounds):
        ref_dirty, ref_build, ref_t, ref_mem = run_reference(train, evals)
        drops, rep, our_build, our_t, our_mem = run_ours(train, evals, args.device)
        ref_times.append((ref_build, ref_t))
        our_times.append((our_build, our_t))
        print(f"round {r + 1}: reference {ref_t:.2f} s, ours {our_t:.2f} s")
    ref_docs = {i for i, d in enumerate(ref_dirty) if d}
    our_docs = set(drops)
    ref_items = {(k, i) for d in ref_dirty for k, i in d}
    our_items = {(k, i) for k, s in rep["contamination"].items() for i in s["dirty_item_ids"]}
    both = len(ref_docs & our_docs)
    ref_t, our_t = min(t for _, t in ref_times), min(t for _, t in our_times)
    result = {
        "machine": machine(args.device),
        "data": {"training_documents": len(train), "training_words": words, "planted_documents": len(planted),
                 "eval_items": {k: len(v) for k, v in evals.items()}},
        "agreement": {
            "dirty_documents_reference": len(ref_docs), "dirty_documents_ours": len(our_docs),
            "recall": both / len(ref_docs) if ref_docs else 1.0,
            "precision": both / len(our_docs) if our_docs else 1.0,
            "same_dirty_documents": ref_docs == our_docs, "same_dirty_items": ref_items == our_items,
            "dirty_items_reference": len(ref_items), "dirty_items_ours": len(our_items),
            "planted_found": len(planted & our_docs) / len(planted),
            "reasons": {k: int(v) for k, v in rep["dropped_by_reason"].items()},
        },
        "seconds": {"reference_build": round(min(b for b, _ in ref_times), 3), "reference_check": round(ref_t, 3),
                    "ours_build": round(min(b for b, _ in our_times), 3), "ours_check": round(our_t, 3)},
        "documents_per_second": {"reference": round(len(train) / ref_t, 1), "ours": round(len(train) / our_t, 1)},
        "speedup": round(ref_t / our_t, 1),
        "memory_bytes_per_item": {"reference": round(ref_mem / n_items, 1), "ours": round(our_mem / n_items, 1)},
        "contamination": {k: {kk: v for kk, v in s.items() if not kk.endswith("_ids")}
                          for k, s in rep["contamination"].items()},
        "command": "python benchmarks/decontam.py " + " ".join(sys.argv[1:]),
    }
    a = result["agreement"]
    rows = [("", "reference (plain Python)", f"Decontaminate ({args.device})"),
            ("dirty documents", a["dirty_documents_reference"], a["dirty_documents_ours"]),
            ("dirty items", a["dirty_items_reference"], a["dirty_items_ours"]),
            ("build seconds", result["seconds"]["reference_build"], result["seconds"]["ours_build"]),
            ("check seconds", result["seconds"]["reference_check"], result["seconds"]["ours_check"]),
            ("documents / second", result["documents_per_second"]["reference"], result["documents_per_second"]["ours"]),
            ("bytes / eval item", result["memory_bytes_per_item"]["reference"], result["memory_bytes_per_item"]["ours"])]
    for row in rows:
        print(f"{row[0]:<22}{row[1]!s:>26}{row[2]!s:>26}")
    print(f"recall {a['recall']:.4f}, precision {a['precision']:.4f}, same dirty documents {a['same_dirty_documents']}, "
          f"same dirty items {a['same_dirty_items']}, planted found {a['planted_found']:.4f}; speedup "
          f"{result['speedup']}x")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
