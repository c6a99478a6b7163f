"""Hashing primitives: content hashes and text/token shingles (MinHash signatures: :mod:`.minhash`).

Text shingling is vectorised with NumPy over a whole chunk of documents (no per-shingle Python work).

Normalisation for near-duplicates: NFKC (non-ASCII text only), lower case, the characters of
:data:`~.scripts.IGNORED_RANGES` left out (zero-width and other invisible format characters, Arabic tatweel and
harakat, Hebrew points), before NFKC and after it (:func:`~.scripts.near_text`: one between a letter and its
accent does not keep them from composing); punctuation, spaces and control characters separate tokens
(:mod:`.scripts`).
Script-aware tokens (``mode="auto"``): each character of a script written without spaces (Han, kana, Thai ...)
is a token, and so is each maximal run of other letters, digits and symbols (a word). A shingle is the window of ``char_ngram`` tokens starting at a Han, kana,
Bopomofo or Yi character, of ``abugida_ngram`` tokens starting at a Thai, Lao, Khmer, Myanmar, Tai, Javanese
or Balinese character (:data:`~.scripts.ABUGIDAS`: their vowel signs and tone marks are code points of their
own), or of ``ngram`` tokens starting at a word; a document without a complete window is one shingle.
:func:`shingles` gives the same shingles as strings.
"""
from __future__ import annotations

import hashlib
import re
import threading
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..core.mixing import np_mix64, np_powers
from .scripts import (ABUGIDA, CHAR, SEP, WORD, char_class, classes_of, near_text, nfkc, nfkc_visible,
                      unspaced_script)
from .token_hashing import SHINGLE_MUL, mix64, token_shingle_hashes
from .utf8norm import Decoded, decode_leads, normalized_utf8

__all__ = ["DEFAULT_ABUGIDA_NGRAM", "DEFAULT_CHAR_NGRAM", "TEXT_SHINGLES", "content_hash128", "mix64",
           "normalize_for_hash", "shingle_tokens", "shingles", "text_shingle_hashes", "token_shingle_hashes",
           "unspaced_script"]

#: ``text_shingles`` / ``mode`` values: script-aware, words only (before script-aware shingles), characters only
TEXT_SHINGLES = ("auto", "words", "chars")
#: character n-gram size for scripts written without spaces (measured: benchmarks/dedup_zh.py --sweep)
DEFAULT_CHAR_NGRAM = 5
#: character n-gram size for Thai, Lao, Khmer, Myanmar and the other :data:`~.scripts.ABUGIDAS` (a Thai word is
#: about five code points: 5-grams made distinct short Thai texts near-duplicates; measured in docs/dedup.md)
DEFAULT_ABUGIDA_NGRAM = 8

_U = np.uint64
_WORD = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789":
    _WORD[_c] = True
_WORD[128:] = True  # bytes of non-ASCII characters (already NFKC-normalised, lower-cased)
# byte -> its lower-case form when it is part of a word, else 0
_LOWER_WORD = np.where(_WORD, np.arange(256), 0).astype(np.uint8)
for _c in range(ord("A"), ord("Z") + 1):
    _LOWER_WORD[_c] = _c + 32
_LOWER_WORD_TABLE = _LOWER_WORD.tobytes()  # for bytes.translate, faster than a NumPy gather

_POLY = _U(0x100000001B3)  # FNV prime, an odd multiplier for the byte polynomial
_SHINGLE_MUL = SHINGLE_MUL
_pow_cache: np.ndarray = np.ones(1, dtype=_U)
_inv_cache: np.ndarray = np.ones(1, dtype=_U)


def normalize_for_hash(text: str) -> str:
    """NFKC (when the text is not ASCII), lower case, whitespace runs collapsed, ends stripped; invisible
    characters (zero-width space and joiners, soft hyphen, bidi marks, variation selectors, Hangul fillers ...:
    :data:`~.scripts.INVISIBLE_RANGES`) are removed first.

    Example:
        >>> normalize_for_hash("  Hello\\t\\nWORLD ")
        'hello world'
    """
    plain = text.isascii()
    low = (text if plain else nfkc_visible(text)).lower()
    if not plain and "\n" in low:  # Chinese text: often lines with no other spaces (same collapse below)
        low = low.replace("\n", " ")
    # a printable string's only whitespace is " " (tests check every code point): no double or end space, no split
    if low.isprintable() and "  " not in low and low[:1] != " " and low[-1:] != " ":
        return low
    return " ".join(low.split())


