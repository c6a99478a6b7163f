"""Heuristic quality rules from the papers, as named rule sets with their published thresholds.

Four rule sets are built in, each written from its paper's definitions:

* ``gopher_quality`` - Rae et al. 2021 ("Scaling Language Models: Methods, Analysis & Insights from
  Training Gopher"), appendix A.1.1, quality filters: word count, mean word length, hash and ellipsis
  to word ratios, bullet and ellipsis line ratios, words with a letter, stop words.
* ``gopher_repetition`` - the same appendix, repetition removal (table A1): duplicate line and
  paragraph fractions (by count and by characters), the character share of the most frequent 2-, 3- and
  4-gram, and the character share of all duplicated 5- to 10-grams.
* ``c4`` - Raffel et al. 2020 (T5), section 2.2: no "lorem ipsum", no curly bracket, at least three
  sentences in the lines that survive C4's line filters (at least five words, terminal punctuation,
  no "javascript", no cookie or policy notice), and optionally no word from a bad-word list you supply.
* ``fineweb`` - Penedo et al. 2024 (FineWeb), section 3: the share of lines ending in punctuation, the
  share of characters in duplicated lines, and the share of short lines.

Every rule has a score (a float) and a :class:`Threshold`; a document fails a rule when its score falls
outside the threshold. Scores of all rules of a text are computed in one pass over shared intermediate
values (:class:`TextStats`): lines, lower-cased whitespace tokens and their stripped word forms.

Words are whitespace-separated tokens (no tokenizer model, no download). For the Gopher word rules a
token's leading and trailing punctuation is stripped and tokens made only of punctuation are not words.

Example:
    >>> from torchdataguard.quality.rules import score_text, RULE_SETS
    >>> s = score_text("The cat sat on the mat. " * 3, ["gopher_quality"])
    >>> s["quality/gopher_quality/word_count"], s["quality/gopher_quality/stop_words"]
    (18.0, 1.0)
    >>> RULE_SETS.names()
    ['c4', 'fineweb', 'gopher_quality', 'gopher_repetition']
"""
from __future__ import annotations

import itertools
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

__all__ = [
    "C4Lines",
    "GOPHER_STOP_WORDS",
    "RULE_SETS",
    "Rule",
    "RuleSet",
    "ScoreOptions",
    "TextStats",
    "Threshold",
    "all_rules",
    "score_text",
]

# -- word lists and character classes (written for this project) ------------------------------------------

#: The stop words of Gopher's stop-word rule (Rae et al. 2021, A.1.1): a document needs at least two of them.
GOPHER_STOP_WORDS: FrozenSet[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

#: Characters stripped from both ends of a token to get its word form.
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" + "\u00a1\u00ab\u00b7\u00bb\u00bf\u2010\u2011\u2012\u2013\u2014\u2015" \
    "\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026\u2039\u203a\u3001\u3002\uff01\uff0c\uff1a\uff1b\uff1f"

#: Line starts that count as a bullet point (Gopher's bullet rule).
BULLETS: Tuple[str, ...] = ("\u2022", "\u25cf", "\u25cb", "\u25e6", "\u25aa", "\u25ab", "\u25a0", "\u25a1", "\u2023",
                            "\u2043", "\u2219", "\u27a2", "\u27a4", "\u25ba", "\u2713", "\u2714", "-", "*", "+",
                            "\u2013", "\u2014", "\u00b7")

#: Line ends that count as terminal punctuation (C4: period, exclamation or question mark, end quote).
TERMINAL: Tuple[str, ...] = (".", "!", "?", "\"", "\u201d", "'", "\u2019", "\u3002", "\uff01", "\uff1f", "\u00bb")

#: Ellipsis forms (Gopher's ellipsis rules; C4 does not count a line ending in an ellipsis as terminated).
ELLIPSES: Tuple[str, ...] = ("...", "\u2026")

#: C4's policy-notice substrings: lines holding one of these are removed (Raffel et al. 2020, 2.2).
C4_POLICY: Tuple[str, ...] = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                              "use cookies")

