"""The ``quality`` stage: heuristic quality rules (Gopher, C4, FineWeb) with per-rule reasons and scores."""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..core.stage import Drop, Example, Filter, register_stage
from ..errors import ConfigError, StateError
from .rules import GOPHER_STOP_WORDS, RULE_SETS, C4Lines, Rule, RuleSet, ScoreConfig, TextStats, Threshold, all_rules

__all__ = ["DEFAULT_SETS", "QualityConfig", "QualityFilter"]

#: The default combination: FineWeb's recipe (Penedo et al. 2024) - Gopher quality and repetition, C4 without
#: its terminal-punctuation line filter, and FineWeb's own three rules.
DEFAULT_SETS: Tuple[str, ...] = ("gopher_quality", "gopher_repetition", "c4", "fineweb")

_UNSET: Any = object()


def _full_key(key: str) -> str:
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
    """

    sets: Tuple[str, ...] = DEFAULT_SETS
    thresholds: Dict[str, Any] = field(default_factory=dict)
    stop_words: Tuple[str, ...] = tuple(sorted(GOPHER_STOP_WORDS))
    c4_lines: C4Lines = field(default_factory=lambda: C4Lines(terminal_punct=False))
    bad_words: Optional[Tuple[str, ...]] = None
    cache_size: int = 20_000

    def __post_init__(self) -> None:
        problems: List[str] = []
        sets = self.sets
        if isinstance(sets, str):
            sets = tuple(s.strip() for s in sets.split(",") if s.strip())
        try:
            sets = tuple(sets)
        except TypeError:
            sets = ()
            problems.append(f"sets={self.sets!r}: expected a list of rule set names from {RULE_SETS.names()}")
        unknown = [s for s in sets if s not in RULE_SETS]
        if unknown:
            problems.append(f"sets names unknown rule sets {unknown}; valid rule sets are {RULE_SETS.names()}")
        if not sets and not problems:
            problems.append(f"sets is empty; pick at least one of {RULE_SETS.names()}")
        if len(set(sets)) != len(sets):
            problems.append(f"sets={list(sets)} repeats a rule set")
        self.sets = sets
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
        self.thresholds = {_full_key(str(k)): v for k, v in self.thresholds.items()}
        self.resolve_thresholds()  # raises on unknown rules or bad specs

    def rule_sets(self) -> List[RuleSet]:
        return [RULE_SETS.get(s) for s in self.sets]

    def resolve_thresholds(self) -> Dict[str, Optional[Threshold]]:
        """Every rule of the chosen sets -> its threshold (``None`` = off), overrides applied."""
        out: Dict[str, Optional[Threshold]] = {}
        for rs in self.rule_sets():
            for r in rs.rules:
                out[r.key] = r.default
        problems = []
        for key, spec in self.thresholds.items():
            if key not in out:
                problems.append(_unknown_rule_message(key, self.sets))
                continue
            try:
                out[key] = None if spec is None else Threshold.parse(key, spec)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError.collect(problems, "quality thresholds")
        return out


def _unknown_rule_message(key: str, sets: Sequence[str]) -> str:
    known = all_rules()
    if key in known:
        return (f"rule {key!r} belongs to rule set {known[key].set!r}, which is not among sets={list(sets)}; add "
                f"{known[key].set!r} to sets to use it")
    valid = [r.key for s in sets for r in RULE_SETS.get(s).rules]
    return f"unknown quality rule {key!r}; valid rules for sets={list(sets)} are {valid}"


@register_stage("quality")
class QualityFilter(Filter):
    """Drop low-quality text by the published heuristics of Gopher, C4 and FineWeb.

    Every score of every chosen rule is written to ``ex.scores["quality/<set>/<rule>"]`` (kept and
    dropped examples alike, so the report shows each score's whole distribution); the first rule whose
    threshold fails names the drop reason ``quality/<set>/<rule>``; every rule that fails is counted as
    ``quality/fired/<set>/<rule>``.

    Scores do not depend on thresholds: they are computed once per distinct text and remembered by a
    128-bit content hash (a bounded cache), so :meth:`set_threshold` during a run re-judges repeated
    texts without scoring them again.

    Args:
        sets: rule sets in order; default :data:`DEFAULT_SETS` (FineWeb's recipe: all four sets, C4 without
            its terminal-punctuation line filter). A comma-separated string works too (``"c4,fineweb"``).
        thresholds: per-rule overrides, ``{"quality/gopher_quality/word_count": {"min": 20}}``; ``None``
            switches a rule off. Unknown rule names raise and list the valid ones.
        stop_words: the words counted by ``gopher_quality/stop_words`` (Gopher's eight by default).
        c4_lines: :class:`~torchdataguard.quality.rules.C4Lines` or a dict of its fields;
            ``{"terminal_punct": True}`` gives the paper's C4.
        bad_words: words or phrases for ``c4/bad_words`` (nothing is shipped; the rule is off without them).
        cache_size: distinct texts whose scores are kept (about 0.5 KB each); 0 turns the cache off.

    Example:
        >>> import torchdataguard as tdg
        >>> prose = ("The committee met on Tuesday to discuss the budget for the coming year. Members agreed "
        ...          "that the plan was sound, and that the town should have a new library by the spring. They "
        ...          "will vote on it next month, after the public has had time to comment on the details. "
        ...          "Several residents said they were pleased with the proposal and with the way it was "
        ...          "presented, though a few asked how the running costs would be met.")
        >>> junk = "\\n".join(f"2024-01-0{i} 12:00:0{i} INFO worker={i} status=ok" for i in range(1, 9))
        >>> g = tdg.Guard([tdg.QualityFilter()], device="cpu", progress=False)
        >>> g.wrap([prose, junk]) == [prose]
        True
        >>> g.report()["dropped_by_reason"]
        {'quality/gopher_quality/word_count': 1}
        >>> q = tdg.QualityFilter(sets="c4", thresholds={"c4/sentences": {"min": 10}})
        >>> q.process(tdg.Example(0, prose, prose)).reason
        'quality/c4/sentences'
    """

    needs_text = True

    def __init__(self, *, sets: Sequence[str] | str | None = None, thresholds: Optional[Mapping[str, Any]] = None,
                 stop_words: Optional[Iterable[str]] = None, c4_lines: C4Lines | Mapping[str, Any] | None = None,
                 bad_words: Optional[Iterable[str]] = None, cache_size: int = 20_000) -> None:
        kw: Dict[str, Any] = {"thresholds": dict(thresholds or {}), "cache_size": cache_size}
        if sets is not None:
            kw["sets"] = sets
        if stop_words is not None:
            if isinstance(stop_words, str):
                raise ConfigError.bad("stop_words", stop_words, "a list of words, e.g. ['the', 'and']")
            kw["stop_words"] = tuple(stop_words)
        if c4_lines is not None:
            kw["c4_lines"] = c4_lines
        if bad_words is not None:
            if isinstance(bad_words, str):
                raise ConfigError.bad("bad_words", "<a string>", "a list of words or phrases")
            kw["bad_words"] = tuple(bad_words)
        self.cfg = QualityConfig(**kw)
        self._build()

    def _build(self) -> None:
        self._sets = self.cfg.rule_sets()
        self._rules: List[Rule] = [r for rs in self._sets for r in rs.rules]
        self._thr: Dict[str, Optional[Threshold]] = self.cfg.resolve_thresholds()
        self._checks: List[Tuple[int, str, float, float, bool]] = []
        self._refresh_checks()
        self._cache: Dict[bytes, Tuple[float, ...]] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    def _refresh_checks(self) -> None:
        # (index, key, low, high, exclusive) with infinite bounds where the threshold has none
        self._keys = [r.key for r in self._rules]
        self._checks = []
        for i, r in enumerate(self._rules):
            t = self._thr[r.key]
            if t is not None:
                lo = -math.inf if t.min is None else t.min
                hi = math.inf if t.max is None else t.max
                self._checks.append((i, r.key, lo, hi, t.exclusive))

    # -- settings --------------------------------------------------------------------------------------
    @property
    def rules(self) -> List[str]:
        """The keys of every rule in use, in the order they are judged."""
        return [r.key for r in self._rules]

    @property
    def thresholds(self) -> Dict[str, Optional[Dict[str, Any]]]:
        """Current thresholds by rule (``None`` = switched off)."""
        return {k: (None if t is None else t.to_json()) for k, t in self._thr.items()}

    def set_threshold(self, rule: str, spec: Any = _UNSET, *, min: Optional[float] = None,
                      max: Optional[float] = None, exclusive: bool = False) -> None:
        """Change one rule's threshold (scores already computed are reused, not recomputed).

        Pass a dict, a :class:`~torchdataguard.quality.rules.Threshold` or ``None`` (switch off) as ``spec``,
        or the bounds as keywords.

        Example:
            >>> q = QualityFilter(sets=["gopher_quality"])
            >>> q.set_threshold("gopher_quality/word_count", min=5)
            >>> q.thresholds["quality/gopher_quality/word_count"]
            {'min': 5.0}
            >>> q.set_threshold("gopher_quality/stop_words", None)
            >>> q.thresholds["quality/gopher_quality/stop_words"] is None
            True
        """
        key = _full_key(str(rule))
        if key not in self._thr:
            raise ConfigError(_unknown_rule_message(key, self.cfg.sets))
        if spec is _UNSET:
            if min is None and max is None:
                raise ConfigError(f"set_threshold({rule!r}) needs a spec (a dict, a Threshold, or None to switch the "
                                  f"rule off) or min=/max= keywords")
            new: Optional[Threshold] = Threshold.parse(key, {"min": min, "max": max, "exclusive": exclusive})
        else:
            new = None if spec is None else Threshold.parse(key, spec)
        self._thr[key] = new
        self.cfg.thresholds[key] = None if new is None else new.to_json()
        self._refresh_checks()

    def config(self) -> Dict[str, Any]:
        return {
            "sets": list(self.cfg.sets),
            "thresholds": {k: t.to_json() for k, t in self._thr.items() if t is not None},
            "disabled": sorted(k for k, t in self._thr.items() if t is None),
            "c4_lines": asdict(self.cfg.c4_lines),
            "stop_words": list(self.cfg.stop_words),
            "bad_words": len(self.cfg.bad_words or ()),
            "cache_size": self.cfg.cache_size,
        }

    # -- scoring ---------------------------------------------------------------------------------------
    def scores(self, text: str) -> Dict[str, float]:
        """Every score of ``text`` by rule key (computed or taken from the cache); no thresholds applied."""
        vals = self._score_values(text)
        return {r.key: v for r, v in zip(self._rules, vals) if not math.isnan(v)}

    def _score_values(self, text: str) -> Tuple[float, ...]:
        size = self.cfg.cache_size
        if size:
            h = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            hit = self._cache.get(h)
            if hit is not None:
                self.cache_hits += 1
                return hit
        self.cache_misses += 1
        st = TextStats(text)
        opts = self.cfg.options
        vals: List[float] = []
        for rs in self._sets:
            scores = rs.score(st, opts)
            vals.extend(scores[name] for name in rs.names)  # in the order of self._rules
        out = tuple(vals)
        if size:
            if len(self._cache) >= size:
                self._cache.pop(next(iter(self._cache)))  # oldest first
            self._cache[h] = out
        return out

    def cache_info(self) -> Dict[str, int]:
        """Hits, misses and size of the score cache of this copy of the stage."""
        return {"hits": self.cache_hits, "misses": self.cache_misses, "size": len(self._cache),
                "max_size": self.cfg.cache_size}

    def judge(self, ex: Example) -> Optional[str | Drop]:
        text = ex.text
        if not isinstance(text, str):
            return Drop("quality/no_text")
        vals = self._score_values(text)
        total = sum(vals)
        if total == total:  # no nan (not-applicable) score
            ex.scores.update(zip(self._keys, vals))
        else:
            ex.scores.update((k, v) for k, v in zip(self._keys, vals) if v == v)
        first: Optional[Drop] = None
        for i, key, lo, hi, exclusive in self._checks:
            v = vals[i]
            if (lo < v < hi) if exclusive else (lo <= v <= hi):
                continue
            if v != v:
                continue
            ex.count("quality/fired/" + key[8:])
            if first is None:
                first = Drop(key, score=v)
        return first

    # -- state and pickling ----------------------------------------------------------------------------
    def decision_settings(self) -> Dict[str, Any]:
        """The rule sets, C4 line filters, stop words and a digest of the bad words; the thresholds are
        restored from a saved state (they may change during a run) and the cache size decides nothing."""
        cfg = {k: v for k, v in self.config().items() if k not in ("thresholds", "disabled", "cache_size")}
        if self.cfg.bad_words is not None:
            words = "\n".join(sorted(self.cfg.bad_words)).encode("utf-8", "surrogatepass")
            cfg["bad_words"] = "sha256:" + hashlib.sha256(words).hexdigest()
        return cfg

    def state_dict(self) -> Dict[str, Any]:
        """The thresholds in force (they may have been changed during the run); JSON only."""
        return {"sets": list(self.cfg.sets), "thresholds": self.thresholds}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        if list(state.get("sets", [])) != list(self.cfg.sets):
            raise StateError(f"QualityFilter state was saved with sets={state.get('sets')}, this stage has "
                             f"sets={list(self.cfg.sets)}; build the stage with the same sets to resume")
        saved = state.get("thresholds", {})
        if not isinstance(saved, Mapping):
            raise StateError(f"QualityFilter state holds thresholds={saved!r}; expected a mapping of rule -> spec")
        parsed: Dict[str, Optional[Threshold]] = {}
        for key, spec in saved.items():  # every threshold is checked before any is changed
            full = _full_key(str(key))
            if full not in self._thr:
                raise StateError(f"QualityFilter state sets a threshold for {key!r}, which is not a rule of "
                                 f"sets={list(self.cfg.sets)}")
            try:
                parsed[full] = None if spec is None else Threshold.parse(full, spec)
            except ConfigError as exc:
                raise StateError(f"QualityFilter state holds a bad threshold for {key!r}: {exc}") from None
        for key, new in parsed.items():
            self._thr[key] = new
            self.cfg.thresholds[key] = None if new is None else new.to_json()
        self._refresh_checks()

    def reset(self) -> None:
        self._cache = {}
        self.cache_hits = self.cache_misses = 0

    def __getstate__(self) -> Dict[str, Any]:
        # copies sent to DataLoader workers start with an empty cache
        state = dict(self.__dict__)
        state["_cache"] = {}
        state["cache_hits"] = state["cache_misses"] = 0
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
