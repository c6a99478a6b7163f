"""The evaluation-set index: every n-gram of every item, built once, queried on the guard's device.

Layout (U distinct n-grams, P distinct (n-gram, item) pairs, I items):

* ``hashes``: the sorted distinct 64-bit n-gram hashes, an int64 tensor [U] on the device (the hash set);
* ``table``: a bit set of 2**B bits (at least 32 per n-gram: 4 to 8 bytes per n-gram), packed in int64
  words; each n-gram sets two bits of one word (the word and the first bit from its low hash bits, the
  second bit from its top 6 bits), so all but a few in a thousand training n-grams absent from the set are
  rejected by one gather before the binary search (``torch.searchsorted`` on a GPU; on the CPU the same
  test and search run in NumPy, :meth:`EvalIndex.query`);
* ``ptr`` [U+1] and ``pair_item`` [P] (NumPy): the items holding each n-gram;
* ``rep_item``, ``rep_pos`` [U]: where each n-gram first occurs (item, word), to verify a hit exactly;
* ``words``: each item's normalised words (UTF-8) joined by single spaces.

A hit is a training n-gram whose hash is in the set; the stage verifies it against the item's words
before it counts (:meth:`EvalIndex.ngram_text`), so a hash collision can never drop a document.

Example:
    >>> import torch
    >>> ix = EvalIndex.build([["the cat sat on the mat today"]], ngram=3, device="cpu")
    >>> ix.n_ngrams, ix.item_ngrams.tolist()
    (5, [5])
"""
from __future__ import annotations

import hashlib
from typing import List, Sequence, Tuple

import numpy as np
import torch

from .ngrams import ngram_hashes

__all__ = ["EvalIndex"]


