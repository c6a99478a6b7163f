"""Settings that change scores (not thresholds): :class:`ScoreConfig` and C4's line filters (:class:`C4Lines`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import FrozenSet, Optional, Tuple

from ...errors import ConfigError
from .stopwords import GOPHER_STOP_WORDS

__all__ = ["C4Lines", "ScoreConfig"]


@dataclass(frozen=True)
class C4Lines:
    """C4's line filters, used to count the sentences of a page (Raffel et al. 2020, section 2.2).

    A line survives when it has at least ``min_words`` words, ends in terminal punctuation (when
    ``terminal_punct``), does not mention javascript (when ``javascript``) and holds no cookie or policy
    notice (when ``policy``). FineWeb (Penedo et al. 2024) kept every C4 filter except the terminal
    punctuation one, which removed too much; :class:`~torchdataguard.QualityFilter` follows FineWeb by
    default.

    Example:
        >>> C4Lines(min_words=3).min_words
        3
    """

    min_words: int = 5
    terminal_punct: bool = True
    javascript: bool = True
    policy: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.min_words, bool) or not isinstance(self.min_words, int) or self.min_words < 0:
            raise ConfigError.bad("C4Lines.min_words", self.min_words, "an integer >= 0 (C4 uses 5)")
        for name in ("terminal_punct", "javascript", "policy"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError.bad(f"C4Lines.{name}", getattr(self, name), "True or False")


@dataclass(frozen=True)
class ScoreConfig:
    """Settings that change scores (not thresholds): the stop words, C4's line filters, C4's bad words.

    ``bad_words`` is a list of lower-case words or phrases; C4's ``bad_words`` rule runs only when it is
    given (nothing is shipped or downloaded).

    Example:
        >>> ScoreConfig(bad_words=("darn",)).bad_words
        ('darn',)
    """

    stop_words: FrozenSet[str] = GOPHER_STOP_WORDS
    c4_lines: C4Lines = field(default_factory=C4Lines)
    bad_words: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        sw = self.stop_words
        if isinstance(sw, str) or not all(isinstance(w, str) and w for w in sw):
            raise ConfigError.bad("stop_words", sw, "a collection of non-empty lower-case words")
        object.__setattr__(self, "stop_words", frozenset(w.lower() for w in sw))
        if not isinstance(self.c4_lines, C4Lines):
            raise ConfigError.bad("c4_lines", self.c4_lines, "a C4Lines(...)")
        bw = self.bad_words
        if bw is not None:
            if isinstance(bw, str) or not all(isinstance(w, str) and w.strip() for w in bw):
                raise ConfigError("bad_words must be a list of non-empty words or phrases, e.g. ['word1', 'two words']; "
                                  f"got a {type(bw).__name__}")
            object.__setattr__(self, "bad_words", tuple(sorted({w.strip().lower() for w in bw})))

    def bad_words_pattern(self) -> Optional["re.Pattern[str]"]:
        if not self.bad_words:
            return None
        alts = "|".join(re.escape(w) for w in sorted(self.bad_words, key=len, reverse=True))
        return re.compile(r"(?<!\w)(?:" + alts + r")(?!\w)")
