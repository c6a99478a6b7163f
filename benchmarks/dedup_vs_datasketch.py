"""NearDedup vs datasketch on real documents, in one run.

Corpus: the bodies of the SpamAssassin emails shipped with torchdataguard (6,046 real emails), plus planted
near-duplicates (each a copy of a body with a known fraction of its words replaced), so that the true
Jaccard similarity of every planted pair is known.

Measures, on the same documents and the same machine:
  1. signatures per second from text (normalise, shingle, hash, MinHash; 128 permutations):
     NearDedup's keyer vs datasketch ``MinHash.bulk`` (with the same word 5-gram shingling in Python);
  2. end-to-end exact + near dedup (keep-first, query-then-insert): a Guard([ExactDedup, NearDedup]) vs a
     datasketch pipeline (BLAKE2b exact set + MinHash.bulk + MinHashLSH at the same threshold);
  3. recall on planted pairs with true Jaccard >= 0.9 and near the threshold, and the share of documents
     dropped although their true Jaccard with the matched document is below 0.5;
  4. index bytes per document (ours: tensor bytes; datasketch: tracemalloc of building MinHashLSH).

Usage:
    python benchmarks/dedup_vs_datasketch.py [--planted 3000] [--repeat 3] [--device cpu]
Writes benchmarks/results/dedup_vs_datasketch.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
import tracemalloc

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torchdataguard as tdg  # noqa: E402
from torchdataguard.assets import load_spamassassin  # noqa: E402
from torchdataguard.core.stage import Example  # noqa: E402
from torchdataguard.dedup.hashing import normalize_for_hash  # noqa: E402
from _machine import machine  # noqa: E402

WORD = re.compile(r"[a-z0-9\x80-\U0010ffff]+")
NGRAM = 5
NUM_PERM = 128


def words(text: str) -> list:
    import unicodedata

    t = text if text.isascii() else unicodedata.normalize("NFKC", text)
    return WORD.findall(t.lower())


def shingle_set(text: str) -> set:
    ws = words(text)
    if len(ws) < NGRAM:
        return {" ".join(ws)}
    return {" ".join(ws[i:i + NGRAM]) for i in range(len(ws) - NGRAM + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


def build_corpus(n_planted: int, seed: int = 0):
    rng = random.Random(seed)
    bodies = []
    for r in load_spamassassin():
        body = r["text"].split("\n\n", 1)[-1]
        if len(words(body)) >= 30:
            bodies.append(body)
    docs = list(bodies)
    planted = []  # (variant index, source index, replaced fraction)
    vocab = [w for b in bodies[:200] for w in words(b)]
    for k in range(n_planted):
        src = rng.randrange(len(bodies))
        frac = rng.choice([0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.4])
        toks = bodies[src].split()
        for _ in range(int(round(len(toks) * frac))):
            toks[rng.randrange(len(toks))] = rng.choice(vocab) + "q"
        planted.append((len(docs), src, frac))
        docs.append(" ".join(toks))
    # planted variants come after their sources (keep-first keeps the original)
    return docs, planted


def bench_signatures(docs, repeat, device):
    from datasketch import MinHash

    stage = tdg.NearDedup(threshold=0.8, num_perm=NUM_PERM)
    keyer = stage.keyer()
    keyer.device = device
    exs = [Example(i, d, d) for i, d in enumerate(docs)]
    ours, theirs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for a in range(0, len(exs), 1024):
            keyer(exs[a:a + 1024])
        if device != "cpu":
            torch.cuda.synchronize()
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for a in range(0, len(docs), 1024):
            toks = []
            for d in docs[a:a + 1024]:
                ws = words(d)
                sh = [" ".join(ws[i:i + NGRAM]).encode() for i in range(max(1, len(ws) - NGRAM + 1))]
                toks.append(sh)
            MinHash.bulk(toks, num_perm=NUM_PERM)
        theirs.append(time.perf_counter() - t0)
    return len(docs) / min(ours), len(docs) / min(theirs)


def run_ours(docs, device, threshold):
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=threshold, num_perm=NUM_PERM)], device=device,
                  chunk_size=1024, progress=False)
    g.ledger.remember = False
    t0 = time.perf_counter()
    decisions = {}
    for ex, d, _ in g.process(docs):
        if d is not None:
            decisions[ex.id] = (d.reason, d.matched)
    dt = time.perf_counter() - t0
    rep = g.report()
    near = [s for s in rep["stages"] if s["name"] == "near"][0]
    return dt, decisions, near["index_bytes_per_example"], near


def run_datasketch(docs, threshold):
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    tracemalloc.start()
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    snap0 = tracemalloc.get_traced_memory()[0]
    exact = {}
    decisions = {}
    inserted = 0
    lsh_bytes = 0
    for a in range(0, len(docs), 1024):
        block = docs[a:a + 1024]
        toks = []
        for d in block:
            ws = words(d)
            toks.append([" ".join(ws[i:i + NGRAM]).encode() for i in range(max(1, len(ws) - NGRAM + 1))])
        mhs = MinHash.bulk(toks, num_perm=NUM_PERM)
        for j, (d, mh) in enumerate(zip(block, mhs)):
            i = a + j
            h = hashlib.blake2b(normalize_for_hash(d).encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if h in exact:
                decisions[i] = ("duplicate/exact", exact[h])
                continue
            exact[h] = i
            cands = lsh.query(mh)
            if cands:
                decisions[i] = ("duplicate/near", min(cands))
                continue
            lsh.insert(i, mh)
            inserted += 1
    lsh_bytes = tracemalloc.get_traced_memory()[0] - snap0
    tracemalloc.stop()
    dt = time.perf_counter() - t0
    return dt, decisions, lsh_bytes / max(1, inserted), lsh.b, lsh.r


def quality(docs, planted, decisions, sets):
    """Recall on planted pairs by true Jaccard band, and false drops (true J with the matched doc < 0.5)."""
    bands = {">=0.9": [], "0.8-0.9": [], "0.7-0.8": [], "<0.5": []}
    for v, src, _ in planted:
        j = jaccard(sets[v], sets[src])
        key = ">=0.9" if j >= 0.9 else "0.8-0.9" if j >= 0.8 else "0.7-0.8" if j >= 0.7 else "<0.5" if j < 0.5 else None
        if key:
            bands[key].append(v in decisions)
    false = 0
    for i, (reason, m) in decisions.items():
        if reason == "duplicate/near" and jaccard(sets[i], sets[m]) < 0.5:
            false += 1
    return ({k: (round(float(np.mean(v)), 4) if v else None, len(v)) for k, v in bands.items()},
            false, round(false / len(docs), 5))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--planted", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "dedup_vs_datasketch.json"))
    args = ap.parse_args()
    docs, planted = build_corpus(args.planted)
    print(f"corpus: {len(docs)} documents ({len(docs) - len(planted)} SpamAssassin bodies + {len(planted)} planted), "
          f"mean {np.mean([len(d) for d in docs]):.0f} characters")
    sig_ours, sig_ds = bench_signatures(docs, args.repeat, args.device)
    t_ours, dec_ours, bpd_ours, near_cfg = min((run_ours(docs, args.device, args.threshold) for _ in range(args.repeat)),
                                               key=lambda r: r[0])
    t_ds, dec_ds, bpd_ds, b, r = min((run_datasketch(docs, args.threshold) for _ in range(max(1, args.repeat - 1))),
                                     key=lambda r: r[0])
    sets = [shingle_set(d) for d in docs]
    q_ours = quality(docs, planted, dec_ours, sets)
    q_ds = quality(docs, planted, dec_ds, sets)
    res = {
        "machine": machine(args.device), "documents": len(docs), "planted": len(planted), "num_perm": NUM_PERM,
        "threshold": args.threshold, "device": args.device,
        "signatures_per_second": {"torchdataguard": round(sig_ours, 1), "datasketch": round(sig_ds, 1),
                                  "ratio": round(sig_ours / sig_ds, 2)},
        "end_to_end_docs_per_second": {"torchdataguard": round(len(docs) / t_ours, 1),
                                       "datasketch": round(len(docs) / t_ds, 1), "ratio": round(t_ds / t_ours, 2)},
        "dropped": {"torchdataguard": len(dec_ours), "datasketch": len(dec_ds)},
        "recall_by_true_jaccard": {"torchdataguard": q_ours[0], "datasketch": q_ds[0]},
        "false_drops_below_0.5": {"torchdataguard": {"count": q_ours[1], "rate": q_ours[2]},
                                  "datasketch": {"count": q_ds[1], "rate": q_ds[2]}},
        "index_bytes_per_document": {"torchdataguard": bpd_ours, "datasketch": round(bpd_ds, 1)},
        "bands_rows": {"torchdataguard": [near_cfg["config"]["bands"], near_cfg["config"]["rows"]], "datasketch": [b, r]},
    }
    rows = [
        ("signatures/s (from text)", res["signatures_per_second"]["torchdataguard"], res["signatures_per_second"]["datasketch"],
         res["signatures_per_second"]["ratio"]),
        ("end-to-end exact+near docs/s", res["end_to_end_docs_per_second"]["torchdataguard"],
         res["end_to_end_docs_per_second"]["datasketch"], res["end_to_end_docs_per_second"]["ratio"]),
        ("recall, true J >= 0.9", q_ours[0][">=0.9"][0], q_ds[0][">=0.9"][0], None),
        ("recall, true J in [0.8, 0.9)", q_ours[0]["0.8-0.9"][0], q_ds[0]["0.8-0.9"][0], None),
        ("dropped, true J in [0.7, 0.8)", q_ours[0]["0.7-0.8"][0], q_ds[0]["0.7-0.8"][0], None),
        ("false-drop rate (J with match < 0.5)", q_ours[2], q_ds[2], None),
        ("index bytes per document", bpd_ours, round(bpd_ds, 1), None),
        ("bands x rows", "x".join(map(str, res["bands_rows"]["torchdataguard"])), "x".join(map(str, (b, r))), None),
    ]
    print(f"machine: {res['machine']['cpu']} ({res['machine']['cores']} cores), torch {torch.__version__}, device {args.device}")
    print(f"{'measure':40s} {'torchdataguard':>15s} {'datasketch':>12s} {'ratio':>7s}")
    for name, a, b_, ratio in rows:
        print(f"{name:40s} {str(a):>15s} {str(b_):>12s} {'' if ratio is None else f'{ratio:.2f}x':>7s}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
