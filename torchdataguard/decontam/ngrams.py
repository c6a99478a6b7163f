"""Normalised words and their n-gram hashes, as the GPT-3 contamination check defines them.

Normalisation (GPT-3, appendix C; lm-evaluation-harness's ``janitor``): lower case, punctuation removed
(deleted, so ``don't`` is ``dont``), words split on whitespace. Here "punctuation" is every character of
the Unicode categories P (punctuation) and S (symbols) -- for ASCII exactly :data:`string.punctuation` --
and non-ASCII text is NFKC-normalised first.

Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan) have no words
to split on, so each of their characters is a word of its own: a 13-gram of Chinese text is 13 characters.
This is a simple script check by code point block (:func:`is_unspaced`), made here so that the stage needs
nothing from the multilingual work.

:func:`ngram_hashes` hashes the n-grams of a whole chunk of texts with NumPy (no per-word Python work);
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

import numpy as np

from ..core.mixing import np_mix64

__all__ = ["NgramHashes", "is_unspaced", "ngram_hashes", "normalize_text", "normalized_words"]

_U = np.uint64
_BASE = _U(0x100000001B3)
_powers: Dict[str, np.ndarray] = {"p": np.ones(1, dtype=_U), "inv": np.ones(1, dtype=_U)}
_pow_lock = threading.Lock()
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


def _translation(c: int) -> Optional[str]:
    """What character ``c`` becomes: punctuation and symbols deleted, whitespace (and NUL) a space, a
    character of an unspaced script surrounded by spaces, anything else itself."""
    ch = chr(c)
    if unicodedata.category(ch)[0] in "PS":
        return None
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
_ASTRAL = _AstralTable()
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


def _non_ascii_run(m: "re.Match[str]") -> str:
    run = m.group()
    if max(run) <= "\uffff":
        return run.translate(_BMP)
    with _UNICODE_LOCK:  # the table grows while it is used
        return run.translate(_ASTRAL)


def _unicode_part(text: str) -> str:
    """NFKC, lower case, and the non-ASCII characters translated (ASCII ones are left to the caller)."""
    if not _BMP:
        with _UNICODE_LOCK:
            if not _BMP:
                _BMP.extend(_translation(c) for c in range(0x10000))
    return _NON_ASCII.sub(_non_ascii_run, unicodedata.normalize("NFKC", text).lower())


def normalize_text(text: str) -> str:
    """``text`` lower-cased, NFKC-normalised (non-ASCII), punctuation and symbols deleted, whitespace kept,
    characters of unspaced scripts set apart by spaces.

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


def _power_tables(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """``_BASE**i`` and its inverse powers mod 2**64 for ``i < n`` (grown and cached)."""
    with _pow_lock:
        if _powers["p"].size < n:
            m = max(n, 2 * _powers["p"].size)
            inv = _U(pow(int(_BASE), -1, 1 << 64))
            p = np.full(m, _BASE, dtype=_U)
            q = np.full(m, inv, dtype=_U)
            p[0] = q[0] = 1
            with np.errstate(over="ignore"):
                _powers["p"], _powers["inv"] = np.cumprod(p, dtype=_U), np.cumprod(q, dtype=_U)
        return _powers["p"][:n], _powers["inv"][:n]


class NgramHashes:
    """The n-gram hashes of a chunk of texts: ``hashes`` (int64) with ``offsets`` (text ``i`` owns
    ``hashes[offsets[i]:offsets[i + 1]]``, its n-grams in order: the one starting at word ``p`` is at
    ``offsets[i] + p``), and each text's normalised UTF-8 bytes with words separated by NUL bytes
    (``normalized``), so that a hit can be verified where the text itself is not at hand (DataLoader
    workers send the main process keys, not records). Picklable; :meth:`take` selects texts (the guard's
    key contract)."""

    def __init__(self, hashes: np.ndarray, offsets: np.ndarray, normalized: Optional[List[bytes]] = None) -> None:
        self.hashes = hashes
        self.offsets = offsets
        self.normalized = normalized if normalized is not None else [b""] * (int(offsets.size) - 1)

    def words(self, i: int) -> List[bytes]:
        """The normalised words of text ``i`` (UTF-8)."""
        return [w for w in self.normalized[i].split(b"\x00") if w]

    def __len__(self) -> int:
        return int(self.offsets.size) - 1

    def take(self, idx: Sequence[int]) -> "NgramHashes":
        idx = np.asarray(list(idx), dtype=np.int64)
        if idx.size == 0:
            return NgramHashes(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), [])
        a, b = self.offsets[idx], self.offsets[idx + 1]
        lens = b - a
        out_off = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lens, out=out_off[1:])
        pos = np.repeat(a - out_off[:-1], lens) + np.arange(int(out_off[-1]), dtype=np.int64)
        return NgramHashes(self.hashes[pos], out_off, [self.normalized[i] for i in idx.tolist()])


