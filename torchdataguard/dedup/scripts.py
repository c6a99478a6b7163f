"""Which characters near-dedup shingles as characters, as words, or not at all (script detection).

Text is shingled after NFKC (which folds full-width and half-width forms: ``，`` to ``,``, ``Ａ`` to ``A``,
half-width katakana to full-width) and lower-casing. Each character then falls in one of three classes:

* :data:`CHAR`: a letter, mark or digit of a script written without spaces between words (:data:`UNSPACED`:
  Han, Hiragana, Katakana, Bopomofo, Yi). Each is a token of its own, and shingles starting on one are
  character n-grams;
* :data:`ABUGIDA`: the same for the unspaced scripts whose vowel signs and tone marks are code points of their
  own (:data:`ABUGIDAS`: Thai, Lao, Khmer, Myanmar, the Tai scripts, Javanese, Balinese). A Thai word is
  about five code points where a Chinese word is one or two characters, so their character n-grams are
  longer (``abugida_ngram``, :data:`~.hashing.DEFAULT_ABUGIDA_NGRAM`);
* :data:`SEP`: punctuation, spaces, control and format characters (ASCII: everything but letters and
  digits; other characters: Unicode categories ``P*``, ``Z*``, ``Cc`` and ``Cf``, so ``。、「」《》“”——…``
  are folded away like ``.,"-``). Separators end words and never take part in a shingle;
* :data:`IGNORED`: characters that are left out as if they were not there (:data:`IGNORED_RANGES`): the
  invisible characters (:data:`INVISIBLE_RANGES`): the format characters (zero-width space, non-joiner and
  joiner, word joiner, byte-order mark, soft hyphen, bidi marks, embeddings and isolates, tags ...: Unicode
  category ``Cf`` except the visible number signs ``U+0600``-``U+0605`` and the like) and the other
  default-ignorable code points (variation selectors, the combining grapheme joiner, the Hangul fillers ...:
  :data:`IGNORABLE_RANGES`), the Arabic tatweel ``U+0640``, the Arabic
  harakat ``U+064B``-``U+065F`` and ``U+0670``, and the Hebrew points and cantillation marks (the combining
  marks of ``U+0591``-``U+05C7``). A copy with such characters inserted is the same text (they are left out
  before NFKC, so that one between a letter and its accent does not keep them from composing, and after it:
  :func:`near_text`); other combining marks (Devanagari or Thai vowel signs) are letters and are kept;
* :data:`WORD`: everything else (ASCII letters and digits, letters of other scripts, symbols). Maximal
  runs of word characters are words, and shingles starting on one are word n-grams.

Example:
    >>> [unspaced_script(c) for c in "中かカก a"]
    ['Han', 'Hiragana', 'Katakana', 'Thai', None, None]
"""
from __future__ import annotations

import re
import threading
import unicodedata
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..core.unicode import joins_before
from .distinct import np_distinct
from ..core.invisible import FORMAT_RANGES, IGNORABLE_RANGES, INVISIBLE_RANGES, class_body

__all__ = ["ABUGIDA", "ABUGIDAS", "CHAR", "COMPOSING", "FORMAT_RANGES", "IGNORABLE_RANGES", "IGNORED",
           "IGNORED_RANGES", "INVISIBLE_RANGES", "SEP",
           "UNSPACED", "WORD", "char_class", "classes_of", "drop_ignored", "drop_invisible", "drop_left_over",
           "joins_before", "near_text", "nfkc", "nfkc_visible", "unspaced_script"]

SEP, WORD, CHAR, ABUGIDA, IGNORED = 0, 1, 2, 3, 4

#: what near-dedup shingles leave out: :data:`INVISIBLE_RANGES`, the Arabic tatweel and harakat, and the Hebrew
#: points and cantillation marks (the combining marks of U+0591-U+05C7; U+05BE, U+05C0, U+05C3 and U+05C6
#: are punctuation)
IGNORED_RANGES: Tuple[Tuple[int, int], ...] = INVISIBLE_RANGES + (
    (0x0591, 0x05BD), (0x05BF, 0x05BF), (0x05C1, 0x05C2), (0x05C4, 0x05C5), (0x05C7, 0x05C7), (0x0640, 0x0640),
    (0x064B, 0x065F), (0x0670, 0x0670))