def content_hash128(data: str | bytes) -> bytes:
    """A 128-bit BLAKE2b digest (16 bytes).

    Example:
        >>> len(content_hash128("abc"))
        16
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()


def _powers(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """``_POLY**i`` and its modular inverse powers for i < n (mod 2**64), cached and grown as needed."""
    global _pow_cache, _inv_cache
    pw, inv = _pow_cache, _inv_cache  # read once: another thread may be replacing them (one, then the other)
    if pw.size < n or inv.size < n:  # grown by half again at least: a scan's next groups then fit
        m = max(n + n // 2, 2 * pw.size)  # (both tables made first, then the cache: never a new one with an old one)
        pw, inv = _pow_cache, _inv_cache = np_powers(int(_POLY), m), np_powers(pow(int(_POLY), -1, 1 << 64), m)
    return pw[:n], inv[:n]


_local = threading.local()


#: non-ASCII text as near-dedup shingles it: NFKC, lower case, the ignored characters left out (before NFKC and
#: after); ASCII text as it is (its callers lower-case it where they need to): :func:`~.scripts.near_text`
_near_text = near_text


def _scratch(n: int) -> np.ndarray:
    """A reused uint64 work array of length ``n``, one per thread (allocating ~30 MB per chunk, with its page
    faults, costs more than the arithmetic done in it)."""
    buf = getattr(_local, "scratch", None)
    if buf is None or buf.size < n:
        buf = _local.scratch = np.empty(max(n, 2 * (0 if buf is None else buf.size)), dtype=_U)
    return buf[:n]


def _tokens(raw: bytes, mode: str, *, ascii: bool = False,
            decoded: Optional[Decoded] = None) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``(buf, starts, kind)``: the word bytes of ``raw`` (lower-cased, 0 elsewhere), the byte offsets where
    tokens start and, where some token is a character token, the class of each token (uint8:
    :data:`~.scripts.WORD`, :data:`~.scripts.CHAR` or :data:`~.scripts.ABUGIDA`; ``mode="chars"``: all
    :data:`~.scripts.CHAR`) (``ascii``: ``raw`` is known to hold ASCII only, so no multi-byte character needs decoding; ``decoded``: its multi-byte characters,
    :data:`~.utf8norm.Decoded`, when the caller has them)."""
    L = len(raw)
    buf = np.frombuffer(raw.translate(_LOWER_WORD_TABLE), dtype=np.uint8)
    char_lead: Optional[np.ndarray] = None
    char_end: Optional[np.ndarray] = None
    char_cls: Optional[np.ndarray] = None
    b = np.frombuffer(raw, dtype=np.uint8)
    if mode != "words" and not ascii:
        lead, cp, nb = decoded if decoded is not None else (np.flatnonzero(b >= 0xC0), None, None)
        if lead.size:
            if cp is None or nb is None:
                cp, nb = decode_leads(raw, lead)
            cls = classes_of(cp)
            sep = cls == SEP
            if sep.any():  # punctuation and spaces outside ASCII fold away like ASCII ones
                buf = buf.copy()
                s, n = lead[sep], nb[sep]
                buf[s] = 0
                buf[s + 1] = 0
                buf[s[n >= 3] + 2] = 0
                buf[s[n == 4] + 3] = 0
            ch = np.flatnonzero(cls >= CHAR)
            char_lead, char_end, char_cls = lead[ch], lead[ch] + nb[ch], cls[ch]
    isw = buf.astype(bool)
    st = np.empty(L, dtype=bool)
    if L:
        st[0] = isw[0]
        np.greater(isw[1:], isw[:-1], out=st[1:])  # a word starts where a word byte follows a non-word byte
    if mode == "chars":  # every character with word bytes is a token (its lead byte, or an ASCII byte)
        st = isw & ((b < 0x80) | (b >= 0xC0))
        starts = np.flatnonzero(st)
        return buf, starts, np.full(starts.size, CHAR, dtype=np.uint8)
    if char_lead is not None and char_end is not None and char_lead.size:
        st[char_lead] = True  # each character of an unspaced script is a token, and so is what follows it
        after = char_end[char_end < L]
        st[after] = isw[after]
        marker = np.full(L, WORD, dtype=np.uint8)
        marker[char_lead] = char_cls
        starts = np.flatnonzero(st)
        return buf, starts, marker[starts]
    return buf, np.flatnonzero(st), None


