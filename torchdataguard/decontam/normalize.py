"""Normalisation of text as the GPT-3 contamination check defines it.

Normalisation (GPT-3, appendix C; lm-evaluation-harness's ``janitor``): lower case, punctuation removed
(deleted, so ``don't`` is ``dont``), words split on whitespace. Here "punctuation" is every character of
the Unicode categories P (punctuation) and S (symbols) -- for ASCII exactly :data:`string.punctuation` --
and non-ASCII text is NFKC-normalised first. Invisible characters (format characters, category Cf: zero-width
space and joiners, soft hyphen, bidi marks ...; and the other default-ignorable code points: variation
selectors, the combining grapheme joiner, the Hangul fillers ...) are deleted too, so that a copy of an evaluation
item with such characters inserted inside its words is still found: before NFKC, so that one placed between a
letter and its combining accent in decomposed text (``e`` + zero-width space + U+0301) does not keep the two
from composing (NFKC makes none of them out of another character; it makes the Hangul filler the jungseong
filler, deleted as well).

Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan) have no words
to split on, so each of their characters is a word of its own: a 13-gram of Chinese text is 13 characters.
This is a simple script check by code point block (:func:`is_unspaced`), made here so that the stage needs
nothing from the multilingual work.

:func:`normalized_bytes` is the fast form the hashing reads (UTF-8, words separated by NUL bytes);
:func:`normalized_words` is the same normalisation in plain Python, used to verify a hit exactly.

Example:
    >>> normalized_words("Don't PANIC -- it's   fine.")
    ['dont', 'panic', 'its', 'fine']
    >>> normalized_words("\u4eca\u5929\u5f88\u597d\u3002")
    ['\u4eca', '\u5929', '\u5f88', '\u597d']
"""
from __future__ import annotations

import re
import string
import threading
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

from ..core.invisible import IGNORABLE_RANGES, class_body, merged_ranges
from ..core.unicode import joins_before

__all__ = ["drop_format", "is_unspaced", "normalize_text", "normalized_bytes", "normalized_bytes_many",
           "normalized_words"]

#: code point ranges of scripts written without spaces between words
_UNSPACED: Tuple[Tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x0F00, 0x0FFF),    # Tibetan
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x2E80, 0x2FDF),    # CJK radicals, Kangxi radicals
    (0x3005, 0x3007),    # ideographic iteration mark, closing mark, number zero
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3100, 0x312F),    # Bopomofo
    (0x31F0, 0x31FF),    # Katakana phonetic extensions
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0x20000, 0x323AF),  # CJK extensions B-H
)


def is_unspaced(ch: str) -> bool:
    """True for a character of a script written without spaces (each such character is one word).

    Example:
        >>> is_unspaced("\u4e2d"), is_unspaced("a"), is_unspaced("\u0e01")
        (True, False, True)
    """
    c = ord(ch)
    return any(lo <= c <= hi for lo, hi in _UNSPACED)


def _ignorable(c: int) -> bool:
    """Whether ``c`` is a default-ignorable code point that is not a format character (a variation selector, the
    combining grapheme joiner, a Hangul filler ...: :data:`~torchdataguard.core.invisible.IGNORABLE_RANGES`),
    which the normalisation deletes with the format characters."""
    return c in _IGNORABLE_BMP if c < 0x10000 else any(lo <= c <= hi for lo, hi in IGNORABLE_RANGES)


_IGNORABLE_BMP = frozenset(c for lo, hi in IGNORABLE_RANGES if hi < 0x10000 for c in range(lo, hi + 1))


def _translation(c: int) -> Optional[str]:
    """What character ``c`` becomes: punctuation and symbols deleted, whitespace (and NUL) a space, a
    character of an unspaced script surrounded by spaces, anything else itself."""
    ch = chr(c)
    cat = unicodedata.category(ch)
    if cat[0] in "PS" or cat == "Cf" or _ignorable(c):  # invisible characters (zero-width space, soft hyphen,
        return None  # variation selectors, Hangul fillers ...) too
    if ch.isspace() or c == 0:
        return " "
    return f" {ch} " if is_unspaced(ch) else ch


class _AstralTable(dict):
    """``str.translate`` table for text with characters beyond the BMP, filled on first use of each."""

    def __missing__(self, c: int) -> Optional[str]:
        out = self[c] = _translation(c)
        return out


#: the BMP as a list (a list lookup is what makes ``str.translate`` fast); built on first use
_BMP: List[Optional[str]] = []


# NUL is whitespace here (it separates texts in the byte buffer of ngram_hashes)
_ASCII_STR = str.maketrans(string.ascii_uppercase + "\x00", string.ascii_lowercase + " ", string.punctuation)
_ASTRAL_TABLE = _AstralTable()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_UNICODE_LOCK = threading.Lock()
# bytes: upper to lower case, the whitespace str.split() knows to 0 (a word boundary); punctuation deleted
_WS = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_BYTE_TABLE = bytearray(range(256))
for _c in string.ascii_uppercase.encode():
    _BYTE_TABLE[_c] = _c + 32