# A sentence ends in . ! ? (or their CJK forms), possibly followed by closing quotes or brackets, then space/end.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*(?=\s|$)")
_ENDS_WITH_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*\s*\Z")
_PARAGRAPH_SPLIT = re.compile(r"\n[ \t\r\f\v]*\n")
_HASHED_MUL = np.uint64(0x9E3779B97F4A7C15)
_ONES = np.ones(16, dtype=np.int8)


# -- thresholds and rules --------------------------------------------------------------------------------

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
class ScoreOptions:
    """Settings that change scores (not thresholds): the stop words, C4's line filters, C4's bad words.

    ``bad_words`` is a list of lower-case words or phrases; C4's ``bad_words`` rule runs only when it is
    given (nothing is shipped or downloaded).

    Example:
        >>> ScoreOptions(bad_words=("darn",)).bad_words
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


# -- shared intermediate values ----------------------------------------------------------------------------

class TextStats:
    """Intermediate values of one text, computed on first use and shared by every rule set.

    Example:
        >>> st = TextStats("Hello, world!\\n\\nSecond line here.")
        >>> st.lines()
        ['Hello, world!', 'Second line here.']
        >>> st.words()
        ['hello', 'world', 'second', 'line', 'here']
    """

    __slots__ = ("text", "_lower", "_lines", "_tokens", "_words", "_line_dups", "_ngrams")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lower: Optional[str] = None
        self._lines: Optional[List[str]] = None
        self._tokens: Optional[List[str]] = None
        self._words: Optional[List[str]] = None
        self._line_dups: Optional[Tuple[int, int, int]] = None
        self._ngrams: Optional[Tuple[List[float], List[float]]] = None

    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    def lines(self) -> List[str]:
        """Non-empty lines, stripped of surrounding whitespace."""
        if self._lines is None:
            self._lines = [s for s in map(str.strip, self.text.split("\n")) if s]
        return self._lines

    def tokens(self) -> List[str]:
        """Lower-cased whitespace tokens."""
        if self._tokens is None:
            self._tokens = self.lower().split()
        return self._tokens

    def words(self) -> List[str]:
        """Tokens with leading and trailing punctuation stripped; tokens of punctuation only left out."""
        if self._words is None:
            toks = self.tokens()
            self._words = list(filter(None, map(str.strip, toks, itertools.repeat(PUNCTUATION, len(toks)))))
        return self._words

    def tokens_with_letter(self) -> int:
        """How many tokens hold at least one letter."""
        toks = self.tokens()
        # tokens are lower-cased, so str.islower() is True exactly when a token holds a cased letter;
        # only the others (numbers, symbols, scripts without case) need a character-by-character look
        flags = list(map(str.islower, toks))
        n = sum(flags)
        if n < len(toks):
            rest = itertools.compress(toks, map(operator.not_, flags))
            n += sum(1 for t in rest if not t.isdigit() and any(map(str.isalpha, t)))
        return n

    def line_dups(self) -> Tuple[int, int, int]:
        """(duplicate lines, characters in duplicate lines, characters in all lines); first copies are not duplicates."""
        if self._line_dups is None:
            self._line_dups = _dups(self.lines())
        return self._line_dups

    def ngrams(self) -> Tuple[List[float], List[float]]:
        """Character shares of the top 2/3/4-gram and of duplicated 5..10-grams (over lower-case tokens)."""
        if self._ngrams is None:
            self._ngrams = _ngram_shares(self.tokens())
        return self._ngrams


def _dups(items: Sequence[str]) -> Tuple[int, int, int]:
    # every copy after the first is a duplicate, so the duplicates hold all characters but those of the
    # distinct items
    distinct = set(items)
    total = sum(map(len, items))
    return len(items) - len(distinct), total - sum(map(len, distinct)), total


def _covered_chars(starts: np.ndarray, n: int, lens: np.ndarray) -> int:
    """Characters of the tokens covered by the n-grams starting at ``starts`` (overlaps counted once)."""
    m = lens.shape[0]
    cover = np.bincount(starts, minlength=m + 1)[: m + 1] - np.bincount(starts + n, minlength=m + 1)[: m + 1]
    return int(lens[np.cumsum(cover[:m]) > 0].sum())


def _covered_by_mask(rep: np.ndarray, n: int, lens: np.ndarray) -> int:
    """Characters of the tokens covered by the n-grams whose start is flagged in ``rep`` (length m - n + 1)."""
    cover = np.convolve(rep.view(np.int8), _ONES[:n])  # length m: how many flagged n-grams cover each token
    return int(lens[cover > 0].sum())


def _ngram_shares(tokens: List[str]) -> Tuple[List[float], List[float]]:
    """Gopher's n-gram repetition shares over ``tokens``.

    Tokens are identified by their 64-bit string hash and n-grams by a 64-bit polynomial of those (a
    collision is about as likely as 2**-64 per pair). An n-gram can only repeat where the two (n-1)-grams
    inside it repeat, so each step looks only at those positions, and stops when nothing repeats.
    Ties for the most frequent n-gram go to the one with more characters, then to the earliest.
    """
    top = [0.0, 0.0, 0.0]  # n = 2, 3, 4
    dup = [0.0] * 6  # n = 5 .. 10
    m = len(tokens)
    if m < 2:
        return top, dup
    h = np.fromiter(map(hash, tokens), dtype=np.int64, count=m).view(np.uint64)
    lens = np.fromiter(map(len, tokens), dtype=np.int64, count=m)
    total = int(lens.sum())
    if total == 0:
        return top, dup
    cum = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(lens, out=cum[1:])
    key = h
    rep: Optional[np.ndarray] = None
    for n in range(2, 11):
        if m < n:
            break
        key = key[:-1] * _HASHED_MUL + h[n - 1:]
        if rep is None:
            pos_all: Optional[np.ndarray] = None
            sub = key
        else:
            pos_all = np.flatnonzero(rep[:-1] & rep[1:])
            if pos_all.size < 2:
                break
            sub = key[pos_all]
        order = np.argsort(sub, kind="stable")
        s = sub[order]
        eq = s[1:] == s[:-1]
        if not eq.any():
            break
        pos = order if pos_all is None else pos_all[order]  # ascending within equal keys (stable sort)
        flag = np.zeros(s.shape[0], dtype=bool)
        flag[1:] = eq
        flag[:-1] |= eq
        rep = np.zeros(m - n + 1, dtype=bool)
        rep[pos[flag]] = True
        if n <= 4:
            starts = np.flatnonzero(np.concatenate(([True], ~eq)))
            sizes = np.diff(np.append(starts, s.shape[0]))
            best = sizes.max()
            groups = np.flatnonzero(sizes == best)
            first = pos[starts[groups]]
            chars = cum[first + n] - cum[first]
            g = int(groups[np.argmax(chars * (m + 1) - first)])
            members = pos[starts[g]: starts[g] + best]
            if int(np.diff(members).min()) >= n:  # occurrences do not overlap (members are ascending)
                top[n - 2] = int(best) * int(cum[members[0] + n] - cum[members[0]]) / total
            else:
                top[n - 2] = _covered_chars(members, n, lens) / total
        else:
            dup[n - 5] = _covered_by_mask(rep, n, lens) / total
    return top, dup


# -- rule sets ----------------------------------------------------------------------------------------------

Scorer = Callable[[TextStats, ScoreOptions], List[float]]


@dataclass(frozen=True)
class RuleSet:
    """A named group of rules and the function that scores them (one float per rule, in order).

    A score of ``nan`` means "not applicable" (C4's ``bad_words`` without a word list): it is neither
    recorded nor judged.
    """

    name: str
    rules: Tuple[Rule, ...]
    scorer: Scorer
    source: str

    def score(self, stats: TextStats, opts: ScoreOptions) -> List[float]:
        return self.scorer(stats, opts)


#: Registry of rule sets by name; register your own with ``RULE_SETS.register("name")(RuleSet(...))``.
RULE_SETS: Registry[RuleSet] = Registry("quality rule set")


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _gopher_quality(st: TextStats, opts: ScoreOptions) -> List[float]:
    text = st.text
    words = st.words()
    n_words = len(words)
    n_tokens = len(st.tokens())
    lines = st.lines()
    n_lines = len(lines)
    mean_len = _ratio(sum(map(len, words)), n_words)
    denom = max(n_words, 1)
    hashes = text.count("#") / denom
    ellipses = (text.count("...") + text.count("\u2026")) / denom
    bullets = _ratio(sum(1 for s in lines if s.startswith(BULLETS)), n_lines)
    ell_lines = _ratio(sum(1 for s in lines if s.endswith(ELLIPSES)), n_lines)
    alpha = _ratio(st.tokens_with_letter(), n_tokens)
    stop = len(opts.stop_words.intersection(words))  # how many of the stop words occur (distinct)
    return [float(n_words), mean_len, hashes, ellipses, bullets, ell_lines, alpha, float(stop)]


def _gopher_repetition(st: TextStats, opts: ScoreOptions) -> List[float]:
    n_dup_lines, dup_line_chars, line_chars = st.line_dups()
    n_lines = len(st.lines())
    text = st.text
    if "\n" in text and _PARAGRAPH_SPLIT.search(text):
        paras = [p for p in map(str.strip, _PARAGRAPH_SPLIT.split(text)) if p]
    else:
        s = text.strip()
        paras = [s] if s else []
    n_dup_p, dup_p_chars, p_chars = _dups(paras)
    top, dup = st.ngrams()
    return [_ratio(n_dup_lines, n_lines), _ratio(n_dup_p, len(paras)), _ratio(dup_line_chars, line_chars),
            _ratio(dup_p_chars, p_chars), *top, *dup]


def _count_sentences(text: str) -> int:
    """Sentence ends, plus one for a last sentence without its end mark (``text`` holds words)."""
    n = len(_SENTENCE_END.findall(text))
    if not _ENDS_WITH_SENTENCE_END.search(text):
        n += 1
    return n


def _c4(st: TextStats, opts: ScoreOptions) -> List[float]:
    lower = st.lower()
    cfg = opts.c4_lines
    lorem = float(lower.count("lorem ipsum"))
    curly = float(st.text.count("{"))
    check_js = cfg.javascript and "javascript" in lower
    check_policy = cfg.policy and any(p in lower for p in C4_POLICY)
    kept = []
    min_words = cfg.min_words
    for s in st.lines():
        if min_words and len(s.split(None, min_words - 1)) < min_words:
            continue
        if cfg.terminal_punct and (not s.endswith(TERMINAL) or s.endswith(ELLIPSES)):
            continue
        if check_js or check_policy:
            ls = s.lower()
            if check_js and "javascript" in ls:
                continue
            if check_policy and any(p in ls for p in C4_POLICY):
                continue
        kept.append(s)
    sentences = float(_count_sentences("\n".join(kept))) if kept else 0.0
    pat = opts.bad_words_pattern()
    bad = float(len(pat.findall(lower))) if pat is not None else math.nan
    return [lorem, curly, sentences, bad]


def _fineweb(st: TextStats, opts: ScoreOptions) -> List[float]:
    lines = st.lines()
    n = len(lines)
    punct = _ratio(sum(1 for s in lines if s.endswith(TERMINAL)), n)
    _, dup_chars, chars = st.line_dups()
    short = _ratio(sum(1 for s in lines if len(s) < 30), n)
    return [punct, _ratio(dup_chars, chars), short]


def _rules(set_name: str, specs: Sequence[Tuple[str, Threshold, str]]) -> Tuple[Rule, ...]:
    return tuple(Rule(set_name, n, t, d) for n, t, d in specs)


def _register(name: str, specs: Sequence[Tuple[str, Threshold, str]], scorer: Scorer, source: str) -> None:
    RULE_SETS.register(name)(RuleSet(name, _rules(name, specs), scorer, source))


_register("gopher_quality", [
    ("word_count", Threshold(min=50, max=100_000), "words (whitespace tokens that are not only punctuation)"),
    ("mean_word_length", Threshold(min=3, max=10), "mean characters per word"),
    ("hash_to_word_ratio", Threshold(max=0.1), "'#' characters per word"),
    ("ellipsis_to_word_ratio", Threshold(max=0.1), "ellipses ('...' or U+2026) per word"),
    ("bullet_lines_ratio", Threshold(max=0.9), "share of lines that start with a bullet point"),
    ("ellipsis_lines_ratio", Threshold(max=0.3), "share of lines that end with an ellipsis"),
    ("alpha_words_ratio", Threshold(min=0.8), "share of tokens holding at least one letter"),
    ("stop_words", Threshold(min=2), "how many of the stop words the, be, to, of, and, that, have, with occur"),
], _gopher_quality, "Rae et al. 2021, appendix A.1.1 (quality filters)")

_register("gopher_repetition", [
    ("dup_line_ratio", Threshold(max=0.3), "share of lines that repeat an earlier line"),
    ("dup_para_ratio", Threshold(max=0.3), "share of paragraphs that repeat an earlier paragraph"),
    ("dup_line_char_ratio", Threshold(max=0.2), "share of line characters in repeated lines"),
    ("dup_para_char_ratio", Threshold(max=0.2), "share of paragraph characters in repeated paragraphs"),
    ("top_2gram_char_ratio", Threshold(max=0.2), "share of word characters covered by the most frequent 2-gram"),
    ("top_3gram_char_ratio", Threshold(max=0.18), "share of word characters covered by the most frequent 3-gram"),
    ("top_4gram_char_ratio", Threshold(max=0.16), "share of word characters covered by the most frequent 4-gram"),
    ("dup_5gram_char_ratio", Threshold(max=0.15), "share of word characters covered by repeated 5-grams"),
    ("dup_6gram_char_ratio", Threshold(max=0.14), "share of word characters covered by repeated 6-grams"),
    ("dup_7gram_char_ratio", Threshold(max=0.13), "share of word characters covered by repeated 7-grams"),
    ("dup_8gram_char_ratio", Threshold(max=0.12), "share of word characters covered by repeated 8-grams"),
    ("dup_9gram_char_ratio", Threshold(max=0.11), "share of word characters covered by repeated 9-grams"),
    ("dup_10gram_char_ratio", Threshold(max=0.10), "share of word characters covered by repeated 10-grams"),
], _gopher_repetition, "Rae et al. 2021, appendix A.1.1 and table A1 (repetition removal)")

_register("c4", [
    ("lorem_ipsum", Threshold(max=0), "occurrences of 'lorem ipsum'"),
    ("curly_bracket", Threshold(max=0), "'{' characters (code)"),
    ("sentences", Threshold(min=3), "sentences in the lines kept by C4's line filters"),
    ("bad_words", Threshold(max=0), "words from the bad-word list you supply (off without one)"),
], _c4, "Raffel et al. 2020, section 2.2")

_register("fineweb", [
    ("line_punct_ratio", Threshold(min=0.12, exclusive=True), "share of lines ending in terminal punctuation"),
    ("dup_line_char_ratio", Threshold(max=0.1, exclusive=True), "share of line characters in repeated lines"),
    ("short_line_ratio", Threshold(max=0.67, exclusive=True), "share of lines shorter than 30 characters"),
], _fineweb, "Penedo et al. 2024 (FineWeb), section 3")


def all_rules() -> Dict[str, Rule]:
    """Every registered rule by key (``quality/<set>/<rule>``)."""
    return {r.key: r for name in RULE_SETS for r in RULE_SETS.get(name).rules}


def score_text(text: str, sets: Sequence[str] = ("gopher_quality", "gopher_repetition", "c4", "fineweb"),
               opts: Optional[ScoreOptions] = None) -> Dict[str, float]:
    """Every score of the given rule sets for ``text``, keyed ``quality/<set>/<rule>`` (no thresholds applied).

    Example:
        >>> score_text("a b c", ["fineweb"])["quality/fineweb/short_line_ratio"]
        1.0
    """
    opts = opts or ScoreOptions()
    st = TextStats(text)
    out: Dict[str, float] = {}
    for name in sets:
        rs = RULE_SETS.get(name)
        for rule, val in zip(rs.rules, rs.score(st, opts)):
            if not math.isnan(val):
                out[rule.key] = val
    return out