def _windows(wh: np.ndarray, wdoc: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Hashes of the ``n``-token windows starting at each token, and whether each lies inside one document."""
    m = max(0, wh.size - n + 1)
    if m == 0:
        return np.zeros(0, dtype=_U), np.zeros(0, dtype=bool)
    with np.errstate(over="ignore"):
        acc = wh[:m] * _SHINGLE_MUL[0]
        for k in range(1, n):
            acc += wh[k : k + m] * _SHINGLE_MUL[k % len(_SHINGLE_MUL)]
        acc += _U(n * (n - 1) // 2)
    return acc, wdoc[:m] == wdoc[n - 1 :]


#: text hashed in one vectorised pass: a chunk's texts are cut into groups of whole texts of at most this many UTF-8 bytes
#: (an ASCII character counted as one, any other as three; a longer text is a group of its own), so the work arrays and
#: the cached powers follow the group, not the chunk (fresh memory is slow to touch: docs/speed.md, "Chinese scan")
GROUP_CHARS = 1 << 19


def text_shingle_hashes(texts: Sequence[str], ngram: int = 5, *, char_ngram: int = DEFAULT_CHAR_NGRAM,
                        mode: str = "auto",
                        abugida_ngram: int = DEFAULT_ABUGIDA_NGRAM) -> Tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the shingles of each text (see :func:`shingles` for what a shingle is).

    ``mode``: ``"auto"`` (script-aware: a shingle starting on a character of a script written without spaces
    is ``char_ngram`` consecutive tokens, ``abugida_ngram`` for Thai, Lao, Khmer, Myanmar ..., one starting on a
    word ``ngram`` tokens), ``"chars"`` (every
    letter or digit is a token, shingles are ``char_ngram`` of them) or ``"words"`` (word ``ngram``-grams
    where a word is a run of ASCII letters and digits or of any non-ASCII characters: a run of Han
    characters between punctuation is one word; the shingles of versions before script-aware shingling).

    Returns ``(hashes, doc)``: ``hashes`` is uint64 of shape [S] and ``doc[s]`` is the index of the text
    that shingle ``s`` belongs to. Every text gets at least one shingle (a text with no complete window is
    one shingle of all its tokens; a text with no tokens one shingle of its normalised characters).

    Example:
        >>> h, d = text_shingle_hashes(["a b c d e f", "x"], ngram=5)
        >>> d.tolist()
        [0, 0, 1]
        >>> h, d = text_shingle_hashes(["数据去重测试", "数据去重"], ngram=5)
        >>> d.tolist()
        [0, 0, 1]
    """
    if mode not in TEXT_SHINGLES:
        raise ValueError(f"mode={mode!r}: expected one of {TEXT_SHINGLES}")
    parts: List[Tuple[int, Sequence[str]]] = []
    a = size = 0
    for b, t in enumerate(texts):
        n = len(t) if t.isascii() else 3 * len(t)
        if size and size + n > GROUP_CHARS:
            parts.append((a, texts[a:b]))
            a, size = b, 0
        size += n
    parts.append((a, texts[a:]))
    if len(parts) == 1:
        return _ascii_apart(texts, ngram, char_ngram, mode, abugida_ngram)
    done = [(a, _ascii_apart(group, ngram, char_ngram, mode, abugida_ngram)) for a, group in parts]
    return np.concatenate([h for _, (h, _) in done]), np.concatenate([d + a for a, (_, d) in done])


def _ascii_apart(texts: Sequence[str], *args: Any) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`_shingle_group`, the ASCII texts apart when under 1 in 8 are not (one sends its group through NFKC);
    a document's shingles do not depend on its group, only their order does, which no consumer reads."""
    plain = np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))
    few = len(texts) - int(np.count_nonzero(plain))
    if not few or 8 * few > len(texts):
        return _shingle_group(texts, *args)
    a, o = np.flatnonzero(plain), np.flatnonzero(~plain)
    (ha, da), (ho, do) = (_shingle_group([texts[i] for i in ix.tolist()], *args) for ix in (a, o))
    return np.concatenate([ha, ho]), np.concatenate([a[da], o[do]])


