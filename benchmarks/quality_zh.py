"""Chinese quality rules on every manpages-zh page: how much good prose the default QualityFilter keeps, how
much planted junk it drops, and its speed on Chinese against English.

Passages: one per man page of manpages-zh (zh_CN and zh_TW), the prose paragraphs of its first section that
has some (complete paragraphs with two full stops or more, mostly Han; ``benchmarks/_debian_text.py``), 150
to 450 characters. The Chinese thresholds were tuned on one half of the pages (``held_out(page)`` False);
the other half is reported apart. Junk: the generators of ``tests/quality/zh_fixture.py`` (navigation
chrome, keyword stuffing, search-phrase stuffing, GBK / Latin-1 / Windows-1252 mojibake of real passages,
digit tables), ``--junk`` of each. Also: the same with the script-neutral rules in place of the Chinese ones
(what a machine without jieba gets), and documents per second (one thread, score cache off) on the Chinese
passages and on English prose (the Brown-like SpamAssassin ham bodies shipped with the package).

Usage:
    python benchmarks/quality_zh.py --root /tmp/debroot [--junk 100]
Writes benchmarks/results/quality_zh.json.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Dict, List  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "quality"))

import torchdataguard as tdg  # noqa: E402
from _debian_text import chinese_passages  # noqa: E402
from _machine import machine, write_result  # noqa: E402
from torchdataguard.assets import load_spamassassin  # noqa: E402
from torchdataguard.quality.segment import SEGMENTERS  # noqa: E402
from zh_fixture import planted_junk  # noqa: E402

OUT = os.path.join(HERE, "results", "quality_zh.json")


def verdicts(stage, texts: List[str]) -> Dict[str, object]:
    reasons = collections.Counter()
    for t in texts:
        out = stage.process(tdg.Example(0, t, t))
        reasons[out.reason if isinstance(out, tdg.Drop) else "kept"] += 1
    n = len(texts)
    return {"n": n, "kept": round(reasons.pop("kept", 0) / n, 4),
            "dropped_by_reason": {k: v for k, v in reasons.most_common()}}


def docs_per_second(stage, texts: List[str], rounds: int = 3) -> float:
    best = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        for t in texts:
            stage.process(tdg.Example(0, t, t))
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return round(len(texts) / best, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="folder manpages-zh was unpacked into (dpkg-deb -x)")
    ap.add_argument("--junk", type=int, default=100, help="texts of each junk kind")
    args = ap.parse_args()
    halves = {name: chinese_passages(args.root, d, half=half)
              for half, hname in ((False, "tuned"), (True, "held_out")) for d in ("zh_CN", "zh_TW")
              for name in [f"{hname}_{d}"]}
    if not any(halves.values()):
        print(f"no manpages-zh pages under {args.root}", file=sys.stderr)
        return 2
    q = tdg.QualityFilter(cache_size=0)
    neutral = tdg.QualityFilter(cache_size=0, languages={"zh": ["text_encoding", "script_neutral"]})
    good = {name: verdicts(q, [p["text"] for p in ps]) for name, ps in halves.items()}
    good_neutral = {name: verdicts(neutral, [p["text"] for p in ps]) for name, ps in halves.items()}
    split = SEGMENTERS.get("jieba").split
    texts = [p["text"] for ps in halves.values() for p in ps]
    words = sorted({w for t in texts[:400] for w in split(t) if len(w) >= 2 and any(map(str.isalpha, w))})
    junk = planted_junk(words, n=args.junk, seed=7)
    bad = {kind: verdicts(q, ts) for kind, ts in junk.items()}
    bad_neutral = {kind: verdicts(neutral, ts) for kind, ts in junk.items()}
    english = [r["text"].split("\n\n", 1)[-1] for r in load_spamassassin()[::8] if r["label"] == "ham"]
    speed = {"chinese_docs_per_s": docs_per_second(q, texts[:600]),
             "english_docs_per_s": docs_per_second(q, english[:600]),
             "chinese_mean_chars": round(sum(map(len, texts[:600])) / len(texts[:600]), 1),
             "english_mean_chars": round(sum(map(len, english[:600])) / len(english[:600]), 1)}
    print(f"{'good prose (kept)':34}{'n':>6}{'Chinese rules':>15}{'script-neutral':>16}")
    for name in halves:
        print(f"{name:34}{good[name]['n']:>6}{good[name]['kept']:>15.3f}{good_neutral[name]['kept']:>16.3f}")
    print(f"\n{'planted junk (dropped)':34}{'n':>6}{'Chinese rules':>15}{'script-neutral':>16}")
    for kind in junk:
        print(f"{kind:34}{bad[kind]['n']:>6}{1 - bad[kind]['kept']:>15.3f}{1 - bad_neutral[kind]['kept']:>16.3f}")
    print(f"\ndocs/s (one thread, no cache): Chinese {speed['chinese_docs_per_s']} "
          f"({speed['chinese_mean_chars']} chars), English {speed['english_docs_per_s']} "
          f"({speed['english_mean_chars']} chars)")
    write_result(OUT, {"command": f"python benchmarks/quality_zh.py --root ROOT --junk {args.junk}",
                       "machine": machine(None, threads=1, load_average_end=list(os.getloadavg())),
                       "good_prose": good, "good_prose_script_neutral": good_neutral,
                       "junk": bad, "junk_script_neutral": bad_neutral, "speed": speed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