def ngram_hashes(texts: Sequence[Optional[str]], ngram: int) -> NgramHashes:
    """64-bit hashes of the normalised word ``ngram``-grams of each text (a text with fewer words has none;
    ``None`` is a text without words).

    Example:
        >>> h = ngram_hashes(["a b c", "A, b! C", "a b"], 3)
        >>> h.offsets.tolist(), bool(h.hashes[0] == h.hashes[1])
        ([0, 1, 2, 2], True)
    """
    encoded = []
    for t in texts:
        if not t:
            encoded.append(b"")
        elif t.isascii():
            encoded.append(t.encode("ascii").translate(_BYTE_TABLE, _PUNCT))
        else:
            encoded.append(_unicode_part(t).encode("utf-8", "surrogatepass").translate(_BYTE_TABLE, _PUNCT))
    n_docs = len(encoded)
    raw = b"\x00".join(encoded)
    L = len(raw)
    buf = np.frombuffer(raw, dtype=np.uint8)
    isw = buf != 0
    st = np.empty(L, dtype=bool)
    if L:
        st[0] = isw[0]
        np.greater(isw[1:], isw[:-1], out=st[1:])  # a word starts where a word byte follows a boundary
    starts = np.flatnonzero(st)
    pw, inv = _power_tables(L + 1)
    with np.errstate(over="ignore"):
        # sum of b_j * BASE^j from one word's start to the next word's start is that word's sum (boundaries are 0)
        wh = np.add.reduceat(pw[:L] * buf, starts) if starts.size else np.zeros(0, dtype=_U)
        wh = np_mix64(wh * inv[starts])
    lens = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n_docs)
    doc_start = np.zeros(n_docs, dtype=np.int64)
    if n_docs > 1:
        np.cumsum(lens[:-1] + 1, out=doc_start[1:])
    first_word = np.searchsorted(starts, doc_start)
    words_per_doc = np.diff(first_word, append=starts.size)
    grams_per_doc = np.maximum(words_per_doc - ngram + 1, 0)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(grams_per_doc, out=offsets[1:])
    W = wh.size
    if W < ngram or offsets[-1] == 0:
        return NgramHashes(np.zeros(0, dtype=np.int64), offsets, encoded)
    m = W - ngram + 1
    with np.errstate(over="ignore"):
        # the n-gram at word i: sum of wh[i + k] * BASE^k, from prefix sums of wh[j] * BASE^j (W <= L)
        pre = np.zeros(W + 1, dtype=_U)
        np.cumsum(wh * pw[:W], out=pre[1:])
        acc = (pre[ngram:] - pre[:m]) * inv[:m]
    # the n-gram starting at word w is valid when its last word is in the same text
    wdoc = np.repeat(np.arange(n_docs, dtype=np.int64), words_per_doc)
    valid = wdoc[:m] == wdoc[ngram - 1 :]
    return NgramHashes(np_mix64(acc[valid]).view(np.int64), offsets, encoded)
