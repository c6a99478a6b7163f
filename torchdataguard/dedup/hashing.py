"""Hashing primitives: content hashes and word/token shingles (MinHash signatures: :mod:`.minhash`).

Text shingling is vectorised with NumPy over a whole chunk of documents (no per-shingle Python work).

Normalisation for near-duplicates: NFKC (non-ASCII text only), lower case, and words are maximal runs
of ASCII letters and digits or non-ASCII characters; everything else (punctuation, whitespace) separates
words. A shingle is ``ngram`` consecutive words; a document shorter than ``ngram`` words is one shingle.
"""
from __future__ import annotations

import hashlib
import threading
import unicodedata
from typing import List, Sequence, Tuple

import numpy as np
import torch

__all__ = ["content_hash128", "mix64", "normalize_for_hash", "text_shingle_hashes", "token_shingle_hashes"]

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
_SHINGLE_MUL = [_U(0x9E3779B97F4A7C15), _U(0xC2B2AE3D27D4EB4F), _U(0x165667B19E3779F9), _U(0xD6E8FEB86659FD93),
                _U(0xFF51AFD7ED558CCD), _U(0xC4CEB9FE1A85EC53), _U(0x94D049BB133111EB), _U(0xBF58476D1CE4E5B9)]
_pow_cache: np.ndarray = np.ones(1, dtype=_U)
_inv_cache: np.ndarray = np.ones(1, dtype=_U)


def normalize_for_hash(text: str) -> str:
    """NFKC (when the text is not ASCII), lower case, whitespace runs collapsed, ends stripped.

    Example:
        >>> normalize_for_hash("  Hello\\t\\nWORLD ")
        'hello world'
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.lower().split())


def content_hash128(data: str | bytes) -> bytes:
    """A 128-bit BLAKE2b digest (16 bytes).

    Example:
        >>> len(content_hash128("abc"))
        16
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()


def _np_mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U(30))
        x = x * _U(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U(27))
        x = x * _U(0x94D049BB133111EB)
        x = x ^ (x >> _U(31))
    return x


