"""Near-dedup throughput on the training device: 256-token documents, token-id shingles.

Measures documents per second for (a) signatures alone and (b) signatures + LSH query-then-insert, for
batches of already-tokenised documents held on the device (the path a training loop takes when batches
hold ``input_ids``). About 10% of the documents are planted near-duplicates (a few tokens changed), so the
index does real work; the script checks that they are found. The goal on one H200 is at least 1 million
documents per second. On a CPU the same script runs with fewer documents (a reference, not the goal).

With ``--text``, the same device runs exact + near dedup on real text instead: the shipped SpamAssassin emails
and their sentences plus planted copies, through ``Guard([ExactDedup(), NearDedup()], device=...)`` (the
keys are computed on the CPU, the indexes live on the device), against the same guard on the CPU in the
same run; the decisions must be equal.

Usage:
    python benchmarks/dedup_gpu.py [--docs 2000000] [--batch 65536] [--device cuda]
    python benchmarks/dedup_gpu.py --text [--docs 60000] [--device cuda]
Writes benchmarks/results/dedup_gpu_<device>.json (``dedup_text_<device>.json`` with --text).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torchdataguard.dedup.near import NearDedup  # noqa: E402
from torchdataguard.dedup.near_keys import signatures_from_batch  # noqa: E402
from torchdataguard.core.stage import Example  # noqa: E402
from _machine import write_result  # noqa: E402


def make_batch(n, T, vocab, gen, device, dup_frac=0.1):
    ids = torch.randint(1000, vocab, (n, T), generator=gen, device=device)
    n_dup = int(n * dup_frac)
    if n_dup:
        src = torch.randint(0, n - n_dup, (n_dup,), generator=gen, device=device)
        ids[n - n_dup:] = ids[src]
        pos = torch.randint(0, T, (n_dup, 3), generator=gen, device=device)
        ids[n - n_dup:].scatter_(1, pos, 7)
    mask = torch.ones(n, T, dtype=torch.bool, device=device)
    return ids, mask, n_dup


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--docs", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--text", action="store_true", help="exact + near dedup of real text (see above)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.text:
        return text_main(device, args.docs or 60_000, args.out)
    on_gpu = device.type == "cuda"
    n_docs = args.docs or (2_000_000 if on_gpu else 40_000)
    batch = args.batch or (65_536 if on_gpu else 4096)
    gen = torch.Generator(device=device).manual_seed(0)
    stage = NearDedup(threshold=0.8, shingles="tokens").to(device)
    cfg = stage.cfg
    # warm-up
    ids, mask, _ = make_batch(min(batch, 1024), args.tokens, 50_000, gen, device)
    signatures_from_batch({"input_ids": ids, "attention_mask": mask}, cfg)
    sync(device)
    t_sig = 0.0
    t_all = 0.0
    found = planted = 0
    done = 0
    while done < n_docs:
        n = min(batch, n_docs - done)
        ids, mask, n_dup = make_batch(n, args.tokens, 50_000, gen, device)
        sync(device)
        t0 = time.perf_counter()
        keys = signatures_from_batch({"input_ids": ids, "attention_mask": mask}, cfg)
        sync(device)
        t1 = time.perf_counter()
        exs = [Example(done + i, None) for i in range(n)]
        drops = stage.decide(exs, keys)
        sync(device)
        t2 = time.perf_counter()
        t_sig += t1 - t0
        t_all += t2 - t0
        found += sum(1 for x in drops[n - n_dup:] if x is not None)
        planted += n_dup
        done += n
    res = {
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if on_gpu else platform.processor(),
        "torch": torch.__version__, "cores": os.cpu_count(), "documents": n_docs, "tokens_per_document": args.tokens,
        "batch": batch, "signatures_docs_per_second": round(n_docs / t_sig, 1),
        "signatures_plus_index_docs_per_second": round(n_docs / t_all, 1),
        "planted_found": found, "planted": planted, "recall_planted": round(found / max(1, planted), 4),
        "index_bytes_per_document": round(stage.memory_bytes() / max(1, stage.index.n), 1),
        "goal_docs_per_second_on_h200": 1_000_000,
    }
    print(f"device {res['device']} ({res['device_name']}), {n_docs} docs x {args.tokens} tokens, batch {batch}")
    print(f"{'measure':40s} {'value':>14s}")
    for k in ("signatures_docs_per_second", "signatures_plus_index_docs_per_second", "recall_planted",
              "index_bytes_per_document"):
        print(f"{k:40s} {res[k]:>14}")
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"dedup_gpu_{device.type}.json")
    write_result(out, res)
    return 0


def text_corpus(n: int, seed: int = 0) -> list:
    """``n`` real texts: SpamAssassin bodies and their sentences, 20% planted exact and near copies."""
    import random
    import re

    from torchdataguard.assets import load_spamassassin

    rng = random.Random(seed)
    bodies = [r["text"].split("\n\n", 1)[-1] for r in load_spamassassin()]
    pool = bodies + [s for b in bodies for s in re.split(r"(?<=[.!?])\s+", b) if len(s.split()) >= 3]
    rng.shuffle(pool)
    out = []
    for i in range(n):
        if out and rng.random() < 0.2:
            w = out[rng.randrange(len(out))].split()
            if w and rng.random() < 0.5:
                w[rng.randrange(len(w))] = "planted"
            out.append(" ".join(w))
        else:
            out.append(pool[i % len(pool)])
    return out


def text_main(device: torch.device, n: int, out_path) -> int:
    import torchdataguard as tdg

    docs = text_corpus(n)

    def run(dev):
        g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device=dev, chunk_size=1024, progress=False)
        sync(torch.device(dev))
        t0 = time.perf_counter()
        dec = [None if d is None else (d.reason, d.matched) for _, d, _ in g.process(docs)]
        sync(torch.device(dev))
        return time.perf_counter() - t0, dec

    run(device)  # warm-up (kernels, caches)
    t_dev, dec_dev = run(device)
    t_cpu, dec_cpu = run("cpu")
    res = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
           platform.processor(), "torch": torch.__version__, "documents": n,
           "docs_per_second_device": round(n / t_dev, 1), "docs_per_second_cpu": round(n / t_cpu, 1),
           "dropped": sum(d is not None for d in dec_dev), "decisions_equal_cpu": dec_dev == dec_cpu}
    print(f"text dedup, {n} documents: {res['docs_per_second_device']:.0f} docs/s on {device}, "
          f"{res['docs_per_second_cpu']:.0f} on the CPU; decisions equal: {res['decisions_equal_cpu']}")
    write_result(out_path or os.path.join(os.path.dirname(__file__), "results", f"dedup_text_{device.type}.json"), res)
    return 0 if res["decisions_equal_cpu"] else 1


if __name__ == "__main__":
    sys.exit(main())
