"""Latin-script text that is not English, through the default QualityFilter: judged by the English rules or not.

Without language identification, ``QualityFilter`` picks a language profile by script. Latin-script text used
to get the English rules (Gopher, C4, FineWeb), whose stop-word rule drops German, French or Spanish prose as
junk. Now text that fails that rule and plainly shows another language's function words
(``torchdataguard/quality/latin.py``) is judged as it would be after ``langid`` named its language.

Texts: paragraphs of Debian's translated man pages (40 to 1,000 characters; English paragraphs left in the
translations are left out, as in ``benchmarks/langid_vs_fasttext.py``, whose ``build`` this reuses: pass the
root the packages were unpacked into, or ``/`` where they are installed), and English text that must keep the
English rules: the man pages in English, the SpamAssassin message bodies and, when cached, the dedup
benchmark's English corpora (``benchmarks/_corpora.py``). For each language, the share of texts:

* ``named``: the function-word guess names a language (for English: how often it fires at all);
* ``kept_default``: kept by ``QualityFilter()`` (the guess on);
* ``kept_english_rules``: kept by ``QualityFilter(guess_language=False)`` (every Latin-script text judged as
  English, as before);
* ``kept_after_langid``: kept by ``LanguageID()`` then ``QualityFilter()``, the peer (py3langid's model;
  ``pip install "torchdataguard[langid]"``), when installed;
* ``english_rules``: judged by the English rules under the default.

Usage:
    python benchmarks/latin_routing.py [--root /] [--per-lang 200]
Writes benchmarks/results/latin_routing.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torchdataguard as tdg  # noqa: E402
from torchdataguard.quality.latin import latin_language  # noqa: E402
from _machine import machine, write_result  # noqa: E402


def kept_share(stages: List[Any], texts: List[str]) -> float:
    g = tdg.Guard(stages, device="cpu", progress=False)
    return round(len(g.wrap(texts)) / max(1, len(texts)), 4)


def english_texts(root: str) -> Dict[str, List[str]]:
    from torchdataguard.assets import load_spamassassin

    out = {"spamassassin_bodies": [r["text"].split("\n\n", 1)[-1] for r in load_spamassassin()]}
    cache = os.path.join(os.environ.get("TDG_BENCH_CACHE", os.path.expanduser("~/.cache/tdg-bench")), "buckets")
    for name in ("5-30-20000-0", "30-130-12000-0", "130-400-6000-0", "400-2000-3000-0", "gt2000-500-0"):
        path = os.path.join(cache, name + ".json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                out["bucket " + name.rsplit("-", 2)[0]] = json.load(fh)["docs"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/")
    ap.add_argument("--per-lang", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "latin_routing.json"))
    a = ap.parse_args()
    from langid_vs_fasttext import build

    t0 = time.perf_counter()
    rows = [(lang, text) for lang, kind, text in build(a.root, a.per_lang, 0) if kind == "paragraph"]
    by: Dict[str, List[str]] = collections.defaultdict(list)
    for lang, text in rows:
        by["man " + lang].append(text)
    by.update(english_texts(a.root))
    try:
        lid: Any = tdg.LanguageID()
    except Exception as exc:  # py3langid not installed: the peer column is left out
        print(f"LanguageID unavailable ({exc}); no kept_after_langid column")
        lid = None
    table = []
    print(f"{'texts':28s} {'n':>6s} {'named':>6s} {'kept':>6s} {'kept EN rules':>13s} {'kept langid':>11s} "
          f"{'EN rules':>8s}")
    for name, texts in by.items():
        q = tdg.QualityFilter()
        profiles = collections.Counter(q.profile_for(tdg.Example(0, t, t)) for t in texts)
        guesses = collections.Counter(latin_language(t) for t in texts)
        row = {"texts": name, "n": len(texts),
               "named": round(1 - guesses[None] / len(texts), 4),
               "named_as": {k: v for k, v in guesses.most_common() if k is not None},
               "kept_default": kept_share([tdg.QualityFilter()], texts),
               "kept_english_rules": kept_share([tdg.QualityFilter(guess_language=False)], texts),
               "kept_after_langid": kept_share([tdg.LanguageID(), tdg.QualityFilter()], texts) if lid else None,
               "english_rules": round(profiles["en"] / len(texts), 4)}
        table.append(row)
        print(f"{name:28s} {row['n']:6d} {row['named']:6.3f} {row['kept_default']:6.3f} "
              f"{row['kept_english_rules']:13.3f} {row['kept_after_langid'] if lid else float('nan'):11.3f} "
              f"{row['english_rules']:8.3f}", flush=True)
    res = {"machine": machine("cpu"), "command": "python benchmarks/latin_routing.py " + " ".join(sys.argv[1:]),
           "seconds": round(time.perf_counter() - t0, 1), "rows": table}
    write_result(a.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
