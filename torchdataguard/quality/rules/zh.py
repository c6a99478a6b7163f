"""Chinese rule sets: Gopher's and FineWeb's rules on words from a segmenter (jieba), with Chinese thresholds
and stop words, registered as ``gopher_quality_zh``, ``gopher_repetition_zh`` and ``fineweb_zh``.

They follow FineWeb-2 (Penedo et al. 2025, "FineWeb2: One Pipeline to Scale Them All"), which kept
Gopher's and FineWeb's filters for every language but counted words with a per-language word tokenizer
(jieba for Chinese) and measured a threshold per language; C4's rules were not applied. The thresholds
here start from FineWeb-2's published values for Mandarin in Han script and were checked on real Chinese
prose (Debian's manpages-zh and fortunes-zh, Simplified and Traditional): see the README's "Languages"
section for the figures. FineWeb's short-line rule is left out (30 characters is a long line in Chinese;
FineWeb-2 switched it off too) and FineWeb's newline-per-word rule is added (it drops menus and lists of
links, one short item per line).

The scorers are the Gopher ones (:mod:`~torchdataguard.quality.rules.gopher`) applied to a
:class:`~torchdataguard.quality.rules.stats.TextStats` whose tokens are jieba's words (whitespace left
out, punctuation tokens kept as tokens without letters) and whose stop words are :data:`ZH_STOP_WORDS`;
the language profile (:mod:`~torchdataguard.quality.languages`) builds both.
"""
from __future__ import annotations

from typing import Dict, Tuple

from .base import Threshold, register_rule_set
from .config import ScoreConfig
from .gopher import gopher_quality, gopher_repetition
from .stats import PUNCTUATION, TERMINAL, TextStats, ratio

__all__ = ["ZH_PUNCTUATION", "ZH_TERMINAL", "fineweb_zh"]

#: Characters stripped from both ends of a Chinese token (full-width brackets, quotes and marks added).
ZH_PUNCTUATION = PUNCTUATION + ("\u300c\u300d\u300e\u300f\u300a\u300b\u3008\u3009\uff08\uff09\u3010\u3011\u3014\u3015"
                                "\uff3b\uff3d\uff5b\uff5d\u3016\u3017\u3003\u301c\uff5e\u2025\uff0e\uff0f\uff3c"
                                "\uff02\uff07\uff03\uff04\uff05\uff06\uff0a\uff0b\uff0d\uff1c\uff1d\uff1e\uff20"
                                "\uff3e\uff3f\uff40\uff5c\uffe5\u00b7\u30fb")

#: Line ends that count as the end of a sentence in Chinese: C4's, plus the full-width semicolon and colon (a
#: sentence introducing an example or a list: "例如："), the ellipsis and closing corner brackets (quotations).
ZH_TERMINAL: Tuple[str, ...] = TERMINAL + ("\uff1b", "\uff1a", "\u2026", "\u300d", "\u300f")
_ZH_TERMINAL_CHARS = "".join(dict.fromkeys(ZH_TERMINAL))  # each one character, as the line ends are counted

register_rule_set("gopher_quality_zh", source="Rae et al. 2021 A.1.1 with FineWeb-2's per-language adaptation "
                  "(jieba words, Chinese thresholds and stop words)", rules=[
    ("word_count", Threshold(min=50, max=100_000), "words (jieba) that are not only punctuation"),
    ("mean_word_length", Threshold(min=1, max=5), "mean characters per word"),
    ("hash_to_word_ratio", Threshold(max=0.1), "'#' characters per word"),
    ("ellipsis_to_word_ratio", Threshold(max=0.1), "ellipses ('...' or U+2026) per word"),
    ("bullet_lines_ratio", Threshold(max=0.9), "share of lines that start with a bullet point"),
    ("ellipsis_lines_ratio", Threshold(max=0.3), "share of lines that end with an ellipsis"),
    ("alpha_words_ratio", Threshold(min=0.8), "share of words (punctuation tokens left out) holding a letter"),
    ("stop_words", Threshold(min=2), "how many distinct Chinese stop words occur (ZH_STOP_WORDS)"),
])(gopher_quality)

register_rule_set("gopher_repetition_zh", source="Rae et al. 2021 table A1 with FineWeb-2's Chinese n-gram thresholds",
                  rules=[
    ("dup_line_ratio", Threshold(max=0.3), "share of lines that repeat an earlier line"),
    ("dup_para_ratio", Threshold(max=0.3), "share of paragraphs that repeat an earlier paragraph"),
    ("dup_line_char_ratio", Threshold(max=0.2), "share of line characters in repeated lines"),
    ("dup_para_char_ratio", Threshold(max=0.2), "share of paragraph characters in repeated paragraphs"),
    ("top_2gram_char_ratio", Threshold(max=0.256), "share of word characters covered by the most frequent 2-gram"),
    ("top_3gram_char_ratio", Threshold(max=0.201), "share of word characters covered by the most frequent 3-gram"),
    ("top_4gram_char_ratio", Threshold(max=0.171), "share of word characters covered by the most frequent 4-gram"),
    ("dup_5gram_char_ratio", Threshold(max=0.40), "share of word characters covered by repeated 5-grams"),
    ("dup_6gram_char_ratio", Threshold(max=0.38), "share of word characters covered by repeated 6-grams"),
    ("dup_7gram_char_ratio", Threshold(max=0.35), "share of word characters covered by repeated 7-grams"),
    ("dup_8gram_char_ratio", Threshold(max=0.33), "share of word characters covered by repeated 8-grams"),
    ("dup_9gram_char_ratio", Threshold(max=0.31), "share of word characters covered by repeated 9-grams"),
    ("dup_10gram_char_ratio", Threshold(max=0.30), "share of word characters covered by repeated 10-grams"),
])(gopher_repetition)


@register_rule_set("fineweb_zh", source="Penedo et al. 2024 section 3, FineWeb-2's Chinese thresholds", rules=[
    ("line_punct_ratio", Threshold(min=0.106, exclusive=True), "share of lines ending in a sentence end (ZH_TERMINAL)"),
    ("dup_line_char_ratio", Threshold(max=0.1, exclusive=True), "share of line characters in repeated lines"),
    ("new_line_ratio", Threshold(max=0.178, exclusive=True), "line breaks per word"),
])
def fineweb_zh(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """FineWeb's scores of one Chinese text (no short-line rule; line breaks per word instead).

    Example:
        >>> fineweb_zh(TextStats("第一行。\\n第二行"), ScoreConfig())["line_punct_ratio"]
        0.5
    """
    lines = st.lines()
    _, dup_chars, chars = st.line_dups()
    return {
        "line_punct_ratio": ratio(st.lines_ending_with(_ZH_TERMINAL_CHARS), len(lines)),
        "dup_line_char_ratio": ratio(dup_chars, chars),
        "new_line_ratio": ratio(st.text.count("\n"), len(st.words())),
    }