def _powers(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """``_POLY**i`` and its modular inverse powers for i < n (mod 2**64), cached and grown as needed."""
    global _pow_cache, _inv_cache
    if _pow_cache.size < n:
        m = max(n, 2 * _pow_cache.size)
        inv = _U(pow(int(_POLY), -1, 1 << 64))
        with np.errstate(over="ignore"):
            p = np.empty(m, dtype=_U)
            p[0] = 1
            p[1:] = _POLY
            q = np.empty(m, dtype=_U)
            q[0] = 1
            q[1:] = inv
            _pow_cache = np.cumprod(p, dtype=_U)
            _inv_cache = np.cumprod(q, dtype=_U)
    return _pow_cache[:n], _inv_cache[:n]


_local = threading.local()


def _scratch(n: int) -> np.ndarray:
    """A reused uint64 work array of length ``n``, one per thread (allocating ~30 MB per chunk, with its page
    faults, costs more than the arithmetic done in it)."""
    buf = getattr(_local, "scratch", None)
    if buf is None or buf.size < n:
        buf = _local.scratch = np.empty(max(n, 2 * (0 if buf is None else buf.size)), dtype=_U)
    return buf[:n]


#: characters of text hashed in one vectorised pass: a chunk's texts are cut into groups of whole texts of at most
#: this many characters (a longer text is a group of its own), so the work arrays and the cached powers follow
#: the group, not the chunk (1,024 texts of 20 KB would otherwise cost about 0.5 GB of arrays, and fresh memory
#: is slow to touch)
GROUP_CHARS = 1 << 19


def text_shingle_hashes(texts: Sequence[str], ngram: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the word ``ngram``-shingles of each text.

    Returns ``(hashes, doc)``: ``hashes`` is uint64 of shape [S] and ``doc[s]`` is the index of the text
    that shingle ``s`` belongs to. Every text gets at least one shingle (a text with no words is one
    shingle of its normalised characters). The texts of at least ``ngram`` words come first, in order, then
    the shorter ones, in order, whatever the grouping (:data:`GROUP_CHARS`).

    Example:
        >>> h, d = text_shingle_hashes(["a b c d e f", "x"], ngram=5)
        >>> d.tolist()
        [0, 0, 1]
    """
    n_docs = len(texts)
    if n_docs == 0:
        return np.zeros(0, dtype=_U), np.zeros(0, dtype=np.int64)
    parts: List[Tuple[int, Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = []
    a = size = 0
    for b, t in enumerate(texts):
        if size and size + len(t) > GROUP_CHARS:
            parts.append((a, _shingle_group(texts[a:b], ngram)))
            a, size = b, 0
        size += len(t)
    parts.append((a, _shingle_group(texts[a:], ngram)))
    if len(parts) == 1:
        lh, ld, sh, sd = parts[0][1]
        return np.concatenate([lh, sh]), np.concatenate([ld, sd])
    hashes = np.concatenate([p[0] for _, p in parts] + [p[2] for _, p in parts])
    doc = np.concatenate([p[1] + a for a, p in parts] + [p[3] + a for a, p in parts])
    return hashes, doc


def _shingle_group(texts: Sequence[str], ngram: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shingle hashes and text positions of ``texts`` in one pass: ``(hashes, doc)`` of the texts of at least
    ``ngram`` words, then ``(hashes, doc)`` of the shorter ones (``texts`` is not empty)."""
    n_docs = len(texts)
    # ASCII texts are lower-cased by the byte table below; others are NFKC-normalised and lower-cased here
    ascii_ = [t.isascii() for t in texts]
    norm = [t if a else unicodedata.normalize("NFKC", t).lower() for t, a in zip(texts, ascii_)]
    encoded = [t.encode("utf-8", "surrogatepass") for t in norm]
    raw = b"\x00".join(encoded)
    lens = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n_docs)
    L = len(raw)
    buf = np.frombuffer(raw.translate(_LOWER_WORD_TABLE), dtype=np.uint8)  # lower-cased word bytes, 0 elsewhere
    doc_start = np.zeros(n_docs, dtype=np.int64)
    if n_docs > 1:
        doc_start[1:] = np.cumsum(lens[:-1] + 1)
    isw = buf.astype(bool)
    st = np.empty(L, dtype=bool)
    if L:
        st[0] = isw[0]
        np.greater(isw[1:], isw[:-1], out=st[1:])  # a word starts where a word byte follows a non-word byte
    starts = np.flatnonzero(st)
    # word hash = sum_j b_j * P^(j - start): non-word bytes are 0 in buf, so the sum from one word's start to the
    # next word's start is exactly the word's sum (one reduceat pass, no prefix sums or word ends needed)
    pw, inv = _powers(L + 1)
    with np.errstate(over="ignore"):
        contrib = np.multiply(pw[:L], buf, out=_scratch(L))
        wh = np.add.reduceat(contrib, starts) if starts.size else np.zeros(0, dtype=_U)
        wh *= inv[starts]
    # no per-word mixing: shingles are odd-weighted sums of word hashes, mixed by minhash_signatures
    first_word = np.searchsorted(starts, doc_start)
    words_per_doc = np.diff(first_word, append=starts.size)
    wdoc = np.repeat(np.arange(n_docs, dtype=np.int64), words_per_doc)
    n_words = words_per_doc
    out_h: List[np.ndarray] = [np.zeros(0, dtype=_U)]
    out_d: List[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    W = wh.size
    if W >= ngram:
        m = W - ngram + 1
        with np.errstate(over="ignore"):
            acc = wh[:m] * _SHINGLE_MUL[0]
            for k in range(1, ngram):
                acc += wh[k : k + m] * _SHINGLE_MUL[k % len(_SHINGLE_MUL)]
            acc += _U(ngram * (ngram - 1) // 2)
        valid = wdoc[:m] == wdoc[ngram - 1 :]
        out_h.append(acc[valid])
        out_d.append(wdoc[:m][valid])
    short = np.flatnonzero(n_words < ngram)
    if short.size:
        word_off = np.concatenate([[0], np.cumsum(n_words)])
        extra_h = np.empty(short.size, dtype=_U)
        for i, d in enumerate(short.tolist()):
            a, b = word_off[d], word_off[d + 1]
            if b > a:
                with np.errstate(over="ignore"):
                    mul = np.array([_SHINGLE_MUL[k % len(_SHINGLE_MUL)] for k in range(b - a)], dtype=_U)
                    extra_h[i] = (wh[a:b] * mul).sum(dtype=_U) + _U(b - a) * _U(0x632BE59BD9B4E019)
            else:  # no word characters at all: hash the normalised characters
                extra_h[i] = np.frombuffer(content_hash128(encoded[d])[:8], dtype=_U)[0]
        return out_h[-1], out_d[-1].astype(np.int64, copy=False), _np_mix64(extra_h), short.astype(np.int64)
    return out_h[-1], out_d[-1].astype(np.int64, copy=False), np.zeros(0, dtype=_U), np.zeros(0, dtype=np.int64)


_M1 = -0x40A7B892E31B1A47  # 0xBF58476D1CE4E5B9 as a signed int64
_M2 = -0x6B2FB644ECCEEE15  # 0x94D049BB133111EB as a signed int64


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 tensors."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic, any device)."""
    x = x ^ _srl(x, 30)
    x = x * _M1
    x = x ^ _srl(x, 27)
    x = x * _M2
    return x ^ _srl(x, 31)


def token_shingle_hashes(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         ngram: int = 5) -> Tuple[torch.Tensor, torch.Tensor]:
    """64-bit hashes of token-id ``ngram``-shingles, on the tensors' device.

    Padding (``attention_mask == 0``) is ignored; a sequence shorter than ``ngram`` tokens is one shingle.

    Example:
        >>> h, d = token_shingle_hashes(torch.tensor([[1, 2, 3, 4, 5, 6]]), ngram=5)
        >>> d.tolist()
        [0, 0]
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape [batch, seq], got {tuple(input_ids.shape)}")
    ids = input_ids.to(torch.int64)
    n, T = ids.shape
    dev = ids.device
    if attention_mask is None:
        mask = torch.ones_like(ids, dtype=torch.bool)
    else:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids "
                             f"shape {tuple(input_ids.shape)}")
        mask = attention_mask.to(torch.bool)
    th = mix64(ids * 0x9E3779B97F4A7C1 + 0x632BE59BD9B4E019)
    th = torch.where(mask, th, torch.zeros_like(th))
    lengths = mask.sum(1)
    muls = torch.from_numpy(np.array(_SHINGLE_MUL, dtype=_U).view(np.int64)).to(dev)
    hs: List[torch.Tensor] = []
    ds: List[torch.Tensor] = []
    if T >= ngram:
        win = th.unfold(1, ngram, 1)  # [n, T-ngram+1, ngram]
        wm = mask.unfold(1, ngram, 1).all(-1)
        k = torch.arange(ngram, device=dev)
        acc = (win * muls[k % muls.numel()]).sum(-1) + k.sum()
        hs.append(acc[wm])
        ds.append(torch.nonzero(wm)[:, 0])
    short = lengths < ngram
    if bool(short.any()):
        k = torch.arange(T, device=dev)
        acc = (th[short] * muls[k % muls.numel()]).sum(-1) + lengths[short] * 0x632BE59BD9B4E019
        hs.append(mix64(acc))
        ds.append(torch.nonzero(short).flatten())
    return torch.cat(hs), torch.cat(ds)
