"""C4's rule set (Raffel et al. 2020, T5, section 2.2), registered as ``c4``.

No "lorem ipsum", no curly bracket, at least three sentences in the lines that survive C4's line filters
(:class:`~torchdataguard.quality.rules.config.C4Lines`: at least five words, terminal punctuation, no
"javascript", no cookie or policy notice), and optionally no word from a bad-word list you supply.
"""
from __future__ import annotations

import math
import re
from typing import Dict, List, Tuple

from .base import Threshold, register_rule_set
from .config import ScoreConfig
from .stats import ELLIPSES, TERMINAL, TextStats

__all__ = ["C4_POLICY", "c4"]

#: C4's policy-notice substrings: lines holding one of these are removed (Raffel et al. 2020, 2.2).
C4_POLICY: Tuple[str, ...] = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                              "use cookies")
# the notices holding "cookie" are looked for only in a text that holds "cookie" (fewer searches of the text)
_POLICY_COOKIE = tuple(p for p in C4_POLICY if "cookie" in p)
_POLICY_PLAIN = tuple(p for p in C4_POLICY if "cookie" not in p)

# A sentence ends in . ! ? (or their CJK forms), possibly followed by closing quotes or brackets, then space/end.
_END_MARKS = ".!?\u2026\u3002\uff01\uff1f"
_END_MARK_CHARS = tuple(_END_MARKS)
_CLOSERS = "\"'\u2019\u201d)]\u00bb"
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*(?=\s|$)")
# ASCII text as classes: end marks -> "e", whitespace -> " ", closing quotes and brackets deleted, the rest -> "x"
_ASCII_CLASSES = bytes(ord("e") if chr(c) in _END_MARKS else ord(" ") if chr(c).isspace() else ord("x")
                       for c in range(256))
_ASCII_CLOSERS = _CLOSERS.encode("ascii", "ignore")


def _count_sentences(lines: List[str]) -> int:
    """Sentence ends in ``lines`` (stripped, non-empty, read as one text joined by newlines), plus one for a
    last sentence without its end mark.

    A sentence end is a run of end marks, then closing quotes or brackets, then whitespace or the end
    (:data:`_SENTENCE_END`). In ASCII text, with the closers deleted and the characters mapped to classes,
    that is a run of ``e`` followed by a space or the end: one ``"e "`` per run, counted by ``bytes.count``
    (the same count as the pattern's ``findall``; a test checks it on generated texts).
    """
    text = "\n".join(lines)
    if text.isascii():
        classes = text.encode("ascii").translate(_ASCII_CLASSES, _ASCII_CLOSERS)
        n = classes.count(b"e ") + classes.endswith(b"e")
    else:
        n = len(_SENTENCE_END.findall(text))
    # the text ends where its last line ends (lines are stripped): with an end mark, closers after it
    if not lines[-1].rstrip(_CLOSERS).endswith(_END_MARK_CHARS):
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
    check_policy = cfg.policy and (any(p in lower for p in _POLICY_PLAIN)
                                   or ("cookie" in lower and any(p in lower for p in _POLICY_COOKIE)))
    kept = st.lines()
    if cfg.terminal_punct:
        kept = [s for s in kept if s.endswith(TERMINAL) and not s.endswith(ELLIPSES)]
    min_words = cfg.min_words
    if min_words:  # min_words words take 2 * min_words - 1 characters at least: shorter lines need no split
        cut, shortest = min_words - 1, 2 * min_words - 1
        kept = [s for s in kept if len(s) >= shortest and len(s.split(None, cut)) >= min_words]
    if check_js or check_policy:  # each kept line lower-cased once, then searched for every notice
        notices = (("javascript",) if check_js else ()) + (C4_POLICY if check_policy else ())
        kept = [s for s, ls in zip(kept, map(str.lower, kept)) if not any(map(ls.__contains__, notices))]
    pat = opts.bad_words_pattern()
    return {
        "lorem_ipsum": float(lower.count("lorem ipsum")),
        "curly_bracket": float(st.text.count("{")),
        "sentences": float(_count_sentences(kept)) if kept else 0.0,
        "bad_words": float(len(pat.findall(lower))) if pat is not None else math.nan,
    }
