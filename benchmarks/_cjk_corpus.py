"""The CJK row of ``benchmarks/dedup_vs_datasketch.py``: real Chinese text of mixed lengths with planted near copies.

Sources: the Debian packages ``manpages-zh`` (Simplified and Traditional man pages, GFDL; the pages under
another licence left out) and ``fortunes-zh`` (``chinese``: Debian documents and sayings; ``tang300``,
``song100``: Tang and Song poems), unpacked under a root (``benchmarks/_debian_text.py`` reads them)::

    mkdir -p ~/.cache/tdg-bench/cjk-debs && cd ~/.cache/tdg-bench/cjk-debs
    apt-get update && apt-get download manpages-zh fortunes-zh
    for f in *.deb; do dpkg-deb -x "$f" ../cjk-x; done

The root is ``--cjk-root``, else ``$TDG_CJK_ROOT``, else ``$TDG_BENCH_CACHE/cjk-x`` (``~/.cache/tdg-bench/cjk-x``;
``python benchmarks/_corpora.py --fetch`` fetches it with the English sources). ``tests/fixtures/zh`` also
works as a root (its 48 passages and 3,486 short lines: a smoke run, no document over 450 characters).

Documents, as a user's Chinese corpus mixes them: each source (a man page's paragraphs, from its NAME
description on; a fortune; a poem) is cut into consecutive, non-overlapping pieces at sentence ends
(``。！？；``) and paragraph breaks, each piece's length drawn in one of four classes, and documents are then
taken per class in the shares of :data:`MIX`: 25% short lines (2-39 characters: descriptions, poem lines,
headings, sayings), 35% 40-149, 28% 150-599 (one to a few paragraphs), 12% 600-2,999 (multi-paragraph
texts). Paragraphs with fewer than 40% Han characters among their letters (option lists, command lines)
are left out; documents are distinct after NFKC, lower case and punctuation removed. 30% planted near copies
follow their sources, made as ``benchmarks/dedup_zh.py`` makes them (``tests/dedup/zh_stream.py``: Han
characters replaced, inserted or deleted, two-character words swapped, punctuation or width changed, a
prefix or suffix cut, several at once, exact copies); their exact Jaccard on script-aware shingles
(character 5-grams on Han) bins the recall figures.
"""
from __future__ import annotations

import json
import os
import random
import re
import sys
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "dedup"))

import _corpora as C  # noqa: E402
import _datasketch_pipeline as DS  # noqa: E402
import zh_stream as Z  # noqa: E402
from _debian_text import NON_GFDL_PAGES, fortunes, man_pages, read_man, roff_sections  # noqa: E402

ROOT_ENV = "TDG_CJK_ROOT"
FIXTURES = os.path.join(REPO, "tests", "fixtures", "zh")
FETCH = C.FETCH["cjk"]
#: (lowest characters, highest + 1, share of the documents)
MIX: Tuple[Tuple[int, int, float], ...] = ((2, 40, 0.25), (40, 150, 0.35), (150, 600, 0.28), (600, 3000, 0.12))
#: how often each class of MIX is drawn while cutting: more long draws than MIX's shares, since a long piece
#: uses up a source (the final shares are MIX's, taken from the candidates)
DRAW = (0.25, 0.30, 0.20, 0.25)
#: "short texts" of the quality columns: under this many characters
SHORT_CHARS = 16
HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
SENTENCE_END = re.compile("(?<=[。！？；!?;])")


def default_root() -> str:
    return os.environ.get(ROOT_ENV) or os.path.join(C.CACHE, "cjk-x")


def is_fixtures(root: str) -> bool:
    return os.path.isfile(os.path.join(root, "passages.jsonl")) and os.path.isfile(os.path.join(root, "short_lines.jsonl"))


def missing(root: str) -> Optional[str]:
    """Why the CJK row cannot be built from ``root`` (with the command that fetches the sources), or None."""
    if is_fixtures(root):
        return None
    if os.path.isdir(os.path.join(root, "usr", "share", "man", "zh_CN")) and \
            os.path.isfile(os.path.join(root, "usr", "share", "games", "fortunes", "chinese")):
        return None
    return (f"manpages-zh and fortunes-zh not found under {root} (--cjk-root, ${ROOT_ENV}); fetch them into "
            f"{os.path.join(C.CACHE, 'cjk-x')} with: cd {C.CACHE} && {FETCH}")


def _han_share(t: str) -> float:
    letters = sum(c.isalpha() for c in t)
    return len(HAN.findall(t)) / letters if letters else 0.0


def sources(root: str) -> List[List[str]]:
    """Every source as its list of paragraphs (Chinese ones only), in a fixed order."""
    if is_fixtures(root):
        return [t.split("\n") for t in Z.passages()] + [[t] for t in Z.short_lines()]
    out: List[List[str]] = []
    for lang in ("zh_CN", "zh_TW"):
        for page, path in man_pages(root, lang).items():
            if page in NON_GFDL_PAGES:
                continue
            paras = []
            for i, (_, ps) in enumerate(roff_sections(read_man(path) or "")[1:]):
                for j, p in enumerate(ps):
                    paras.append(p.split(" - ", 1)[1] if i == 0 and j == 0 and " - " in p else p)  # the NAME line
            out.append(paras)
    for name in ("chinese", "tang300", "song100"):
        for paras, _ in fortunes(os.path.join(root, "usr/share/games/fortunes", name)):
            out.append(paras)
    return [[p.strip() for p in ps if p.strip() and _han_share(p) >= 0.4] for ps in out]


