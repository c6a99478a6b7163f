"""Stop-word lists of the quality rules (written for this project)."""
from __future__ import annotations

from typing import FrozenSet

__all__ = ["GOPHER_STOP_WORDS", "ZH_STOP_WORDS"]

#: The stop words of Gopher's stop-word rule (Rae et al. 2021, A.1.1): a document needs at least two of them.
GOPHER_STOP_WORDS: FrozenSet[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

#: Chinese function words for ``gopher_quality_zh/stop_words``, in Simplified and Traditional forms: the
#: particles, prepositions, conjunctions, pronouns and copula that jieba most often returns as words of their
#: own in Chinese prose (measured on Debian's manpages-zh and fortunes-zh: "的" occurs in 83% of passages,
#: "在" in 58%, "是" in 52%). Like Gopher's rule, a document needs at least two distinct ones.
ZH_STOP_WORDS: FrozenSet[str] = frozenset({
    "的", "了", "是", "在", "和", "与", "與", "或", "也", "而", "都", "就", "把", "被", "将", "將", "以", "于", "於",
    "为", "為", "对", "對", "从", "從", "这", "這", "那", "它", "他", "她", "我", "你", "我们", "我們", "一个", "一個",
    "不", "有", "之", "但",
})
