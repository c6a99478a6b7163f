"""The text a rule looks at: :class:`TextStats` (lines, tokens, words, duplicates, n-gram shares of one
text, each computed on first use and shared by every rule set) and the character classes the rules use.

Words are whitespace-separated tokens (no tokenizer model, no download), unless a language profile gives
a segmenter (Chinese: jieba, see :mod:`~torchdataguard.quality.segment`). For the Gopher word rules a
token's leading and trailing punctuation is stripped and tokens made only of punctuation are not words.
"""
from __future__ import annotations

import functools
import itertools
import operator
import re
from typing import Callable, FrozenSet, List, Optional, Sequence, Tuple, Union

from .ngrams import ngram_shares

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

# ASCII as classes for TextStats.tokens_with_letter: letters -> "a", whitespace (str.split's) -> " "; the rest deleted
_LETTER_CLASSES = bytes(ord("a") if c < 128 and chr(c).isalpha() else ord(" ") if chr(c).isspace() else c for c in range(256))
_NOT_LETTER_OR_SPACE = bytes(c for c in range(128) if not (chr(c).isalpha() or chr(c).isspace()))
_ASCII_SPACES = bytes(c for c in range(128) if chr(c).isspace())  # what str.split() splits ASCII text on
# str.split() also splits on these four (bytes.split() does not): ASCII text holding one is read as str
_INFO_SEPARATORS = tuple(bytes([c]) for c in range(0x1C, 0x20))
_NOT_BYTES: List[bytes] = []  # TextStats._btokens of a text read as str (compared by identity)
_BYTES_FROM = 512  # shorter texts are read as str: there the bytes' savings do not pay for the extra steps
#: the characters that are cased (str.islower, isupper or istitle) but not letters (str.isalpha): Roman numerals,
#: circled and squared Latin letters, the combining iota subscript (a test checks the list against every code point)
CASED_NOT_LETTERS = ("\u0345\u2160-\u217f\u24b6-\u24e9\U0001f130-\U0001f149\U0001f150-\U0001f169"
                     "\U0001f170-\U0001f189")
_CASED_NOT_LETTER = re.compile(f"[{CASED_NOT_LETTERS}]")