for _c in _WS:
    _BYTE_TABLE[_c] = 0
_BYTE_TABLE = bytes(_BYTE_TABLE)
_PUNCT = string.punctuation.encode()
#: punctuation and every byte of a non-ASCII character
_PUNCT_HIGH = _PUNCT + bytes(range(128, 256))


def _non_ascii_run(m: "re.Match[str]") -> str:
    run = m.group()
    if max(run) <= "\uffff":
        return run.translate(_BMP)
    with _UNICODE_LOCK:  # the table grows while it is used
        return run.translate(_ASTRAL_TABLE)


def _bmp_table() -> List[Optional[str]]:
    """``[_translation(c) for c in range(0x10000)]``, built a few times faster: the unspaced scripts are set
    by their ranges instead of testing every character against every range."""
    out: List[Optional[str]] = []
    category = unicodedata.category
    for c in range(0x10000):
        ch = chr(c)
        cat = category(ch)
        if cat[0] in "PS" or cat == "Cf" or _ignorable(c):
            out.append(None)
        elif ch.isspace() or c == 0:
            out.append(" ")
        else:
            out.append(ch)
    for lo, hi in _UNSPACED:
        for c in range(lo, min(hi, 0xFFFF) + 1):
            ch = out[c]
            if ch is not None and ch != " ":
                out[c] = f" {ch} "
    return out


#: [the format characters of the BMP or any character beyond it, those of the BMP, those beyond it]
_FORMAT: List["re.Pattern[str]"] = []
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _format_res() -> List["re.Pattern[str]"]:
    """The patterns of :func:`drop_format`, built on first use from ``unicodedata`` (the format characters of
    planes 0, 1 and 14: no other plane has one). Classes of BMP characters only are bitmaps, the quickest."""
    if not _FORMAT:
        cps = [c for c in (*range(0x20000), *range(0xE0000, 0xE1000))
               if unicodedata.category(chr(c)) == "Cf" or _ignorable(c)]
        bmp = "".join(f"\\u{c:04x}" for c in cps if c < 0x10000)
        # those beyond the BMP as ranges: 4,200 of them one by one made a class that cost about 4 us a character of
        # text holding an emoji (until 2026-12-08)
        runs = merged_ranges((c, c) for c in cps if c >= 0x10000)
        res = [re.compile(f"[{bmp}]|[\U00010000-\U0010ffff]"), re.compile(f"[{bmp}]"),
               re.compile(f"[{class_body(runs)}]")]
        with _UNICODE_LOCK:
            if not _FORMAT:
                _FORMAT.extend(res)
    return _FORMAT


def drop_format(text: str) -> str:
    """``text`` without its format characters (category Cf) and other default-ignorable ones (``text`` itself
    when it holds none): what the normalisation deletes before NFKC.

    Example:
        >>> drop_format("cafe\u200b\u0301 \U000e0041") == "cafe\u0301 "
        True
    """
    quick, bmp, astral = _format_res()
    m = quick.search(text)
    if m is None:
        return text
    if m.group() <= "\uffff" or bmp.search(text, m.start()):
        text = bmp.sub("", text)
    if _ASTRAL.search(text) and astral.search(text):
        text = astral.sub("", text)
    return text


def _format_before_mark(text: str) -> bool:
    """Whether a format character of ``text`` stands right before a character that may compose with what
    precedes it (which it would keep apart)."""
    quick, _, astral = _format_res()
    for m in quick.finditer(text):
        nxt = text[m.end() : m.end() + 1]
        if nxt and joins_before(nxt) and (m.group() <= "\uffff" or astral.match(m.group())):
            return True
    return False


def _unicode_part(text: str, *, nfkc: bool = False) -> str:
    """NFKC (unless ``nfkc`` says ``text`` already is), lower case, and the non-ASCII characters translated
    (ASCII ones are left to the caller)."""
    if not _BMP:
        with _UNICODE_LOCK:
            if not _BMP:
                _BMP.extend(_bmp_table())
    if not nfkc:
        text = unicodedata.normalize("NFKC", drop_format(text))
    return _NON_ASCII.sub(_non_ascii_run, text.lower())


def normalize_text(text: str) -> str:
    """``text`` lower-cased, NFKC-normalised (non-ASCII, after its format characters are deleted), punctuation
    and symbols deleted, whitespace kept, characters of unspaced scripts set apart by spaces.

    Example:
        >>> normalize_text("Hello, World!")
        'hello world'
    """
    if text.isascii():
        return text.translate(_ASCII_STR)
    return _unicode_part(text).translate(_ASCII_STR)


def normalized_words(text: str) -> List[str]:
    """The normalised words of ``text`` (:func:`normalize_text`, split on whitespace)."""
    return normalize_text(text).split()