def cuts(srcs: Sequence[List[str]], rng: random.Random) -> List[List[str]]:
    """Consecutive, non-overlapping pieces of each source (whole sentences, paragraphs joined by a line break),
    each grown to a length drawn in a class of :data:`MIX` (classes drawn by :data:`DRAW`); candidates by the
    class their final length falls in (a piece may overshoot its drawn class by its last sentence)."""
    out: List[List[str]] = [[] for _ in MIX]
    for paras in srcs:
        units = [(s.strip(), k) for k, p in enumerate(paras) for s in SENTENCE_END.split(p) if s.strip()]
        a = 0
        while a < len(units):
            lo, hi, _ = MIX[rng.choices(range(len(MIX)), DRAW)[0]]
            want = rng.randrange(lo, hi)
            text, b = units[a][0], a + 1
            while b < len(units) and len(text) < want:
                s, k = units[b]
                text += ("\n" if units[b - 1][1] != k else "") + s
                b += 1
            c = next((i for i, (lo, hi, _) in enumerate(MIX) if lo <= len(text) < hi), None)
            if c is not None:
                out[c].append(text)
            a = b
    return out


def base_documents(root: str, n: int, seed: int = 0) -> List[str]:
    """``n`` distinct documents (fewer if the sources run out) in the shares of :data:`MIX`, shuffled."""
    rng = random.Random(seed)
    by_class = cuts(sources(root), rng)
    seen = set()
    docs: List[str] = []
    for (lo, hi, share), cands in zip(MIX, by_class):
        rng.shuffle(cands)
        quota, got = int(round(n * share)), 0
        for t in cands:
            key = " ".join(DS.script_tokens(t))
            if got < quota and key and key not in seen:
                seen.add(key)
                docs.append(t)
                got += 1
    rng.shuffle(docs)
    return docs


def planted_corpus(root: str, n: int, seed: int = 0) -> Tuple[List[str], List[Tuple[int, int, str]]]:
    """The row's documents and planted pairs ``(copy position, source position, kind of edit)``; cached under
    the corpus cache when built from the Debian packages."""
    fixtures = is_fixtures(root)
    tag = "fixtures" if fixtures else f"{zlib.crc32(os.path.abspath(root).encode()):08x}"
    path = os.path.join(C.CACHE, "buckets", f"cjk-{n}-{seed}-{tag}.json")
    if not fixtures and os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            d = json.load(fh)
        return d["docs"], [tuple(p) for p in d["pairs"]]
    docs, pairs = Z.with_planted(base_documents(root, n, seed), 0.3, seed=seed)
    if not fixtures:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"docs": docs, "pairs": pairs}, fh, ensure_ascii=False)
    return docs, pairs


def length_profile(docs: Sequence[str]) -> Dict[str, Any]:
    """Median and mean characters, and the share of documents in each class of :data:`MIX`."""
    n = sorted(len(d) for d in docs)
    shares = {f"{lo}-{hi - 1}": round(sum(lo <= k < hi for k in n) / len(n), 3) for lo, hi, _ in MIX}
    return {"median_chars": n[len(n) // 2], "mean_chars": round(sum(n) / len(n), 1), "shares": shares,
            "short_under_16": round(sum(k < SHORT_CHARS for k in n) / len(n), 3)}


def quality(docs: Sequence[str], pairs: Sequence[Tuple[int, int, str]], drops: Dict[int, Tuple[str, Any]]
            ) -> Dict[str, Any]:
    """Recall and false drops binned by the exact script-aware (character 5-gram) Jaccard, short texts under
    16 characters (``zh_stream.quality``); ``drops``: id -> (reason, matched) from a ``dropped.jsonl``."""
    as_pos = {i: None if reason == "duplicate/exact" else
              ([int(c) for c in m] if isinstance(m, list) else int(m)) for i, (reason, m) in drops.items()}
    return Z.quality(docs, pairs, as_pos, short_chars=SHORT_CHARS)


def shingle_agreement(docs: Sequence[str]) -> Dict[str, Any]:
    """How many documents the datasketch pipeline's own script-aware shingles equal NearDedup's
    (``torchdataguard.dedup.hashing.shingles``) on: as sets and as ordered lists."""
    from torchdataguard.dedup.hashing import shingles

    same_set = same_list = 0
    differ: List[int] = []
    for i, d in enumerate(docs):
        ours = shingles(d)
        theirs = [s.decode("utf-8", "surrogatepass") for s in DS.script_shingles(d)]
        same_list += ours == theirs
        if set(ours) == set(theirs):
            same_set += 1
        elif len(differ) < 10:
            differ.append(i)
    return {"documents": len(docs), "identical_sets": same_set, "identical_lists": same_list,
            "first_differing": differ}
