"""C4's rule set (Raffel et al. 2020, T5, section 2.2), registered as ``c4``.

No "lorem ipsum", no curly bracket, at least three sentences in the lines that survive C4's line filters
(:class:`~torchdataguard.quality.rules.config.C4Lines`: at least five words, terminal punctuation, no
"javascript", no cookie or policy notice), and optionally no word from a bad-word list you supply.
"""
from __future__ import annotations

import math
import re
from typing import Dict, Tuple

from .base import Threshold, register_rule_set
from .config import ScoreConfig
from .stats import ELLIPSES, TERMINAL, TextStats

__all__ = ["C4_POLICY", "c4"]

#: C4's policy-notice substrings: lines holding one of these are removed (Raffel et al. 2020, 2.2).
C4_POLICY: Tuple[str, ...] = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                              "use cookies")

# A sentence ends in . ! ? (or their CJK forms), possibly followed by closing quotes or brackets, then space/end.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*(?=\s|$)")
_ENDS_WITH_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*\s*\Z")


def _count_sentences(text: str) -> int:
    """Sentence ends, plus one for a last sentence without its end mark (``text`` holds words)."""
    n = len(_SENTENCE_END.findall(text))
    if not _ENDS_WITH_SENTENCE_END.search(text):
        n += 1
    return n


@register_rule_set("c4", source="Raffel et al. 2020, section 2.2", rules=[
    ("lorem_ipsum", Threshold(max=0), "occurrences of 'lorem ipsum'"),
    ("curly_bracket", Threshold(max=0), "'{' characters (code)"),
    ("sentences", Threshold(min=3), "sentences in the lines kept by C4's line filters"),
    ("bad_words", Threshold(max=0), "words from the bad-word list you supply (off without one)"),
])
def c4(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """C4's scores of one text (``bad_words`` is ``nan``, not applicable, without a word list).

    Example:
        >>> c4(TextStats("One two three four five. Six seven eight nine ten!"), ScoreConfig())["sentences"]
        2.0
    """
    lower = st.lower()
    cfg = opts.c4_lines
    check_js = cfg.javascript and "javascript" in lower
    check_policy = cfg.policy and any(p in lower for p in C4_POLICY)
    kept = []
    min_words = cfg.min_words
    terminal_punct = cfg.terminal_punct
    for s in st.lines():  # the cheap test first: a line is kept only if it passes all of them
        if terminal_punct and (not s.endswith(TERMINAL) or s.endswith(ELLIPSES)):
            continue
        if min_words and len(s.split(None, min_words - 1)) < min_words:
            continue
        if check_js or check_policy:
            ls = s.lower()
            if check_js and "javascript" in ls:
                continue
            if check_policy and any(p in ls for p in C4_POLICY):
                continue
        kept.append(s)
    pat = opts.bad_words_pattern()
    return {
        "lorem_ipsum": float(lower.count("lorem ipsum")),
        "curly_bracket": float(st.text.count("{")),
        "sentences": float(_count_sentences("\n".join(kept))) if kept else 0.0,
        "bad_words": float(len(pat.findall(lower))) if pat is not None else math.nan,
    }
