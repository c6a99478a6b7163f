"""Real short texts cut from the shipped SpamAssassin corpus, and an independent exact reference.

The reference re-implements the word shingles of :func:`torchdataguard.dedup.hashing.text_shingle_hashes`
on Python strings (NFKC for non-ASCII text, lower case, words are runs of ASCII letters and digits or of
non-ASCII characters, a text of fewer than ``ngram`` words is one shingle) and decides keep-first with
exact Jaccard, so it shares no code with the package.
"""
import functools
import re
import unicodedata
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from torchdataguard.assets import iter_spamassassin

WORD = re.compile(r"[a-z0-9\u0080-\U0010ffff]+")
SENT = re.compile(r"(?<=[.!?])\s+")


def words(text: str) -> List[str]:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return WORD.findall(text.lower())


def shingles(text: str, ngram: int = 5) -> FrozenSet[Tuple[str, ...]]:
    w = words(text)
    if len(w) < ngram:
        return frozenset([tuple(w)])
    return frozenset(tuple(w[i : i + ngram]) for i in range(len(w) - ngram + 1))


def jaccard(a: FrozenSet, b: FrozenSet) -> float:
    return len(a & b) / len(a | b)


@functools.lru_cache(maxsize=None)
def sentences(lo: int, hi: int, limit: int) -> Tuple[str, ...]:
    """Up to ``limit`` sentences of ``lo``-``hi`` words from email bodies, distinct after normalisation,
    in corpus order (quoted lines and header blocks left out)."""
    seen = set()
    out: List[str] = []
    for row in iter_spamassassin():
        text = row["text"]
        body = text.split("\n\n", 1)[1] if "\n\n" in text else text
        for line in body.split("\n"):
            line = line.strip()
            if not line or line.startswith(">"):
                continue
            for sent in SENT.split(line):
                w = words(sent)
                if not (lo <= len(w) <= hi) or max(len(x) for x in w) > 40:  # skip base64 and other blobs
                    continue
                key = tuple(w)
                if key in seen:
                    continue
                seen.add(key)
                out.append(sent)
                if len(out) >= limit:
                    return tuple(out)
    return tuple(out)


def reference(texts: Sequence[str], threshold: float, ngram: int = 5) -> List[Optional[Tuple[int, float]]]:
    """Keep-first exact decisions: ``None`` (kept) or ``(matched index, Jaccard)`` of the most similar earlier
    kept text (the earliest on a tie)."""
    sh = [shingles(t, ngram) for t in texts]
    post: Dict[Tuple[str, ...], List[int]] = {}
    out: List[Optional[Tuple[int, float]]] = []
    for i, s in enumerate(sh):
        cands = sorted({j for x in s for j in post.get(x, ())})
        best = None
        for j in cands:
            J = jaccard(s, sh[j])
            if J >= threshold - 1e-9 and (best is None or J > best[1]):
                best = (j, J)
        out.append(best)
        if best is None:
            for x in s:
                post.setdefault(x, []).append(i)
    return out
