"""Settings of :class:`~torchdataguard.QualityFilter`: :class:`QualityConfig`, validated when built."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError
from .languages import LANGUAGE_PROFILES
from .rules import GOPHER_STOP_WORDS, RULE_SETS, C4Lines, ScoreConfig, Threshold, all_rules

__all__ = ["DEFAULT_SETS", "QualityConfig", "full_key", "unknown_rule_message"]

#: The default combination: FineWeb's recipe (Penedo et al. 2024) - Gopher quality and repetition, C4 without
#: its terminal-punctuation line filter, and FineWeb's own three rules.
DEFAULT_SETS: Tuple[str, ...] = ("gopher_quality", "gopher_repetition", "c4", "fineweb")

def full_key(key: str) -> str:
    """``key`` with the ``quality/`` prefix."""
    return key if key.startswith("quality/") else f"quality/{key}"


@dataclass
class QualityConfig:
    """Settings of :class:`QualityFilter` (validated when built).

    Attributes:
        sets: rule sets to apply, in order (see ``torchdataguard.quality.rules.RULE_SETS``).
        thresholds: overrides by rule, ``{"quality/<set>/<rule>": {"min": x} | {"max": y} | None}``; the
            ``quality/`` prefix may be left out; ``None`` switches a rule off (its score is still recorded).
        stop_words: the stop words of ``gopher_quality/stop_words``.
        c4_lines: C4's line filters (which lines count when C4 counts sentences).
        bad_words: words or phrases for ``c4/bad_words`` (the rule is off without them).
        cache_size: texts whose scores are remembered (by a 128-bit content hash); 0 turns the cache off.
        languages: rule sets of the other language profiles, ``{"zh": [...], "neutral": [...]}`` (the ``en``
            profile's are ``sets``); profiles left out keep their defaults (:mod:`~torchdataguard.quality.languages`).
    """

    sets: Tuple[str, ...] = DEFAULT_SETS
    thresholds: Dict[str, Any] = field(default_factory=dict)
    stop_words: Tuple[str, ...] = tuple(sorted(GOPHER_STOP_WORDS))
    c4_lines: C4Lines = field(default_factory=lambda: C4Lines(terminal_punct=False))
    bad_words: Optional[Tuple[str, ...]] = None
    cache_size: int = 20_000
    languages: Dict[str, Tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: List[str] = []
        self.sets = _parse_sets("sets", self.sets, problems)
        self.languages = self._parse_languages(problems)
        if isinstance(self.c4_lines, Mapping):
            try:
                self.c4_lines = C4Lines(**dict(self.c4_lines))
            except TypeError:
                problems.append(f"c4_lines={dict(self.c4_lines)!r}: allowed keys are min_words, terminal_punct, "
                                f"javascript, policy")
            except ConfigError as exc:
                problems.append(str(exc))
        elif not isinstance(self.c4_lines, C4Lines):
            problems.append(f"c4_lines={self.c4_lines!r}: expected a C4Lines(...) or a dict of its fields")
        if isinstance(self.cache_size, bool) or not isinstance(self.cache_size, int) or self.cache_size < 0:
            problems.append(f"cache_size={self.cache_size!r}: expected an integer >= 0 (0 turns the cache off)")
        if not isinstance(self.thresholds, Mapping):
            problems.append(f"thresholds={self.thresholds!r}: expected a dict such as "
                            f"{{'quality/c4/sentences': {{'min': 2}}}}")
            self.thresholds = {}
        if problems:
            raise ConfigError.collect(problems, "QualityFilter settings")
        # validated by ScoreConfig (clear errors for bad word lists)
        self.options = ScoreConfig(stop_words=frozenset(self.stop_words), c4_lines=self.c4_lines,
                                    bad_words=None if self.bad_words is None else tuple(self.bad_words))
        self.stop_words = tuple(sorted(self.options.stop_words))
        self.bad_words = self.options.bad_words
        self.thresholds = {full_key(str(k)): v for k, v in self.thresholds.items()}
        self.resolve_thresholds()  # raises on unknown rules or bad specs

    def _parse_languages(self, problems: List[str]) -> Dict[str, Tuple[str, ...]]:
        """Every profile but ``en`` -> its rule sets (the defaults, with the ``languages`` overrides applied)."""
        given = self.languages
        if not isinstance(given, Mapping):
            problems.append(f"languages={given!r}: expected a dict of profile -> rule sets, e.g. "
                            f"{{'zh': ['gopher_quality_zh', 'text_encoding']}}")
            given = {}
        others = [n for n in LANGUAGE_PROFILES if n != "en"]
        for name in given:
            if name == "en":
                problems.append("languages names the 'en' profile; its rule sets are `sets`")
            elif name not in LANGUAGE_PROFILES:
                problems.append(f"languages names an unknown language profile {name!r}; profiles are {others} "
                                f"('en' is set with `sets`)")
        self.explicit_languages = tuple(n for n in given if n in others)
        out = {n: LANGUAGE_PROFILES.get(n).sets for n in others}
        out.update({n: _parse_sets(f"languages[{n!r}]", v, problems) for n, v in given.items() if n in out})
        return out

    def profile_sets(self) -> Dict[str, Tuple[str, ...]]:
        """Every language profile -> its rule sets (``en``: ``sets``)."""
        return {"en": self.sets, **self.languages}

    def all_sets(self) -> List[str]:
        """Every rule set some profile uses, each once (``sets`` first)."""
        return list(dict.fromkeys(s for sets in self.profile_sets().values() for s in sets))

    def resolve_thresholds(self) -> Dict[str, Optional[Threshold]]:
        """Every rule of every profile's sets -> its threshold (``None`` = off), overrides applied."""
        out: Dict[str, Optional[Threshold]] = {}
        for name in self.all_sets():
            for r in RULE_SETS.get(name).rules:
                out[r.key] = r.default
        problems = []
        for key, spec in self.thresholds.items():
            if key not in out:
                problems.append(unknown_rule_message(key, self.all_sets()))
                continue
            try:
                out[key] = None if spec is None else Threshold.parse(key, spec)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError.collect(problems, "quality thresholds")
        return out


def unknown_rule_message(key: str, sets: Sequence[str]) -> str:
    """Why ``key`` is not a rule of ``sets``, and what the valid ones are."""
    known = all_rules()
    if key in known:
        return (f"rule {key!r} belongs to rule set {known[key].set!r}, which is not among sets={list(sets)}; add "
                f"{known[key].set!r} to sets to use it")
    valid = [r.key for s in sets for r in RULE_SETS.get(s).rules]
    return f"unknown quality rule {key!r}; valid rules for sets={list(sets)} are {valid}"




def _parse_sets(what: str, sets: Any, problems: List[str]) -> Tuple[str, ...]:
    """Rule set names from a list or a comma-separated string, each checked against the registry."""
    if isinstance(sets, str):
        sets = [s.strip() for s in sets.split(",") if s.strip()]
    try:
        out = tuple(sets)
    except TypeError:
        problems.append(f"{what}={sets!r}: expected a list of rule set names from {RULE_SETS.names()}")
        return ()
    unknown = [s for s in out if s not in RULE_SETS]
    if unknown:
        problems.append(f"{what} names unknown rule sets {unknown}; valid rule sets are {RULE_SETS.names()}")
    if not out and not unknown:
        problems.append(f"{what} is empty; pick at least one of {RULE_SETS.names()}")
    if len(set(out)) != len(out):
        problems.append(f"{what}={list(out)} repeats a rule set")
    return out