def _shingle_group(texts: Sequence[str], ngram: int, char_ngram: int, mode: str,
                   abugida_ngram: int = DEFAULT_ABUGIDA_NGRAM) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`text_shingle_hashes` of one group of texts, in one vectorised pass."""
    n_docs = len(texts)
    if n_docs == 0:
        return np.zeros(0, dtype=_U), np.zeros(0, dtype=np.int64)
    # ASCII texts are lower-cased by the byte table; others are NFKC-normalised and lower-cased here
    # (one encode for the group: the UTF-8 of the joined texts is the join of their UTF-8)
    joined = "\x00".join(texts)
    ascii = joined.isascii()
    decoded: Optional[Decoded] = None
    if ascii:
        raw = joined.encode("ascii")
        lens = np.fromiter(map(len, texts), dtype=np.int64, count=n_docs)
    elif joined.count("\x00") == n_docs - 1:  # no text holds a NUL: the NULs of the join end the documents
        raw, decoded = normalized_utf8(texts, joined)
        ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 0)
        lens = np.diff(ends, prepend=-1, append=len(raw)) - 1
    else:
        norm = [_near_text(t) for t in texts]
        raw = "\x00".join(norm).encode("utf-8", "surrogatepass")
        lens = np.fromiter((len(t.encode("utf-8", "surrogatepass")) for t in norm), dtype=np.int64, count=n_docs)
    L = len(raw)
    buf, starts, kind = _tokens(raw, mode, ascii=ascii, decoded=decoded)
    doc_start = np.zeros(n_docs, dtype=np.int64)
    if n_docs > 1:
        doc_start[1:] = np.cumsum(lens[:-1] + 1)
    # word hash = sum_j b_j * P^(j - start): non-word bytes are 0 in buf, so the sum from one token's start to the
    # next token's start is exactly the token's sum (one reduceat pass, no prefix sums or token ends needed)
    pw, inv = _powers(L + 1)
    with np.errstate(over="ignore"):
        csum = np.cumsum(np.multiply(pw[:L], buf, out=_scratch(L)), out=_scratch(L))
        # bytes before the first token are not word bytes (0), so the sum of token i is the prefix sum at its
        # last byte minus the prefix sum at token i - 1's last byte (wrapping arithmetic: exact mod 2**64)
        wh = csum[np.append(starts[1:], L) - 1] if starts.size else np.zeros(0, dtype=_U)
        wh[1:] -= wh[:-1].copy()
        wh *= inv[starts]
    # no per-token mixing: shingles are odd-weighted sums of token hashes, mixed by minhash_signatures
    first_word = np.searchsorted(starts, doc_start)
    n_words = np.diff(first_word, append=starts.size)
    wdoc = np.repeat(np.arange(n_docs, dtype=np.int64), n_words)
    out_h: List[np.ndarray] = []
    out_d: List[np.ndarray] = []
    # a window is as long as its first token asks: words ngram, characters char_ngram, Thai ... abugida_ngram
    # (kinds of the same length share one pass, in this order)
    size = {WORD: ngram, CHAR: char_ngram, ABUGIDA: abugida_ngram}
    present = [WORD] if kind is None else [CHAR] if mode == "chars" else [k for k in size if (kind == k).any()]
    lengths = list(dict.fromkeys(size[k] for k in present))
    for n in lengths:
        acc, valid = _windows(wh, wdoc, n)
        if len(lengths) > 1 and kind is not None:
            valid &= np.isin(kind[: acc.size], [k for k in present if size[k] == n])
        out_h.append(acc[valid])
        out_d.append(wdoc[: acc.size][valid])
    has = np.zeros(n_docs, dtype=bool)
    for d in out_d:
        has[d] = True
    short = np.flatnonzero(~has)
    if short.size:
        out_h.append(np_mix64(_whole_text_hashes(wh, n_words, short, raw, doc_start, lens)))
        out_d.append(short.astype(np.int64))
    hashes = np.concatenate(out_h) if out_h else np.zeros(0, dtype=_U)
    doc = np.concatenate(out_d) if out_d else np.zeros(0, dtype=np.int64)
    return hashes, doc.astype(np.int64, copy=False)


_MUL = np.array(_SHINGLE_MUL, dtype=_U)


def _whole_text_hashes(wh: np.ndarray, n_words: np.ndarray, short: np.ndarray, raw: bytes, doc_start: np.ndarray,
                       lens: np.ndarray) -> np.ndarray:
    """The one shingle of each document of ``short`` (no complete window), before mixing: the weighted sum of
    all its token hashes plus its token count times a constant, or, for a document without tokens, the first
    8 bytes of the BLAKE2b digest of its normalised UTF-8 (``raw[doc_start[d]:doc_start[d] + lens[d]]``)."""
    cnt = n_words[short]
    first = (np.cumsum(n_words) - n_words)[short]
    out = np.empty(short.size, dtype=_U)
    has = np.flatnonzero(cnt > 0)
    if has.size:
        c = cnt[has]
        off = np.cumsum(c) - c
        k = np.arange(int(c.sum())) - np.repeat(off, c)  # position of each token in its document
        with np.errstate(over="ignore"):
            terms = wh[np.repeat(first[has], c) + k] * _MUL[k % _MUL.size]
            out[has] = np.add.reduceat(terms, off) + c.astype(_U) * _U(0x632BE59BD9B4E019)
    for i in np.flatnonzero(cnt == 0).tolist():  # no word characters at all: hash the normalised characters
        a = int(doc_start[short[i]])
        out[i] = np.frombuffer(content_hash128(raw[a : a + int(lens[short[i]])])[:8], dtype=_U)[0]
    return out


_LEGACY_WORD = re.compile(r"[a-z0-9\u0080-\U0010ffff]+")


def shingle_tokens(text: str, *, mode: str = "auto") -> List[str]:
    """The tokens :func:`text_shingle_hashes` shingles, as strings (for tools that need the same shingles).

    NFKC (non-ASCII text), lower case; then, for ``mode="auto"``, each letter, mark or digit of a script written
    without spaces (Han, kana, Thai ...; :func:`~torchdataguard.dedup.scripts.unspaced_script`) is a token, runs
    of other letters, digits and symbols are words, and punctuation and spaces (``。、「」“”`` as well as
    ``.,"``) separate tokens and are left out. ``"chars"``: every letter, digit or symbol is a token.
    ``"words"``: runs of ASCII letters and digits or of non-ASCII characters.

    Example:
        >>> shingle_tokens("Ｐｙｔｈｏｎ是一种语言。")
        ['python', '是', '一', '种', '语', '言']
        >>> shingle_tokens("Ｐｙｔｈｏｎ是一种语言。", mode="words")
        ['python是一种语言。']
    """
    if mode not in TEXT_SHINGLES:
        raise ValueError(f"mode={mode!r}: expected one of {TEXT_SHINGLES}")
    t = text.lower() if text.isascii() else _near_text(text)
    if mode == "words":
        return _LEGACY_WORD.findall(t)
    out: List[str] = []
    cur: List[str] = []
    for ch in t:
        c = char_class(ch)
        if c == WORD and mode == "auto":
            cur.append(ch)
            continue
        if cur:
            out.append("".join(cur))
            cur = []
        if c != SEP:
            out.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def shingles(text: str, *, ngram: int = 5, char_ngram: int = DEFAULT_CHAR_NGRAM, mode: str = "auto",
             abugida_ngram: int = DEFAULT_ABUGIDA_NGRAM) -> List[str]:
    """The shingles of ``text`` as strings (tokens joined by a space), in order, repeats included.

    A shingle is the window of tokens (:func:`shingle_tokens`) starting at each token: ``char_ngram`` tokens
    when it starts on a Han, kana, Bopomofo or Yi character (or any token with ``mode="chars"``),
    ``abugida_ngram`` when it starts on a Thai, Lao, Khmer, Myanmar ... character, ``ngram`` when it starts
    on a word, so Chinese text gets character n-grams, English text word n-grams, and mixed
    text both. Windows that would run past the end are left out; a text with no complete window is one
    shingle of all its tokens, and a text without tokens one shingle of its normalised characters. The
    Jaccard similarity of two texts' shingle sets is what :class:`~torchdataguard.NearDedup` compares with
    its threshold (these strings hash to the values of :func:`text_shingle_hashes`' sets one for one).

    Example:
        >>> shingles("数据去重测试", char_ngram=5)
        ['数 据 去 重 测', '据 去 重 测 试']
        >>> shingles("the quick brown fox", ngram=2)
        ['the quick', 'quick brown', 'brown fox']
    """
    toks = shingle_tokens(text, mode=mode)
    if not toks:
        return [_near_text(text)]
    out: List[str] = []
    for i, tok in enumerate(toks):
        cls = char_class(tok) if mode == "auto" and len(tok) == 1 else WORD
        n = char_ngram if mode == "chars" or cls == CHAR else abugida_ngram if cls == ABUGIDA else ngram
        if i + n <= len(toks):
            out.append(" ".join(toks[i : i + n]))
    return out or [" ".join(toks)]
