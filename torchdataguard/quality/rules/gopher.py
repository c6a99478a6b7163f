"""Gopher's rule sets (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training
Gopher", appendix A.1.1), registered as ``gopher_quality`` and ``gopher_repetition``.

* ``gopher_quality``: word count, mean word length, hash and ellipsis to word ratios, bullet and ellipsis
  line ratios, words with a letter, stop words.
* ``gopher_repetition`` (table A1): duplicate line and paragraph fractions (by count and by characters),
  the character share of the most frequent 2-, 3- and 4-gram, and the character share of all duplicated
  5- to 10-grams.
"""
from __future__ import annotations

import re
from itertools import repeat
from typing import Dict

from .base import Threshold, register_rule_set
from .config import ScoreConfig
from .stats import BULLETS, ELLIPSES, TextStats, duplicates, ratio

__all__ = ["gopher_quality", "gopher_repetition", "line_repetition"]

_PARAGRAPH_SPLIT = re.compile(r"\n[ \t\r\f\v]*\n")
#: every bullet is one character: a bullet line is one whose first character is one of these
_BULLET_CHARS = "".join(dict.fromkeys(BULLETS))
_TOP_NAMES = tuple(f"top_{n}gram_char_ratio" for n in (2, 3, 4))
_DUP_NAMES = tuple(f"dup_{n}gram_char_ratio" for n in range(5, 11))


@register_rule_set("gopher_quality", source="Rae et al. 2021, appendix A.1.1 (quality filters)", rules=[
    ("word_count", Threshold(min=50, max=100_000), "words (whitespace tokens that are not only punctuation)"),
    ("mean_word_length", Threshold(min=3, max=10), "mean characters per word"),
    ("hash_to_word_ratio", Threshold(max=0.1), "'#' characters per word"),
    ("ellipsis_to_word_ratio", Threshold(max=0.1), "ellipses ('...' or U+2026) per word"),
    ("bullet_lines_ratio", Threshold(max=0.9), "share of lines that start with a bullet point"),
    ("ellipsis_lines_ratio", Threshold(max=0.3), "share of lines that end with an ellipsis"),
    ("alpha_words_ratio", Threshold(min=0.8), "share of tokens holding at least one letter"),
    ("stop_words", Threshold(min=2), "how many of the stop words the, be, to, of, and, that, have, with occur"),
])
def gopher_quality(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """Gopher's quality scores of one text.

    Example:
        >>> gopher_quality(TextStats("The cat sat on the mat."), ScoreConfig())["word_count"]
        6.0
    """
    text = st.text
    words = st.word_forms()  # str, or bytes for ASCII text: only counted here
    n_words = len(words)
    n_tokens = st.token_count()
    lines = st.lines()
    n_lines = len(lines)
    denom = max(n_words, 1)
    return {
        "word_count": float(n_words),
        "mean_word_length": ratio(sum(map(len, words)), n_words),
        "hash_to_word_ratio": text.count("#") / denom,
        "ellipsis_to_word_ratio": (text.count("...") + text.count("\u2026")) / denom,
        "bullet_lines_ratio": ratio(st.lines_starting_with(_BULLET_CHARS), n_lines),
        "ellipsis_lines_ratio": ratio(sum(map(str.endswith, lines, repeat(ELLIPSES, n_lines))), n_lines),
        "alpha_words_ratio": ratio(st.tokens_with_letter(), n_tokens),
        # how many of the stop words occur (distinct)
        "stop_words": float(st.stop_words_in(opts.stop_words)),
    }


def line_repetition(st: TextStats) -> Dict[str, float]:
    """Gopher's line and paragraph repetition scores (they need no words, so every script can use them).

    Example:
        >>> line_repetition(TextStats("x\\n\\nx"))["dup_para_ratio"]
        0.5
    """
    n_dup_lines, dup_line_chars, line_chars = st.line_dups()
    n_lines = len(st.lines())
    text = st.text
    if "\n" in text and _PARAGRAPH_SPLIT.search(text):
        paras = [p for p in map(str.strip, _PARAGRAPH_SPLIT.split(text)) if p]
    else:
        s = text.strip()
        paras = [s] if s else []
    n_dup_p, dup_p_chars, p_chars = duplicates(paras)
    return {"dup_line_ratio": ratio(n_dup_lines, n_lines), "dup_para_ratio": ratio(n_dup_p, len(paras)),
            "dup_line_char_ratio": ratio(dup_line_chars, line_chars), "dup_para_char_ratio": ratio(dup_p_chars, p_chars)}


@register_rule_set("gopher_repetition", source="Rae et al. 2021, appendix A.1.1 and table A1 (repetition removal)",
                   rules=[
    ("dup_line_ratio", Threshold(max=0.3), "share of lines that repeat an earlier line"),
    ("dup_para_ratio", Threshold(max=0.3), "share of paragraphs that repeat an earlier paragraph"),
    ("dup_line_char_ratio", Threshold(max=0.2), "share of line characters in repeated lines"),
    ("dup_para_char_ratio", Threshold(max=0.2), "share of paragraph characters in repeated paragraphs"),
    ("top_2gram_char_ratio", Threshold(max=0.2), "share of word characters covered by the most frequent 2-gram"),
    ("top_3gram_char_ratio", Threshold(max=0.18), "share of word characters covered by the most frequent 3-gram"),
    ("top_4gram_char_ratio", Threshold(max=0.16), "share of word characters covered by the most frequent 4-gram"),
    ("dup_5gram_char_ratio", Threshold(max=0.15), "share of word characters covered by repeated 5-grams"),
    ("dup_6gram_char_ratio", Threshold(max=0.14), "share of word characters covered by repeated 6-grams"),
    ("dup_7gram_char_ratio", Threshold(max=0.13), "share of word characters covered by repeated 7-grams"),
    ("dup_8gram_char_ratio", Threshold(max=0.12), "share of word characters covered by repeated 8-grams"),
    ("dup_9gram_char_ratio", Threshold(max=0.11), "share of word characters covered by repeated 9-grams"),
    ("dup_10gram_char_ratio", Threshold(max=0.10), "share of word characters covered by repeated 10-grams"),
])
def gopher_repetition(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """Gopher's repetition scores of one text.

    Example:
        >>> gopher_repetition(TextStats("a line\\na line\\nanother"), ScoreConfig())["dup_line_ratio"]
        0.3333333333333333
    """
    out = line_repetition(st)
    top, dup = st.ngrams()
    out.update(zip(_TOP_NAMES, top))
    out.update(zip(_DUP_NAMES, dup))
    return out
