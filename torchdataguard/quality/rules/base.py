"""Rules, rule sets and their registry: :class:`Threshold`, :class:`Rule`, :class:`RuleSet`, :data:`RULE_SETS`.

A rule set is a named group of rules and one scorer: a function of the text's :class:`TextStats` and the
:class:`~torchdataguard.quality.rules.config.ScoreConfig` that returns every rule's score in a dict keyed by
the rule's name (one pass computes values several rules share). Rule sets are registered by name in
:data:`RULE_SETS`, usually with the :func:`register_rule_set` decorator on the scorer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Sequence, Tuple

from ...errors import ConfigError
from ...registry import Registry
from .config import ScoreConfig
from .stats import TextStats

__all__ = ["RULE_SETS", "Rule", "RuleSet", "Scorer", "Threshold", "all_rules", "register_rule_set", "score_text"]


@dataclass(frozen=True)
class Threshold:
    """The allowed range of a score: keep when ``min <= score <= max`` (strict ``<`` when ``exclusive``).

    Either bound may be ``None`` (unbounded). ``exclusive=True`` makes both bounds strict, for rules
    published as "remove when the score is at or beyond x" (FineWeb's).

    Example:
        >>> t = Threshold(min=3, max=10)
        >>> t.passes(3.0), t.passes(10.5)
        (True, False)
        >>> Threshold(max=0.1, exclusive=True).passes(0.1)
        False
        >>> Threshold.parse("quality/c4/sentences", {"min": 3}).to_json()
        {'min': 3.0}
    """

    min: Optional[float] = None
    max: Optional[float] = None
    exclusive: bool = False

    def __post_init__(self) -> None:
        problems = []
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"{name}={v!r}: expected a finite number or None")
            else:
                object.__setattr__(self, name, float(v))
        if self.min is None and self.max is None:
            problems.append("both min and max are None: give at least one bound, or pass None instead of a "
                            "Threshold to switch the rule off")
        if not problems and self.min is not None and self.max is not None and self.min > self.max:
            problems.append(f"min={self.min} is above max={self.max}")
        if not isinstance(self.exclusive, bool):
            problems.append(f"exclusive={self.exclusive!r}: expected True or False")
        if problems:
            raise ConfigError.collect(problems, "threshold")

    def passes(self, value: float) -> bool:
        """True when ``value`` is inside the allowed range."""
        if self.exclusive:
            return (self.min is None or value > self.min) and (self.max is None or value < self.max)
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.exclusive:
            out["exclusive"] = True
        return out

    @classmethod
    def parse(cls, key: str, spec: Any) -> "Threshold":
        """A threshold from a :class:`Threshold` or a dict with keys ``min``, ``max``, ``exclusive``."""
        if isinstance(spec, Threshold):
            return spec
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"min", "max", "exclusive"})
            if unknown:
                raise ConfigError(f"threshold for {key!r} has unknown keys {unknown}; allowed keys are 'min', 'max' "
                                  f"and 'exclusive', e.g. {{'min': 3}} or {{'max': 0.1}}")
            try:
                return cls(min=spec.get("min"), max=spec.get("max"), exclusive=spec.get("exclusive", False))
            except ConfigError as exc:
                raise ConfigError(f"threshold for {key!r}: {exc}") from None
        raise ConfigError(f"threshold for {key!r} is {spec!r} ({type(spec).__name__}); expected a dict such as "
                          f"{{'min': 3}} or {{'max': 0.1}}, a Threshold, or None to switch the rule off")


@dataclass(frozen=True)
class Rule:
    """One rule of a set: its score, its published threshold and what it measures."""

    set: str
    name: str
    default: Threshold
    doc: str

    @property
    def key(self) -> str:
        """``quality/<set>/<rule>``: the drop reason and the score name."""
        return f"quality/{self.set}/{self.name}"


#: A rule set's scorer: ``(stats, config) -> {rule name: score}``, one entry per rule of the set; ``nan``
#: means "not applicable" (C4's ``bad_words`` without a word list): neither recorded nor judged.
Scorer = Callable[[TextStats, ScoreConfig], Dict[str, float]]


@dataclass(frozen=True)
class RuleSet:
    """A named group of rules and the function that scores them all (a dict keyed by rule name).

    Built, it scores an empty text once to check that the scorer returns exactly its rules' names, so a
    scorer that forgets or misspells a rule fails when it is registered, not during a run.

    Example:
        >>> rs = RuleSet("demo", (Rule("demo", "chars", Threshold(min=1), "characters"),),
        ...              lambda st, cfg: {"chars": float(len(st.text))}, "this example")
        >>> rs.score(TextStats("abc"), ScoreConfig())
        {'chars': 3.0}
    """

    name: str
    rules: Tuple[Rule, ...]
    scorer: Scorer
    source: str
    names: Tuple[str, ...] = field(init=False)
    _name_set: FrozenSet[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        problems = []
        names = tuple(r.name for r in self.rules)
        if not names:
            problems.append("it has no rules")
        if len(set(names)) != len(names):
            problems.append(f"rule names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
        other = sorted({r.set for r in self.rules} - {self.name})
        if other:
            problems.append(f"its rules name other sets {other}; build them with Rule({self.name!r}, ...)")
        if problems:
            raise ConfigError.collect(problems, f"rule set {self.name!r}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "_name_set", frozenset(names))
        self.score(TextStats(""), ScoreConfig())  # the scorer returns exactly the rules' names

    def score(self, stats: TextStats, opts: ScoreConfig) -> Dict[str, float]:
        """Every rule's score by rule name (no thresholds applied)."""
        scores = self.scorer(stats, opts)
        if type(scores) is dict and scores.keys() == self._name_set:  # the usual answer, checked without the ABC
            return scores
        if not isinstance(scores, Mapping) or scores.keys() != self._name_set:
            got = sorted(scores) if isinstance(scores, Mapping) else type(scores).__name__
            raise ConfigError(f"the scorer of rule set {self.name!r} returned {got}; expected a dict with one score "
                              f"per rule: {sorted(self._name_set)}")
        return scores


#: Registry of rule sets by name; register your own with :func:`register_rule_set` or
#: ``RULE_SETS.register("name")(RuleSet(...))``.
RULE_SETS: Registry[RuleSet] = Registry("quality rule set")


def register_rule_set(name: str, *, rules: Sequence[Tuple[str, Threshold, str]], source: str,
                      registry: Optional[Registry[RuleSet]] = None) -> Callable[[Scorer], Scorer]:
    """Decorator: register the decorated scorer as rule set ``name`` (in ``registry``, by default
    :data:`RULE_SETS`) with ``(rule name, threshold, what it measures)`` rules, published in ``source``.

    Example:
        >>> demo = Registry("demo rule set")
        >>> @register_rule_set("length", rules=[("chars", Threshold(min=1), "characters")], source="an example",
        ...                    registry=demo)
        ... def length(st, cfg):
        ...     return {"chars": float(len(st.text))}
        >>> demo.get("length").score(TextStats("abc"), ScoreConfig())
        {'chars': 3.0}
    """
    def deco(scorer: Scorer) -> Scorer:
        rule_set = RuleSet(name, tuple(Rule(name, n, t, d) for n, t, d in rules), scorer, source)
        (RULE_SETS if registry is None else registry).register(name)(rule_set)
        return scorer

    return deco


def all_rules() -> Dict[str, Rule]:
    """Every registered rule by key (``quality/<set>/<rule>``)."""
    return {r.key: r for name in RULE_SETS for r in RULE_SETS.get(name).rules}


def score_text(text: str, sets: Sequence[str] = ("gopher_quality", "gopher_repetition", "c4", "fineweb"),
               opts: Optional[ScoreConfig] = None) -> Dict[str, float]:
    """Every score of the given rule sets for ``text``, keyed ``quality/<set>/<rule>`` (no thresholds applied).

    Example:
        >>> score_text("a b c", ["fineweb"])["quality/fineweb/short_line_ratio"]
        1.0
    """
    opts = opts or ScoreConfig()
    st = TextStats(text)
    out: Dict[str, float] = {}
    for name in sets:
        rs = RULE_SETS.get(name)
        scores = rs.score(st, opts)
        for rule in rs.rules:
            val = scores[rule.name]
            if not math.isnan(val):
                out[rule.key] = val
    return out