#: the ignored characters that canonical composition joins to a preceding letter (inclusive range): Arabic
#: maddah above, hamza above and hamza below (alef + hamza above is ``أ``, a letter of its own). They are
#: the only ones (tests check every composition), and the only ignored characters kept until NFKC has run.
COMPOSING: Tuple[int, int] = (0x0653, 0x0655)


def _char_set(ranges: Tuple[Tuple[int, int], ...]) -> "re.Pattern[str]":
    return re.compile(f"[{class_body(ranges)}]")


def _split(ranges: Tuple[Tuple[int, int], ...], out: Tuple[int, int]) -> Tuple[Tuple[int, int], ...]:
    """``ranges`` less the code points of the range ``out``."""
    lo_out, hi_out = out
    res = []
    for lo, hi in ranges:
        if lo < lo_out:
            res.append((lo, min(hi, lo_out - 1)))
        if hi > hi_out:
            res.append((max(lo, hi_out + 1), hi))
    return tuple(res)


_INVISIBLE_RE = _char_set(INVISIBLE_RANGES)
_IGNORED_RE = _char_set(IGNORED_RANGES)

# per class, one that matches its BMP characters or any character beyond the BMP: a class of BMP characters only
# is a bitmap, scanned a few times faster than one with ranges beyond it (:func:`_drop` looks with it first)
_QUICK = {rx: re.compile("[" + class_body(r for r in rs if r[1] < 0x10000) + "]|[\U00010000-\U0010ffff]")
          for rx, rs in ((_INVISIBLE_RE, INVISIBLE_RANGES), (_IGNORED_RE, IGNORED_RANGES))}


def drop_invisible(text: str) -> str:
    """``text`` without the characters of :data:`INVISIBLE_RANGES` (ASCII text is returned as it is).

    Example:
        >>> drop_invisible("da\u200bta\u00ad set\u200f")
        'data set'
    """
    return _drop(_INVISIBLE_RE, text)


def drop_ignored(text: str) -> str:
    """``text`` without the characters of :data:`IGNORED_RANGES` (ASCII text is returned as it is).

    Example:
        >>> drop_ignored("\u0643\u064e\u062a\u064e\u0640\u0628\u064e") == "\u0643\u062a\u0628"
        True
    """
    return _drop(_IGNORED_RE, text)


def _drop(rx: "re.Pattern[str]", text: str) -> str:
    """``text`` without the characters ``rx`` matches; ASCII text, and text holding none, as it is (no copy)."""
    if text.isascii():
        return text
    m = _QUICK[rx].search(text)
    if m is None or (m.group() > "\uffff" and not rx.search(text, m.start())):  # (from the first astral character)
        return text
    return rx.sub("", text)

#: Scripts written without spaces between words, by Unicode block ranges (inclusive).
UNSPACED: Tuple[Tuple[str, Tuple[Tuple[int, int], ...]], ...] = (
    ("Han", ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B), (0x3400, 0x4DBF),
             (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F), (0x30000, 0x323AF))),
    ("Hiragana", ((0x3040, 0x309F), (0x1B001, 0x1B11F))),
    ("Katakana", ((0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), (0x1B000, 0x1B000))),
    ("Bopomofo", ((0x3100, 0x312F), (0x31A0, 0x31BF))),
    ("Yi", ((0xA000, 0xA4CF),)),
    ("Thai", ((0x0E00, 0x0E7F),)),
    ("Lao", ((0x0E80, 0x0EFF),)),
    ("Khmer", ((0x1780, 0x17FF), (0x19E0, 0x19FF))),
    ("Myanmar", ((0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F))),
    ("Tai Le", ((0x1950, 0x197F),)),
    ("New Tai Lue", ((0x1980, 0x19DF),)),
    ("Tai Tham", ((0x1A20, 0x1AAF),)),
    ("Tai Viet", ((0xAA80, 0xAADF),)),
    ("Balinese", ((0x1B00, 0x1B7F),)),
    ("Javanese", ((0xA980, 0xA9DF),)),
)

