"""Real Chinese text with planted near copies, and an independent reference of the script-aware shingles.

Shared by ``tests/dedup/test_near_chinese.py`` and ``benchmarks/dedup_zh.py``. The texts are the files of
``tests/fixtures/zh`` (manpages-zh and fortunes-zh, see the README there); nothing is fetched.

The reference re-implements the shingles of :func:`torchdataguard.dedup.hashing.shingles` on Python strings
with its own tables (it shares no code with the package): NFKC, lower case; ASCII letters and digits and
non-ASCII characters other than punctuation (``P*``), spaces (``Z*``) and ``Cc``/``Cf`` are token
characters; a character of a script written without spaces (the ranges below) is a token of its own,
runs of other token characters are words; a window starting on a character is ``char_n`` tokens (``abugida_n``
for Thai, Lao, Khmer and Myanmar), one starting on a word ``n`` tokens; a text without a complete window is
one shingle of all its tokens. Format characters (``Cf``, but for the visible prepended number signs), the
Arabic tatweel and harakat and the Hebrew points and cantillation marks are left out after NFKC.
"""
from __future__ import annotations

import json
import os
import random
import re
import unicodedata
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "zh")

# Han (with CJK compatibility and extension B+ ideographs, the iteration marks), kana, Bopomofo, Thai, Lao,
# Khmer, Myanmar: the scripts of the test texts
UNSPACED = re.compile("[\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff"
                      "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f\u0e00-\u0eff"
                      "\u1000-\u109f\u1780-\u17ff]")
ABUGIDA = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")  # Thai, Lao, Myanmar, Khmer
PREPENDED = set("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd")
HAN = re.compile("[\u4e00-\u9fff]")
PUNCT_ZH = "，。、；：？！“”‘’「」『』（）《》【】—…·"


def ignored(ch: str) -> bool:
    """Left out of the shingles: format characters, Arabic tatweel and harakat, Hebrew points."""
    cat = unicodedata.category(ch)
    return ((cat == "Cf" and ch not in PREPENDED) or ch == "\u0640" or "\u064b" <= ch <= "\u065f" or ch == "\u0670"
            or ("\u0591" <= ch <= "\u05c7" and cat == "Mn"))


def normal(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if not ignored(ch))


def ref_tokens(text: str) -> List[str]:
    t = normal(text)
    out: List[str] = []
    word = ""
    for ch in t:
        cat = unicodedata.category(ch)
        sep = (not ch.isalnum()) if ch.isascii() else (cat[0] in "PZ" or cat in ("Cc", "Cf"))
        if not sep and not UNSPACED.match(ch):
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        if not sep:
            out.append(ch)
    if word:
        out.append(word)
    return out


def ref_shingles(text: str, n: int = 5, char_n: int = 5, abugida_n: int = 8) -> FrozenSet[Tuple[str, ...]]:
    toks = ref_tokens(text)
    if not toks:
        return frozenset([(normal(text),)])
    out = set()
    for i, tok in enumerate(toks):
        k = (abugida_n if ABUGIDA.match(tok) else char_n) if UNSPACED.match(tok) else n
        if i + k <= len(toks):
            out.add(tuple(toks[i : i + k]))
    return frozenset(out) if out else frozenset([tuple(toks)])


def jaccard(a: FrozenSet, b: FrozenSet) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