class EvalIndex:
    """The n-grams of a list of benchmarks' items (see the module docstring); build with :meth:`build`."""

    def __init__(self) -> None:
        self.ngram = 13
        self.device = torch.device("cpu")
        self.hashes = torch.zeros(0, dtype=torch.int64)
        self.table = torch.zeros(1, dtype=torch.int64)
        self.mask = 0
        self.ptr = np.zeros(1, dtype=np.int64)
        self.pair_item = np.zeros(0, dtype=np.int32)
        self.rep_item = np.zeros(0, dtype=np.int32)
        self.rep_pos = np.zeros(0, dtype=np.int32)
        #: per item (global numbering over all benchmarks): its benchmark, distinct n-gram count, words
        self.item_bench = np.zeros(0, dtype=np.int32)
        self.item_ngrams = np.zeros(0, dtype=np.int64)
        self.words: List[bytes] = []
        #: per distinct n-gram: the benchmarks holding it (bit b = benchmark b), for per-benchmark counts
        self.ngram_benches = np.zeros(0, dtype=np.int64)
        self.digest = ""

    @property
    def n_ngrams(self) -> int:
        return int(self.hashes.numel())

    @classmethod
    def build(cls, texts_per_bench: Sequence[Sequence[str]], *, ngram: int, device: str | torch.device = "cpu",
              chunk: int = 4096) -> "EvalIndex":
        """Index the items of each benchmark (items with fewer than ``ngram`` words get no n-gram)."""
        ix = cls()
        ix.ngram = ngram
        texts = [t for ts in texts_per_bench for t in ts]
        ix.item_bench = np.repeat(np.arange(len(texts_per_bench), dtype=np.int32),
                                  [len(ts) for ts in texts_per_bench])
        hs: List[np.ndarray] = []
        items: List[np.ndarray] = []
        poss: List[np.ndarray] = []
        for a in range(0, len(texts), chunk):
            nh = ngram_hashes(texts[a : a + chunk], ngram)
            ix.words.extend(b" ".join(nh.words(j)) for j in range(len(nh)))
            lens = np.diff(nh.offsets)
            hs.append(nh.hashes)
            items.append(np.repeat(np.arange(a, a + len(lens), dtype=np.int64), lens))
            poss.append(np.arange(nh.hashes.size, dtype=np.int64) - np.repeat(nh.offsets[:-1], lens))
        h = np.concatenate(hs) if hs else np.zeros(0, dtype=np.int64)
        it = np.concatenate(items) if items else np.zeros(0, dtype=np.int64)
        pos = np.concatenate(poss) if poss else np.zeros(0, dtype=np.int64)
        order = np.lexsort((pos, it, h))  # by hash, then item, then position
        h, it, pos = h[order], it[order], pos[order]
        new_pair = np.ones(h.size, dtype=bool)
        new_pair[1:] = (h[1:] != h[:-1]) | (it[1:] != it[:-1])
        h, it, pos = h[new_pair], it[new_pair], pos[new_pair]
        new_gram = np.ones(h.size, dtype=bool)
        new_gram[1:] = h[1:] != h[:-1]
        first = np.flatnonzero(new_gram)
        uniq = h[first]
        ix.ptr = np.append(first, h.size).astype(np.int64)
        ix.pair_item = it.astype(np.int32)
        ix.rep_item = it[first].astype(np.int32)
        ix.rep_pos = pos[first].astype(np.int32)
        ix.item_ngrams = np.bincount(it, minlength=len(texts)).astype(np.int64)
        bench_bit = np.left_shift(np.int64(1), ix.item_bench[it].astype(np.int64)) if h.size else np.zeros(0, np.int64)
        ix.ngram_benches = (np.bitwise_or.reduceat(bench_bit, first) if first.size else np.zeros(0, dtype=np.int64))
        sha = hashlib.sha256(np.int64(ngram).tobytes())
        sha.update(uniq.tobytes())
        sha.update(ix.item_ngrams.tobytes())
        ix.digest = sha.hexdigest()[:16]
        bits = max(16, int(np.ceil(np.log2(max(1, uniq.size) * 32))))
        ix.mask = (1 << bits) - 1
        slot = uniq & ix.mask
        table = np.zeros(1 << (bits - 6), dtype=np.uint64)
        one = np.uint64(1)
        marks = (np.left_shift(one, (slot & 63).astype(np.uint64))
                 | np.left_shift(one, (uniq >> 58 & 63).astype(np.uint64)))
        np.bitwise_or.at(table, slot >> 6, marks)
        table = table.view(np.int64)
        ix.hashes = torch.from_numpy(uniq.copy())
        ix.table = torch.from_numpy(table)
        return ix.to(device)

    def to(self, device: str | torch.device) -> "EvalIndex":
        self.device = torch.device(device)
        self.hashes = self.hashes.to(self.device)
        self.table = self.table.to(self.device)
        return self

    def query(self, hashes: np.ndarray, *, block: int = 1 << 16) -> Tuple[np.ndarray, np.ndarray]:
        """``(rows, grams)``: the positions in ``hashes`` whose hash is in the set, and which n-gram each is.

        On the CPU the bit-set test runs in NumPy over ``block`` hashes at a time (arrays that stay in the
        cache), as one test of both bits: ``(word & bits) == bits``."""
        if hashes.size == 0 or self.n_ngrams == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if self.device.type == "cpu":
            return self._query_numpy(hashes, block)
        return self._query_torch(hashes)

    def _query_torch(self, hashes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`query` with tensor operations on the index's device, all hashes at once (GPUs)."""
        q = torch.from_numpy(hashes).to(self.device, non_blocking=True)
        slot = q & self.mask
        word = torch.index_select(self.table, 0, slot >> 6)
        both = torch.bitwise_right_shift(word, slot & 63) & torch.bitwise_right_shift(word, q >> 58 & 63)
        cand = torch.nonzero(both & 1).flatten()
        if cand.numel() == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        qc = q[cand]
        u = torch.searchsorted(self.hashes, qc).clamp_(max=self.n_ngrams - 1)
        hit = self.hashes[u] == qc
        return cand[hit].cpu().numpy(), u[hit].cpu().numpy()

    def _query_numpy(self, hashes: np.ndarray, block: int) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`query` on the CPU: the same bits tested with NumPy's unsigned shifts (no tensor per op)."""
        table = self.table.numpy().view(np.uint64)
        q = hashes.view(np.uint64)
        mask, six, low, top, one = np.uint64(self.mask), np.uint64(6), np.uint64(63), np.uint64(58), np.uint64(1)
        parts = []
        for a in range(0, q.size, block):
            qa = q[a : a + block]
            word = table.take((qa & mask) >> six)
            bits = np.left_shift(one, qa & low)
            bits |= np.left_shift(one, qa >> top)
            word &= bits
            parts.append(np.flatnonzero(word == bits) + a)
        cand = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if cand.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        v = hashes[cand]
        # NumPy's binary search starts each sorted query where the last ended
        order = np.argsort(v)
        u = np.empty_like(order)
        sorted_hashes = self.hashes.numpy()
        u[order] = np.searchsorted(sorted_hashes, v[order])
        np.minimum(u, self.n_ngrams - 1, out=u)
        hit = sorted_hashes[u] == v
        return cand[hit], u[hit]

    def items_of(self, gram: int) -> np.ndarray:
        """The items (global numbers) holding n-gram ``gram``."""
        return self.pair_item[self.ptr[gram] : self.ptr[gram + 1]]

    def ngram_text(self, gram: int) -> str:
        """The normalised words of n-gram ``gram``, joined by single spaces (its first occurrence)."""
        words = self.words[int(self.rep_item[gram])].decode("utf-8", "surrogatepass").split(" ")
        p = int(self.rep_pos[gram])
        return " ".join(words[p : p + self.ngram])

    def nbytes(self) -> int:
        """Bytes held: device tensors, the pair tables and the items' words."""
        arrays = (self.ptr, self.pair_item, self.rep_item, self.rep_pos, self.item_bench, self.item_ngrams,
                  self.ngram_benches)
        return (self.hashes.numel() * 8 + self.table.numel() * 8 + sum(a.nbytes for a in arrays)
                + sum(len(w) + 33 for w in self.words))
