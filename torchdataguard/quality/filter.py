"""The ``quality`` stage: heuristic quality rules (Gopher, C4, FineWeb, and their per-language forms) with
per-rule reasons and scores."""
from __future__ import annotations

import hashlib
import math
from itertools import compress
from operator import eq, gt, or_
import warnings
from dataclasses import asdict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..core.stage import Drop, Example, Filter, register_stage
from ..errors import ConfigError, StateError
from .config import DEFAULT_SETS, QualityConfig, full_key, unknown_rule_message
from .languages import FALLBACK, LANGUAGE_PROFILES, Router, language_of
from .latin import latin_language
from .profile import ProfileRun, WordsOnly, rule_spans
from .rules import RULE_SETS, C4Lines, ScoreConfig, Threshold
from .segment import SEGMENTERS

__all__ = ["DEFAULT_SETS", "QualityConfig", "QualityFilter"]

_UNSET: Any = object()
_EN_STOP_KEY = "quality/gopher_quality/stop_words"


@register_stage("quality")
class QualityFilter(Filter):
    """Drop low-quality text by the published heuristics of Gopher, C4 and FineWeb, per language.

    Each text is judged by the rule sets of its language profile (:mod:`~torchdataguard.quality.languages`):
    English (and, when no language is known, Latin-script text) by ``sets``; Chinese by Gopher's and
    FineWeb's rules on jieba words with Chinese thresholds and stop words; any other language or script by
    rules that count no words (``script_neutral``) - never by an English word count. The language is the
    one :class:`~torchdataguard.quality.langid.LanguageID` wrote into ``ex.scores`` when it ran earlier,
    else the text's script. Chinese rules need jieba (``pip install "torchdataguard[zh]"``); without it
    Chinese text gets the script-neutral rules and is counted as ``quality/fallback/zh``.

    The rule sets are scored in order and their scores written to ``ex.scores["quality/<set>/<rule>"]``; the
    first rule whose threshold fails names the drop reason ``quality/<set>/<rule>``, and every rule that fails
    is counted as ``quality/fired/<set>/<rule>``. A kept text has every score. A dropped text's rule sets
    after the one that dropped it are not scored (their rules neither scored nor counted; about 0.8x the CPU
    on e-mails, the same decisions and reasons), unless ``score_all=True``: then the report shows each
    score's distribution over kept and dropped texts alike.

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
        languages: rule sets of the other language profiles, e.g. ``{"zh": ["gopher_quality_zh"]}``; profiles
            left out keep their defaults (``zh``: ``text_encoding, gopher_quality_zh, gopher_repetition_zh,
            fineweb_zh``; ``neutral``: ``text_encoding, script_neutral``). ``stop_words``, ``c4_lines``
            and ``bad_words`` apply to the English profile.
        score_all: score every rule set of every text, dropped ones too (whole score distributions in the
            report, every failing rule counted); by default a text's scoring stops at the first rule set that
            drops it (Gopher's quality set is scored whole all the same: the language guess reads it).
        guess_language: when no ``langid`` ran, Latin-script text that fails Gopher's English stop-word rule
            and plainly shows another language's function words (German, French, Spanish ... :mod:`.latin`)
            is judged as that language (the ``neutral`` rules) instead of as English junk, and counted as
            ``quality/language_guess/<lang>``; ``False`` judges all Latin-script text as English.

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
        >>> menu = "\\n".join(["首页", "新闻", "体育", "财经", "登录", "注册"] * 3)
        >>> q = tdg.QualityFilter()
        >>> q.profile_for(tdg.Example(0, menu, menu)), isinstance(q.process(tdg.Example(0, menu, menu)), tdg.Drop)
        ('zh', True)
    """

    needs_text = True

    def __init__(self, *, sets: Sequence[str] | str | None = None, thresholds: Optional[Mapping[str, Any]] = None,
                 stop_words: Optional[Iterable[str]] = None, c4_lines: C4Lines | Mapping[str, Any] | None = None,
                 bad_words: Optional[Iterable[str]] = None, cache_size: int = 20_000,
                 languages: Optional[Mapping[str, Sequence[str] | str]] = None, guess_language: bool = True,
                 score_all: bool = False) -> None:
        for what, flag in (("guess_language", guess_language), ("score_all", score_all)):
            if not isinstance(flag, bool):
                raise ConfigError.bad(what, flag, "True or False")
        self.guess_language = guess_language
        self.score_all = score_all
        kw: Dict[str, Any] = {"thresholds": dict(thresholds or {}), "cache_size": cache_size}
        if languages is not None:
            kw["languages"] = dict(languages) if isinstance(languages, Mapping) else languages
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
        self._thr: Dict[str, Optional[Threshold]] = self.cfg.resolve_thresholds()
        #: profiles whose segmenter is not installed -> the install hint (their texts get the fallback profile)
        self.unavailable: Dict[str, str] = {}
        self._warned: set = set()
        self._profiles: Dict[str, ProfileRun] = {}
        for name, sets in self.cfg.profile_sets().items():
            prof = LANGUAGE_PROFILES.get(name)
            tokenize = None
            if prof.segmenter is not None:
                seg = SEGMENTERS.get(prof.segmenter)
                if not seg.available():
                    if name in self.cfg.explicit_languages:
                        seg.require(f"QualityFilter(languages={{{name!r}: ...}})")
                    self.unavailable[name] = seg.pip_hint
                    continue
                tokenize = WordsOnly(prof.segmenter, prof.punctuation)
            options = self.cfg.options if name == "en" else ScoreConfig(stop_words=prof.stop_words)
            rules = [r for s in sets for r in RULE_SETS.get(s).rules]
            self._profiles[name] = ProfileRun(name, sets, rules, options, tokenize, prof.punctuation, [], [])
        self._router = Router(self.cfg.profile_sets())
        en = self._profiles.get("en")
        keys = [r.key for r in en.rules] if en is not None else []
        #: where the English profile's scores hold Gopher's stop-word count (None: not among its rules)
        self._en_stop_words = keys.index(_EN_STOP_KEY) if _EN_STOP_KEY in keys else None
        self._refresh_checks()
        self._cache: Dict[bytes, Tuple[float, ...]] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    def _refresh_checks(self) -> None:
        # per profile: (index, key, low, high, exclusive) with infinite bounds where the threshold has none
        for p in self._profiles.values():
            p.keys = [r.key for r in p.rules]
            p.checks = []
            for i, r in enumerate(p.rules):
                t = self._thr[r.key]
                if t is not None:
                    lo = -math.inf if t.min is None else t.min
                    hi = math.inf if t.max is None else t.max
                    p.checks.append((i, r.key, lo, hi, t.exclusive))
            p.failing = [(key, "quality/fired/" + key[8:]) for _, key, _, _, _ in p.checks]
            p.at = [c[0] for c in p.checks]
            # "lo < v" is "v >= the next float above lo" for a float v (and an int below 2**53)
            p.lows = [math.nextafter(lo, math.inf) if excl else lo for _, _, lo, _, excl in p.checks]
            p.highs = [math.nextafter(hi, -math.inf) if excl else hi for _, _, _, hi, excl in p.checks]
            p.split_checks()
            at = self._en_stop_words if p.name == "en" else None
            # the language guess reads the stop-word count: its rule set is always scored (guess_language or not:
            # the attribute may be switched on after this, and Gopher's quality set comes first by default)
            p.must = 0 if at is None else next(k + 1 for k, (start, stop) in enumerate(rule_spans(p.sets))
                                               if start <= at < stop)

    # -- settings --------------------------------------------------------------------------------------
    @property
    def rules(self) -> List[str]:
        """The keys of the English profile's rules (``sets``), in the order they are judged."""
        return list(self._profiles["en"].keys)

    @property
    def profile_rules(self) -> Dict[str, List[str]]:
        """Every usable language profile -> the keys of its rules, in the order they are judged."""
        return {name: list(p.keys) for name, p in self._profiles.items()}

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
        key = full_key(str(rule))
        if key not in self._thr:
            raise ConfigError(unknown_rule_message(key, self.cfg.all_sets()))
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
            "languages": {name: list(sets) for name, sets in self.cfg.languages.items()},
            "unavailable": sorted(self.unavailable),
            "guess_language": self.guess_language,
            "score_all": self.score_all,
        }

    # -- scoring ---------------------------------------------------------------------------------------
    def profile_for(self, ex: Example) -> str:
        """The language profile that judges ``ex``: from the language ``langid`` wrote, else from its script
        and (Latin script, ``guess_language``) its function words; the fallback profile when the chosen one's
        segmenter is not installed."""
        return self._pick(ex.text or "", language_of(ex.scores) if ex.scores else None)[0]

    def _pick(self, text: str, language: Optional[str], name: Optional[str] = None,
              score_all: Optional[bool] = None) -> Tuple[str, Tuple[float, ...], Optional[str]]:
        """``(profile name, its scores of text, the guessed language or None)``; ``name``: the router's answer
        for ``text`` and ``language``, when the caller has it; ``score_all``: as the stage's setting when None."""
        name = self._router.route(language, text) if name is None else name
        name = FALLBACK if name in self.unavailable else name
        vals = self._score_values(text, self._profiles[name], score_all)
        if name == "en" and language is None and self.guess_language:
            # only text that fails Gopher's English stop-word rule is looked at again (see .latin)
            at = self._en_stop_words
            if at is None or vals[at] < 2:
                guess = latin_language(text)
                if guess is not None:
                    other = self._router.route(guess, text)
                    other = FALLBACK if other in self.unavailable else other
                    return other, self._score_values(text, self._profiles[other], score_all), guess
        return name, vals, None

    def scores(self, text: str, *, language: Optional[str] = None) -> Dict[str, float]:
        """Every score of ``text`` (whose language is ``language``, or unknown) by rule key, computed or taken
        from the cache; no thresholds applied."""
        name, vals, _ = self._pick(text, language, score_all=True)
        return {r.key: v for r, v in zip(self._profiles[name].rules, vals) if not math.isnan(v)}

    def _score_values(self, text: str, p: ProfileRun, score_all: Optional[bool] = None) -> Tuple[float, ...]:
        """The scores of ``text`` by ``p``'s rules (nan where a rule does not apply or was not scored), from the
        cache when it holds them. A cached partial score (stopped at a failing rule set) is scored again when
        the whole is asked for, or when no rule fails any more (a threshold changed since)."""
        score_all = self.score_all if score_all is None else score_all
        size = self.cfg.cache_size
        if size:
            h = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16,
                                person=p.name.encode()[:16]).digest()
            hit = self._cache.get(h)
            if hit is not None and (hit[1] or (not score_all and p.fails(hit[0]))):
                self.cache_hits += 1
                return hit[0]
        self.cache_misses += 1
        out = p.score(text, score_all)
        if size:
            if self._cache.pop(h, None) is None and len(self._cache) >= size:  # (a rescored entry moves to the end)
                self._cache.pop(next(iter(self._cache)))  # oldest first
            self._cache[h] = out
        return out[0]

    def cache_info(self) -> Dict[str, int]:
        """Hits, misses and size of the score cache of this copy of the stage."""
        return {"hits": self.cache_hits, "misses": self.cache_misses, "size": len(self._cache),
                "max_size": self.cfg.cache_size}

    def judge(self, ex: Example) -> Optional[str | Drop]:
        text = ex.text
        if not isinstance(text, str):
            return Drop("quality/no_text")
        language = language_of(ex.scores) if ex.scores else None
        name = self._router.route(language, text)
        if name in self.unavailable:
            ex.count(f"quality/fallback/{name}")
            if name not in self._warned:  # once per copy of the stage
                self._warned.add(name)
                warnings.warn(f"QualityFilter: {name!r} text is judged by the {FALLBACK!r} rules because its word "
                              f"segmenter is not installed ({self.unavailable[name]}); counted as "
                              f"quality/fallback/{name}", RuntimeWarning, stacklevel=2)
        name, vals, guess = self._pick(text, language, name)
        if guess is not None:
            ex.count(f"quality/language_guess/{guess}")
        p = self._profiles[name]
        total = sum(vals)
        if total == total:  # no nan (not-applicable) score
            ex.scores.update(zip(p.keys, vals))
        else:
            ex.scores.update(compress(zip(p.keys, vals), map(eq, vals, vals)))  # the scores that are not nan
        first: Optional[Drop] = None
        checked = list(map(vals.__getitem__, p.at))
        failed = map(or_, map(gt, p.lows, checked), map(gt, checked, p.highs))  # C-level; nan fails nothing
        counts: Dict[str, int] = ex.counts
        for (key, fired), v in compress(zip(p.failing, checked), failed):
            counts[fired] = counts.get(fired, 0) + 1  # ex.count(fired), without a method call per rule
            if first is None:
                first = Drop(key, score=v)
        return first

    # -- state and pickling ----------------------------------------------------------------------------
    def decision_settings(self) -> Dict[str, Any]:
        """The rule sets, C4 line filters, stop words and a digest of the bad words; the thresholds are
        restored from a saved state (they may change during a run) and the cache size decides nothing."""
        cfg = {k: v for k, v in self.config().items() if k not in ("thresholds", "disabled", "cache_size",
                                                                     "score_all")}
        if self.cfg.bad_words is not None:
            words = "\n".join(sorted(self.cfg.bad_words)).encode("utf-8", "surrogatepass")
            cfg["bad_words"] = "sha256:" + hashlib.sha256(words).hexdigest()
        return cfg

    def saved_settings(self, saved: Mapping[str, Any]) -> Dict[str, Any]:
        """A state saved before ``guess_language`` existed judged every Latin-script text as English."""
        return {**saved, "guess_language": saved.get("guess_language", False)}

    def state_dict(self) -> Dict[str, Any]:
        """The thresholds in force (they may have been changed during the run); JSON only."""
        return {"sets": list(self.cfg.sets), "languages": self.config()["languages"], "thresholds": self.thresholds}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        if list(state.get("sets", [])) != list(self.cfg.sets):
            raise StateError(f"QualityFilter state was saved with sets={state.get('sets')}, this stage has "
                             f"sets={list(self.cfg.sets)}; build the stage with the same sets to resume")
        langs = self.config()["languages"]
        if "languages" in state and state["languages"] != langs:
            raise StateError(f"QualityFilter state was saved with languages={state['languages']}, this stage has "
                             f"languages={langs}; build the stage with the same per-language rule sets to resume")
        saved = state.get("thresholds", {})
        if not isinstance(saved, Mapping):
            raise StateError(f"QualityFilter state holds thresholds={saved!r}; expected a mapping of rule -> spec")
        parsed: Dict[str, Optional[Threshold]] = {}
        for key, spec in saved.items():  # every threshold is checked before any is changed
            full = full_key(str(key))
            if full not in self._thr:
                raise StateError(f"QualityFilter state sets a threshold for {key!r}, which is not a rule of "
                                 f"sets={list(self.cfg.sets)} or languages={langs}")
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
        if "score_all" not in state:  # pickled before score_all existed: it scored every rule set
            self.score_all = True
            self._refresh_checks()

