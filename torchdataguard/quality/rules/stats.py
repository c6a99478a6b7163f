"""The text a rule looks at: :class:`TextStats` (lines, tokens, words, duplicates, n-gram shares of one
text, each computed on first use and shared by every rule set) and the character classes the rules use.

Words are whitespace-separated tokens (no tokenizer model, no download), unless a language profile gives
a segmenter (Chinese: jieba, see :mod:`~torchdataguard.quality.segment`). For the Gopher word rules a
token's leading and trailing punctuation is stripped and tokens made only of punctuation are not words.
"""
from __future__ import annotations

import itertools
import operator
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["BULLETS", "ELLIPSES", "PUNCTUATION", "TERMINAL", "TextStats", "duplicates", "ratio"]

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

_MUL_INT = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_HASHED_MUL = np.uint64(_MUL_INT)
#: n-gram steps with at most this many candidate positions run on Python lists (measured on e-mails: 32)
_FEW = 32
_ONES = np.ones(16, dtype=np.int8)
# ASCII as classes for TextStats.tokens_with_letter: letters -> "a", whitespace (str.split's) -> " "; the rest deleted
_LETTER_CLASSES = bytes(ord("a") if c < 128 and chr(c).isalpha() else ord(" ") if chr(c).isspace() else c for c in range(256))
_NOT_LETTER_OR_SPACE = bytes(c for c in range(128) if not (chr(c).isalpha() or chr(c).isspace()))


class TextStats:
    """Intermediate values of one text, computed on first use and shared by every rule set.

    ``tokenize`` splits the lower-cased text into tokens (default: ``str.split``, whitespace); ``strip``
    is the set of characters stripped from both ends of a token to get its word form (default
    :data:`PUNCTUATION`).

    Example:
        >>> st = TextStats("Hello, world!\\n\\nSecond line here.")
        >>> st.lines()
        ['Hello, world!', 'Second line here.']
        >>> st.words()
        ['hello', 'world', 'second', 'line', 'here']
        >>> TextStats("a-b c", tokenize=lambda s: s.replace("-", " ").split()).tokens()
        ['a', 'b', 'c']
    """

    __slots__ = ("text", "_tokenize", "_strip", "_lower", "_lines", "_tokens", "_words", "_line_dups", "_ngrams")

    def __init__(self, text: str, *, tokenize: Optional[Callable[[str], List[str]]] = None,
                 strip: str = PUNCTUATION) -> None:
        self.text = text
        self._tokenize = tokenize
        self._strip = strip
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
        """Lower-cased tokens (whitespace-separated unless a ``tokenize`` function was given)."""
        if self._tokens is None:
            self._tokens = self.lower().split() if self._tokenize is None else self._tokenize(self.lower())
        return self._tokens

    def words(self) -> List[str]:
        """Tokens with leading and trailing punctuation stripped; tokens of punctuation only left out."""
        if self._words is None:
            toks = self.tokens()
            self._words = list(filter(None, map(str.strip, toks, itertools.repeat(self._strip, len(toks)))))
        return self._words

    def tokens_with_letter(self) -> int:
        """How many tokens hold at least one letter."""
        if self._tokenize is None and self.text.isascii():
            # ASCII tokens split on whitespace: letters as "a", whitespace as " ", every other character
            # deleted; a token holding a letter is then one run of "a" (a letterless token disappears)
            classes = self.text.encode("ascii").translate(_LETTER_CLASSES, _NOT_LETTER_OR_SPACE)
            return classes.count(b" a") + classes.startswith(b"a")
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
        """(duplicate lines, characters in duplicate lines, characters in all lines); first copies are not
        duplicates."""
        if self._line_dups is None:
            self._line_dups = duplicates(self.lines())
        return self._line_dups

    def ngrams(self) -> Tuple[List[float], List[float]]:
        """Character shares of the top 2/3/4-gram and of duplicated 5..10-grams (over lower-case tokens)."""
        if self._ngrams is None:
            self._ngrams = _ngram_shares(self.tokens())
        return self._ngrams


def duplicates(items: Sequence[str]) -> Tuple[int, int, int]:
    """(duplicate items, characters in duplicate items, characters in all items); first copies are not
    duplicates.

    Example:
        >>> duplicates(["ab", "c", "ab", "ab"])
        (2, 4, 7)
    """
    # every copy after the first is a duplicate, so the duplicates hold all characters but those of the
    # distinct items
    distinct = set(items)
    total = sum(map(len, items))
    return len(items) - len(distinct), total - sum(map(len, distinct)), total


def _union_chars(starts: Sequence[int], n: int, cum: Sequence[int]) -> int:
    """Characters of the tokens covered by the n-grams starting at ``starts`` (ascending; overlaps once)."""
    covered = 0
    end = 0
    for p in starts:
        covered += cum[p + n] - cum[p if p > end else end]
        end = p + n
    return covered


