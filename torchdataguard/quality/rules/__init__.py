"""Heuristic quality rules from the papers, as named rule sets with their published thresholds.

Four rule sets are built in, each written from its paper's definitions, one module each:

* ``gopher_quality`` and ``gopher_repetition`` (:mod:`~torchdataguard.quality.rules.gopher`) - Rae et al.
  2021, appendix A.1.1: quality filters, and repetition removal (table A1).
* ``c4`` (:mod:`~torchdataguard.quality.rules.c4`) - Raffel et al. 2020 (T5), section 2.2: no "lorem
  ipsum", no curly bracket, at least three sentences in the lines that survive C4's line filters, and
  optionally no word from a bad-word list you supply.
* ``fineweb`` (:mod:`~torchdataguard.quality.rules.fineweb`) - Penedo et al. 2024 (FineWeb), section 3: the
  share of lines ending in punctuation, the share of characters in duplicated lines, and the share of
  short lines.

Rule sets for other languages and scripts sit next to them, registered the same way:

* ``gopher_quality_zh``, ``gopher_repetition_zh``, ``fineweb_zh`` (:mod:`~torchdataguard.quality.rules.zh`) -
  Gopher's and FineWeb's rules on jieba words with Chinese thresholds and stop words (FineWeb-2's approach).
* ``script_neutral`` and ``text_encoding`` (:mod:`~torchdataguard.quality.rules.neutral`) - rules that need no
  words (for languages without a profile) and mojibake / replacement characters.

Which sets judge a text depends on its language: :mod:`~torchdataguard.quality.languages` holds the
language profiles (language codes and scripts -> segmenter, stop words, rule sets). A new language plugs in
as rule sets registered here (scorers reused with other thresholds, or new ones) plus a profile
registered in :data:`~torchdataguard.quality.languages.LANGUAGE_PROFILES`.

Every rule has a score (a float) and a :class:`Threshold`; a document fails a rule when its score falls
outside the threshold. A rule set's scorer computes all its rules' scores in one pass and returns them in
a dict keyed by rule name; the values several rules or sets share (lines, lower-cased whitespace tokens and
their stripped word forms, duplicates, n-gram shares) are computed once per text by :class:`TextStats`.
Rule sets are registered by name in :data:`RULE_SETS` (:func:`register_rule_set`), so rules for another
language or script come as rule sets of their own (their scorer, their thresholds) next to these.

Example:
    >>> from torchdataguard.quality.rules import score_text, RULE_SETS
    >>> s = score_text("The cat sat on the mat. " * 3, ["gopher_quality"])
    >>> s["quality/gopher_quality/word_count"], s["quality/gopher_quality/stop_words"]
    (18.0, 1.0)
    >>> RULE_SETS.names()  # doctest: +NORMALIZE_WHITESPACE
    ['c4', 'fineweb', 'fineweb_zh', 'gopher_quality', 'gopher_quality_zh', 'gopher_repetition',
     'gopher_repetition_zh', 'script_neutral', 'text_encoding']
"""
from . import c4, fineweb, gopher, neutral, zh  # noqa: F401  (importing them registers the built-in rule sets)
from .base import RULE_SETS, Rule, RuleSet, Scorer, Threshold, all_rules, register_rule_set, score_text
from .c4 import C4_POLICY
from .config import C4Lines, ScoreConfig
from .stats import BULLETS, ELLIPSES, PUNCTUATION, TERMINAL, TextStats
from .stopwords import GOPHER_STOP_WORDS, ZH_STOP_WORDS
from .zh import ZH_PUNCTUATION, ZH_TERMINAL

__all__ = [
    "BULLETS",
    "C4Lines",
    "C4_POLICY",
    "ELLIPSES",
    "GOPHER_STOP_WORDS",
    "PUNCTUATION",
    "RULE_SETS",
    "Rule",
    "RuleSet",
    "ScoreConfig",
    "Scorer",
    "TERMINAL",
    "TextStats",
    "Threshold",
    "ZH_PUNCTUATION",
    "ZH_STOP_WORDS",
    "ZH_TERMINAL",
    "all_rules",
    "register_rule_set",
    "score_text",
]
