"""CPU of ``QualityFilter.judge`` (scoring and judging, no cache) per text, this checkout against another,
the two taking turns text by text in one interpreter, so the swings of a shared machine's load fall on both
alike (``time.process_time_ns`` around each call, one thread).

The other checkout's package is copied under another name (``tdg_against``) so both import side by side;
its modules must import one another relatively (the package does). Reported: each side's CPU per text and
the ratio of the sums (this / against), overall and by the text's whitespace-token count.

Usage:
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/quality_interleaved.py --against DIR [--rounds 3] [--long]
``--long``: the shipped bodies of more than 2,000 tokens and 40 texts of 10,000 words glued from bodies,
instead of the 6,046 SpamAssassin bodies. Prints a table and writes benchmarks/results/quality_interleaved.json
(``quality_interleaved_long.json`` with ``--long``).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
BUCKETS = [(0, 200), (200, 600), (600, 1200), (1200, 2000), (2000, 10 ** 9)]


def texts(long: bool) -> List[str]:
    from torchdataguard.assets import load_spamassassin

    bodies = [r["text"].split("\n\n", 1)[-1] for r in load_spamassassin()]
    if not long:
        return bodies
    rng = random.Random(3)
    glued = []
    for _ in range(40):
        out, n = [], 0
        while n < 10_000:
            b = bodies[rng.randrange(len(bodies))]
            out.append(b)
            n += len(b.split())
        glued.append("\n\n".join(out))
    return [b for b in bodies if len(b.split()) > 2000] + glued


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="root of the other checkout (holds torchdataguard/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long", action="store_true", help="texts of more than 2,000 tokens")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tmp = tempfile.mkdtemp(prefix="tdg_against_")
    shutil.copytree(os.path.join(os.path.abspath(args.against), "torchdataguard"), os.path.join(tmp, "tdg_against"))
    sys.path.insert(0, tmp)
    try:
        import tdg_against.core.stage as stage_b
        import tdg_against.quality.filter as filter_b

        import torchdataguard.core.stage as stage_a
        import torchdataguard.quality.filter as filter_a

        assert filter_b.__file__.startswith(tmp) and not filter_a.__file__.startswith(tmp)
        docs = texts(args.long)
        sizes = [len(t.split()) for t in docs]
        this, other = filter_a.QualityFilter(cache_size=0), filter_b.QualityFilter(cache_size=0)
        ta, tb = [0] * len(BUCKETS), [0] * len(BUCKETS)
        clock = time.process_time_ns
        for r in range(args.rounds):
            for i, (text, size) in enumerate(zip(docs, sizes)):
                k = next(j for j, (lo, hi) in enumerate(BUCKETS) if lo <= size < hi)
                ea, eb = stage_a.Example(i, text, text), stage_b.Example(i, text, text)
                if (i + r) % 2:
                    s = clock(); this.judge(ea); m = clock(); other.judge(eb); e = clock()  # noqa: E702
                    ta[k] += m - s
                    tb[k] += e - m
                else:
                    s = clock(); other.judge(eb); m = clock(); this.judge(ea); e = clock()  # noqa: E702
                    tb[k] += m - s
                    ta[k] += e - m
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = 1e6 * args.rounds
    rows = []
    for (lo, hi), a, b in zip(BUCKETS, ta, tb):
        n = sum(lo <= s < hi for s in sizes)
        if n:
            rows.append({"tokens": [lo, hi if hi < 10 ** 9 else None], "texts": n, "this_ms": a / per / n,
                         "against_ms": b / per / n, "ratio": a / b})
    total = {"texts": len(docs), "this_ms": sum(ta) / per / len(docs), "against_ms": sum(tb) / per / len(docs),
             "ratio": sum(ta) / sum(tb)}
    print(f"{len(docs)} texts, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    print("| tokens | texts | this, ms per text | against | this / against |")
    print("|---|---|---|---|---|")
    for row in rows:
        lo, hi = row["tokens"]
        print(f"| {lo}-{hi or ''} | {row['texts']} | {row['this_ms']:.3f} | {row['against_ms']:.3f} | {row['ratio']:.3f} |")
    print(f"| all | {len(docs)} | {total['this_ms']:.3f} | {total['against_ms']:.3f} | **{total['ratio']:.3f}** |")
    from _machine import machine

    name = "quality_interleaved_long.json" if args.long else "quality_interleaved.json"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", name), "w") as f:
        json.dump({"against": args.against, "rounds": args.rounds, "buckets": rows, "all": total,
                   "machine": machine("cpu")}, f, indent=1)

if __name__ == "__main__":
    main()
