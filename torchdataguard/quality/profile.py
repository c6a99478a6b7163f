"""How a :class:`~torchdataguard.QualityFilter` runs one language profile: its rules, how it reads a text, and
its active checks."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import repeat
from operator import gt, or_
from typing import Callable, List, Optional, Sequence, Tuple

from .rules import RULE_SETS, Rule, ScoreConfig, TextStats
from .segment import SEGMENTERS

__all__ = ["ProfileRun", "WordsOnly", "rule_spans"]


def rule_spans(sets: Sequence[str]) -> List[Tuple[int, int]]:
    """Per rule set, the indices ``[start, stop)`` of its rules among the rules of ``sets`` (in order)."""
    out, start = [], 0
    for name in sets:
        stop = start + len(RULE_SETS.get(name).names)
        out.append((start, stop))
        start = stop
    return out


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
    #: per rule set, its active checks: (their rules' indices, lows, highs), as above
    set_checks: List[Tuple[List[int], List[float], List[float]]] = field(default_factory=list)
    #: this many leading rule sets are scored even when one of them fails (the English profile's stop-word
    #: set, which the language guess reads)
    must: int = 0

    def stats(self, text: str) -> TextStats:
        return TextStats(text, tokenize=self.tokenize, strip=self.punctuation)

    def split_checks(self) -> None:
        """:attr:`set_checks` from the active checks (after :attr:`at`, :attr:`lows`, :attr:`highs` change)."""
        self.set_checks = []
        for start, stop in rule_spans(self.sets):
            js = [j for j, i in enumerate(self.at) if start <= i < stop]
            self.set_checks.append(([self.at[j] for j in js], [self.lows[j] for j in js],
                                    [self.highs[j] for j in js]))

    def fails(self, vals: Sequence[float], checks: Optional[Tuple[List[int], List[float], List[float]]] = None
              ) -> bool:
        """Whether a score in ``vals`` fails an active check (of one rule set: ``checks``); nan fails none."""
        at, lows, highs = (self.at, self.lows, self.highs) if checks is None else checks
        checked = list(map(vals.__getitem__, at))
        return any(map(or_, map(gt, lows, checked), map(gt, checked, highs)))

    def score(self, text: str, score_all: bool) -> Tuple[Tuple[float, ...], bool]:
        """``(the scores of text by rule, nan for rules not scored, whether every rule set was scored)``: the
        rule sets in order, stopping after the first one with a failing check unless ``score_all`` (or the
        set is among the first :attr:`must`)."""
        st = self.stats(text)
        vals: List[float] = []
        last = len(self.sets) - 1
        for k, name in enumerate(self.sets):
            rs = RULE_SETS.get(name)
            scores = rs.score(st, self.options)
            vals.extend(map(scores.__getitem__, rs.names))  # in the order of self.rules
            if not score_all and k < last and k + 1 >= self.must and self.fails(vals, self.set_checks[k]):
                vals.extend(repeat(math.nan, len(self.rules) - len(vals)))
                return tuple(vals), False
        return tuple(vals), True


@dataclass(frozen=True)
class WordsOnly:
    """A segmenter's tokens without those made only of punctuation (picklable: holds the segmenter's name)."""

    segmenter: str
    punctuation: str

    def __call__(self, text: str) -> List[str]:
        return [t for t in SEGMENTERS.get(self.segmenter).split(text) if t.strip(self.punctuation)]
