"""How a :class:`~torchdataguard.QualityFilter` runs one language profile: its rules, how it reads a text, and
its active checks."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from .rules import Rule, ScoreConfig, TextStats
from .segment import SEGMENTERS

__all__ = ["ProfileRun", "WordsOnly"]


@dataclass
class ProfileRun:
    """One language profile as this stage runs it: its rules, how to read a text, and the active checks."""

    name: str
    sets: Tuple[str, ...]
    rules: List[Rule]
    options: ScoreConfig
    tokenize: Optional[Callable[[str], List[str]]]
    punctuation: str
    keys: List[str]
    checks: List[Tuple[int, str, float, float, bool]]
    #: the active checks as (rule key, fired counter), their rules' indices, and per check a value below
    #: ``lows[j]`` or above ``highs[j]`` fails (nan fails neither; exclusive bounds moved one float inwards)
    failing: List[Tuple[str, str]] = field(default_factory=list)
    at: List[int] = field(default_factory=list)
    lows: List[float] = field(default_factory=list)
    highs: List[float] = field(default_factory=list)

    def stats(self, text: str) -> TextStats:
        return TextStats(text, tokenize=self.tokenize, strip=self.punctuation)


@dataclass(frozen=True)
class WordsOnly:
    """A segmenter's tokens without those made only of punctuation (picklable: holds the segmenter's name)."""

    segmenter: str
    punctuation: str

    def __call__(self, text: str) -> List[str]:
        return [t for t in SEGMENTERS.get(self.segmenter).split(text) if t.strip(self.punctuation)]
