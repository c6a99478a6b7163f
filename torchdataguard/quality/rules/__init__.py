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
    >>> RULE_SETS.names()
    ['c4', 'fineweb', 'gopher_quality', 'gopher_repetition']
"""
from . import c4, fineweb, gopher  # noqa: F401  (importing them registers the built-in rule sets)
from .base import RULE_SETS, Rule, RuleSet, Scorer, Threshold, all_rules, register_rule_set, score_text
from .c4 import C4_POLICY
from .config import C4Lines, ScoreConfig
from .stats import BULLETS, ELLIPSES, PUNCTUATION, TERMINAL, TextStats
from .stopwords import GOPHER_STOP_WORDS

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
    "all_rules",
    "register_rule_set",
    "score_text",
]