def passages() -> List[str]:
    """The 48 real Chinese passages (150-450 characters) of ``passages.jsonl``."""
    with open(os.path.join(FIXTURES, "passages.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def short_lines() -> List[str]:
    """The 3,486 distinct short real Chinese texts (2-40 characters) of ``short_lines.jsonl``, in file order."""
    out: List[str] = []
    with open(os.path.join(FIXTURES, "short_lines.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.extend(json.loads(line)["texts"])
    return out


def pieces(texts: Sequence[str], lo: int, hi: int, seed: int = 0) -> List[str]:
    """Consecutive, non-overlapping pieces of ``lo``-``hi`` characters of each text (cut after punctuation when
    there is some near the cut), so that no two pieces share a shingle by construction."""
    rng = random.Random(seed)
    out = []
    for t in texts:
        a = 0
        while len(t) - a >= lo:
            b = min(len(t), a + rng.randint(lo, hi))
            for j in range(b, max(a + lo, b - 12), -1):
                if t[j - 1] in PUNCT_ZH:
                    b = j
                    break
            out.append(t[a:b].strip())
            a = b
    return out


# -- planted near copies --------------------------------------------------------------------------------------
_TO_ASCII = {"，": ", ", "。": ". ", "；": "; ", "：": ": ", "？": "? ", "！": "! ", "（": "(", "）": ")",
             "“": '"', "”": '"', "、": ", ", "《": "<", "》": ">"}
_OTHER = {"“": "「", "”": "」", "‘": "『", "’": "』", "，": "、", "。": "．", "——": "--", "…": "..."}


def _width(text: str, rng: random.Random) -> str:
    """ASCII letters and digits to full width (or, for full-width text, back)."""
    if rng.random() < 0.5:
        return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)
    return unicodedata.normalize("NFKC", text)


def _punct(text: str, rng: random.Random) -> str:
    kind = rng.choice(["ascii", "other", "drop"])
    if kind == "ascii":
        return "".join(_TO_ASCII.get(c, c) for c in text)
    if kind == "other":
        for a, b in _OTHER.items():
            text = text.replace(a, b)
        return text
    return "".join(c for c in text if c not in PUNCT_ZH or rng.random() < 0.5)


def edit(text: str, rng: random.Random, vocab: str) -> Tuple[str, str]:
    """A near copy of ``text`` and the kind of edit: exact, punctuation, width, Han characters replaced,
    inserted or deleted, adjacent two-character words swapped, a prefix or suffix cut, or several of these."""
    kind = rng.choice(["exact", "punct", "width", "replace", "replace", "insert", "delete", "swap", "cut", "mixed"])
    if kind == "exact":
        return text, kind
    if kind == "punct":
        return _punct(text, rng), kind
    if kind == "width":
        return _width(text, rng), kind
    chars = list(text)
    han = [i for i, c in enumerate(chars) if HAN.match(c)]
    if len(han) < 4:
        return _punct(text, rng), "punct"
    frac = rng.choice([0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2])
    k = max(1, int(round(len(han) * frac)))
    if kind in ("replace", "mixed"):
        for i in rng.sample(han, min(k, len(han))):
            chars[i] = rng.choice(vocab)
    elif kind == "insert":
        for _ in range(k):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(vocab))
    elif kind == "delete":
        for i in sorted(rng.sample(han, min(k, len(han) - 1)), reverse=True):
            del chars[i]
    elif kind == "swap":
        for _ in range(k):
            i = rng.randrange(max(1, len(chars) - 3))
            chars[i : i + 4] = chars[i + 2 : i + 4] + chars[i : i + 2]
    else:  # cut a prefix or a suffix
        chars = chars[k:] if rng.random() < 0.5 else chars[:-k]
    out = "".join(chars)
    if kind == "mixed":
        out = _width(_punct(out, rng), rng)
    return out, kind


def with_planted(base: Sequence[str], fraction: float, seed: int = 0
                 ) -> Tuple[List[str], List[Tuple[int, int, str]]]:
    """``base`` plus ``fraction * len(base)`` planted near copies, each after its source in the stream.
    Returns ``(docs, pairs)``, pairs being ``(copy position, source position, kind of edit)``."""
    rng = random.Random(seed + 1)
    vocab = "".join(HAN.findall("".join(base[:200]))) or "中"
    n_var = int(len(base) * fraction)
    keys = [(float(i), i, -1) for i in range(len(base))]
    items: List[str] = list(base)
    kinds: Dict[int, str] = {}
    for _ in range(n_var):
        src = rng.randrange(len(base))
        text, kind = edit(base[src], rng, vocab)
        items.append(text)
        kinds[len(items) - 1] = kind
        keys.append((rng.uniform(src + 0.5, len(base)), len(items) - 1, src))
    keys.sort()
    pos_of = {item: p for p, (_, item, _) in enumerate(keys)}
    docs = [items[item] for _, item, _ in keys]
    pairs = [(pos_of[item], pos_of[src], kinds[item]) for _, item, src in keys if src >= 0]
    return docs, pairs


def quality(docs: Sequence[str], pairs, drops: Dict[int, Optional[int]], threshold: float = 0.8,
            short_chars: int = 16) -> Dict[str, object]:
    """Recall of planted pairs by their reference Jaccard, and false drops: a near drop whose reference Jaccard
    with its match is below ``threshold - 0.1`` (as in the English benchmark), and short texts (under
    ``short_chars`` characters) dropped below ``threshold``. ``drops``: position -> matched position, or a list of
    candidates (the best one counts), or None for exact drops."""
    cache: Dict[int, FrozenSet] = {}

    def s(i: int) -> FrozenSet:
        if i not in cache:
            cache[i] = ref_shingles(docs[i])
        return cache[i]

    bins: Dict[str, List[bool]] = {">=0.9": [], "0.8-0.9": [], "0.7-0.8": [], "<0.5": []}
    for v, src, _ in pairs:
        j = jaccard(s(v), s(src))
        key = ">=0.9" if j >= 0.9 else "0.8-0.9" if j >= 0.8 else "0.7-0.8" if j >= 0.7 else "<0.5" if j < 0.5 else None
        if key:
            bins[key].append(v in drops)
    false = short_false = near = 0
    for i, m in drops.items():
        if m is None:
            continue
        near += 1
        j = max(jaccard(s(i), s(c)) for c in (m if isinstance(m, list) else [m]))
        false += j < threshold - 0.1
        short_false += len(docs[i]) < short_chars and j < threshold - 1e-9
    return {"recall": {k: [round(sum(v) / len(v), 4) if v else None, len(v)] for k, v in bins.items()},
            "dropped": len(drops), "near_drops": near, "false_drops": false,
            "false_drop_rate": round(false / max(1, len(docs)), 6), "short_false_drops": short_false}