@functools.lru_cache(maxsize=64)
def _ascii_forms(chars: FrozenSet[str] | str) -> FrozenSet[bytes] | bytes:
    """The ASCII members of a set of words, or the ASCII characters of a string of characters, as bytes:
    what an ASCII word can equal, or be stripped of."""
    if isinstance(chars, str):
        return "".join(c for c in chars if c.isascii()).encode("ascii")
    return frozenset(w.encode("ascii") for w in chars if w.isascii())


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

    __slots__ = ("text", "_tokenize", "_strip", "_lower", "_lines", "_tokens", "_words", "_line_dups", "_ngrams",
                 "_firsts", "_lasts", "_btokens", "_bwords")

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
        self._firsts: Optional[str] = None
        self._lasts: Optional[str] = None
        self._btokens: Optional[List[bytes]] = None  # _NOT_BYTES: read as str
        self._bwords: Optional[List[bytes]] = None

    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    def lines(self) -> List[str]:
        """Non-empty lines, stripped of surrounding whitespace."""
        if self._lines is None:
            self._lines = list(filter(None, map(str.strip, self.text.split("\n"))))
        return self._lines

    def lines_starting_with(self, chars: str) -> int:
        """How many lines start with one of the characters ``chars`` (each given once).

        Example:
            >>> TextStats("- a\\n* b\\nc").lines_starting_with("-*")
            2
        """
        if self._firsts is None:  # the first character of every line (lines are never empty), as one string
            self._firsts = "".join(map(operator.itemgetter(0), self.lines()))
        return sum(map(self._firsts.count, chars))

    def lines_ending_with(self, chars: str) -> int:
        """How many lines end with one of the characters ``chars`` (each given once).

        Example:
            >>> TextStats("a.\\nb!\\nc").lines_ending_with(".!?")
            2
        """
        if self._lasts is None:
            self._lasts = "".join(map(operator.itemgetter(-1), self.lines()))
        return sum(map(self._lasts.count, chars))

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

    def _bytes_tokens(self) -> Optional[List[bytes]]:
        """For ASCII text of :data:`_BYTES_FROM` characters or more split on whitespace (no ``tokenize``): the
        tokens as bytes (``bytes.split`` and ``bytes.strip`` are cheaper than their ``str`` forms, and equal
        ASCII bytes and strings have the same hash and length); ``None`` for other text. Text holding
        U+001C .. U+001F is read as ``str`` (only ``str.split`` splits on them)."""
        b = self._btokens
        if b is None:
            b = _NOT_BYTES
            if self._tokenize is None and len(self.text) >= _BYTES_FROM and self.text.isascii():
                raw = self.text.encode("ascii")
                if not any(map(raw.__contains__, _INFO_SEPARATORS)):
                    b = raw.lower().split()
            self._btokens = b
        return None if b is _NOT_BYTES else b

    def token_count(self) -> int:
        """``len(self.tokens())``."""
        b = self._bytes_tokens()
        return len(self.tokens()) if b is None else len(b)

    def word_forms(self) -> Union[List[str], List[bytes]]:
        """:meth:`words`, or for ASCII text split on whitespace the same words as ASCII bytes: for counting
        (:meth:`stop_words_in`, lengths), not for showing."""
        if self._words is None:
            b = self._bytes_tokens()
            if b is not None:
                if self._bwords is None:
                    self._bwords = list(filter(None, map(bytes.strip, b, itertools.repeat(_ascii_forms(self._strip),
                                                                                          len(b)))))
                return self._bwords
        return self.words()

    def stop_words_in(self, stop_words: FrozenSet[str]) -> int:
        """How many of ``stop_words`` (lower-case) occur among the words."""
        forms = self.word_forms()
        if forms is self._bwords:  # ASCII words can only equal the ASCII stop words
            return len(_ascii_forms(stop_words).intersection(forms))
        return len(stop_words.intersection(forms))

    def tokens_with_letter(self) -> int:
        """How many tokens hold at least one letter."""
        b = self._bytes_tokens()
        if b is not None:
            # lower-cased ASCII tokens: bytes.islower() is True exactly when a token holds a letter (all ASCII
            # letters are cased, and none is upper-case any more)
            return sum(map(bytes.islower, b))
        if self._tokenize is None and self.text.isascii():
            # ASCII tokens split on whitespace: letters as "a", whitespace as " ", every other character
            # deleted; a token holding a letter is then one run of "a" (a letterless token disappears)
            classes = self.text.encode("ascii").translate(_LETTER_CLASSES, _NOT_LETTER_OR_SPACE)
            return classes.count(b" a") + classes.startswith(b"a")
        toks = self.tokens()
        # tokens are lower-cased, so str.islower() is True exactly when a token holds a cased character: a
        # letter, unless it is one of CASED_NOT_LETTERS ("\u2167", a Roman numeral, is "\u2177" lower-cased),
        # which only a token that is not ASCII can hold; the tokens that are not lower-case (numbers, symbols,
        # scripts without case) need a character-by-character look, and of those only the ones that are not
        # ASCII (every ASCII letter is cased)
        flags = list(map(str.islower, toks))
        wide = list(itertools.filterfalse(str.isascii, itertools.compress(toks, flags)))
        if wide and _CASED_NOT_LETTER.search(" ".join(wide)):
            return sum(1 for t in toks if not t.isdigit() and any(map(str.isalpha, t)))
        n = sum(flags)
        if n < len(toks):
            rest = itertools.filterfalse(str.isascii, itertools.compress(toks, map(operator.not_, flags)))
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
            total = None
            if self._tokenize is None and self.text.isascii():  # the characters of the whitespace tokens
                total = len(self.text.encode("ascii").translate(None, _ASCII_SPACES))
            b = self._bytes_tokens()
            self._ngrams = ngram_shares(self.tokens() if b is None else b, total=total)
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
    total = len("".join(items))  # sum(map(len, items)), one C-level call
    return len(items) - len(distinct), total - len("".join(distinct)), total


def ratio(a: float, b: float) -> float:
    """``a / b``, or 0 when ``b`` is 0 (an empty text has no bad lines).

    Example:
        >>> ratio(1, 4), ratio(3, 0)
        (0.25, 0.0)
    """
    return a / b if b else 0.0
