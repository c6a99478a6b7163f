"""A plain-Python 13-gram contamination check written from the GPT-3 paper's definition (appendix C), as
lm-evaluation-harness does it: lower case, punctuation deleted, words split on whitespace, a set of the
evaluation items' n-grams joined into strings, and every training document's n-grams looked up in it.

Non-ASCII text also gets NFKC (after its invisible characters, Cf and the other default-ignorable ones, are
deleted), symbols deleted and
each character of a script without spaces (CJK, Thai) as a word, character by character (slow, but only for
non-ASCII text). Kept independent of the package.
"""
from __future__ import annotations

import string
import unicodedata
from typing import Dict, Iterable, List, Set, Tuple

_ASCII = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
_UNSPACED = [(0x0E00, 0x0EFF), (0x0F00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x2FDF),
             (0x3005, 0x3007), (0x3040, 0x30FF), (0x3100, 0x312F), (0x31F0, 0x31FF), (0x3400, 0x4DBF),
             (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x323AF)]


# Unicode's Default_Ignorable_Code_Point characters that are not Cf (DerivedCoreProperties.txt): the combining
# grapheme joiner, the Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, variation selectors,
# reserved code points; invisible like the format characters
_IGNORABLE = [(0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
              (0x2065, 0x2065), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
              (0xE0000, 0xE0FFF)]


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or any(lo <= ord(ch) <= hi for lo, hi in _IGNORABLE)


def words(text: str) -> List[str]:
    if text.isascii():
        return text.translate(_ASCII).split()
    out = []
    # invisible characters deleted before NFKC too: one between a letter and its accent would keep them apart
    text = "".join(ch for ch in text if not _invisible(ch))
    for ch in unicodedata.normalize("NFKC", text).lower():
        cat = unicodedata.category(ch)
        if cat[0] in "PS" or _invisible(ch):  # punctuation, symbols and invisible characters deleted
            continue
        if any(lo <= ord(ch) <= hi for lo, hi in _UNSPACED):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out).split()


def ngrams(text: str, n: int = 13) -> Iterable[str]:
    w = words(text)
    return (" ".join(w[i : i + n]) for i in range(len(w) - n + 1))


class Reference:
    """``{n-gram: item ids}`` of evaluation sets; :meth:`dirty` answers for one training document."""

    def __init__(self, evals: Dict[str, List[Tuple[object, str]]], n: int = 13) -> None:
        self.n = n
        self.index: Dict[str, Set[Tuple[str, object]]] = {}
        for name, items in evals.items():
            for item_id, text in items:
                for g in ngrams(text, n):
                    self.index.setdefault(g, set()).add((name, item_id))

    def dirty(self, text: str) -> Set[Tuple[str, object]]:
        """The (eval set, item id) pairs sharing an n-gram with ``text``."""
        out: Set[Tuple[str, object]] = set()
        for g in ngrams(text, self.n):
            hit = self.index.get(g)
            if hit:
                out |= hit
        return out