#: the scripts of :data:`UNSPACED` whose characters are class :data:`ABUGIDA` (the others are :data:`CHAR`)
ABUGIDAS = frozenset(("Thai", "Lao", "Khmer", "Myanmar", "Tai Le", "New Tai Lue", "Tai Tham", "Tai Viet",
                      "Balinese", "Javanese"))

_STARTS = np.array([lo for _, rs in UNSPACED for lo, _ in rs])
_ORDER = np.argsort(_STARTS)
_LO = _STARTS[_ORDER]
_HI = np.array([hi for _, rs in UNSPACED for _, hi in rs])[_ORDER]
_NAME = np.array([name for name, rs in UNSPACED for _ in rs])[_ORDER]
_SEP_CATEGORIES = frozenset(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Zl", "Zp", "Cc", "Cf"))

_UNKNOWN = 255
_table = np.full(0x110000, _UNKNOWN, dtype=np.uint8)  # filled lazily, code point by code point
_lock = threading.Lock()


def unspaced_script(ch: str) -> Optional[str]:
    """The name of the script (one of :data:`UNSPACED`) whose block holds ``ch``, or ``None``.

    Example:
        >>> unspaced_script("語"), unspaced_script("ျ"), unspaced_script("é")
        ('Han', 'Myanmar', None)
    """
    cp = ord(ch)
    i = int(np.searchsorted(_LO, cp, side="right")) - 1
    return str(_NAME[i]) if i >= 0 and cp <= _HI[i] else None


def _classify(cp: int) -> int:
    if cp < 0x80:
        return WORD if chr(cp).isalnum() else SEP
    if any(lo <= cp <= hi for lo, hi in IGNORED_RANGES):
        return IGNORED
    ch = chr(cp)
    if unicodedata.category(ch) in _SEP_CATEGORIES:
        return SEP
    script = unspaced_script(ch)
    return WORD if script is None else ABUGIDA if script in ABUGIDAS else CHAR


def classes_of(cps: np.ndarray) -> np.ndarray:
    """:data:`SEP`, :data:`WORD`, :data:`CHAR`, :data:`ABUGIDA` or :data:`IGNORED` (uint8) of each code point of
    ``cps`` (an integer array).

    Example:
        >>> classes_of(np.array([ord(c) for c in "a,中。ไ"])).tolist()
        [1, 0, 2, 0, 3]
    """
    out = _table[cps]
    unknown = out == _UNKNOWN
    if unknown.any():
        new = np_distinct(cps[unknown])
        with _lock:
            _table[new] = _classify_all(new)
        out = _table[cps]
    return out


_ASCII_CLASSES = np.array([_classify(c) for c in range(0x80)], dtype=np.uint8)


def _classify_all(cps: np.ndarray) -> np.ndarray:
    """:func:`_classify` of each code point of ``cps`` (integers), the ranges looked up with NumPy: only the
    Unicode category is read one code point at a time (what a new chunk of Chinese text meets is thousands
    of characters not seen before)."""
    cps = np.asarray(cps, dtype=np.int64)
    out = np.full(cps.size, WORD, dtype=np.uint8)
    low = cps < 0x80
    out[low] = _ASCII_CLASSES[cps[low]]
    ignored = np.zeros(cps.size, dtype=bool)
    for lo, hi in IGNORED_RANGES:
        ignored |= (cps >= lo) & (cps <= hi)
    ignored &= ~low
    out[ignored] = IGNORED
    rest = np.flatnonzero(~(low | ignored))
    if rest.size:
        cat = unicodedata.category
        sep = np.fromiter((cat(chr(c)) in _SEP_CATEGORIES for c in cps[rest].tolist()), dtype=bool,
                          count=rest.size)
        out[rest[sep]] = SEP
        rest = rest[~sep]
        c = cps[rest]
        i = np.searchsorted(_LO, c, side="right") - 1
        inside = (i >= 0) & (c <= _HI[np.maximum(i, 0)])
        abugida = np.isin(_NAME[np.maximum(i, 0)], sorted(ABUGIDAS))
        out[rest[inside]] = np.where(abugida[inside], ABUGIDA, CHAR)
    return out


_char_cache: Dict[str, int] = {}


def char_class(ch: str) -> int:
    """:data:`SEP`, :data:`WORD`, :data:`CHAR`, :data:`ABUGIDA` or :data:`IGNORED` of one (already
    NFKC-normalised) character.

    Example:
        >>> char_class("。"), char_class("x"), char_class("中"), char_class("ไ")
        (0, 1, 2, 3)
    """
    c = _char_cache.get(ch)
    if c is None:
        c = _char_cache[ch] = _classify(ord(ch))
    return c


_WIDE = re.compile("[\uff01-\uff5e\u3000]")


def _narrow(m: "re.Match[str]") -> str:
    c = ord(m.group())
    return " " if c == 0x3000 else chr(c - 0xFEE0)


# the characters :func:`nfkc_visible` and :func:`near_text` replace by their compatibility decompositions first
# (full-width forms, the ideographic and no-break spaces, the ellipsis: those of Chinese text), as the start of a class
_FOLDED = "[\uff01-\uff5e\u3000\u00a0\u2026"
# the folded characters and the invisible characters of the BMP in one class, or any character beyond the BMP (a
# class of BMP characters only is a bitmap, checked about 3x faster than a list of ranges): one scan finds both
_WIDE_OR_INVISIBLE = re.compile(_FOLDED + class_body(r for r in INVISIBLE_RANGES if r[1] < 0x10000)
                                + "]|[\U00010000-\U0010ffff]")


def _narrow_or_drop_by(astral: "re.Pattern[str]") -> Callable[["re.Match[str]"], str]:
    """The replacement for a match of a folded-or-dropped class: a full-width form narrowed, a space for the
    ideographic and no-break spaces, ``...`` for the ellipsis (their NFKC forms, which compose with nothing), a
    BMP character of the class dropped, a character beyond the BMP dropped when ``astral`` matches it (else
    kept)."""
    def replace(m: "re.Match[str]") -> str:
        ch = m.group()
        c = ord(ch)
        if c == 0x3000 or c == 0xA0:
            return " "
        if c == 0x2026:
            return "..."
        if 0xFF01 <= c <= 0xFF5E:
            return chr(c - 0xFEE0)
        return "" if c < 0x10000 or astral.match(ch) else ch
    return replace


def _replacer(rx: "re.Pattern[str]", astral: "re.Pattern[str]") -> Callable[[str], str]:
    """``lambda text: rx.sub(_narrow_or_drop_by(astral), text)`` for a class ``rx`` of single characters, done as
    one ``str.replace`` per distinct character found (a Chinese text holds a few kinds of full-width punctuation
    many times each: about a third faster than a Python call per match). Each replacement is ASCII or nothing,
    which the class never matches, so the order of the replacements does not matter."""
    one = _narrow_or_drop_by(astral)
    memo: Dict[str, str] = {}  # BMP characters only: the class holds a few hundred of them

    def run(text: str) -> str:
        found = rx.findall(text)
        for ch in set(found) if found else ():
            new = memo.get(ch)
            if new is None:
                new = one(rx.match(ch))  # type: ignore[arg-type]
                if ord(ch) < 0x10000:
                    memo[ch] = new
            if new != ch:
                text = text.replace(ch, new)
        return text
    return run


_narrow_or_drop_visible = _replacer(_WIDE_OR_INVISIBLE, _INVISIBLE_RE)


def nfkc_visible(text: str) -> str:
    """:func:`nfkc` of :func:`drop_invisible` of ``text``, with one scan for both (what the exact hash reads).

    Example:
        >>> nfkc_visible("Ａ\u200bＢ，\u00adc") == nfkc(drop_invisible("Ａ\u200bＢ，\u00adc")) == "AB,c"
        True
    """
    text = _narrow_or_drop_visible(text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


# the full-width forms and the ignored characters of the BMP but the composing ones in one class, or any character
# beyond the BMP (a bitmap class, as above)
_WIDE_OR_UNCOMPOSING = re.compile(_FOLDED + class_body(r for r in _split(IGNORED_RANGES, COMPOSING) if r[1] < 0x10000)
                                  + "]|[\U00010000-\U0010ffff]")


_narrow_or_drop_uncomposing = _replacer(_WIDE_OR_UNCOMPOSING, _IGNORED_RE)


def near_text(text: str) -> str:
    """``text`` as near-dedup shingles it: NFKC, lower case, the characters of :data:`IGNORED_RANGES` left out
    (ASCII text is returned as it is: it holds none, and its callers lower-case it).

    The ignored characters are left out before NFKC (but for :data:`COMPOSING`, which compose with the letter
    before them), so that one placed between a letter and its combining mark in decomposed text does not keep
    the two from composing (``e`` + zero-width space + U+0301 is ``é``); then once more after it, for those that
    NFKC makes (Arabic presentation forms are letters and harakat, Hebrew ones letters and points, and a
    composing mark may be left over). Where that removes one, the rest is composed again (NFKC).

    Example:
        >>> near_text("Cafe\\u200b\\u0301 \\u0627\\u200b\\u0654\\u064e") == "caf\\u00e9 \\u0623"
        True
    """
    if text.isascii():
        return text
    text = _narrow_or_drop_uncomposing(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return drop_left_over(text).lower()


_COMPOSING_RE = re.compile(f"[{chr(COMPOSING[0])}-{chr(COMPOSING[1])}]")


def _stuck(text: str) -> "Optional[re.Match[str]]":
    """The first :data:`COMPOSING` mark of ``text`` that stands right before a combining mark, which it may keep
    from composing (waw + maddah + hamza above: only the hamza composes with the waw), or ``None``."""
    for m in _COMPOSING_RE.finditer(text):
        if unicodedata.combining(text[m.end() : m.end() + 1] or "a"):
            return m
    return None


def drop_left_over(text: str) -> str:
    """``text`` (NFKC) without the characters of :data:`IGNORED_RANGES`, composing (NFKC) what one of them kept
    apart; ``text`` itself when it holds none. A :data:`COMPOSING` mark that did not compose is taken out
    first where it stands before another mark (one at a time, each followed by NFKC), so the next may compose.

    Example:
        >>> drop_left_over("e\u0654\u0301 \u0648\u0653\u0654") == "\u00e9 \u0624"
        True
    """
    out = drop_ignored(text)
    if out is text:
        return text
    m = _stuck(text)
    if m is not None:
        while m is not None:
            text = unicodedata.normalize("NFKC", text[: m.start()] + text[m.end() :])
            m = _stuck(text)
        out = drop_ignored(text)
    if not unicodedata.is_normalized("NFKC", out):
        out = unicodedata.normalize("NFKC", out)
    return out


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, faster on Chinese and Japanese text.

    Full-width ASCII forms and the ideographic space (in most Chinese text: ``，：；（）！？``) are replaced by
    their compatibility decompositions first (the ASCII characters and the space, which NFKC would give and
    which compose with nothing); the text is then usually already normalised, which Python's quick check
    confirms without the full normalisation (about 4x faster on the Chinese test passages).

    Example:
        >>> nfkc("Ｐｙｔｈｏｎ，版本３。") == unicodedata.normalize("NFKC", "Ｐｙｔｈｏｎ，版本３。") == "Python,版本3。"
        True
    """
    text = _WIDE.sub(_narrow, text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)