def _steps_on_lists(n: int, cand: List[int], prev: List[int], hl: List[int], cum: List[int], total: int,
                    top: List[float], dup: List[float]) -> None:
    """Steps ``n`` .. 10 of :func:`_ngram_shares` on Python lists, for few candidates: ``cand`` are the ascending
    positions whose n-gram can repeat and ``prev`` their n-gram keys, ``hl`` the token hashes and ``cum``
    the cumulative token lengths (positions relative to a slice of the text's tokens). The same integers as
    the array steps, so the same shares."""
    while True:
        groups: Dict[int, List[int]] = {}
        keys: Dict[int, int] = {}
        for k, p in zip(prev, cand):
            keys[p] = k
            g = groups.get(k)
            if g is None:
                groups[k] = [p]
            else:
                g.append(p)
        reps = [g for g in groups.values() if len(g) > 1]
        if not reps:
            return
        if n <= 4:  # the most frequent n-gram; ties to more characters, then to the earliest
            best = max(reps, key=lambda g: (len(g), cum[g[0] + n] - cum[g[0]], -g[0]))
            if all(b - a >= n for a, b in zip(best, best[1:])):
                top[n - 2] = len(best) * (cum[best[0] + n] - cum[best[0]]) / total
            else:
                top[n - 2] = _union_chars(best, n, cum) / total
        rep = sorted(p for g in reps for p in g)
        if n >= 5:
            dup[n - 5] = _union_chars(rep, n, cum) / total
        flagged = set(rep)
        cand = [p for p in rep if p + 1 in flagged]
        if n == 10 or len(cand) < 2:
            return
        n += 1
        prev = [(keys[p] * _MUL_INT + hl[p + n - 1]) & _MASK64 for p in cand]  # the next n-gram keys, as the arrays


def _ngram_shares(tokens: List[str]) -> Tuple[List[float], List[float]]:
    """Gopher's n-gram repetition shares over ``tokens``.

    Tokens are identified by their 64-bit string hash and n-grams by a 64-bit polynomial of those (a
    collision is about as likely as 2**-64 per pair). An n-gram can only repeat where the two (n-1)-grams
    inside it repeat, so each step looks only at those positions, and stops when nothing repeats.
    Ties for the most frequent n-gram go to the one with more characters, then to the earliest.
    The arrays are short (a few hundred tokens for an e-mail), so numpy's per-call cost is what counts:
    array methods and ufuncs, not the Python-level wrappers (``np.diff``, ``np.flatnonzero``, ``np.append``).
    """
    top = [0.0, 0.0, 0.0]  # n = 2, 3, 4
    dup = [0.0] * 6  # n = 5 .. 10
    m = len(tokens)
    if m < 2:
        return top, dup
    cum = np.zeros(m + 1, dtype=np.int64)  # cum[i]: characters of the first i tokens
    cum[1:] = np.fromiter(itertools.accumulate(map(len, tokens)), dtype=np.int64, count=m)
    total = int(cum[m])
    if total == 0:
        return top, dup
    h = np.fromiter(map(hash, tokens), dtype=np.int64, count=m).view(np.uint64)
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
            pos_all = (rep[:-1] & rep[1:]).nonzero()[0]
            k = pos_all.shape[0]
            if k < 2:
                break
            if k <= _FEW:  # the remaining steps on Python lists (numpy's per-call cost dominates)
                lo, hi = int(pos_all[0]), int(pos_all[-1]) + 11  # every token and length they can reach
                _steps_on_lists(n, (pos_all - lo).tolist(), key[pos_all].tolist(), h[lo:hi].tolist(),
                                cum[lo:hi + 1].tolist(), total, top, dup)
                break
            sub = key[pos_all]
        order = sub.argsort(kind="stable")
        s = sub[order]
        eq = s[1:] == s[:-1]
        ends = (~eq).nonzero()[0]  # the last index (in sorted order) of every group but the last one
        if ends.shape[0] == eq.shape[0]:  # every n-gram distinct: nothing repeats
            break
        pos = order if pos_all is None else pos_all[order]  # ascending within equal keys (stable sort)
        flag = np.zeros(s.shape[0], dtype=bool)
        flag[1:] = eq
        flag[:-1] |= eq
        rep = np.zeros(m - n + 1, dtype=bool)
        rep[pos[flag]] = True
        if n <= 4:  # the most frequent n-gram; ties to more characters, then to the earliest
            bounds = np.empty(ends.shape[0] + 2, dtype=np.int64)  # group i is bounds[i] .. bounds[i + 1] - 1
            bounds[0] = 0
            bounds[1:-1] = ends + 1
            bounds[-1] = s.shape[0]
            sizes = bounds[1:] - bounds[:-1]
            best = int(sizes.max())
            groups = (sizes == best).nonzero()[0]
            first = pos[bounds[groups]]
            if groups.shape[0] > 1:
                chars = cum[first + n] - cum[first]
                i = int((chars * (m + 1) - first).argmax())
            else:
                i = 0
            start = int(first[i])
            chars_one = int(cum[start + n] - cum[start])
            members = pos[bounds[groups[i]]: bounds[groups[i]] + best]
            if int((members[1:] - members[:-1]).min()) >= n:  # occurrences do not overlap (members ascend)
                top[n - 2] = best * chars_one / total
            else:
                top[n - 2] = _union_chars(members.tolist(), n, cum.tolist()) / total
        else:
            cover = np.convolve(rep.view(np.int8), _ONES[:n])  # length m: how many flagged n-grams cover each token
            covered = (cover > 0).nonzero()[0]
            dup[n - 5] = int((cum[covered + 1] - cum[covered]).sum()) / total
    return top, dup


def ratio(a: float, b: float) -> float:
    """``a / b``, or 0 when ``b`` is 0 (an empty text has no bad lines).

    Example:
        >>> ratio(1, 4), ratio(3, 0)
        (0.25, 0.0)
    """
    return a / b if b else 0.0
