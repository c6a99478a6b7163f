"""FineWeb's own rule set (Penedo et al. 2024, section 3), registered as ``fineweb``: the share of lines
ending in punctuation, the share of characters in duplicated lines, and the share of short lines."""
from __future__ import annotations

from typing import Dict

from .base import Threshold, register_rule_set
from .config import ScoreConfig
from .stats import TERMINAL, TextStats, ratio

__all__ = ["fineweb"]

#: every terminal mark is one character: a line ends in one when its last character is one of these
_TERMINAL_CHARS = "".join(dict.fromkeys(TERMINAL))


@register_rule_set("fineweb", source="Penedo et al. 2024 (FineWeb), section 3", rules=[
    ("line_punct_ratio", Threshold(min=0.12, exclusive=True), "share of lines ending in terminal punctuation"),
    ("dup_line_char_ratio", Threshold(max=0.1, exclusive=True), "share of line characters in repeated lines"),
    ("short_line_ratio", Threshold(max=0.67, exclusive=True), "share of lines shorter than 30 characters"),
])
def fineweb(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """FineWeb's scores of one text.

    Example:
        >>> fineweb(TextStats("Short line.\\nno end"), ScoreConfig())["line_punct_ratio"]
        0.5
    """
    lines = st.lines()
    n = len(lines)
    _, dup_chars, chars = st.line_dups()
    return {
        "line_punct_ratio": ratio(st.lines_ending_with(_TERMINAL_CHARS), n),
        "dup_line_char_ratio": ratio(dup_chars, chars),
        "short_line_ratio": ratio(sum(map((30).__gt__, map(len, lines))), n),
    }