#: a non-ASCII character -> the UTF-8 bytes it becomes (lower case, then translated), ``b""`` when it is
#: deleted, ``None`` when it stays itself; ``_SLOW`` when text holding it takes the whole-text path,
#: ``_FORMAT_CHAR`` for a format character
_CHAR_BYTES: Dict[str, Optional[bytes]] = {}
_SLOW = b"\xff"
#: a format character: the text is normalised again without them (they are deleted before NFKC)
_FORMAT_CHAR = b"\xfe"
_MISSING = object()
_ASCII_BYTES = bytes(range(128))
#: a text needing more distinct characters replaced than this takes the whole-text path (CJK text)
_MAX_REPLACED = 24


def _char_bytes(ch: str) -> Optional[bytes]:
    got = _CHAR_BYTES.get(ch, _MISSING)
    if got is not _MISSING:
        return got  # type: ignore[return-value]
    if ch == "\u03a3":  # capital sigma: its lower case depends on the letters around it
        out: Optional[bytes] = _SLOW
    elif unicodedata.category(ch) == "Cf" or _ignorable(ord(ch)):
        out = _FORMAT_CHAR
    else:
        parts = []
        for c in ch.lower():
            t = c if c.isascii() else _translation(ord(c))
            parts.append(t or "")
        rep = "".join(parts)
        # the replacement must be final: any other non-ASCII character in it must stay itself
        final = all(c == ch or c.isascii() or (_translation(ord(c)) == c and c.lower() == c) for c in rep)
        if not final:
            out = _SLOW
        else:
            out = None if rep == ch else rep.encode("utf-8", "surrogatepass")
    with _UNICODE_LOCK:
        _CHAR_BYTES[ch] = out
    return out


def _encode_unicode(t: str) -> bytes:
    """:func:`normalized_bytes` for text with non-ASCII characters: NFKC, then each distinct non-ASCII character
    that changes is replaced in the UTF-8 bytes (few, in most text); text with many such characters (or a
    capital sigma) goes through :func:`_unicode_part` instead. The same bytes either way. Text where a format
    character stands before a combining mark (NFKC keeps them and makes none, so its result tells) is
    normalised again without them, so that it does not keep the mark from composing."""
    nfkc = unicodedata.normalize("NFKC", t)
    enc = nfkc.encode("utf-8", "surrogatepass")
    reps: Optional[List[Tuple[str, bytes]]] = []
    deleted_only = True  # every non-ASCII character is deleted (symbols, punctuation, U+FFFD)
    seen_format = False
    for ch in set(enc.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")):
        rep = _char_bytes(ch)
        if rep is _FORMAT_CHAR:  # deleted with the rest, unless one may have kept a mark from composing
            if not seen_format and _format_before_mark(nfkc):
                return _encode_unicode(drop_format(t))
            seen_format, rep = True, b""
        if rep is _SLOW:
            reps = None
            break
        if rep != b"":
            deleted_only = False
        if rep is not None:
            reps.append((ch, rep))
            if len(reps) > _MAX_REPLACED and not deleted_only:
                break
    if reps is not None and deleted_only:  # then the non-ASCII bytes are exactly theirs: one deleting pass
        return enc.translate(_BYTE_TABLE, _PUNCT_HIGH)
    if reps is None or len(reps) > _MAX_REPLACED:  # (the loop may have stopped before a format character)
        clean = drop_format(t)
        nfkc = nfkc if clean is t else unicodedata.normalize("NFKC", clean)
        return _unicode_part(nfkc, nfkc=True).encode("utf-8", "surrogatepass").translate(_BYTE_TABLE, _PUNCT)
    for ch, rep in reps:
        enc = enc.replace(ch.encode("utf-8", "surrogatepass"), rep)
    return enc.translate(_BYTE_TABLE, _PUNCT)


def normalized_bytes(t: Optional[str]) -> bytes:
    """The normalised UTF-8 bytes of ``t`` (``None``: no text), its words separated by NUL bytes (one or
    more); what :func:`~torchdataguard.decontam.ngrams.ngram_hashes` hashes.

    Example:
        >>> normalized_bytes("Don't PANIC -- ok")
        b'dont\\x00panic\\x00\\x00ok'
    """
    if not t:
        return b""
    if t.isascii():
        return t.encode("ascii").translate(_BYTE_TABLE, _PUNCT)
    return _encode_unicode(t)


def normalized_bytes_many(texts: Sequence[Optional[str]]) -> List[bytes]:
    """``[normalized_bytes(t) for t in texts]``, with ASCII text handled inline (no call per text).

    Example:
        >>> normalized_bytes_many(["A b", None, "\\u00e9"])
        [b'a\\x00b', b'', b'\\xc3\\xa9']
    """
    return [t.encode("ascii").translate(_BYTE_TABLE, _PUNCT) if t and t.isascii() else normalized_bytes(t)
            for t in texts]
