"""From hash hits to verified overlaps: the vectorised part of the ``decontaminate`` stage's decision.

:func:`verify_hits` looks a chunk's n-gram hashes up in the index and keeps, per training text, the
evaluation n-grams whose words it really holds (compared word for word, so a hash collision never
counts). :func:`item_overlaps` turns the verified n-grams of several texts into their overlap with each
evaluation item, all texts at once.

Example:
    >>> from torchdataguard.decontam.index import EvalIndex
    >>> from torchdataguard.decontam.ngrams import ngram_hashes
    >>> ix = EvalIndex.build([["the cat sat on the mat today"]], ngram=3)
    >>> found, rejected = verify_hits(ix, ngram_hashes(["A cat sat on the MAT.", "no match here"], 3))
    >>> [f.size for f in found], rejected.tolist()  # "cat sat on", "sat on the", "on the mat"
    ([3, 0], [0, 0])
    >>> doc, item, frac = item_overlaps(ix, [found[0]])
    >>> doc.tolist(), item.tolist(), frac.tolist()
    ([0], [0], [0.6])
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .index import EvalIndex
from .ngrams import NgramHashes, split_words

__all__ = ["item_overlaps", "verify_hits"]

_NONE = np.zeros(0, dtype=np.int64)


def _word_bounds(text: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) byte offsets of the words (runs of non-NUL bytes) of ``text``."""
    edge = np.zeros(len(text) + 2, dtype=bool)
    np.not_equal(np.frombuffer(text, dtype=np.uint8), 0, out=edge[1:-1])
    se = np.flatnonzero(edge[1:] != edge[:-1])
    return se[0::2], se[1::2]


def verify_hits(ix: EvalIndex, keys: NgramHashes) -> Tuple[List[np.ndarray], np.ndarray]:
    """Per text of ``keys``: the sorted distinct n-gram numbers (``int64``) whose hash it holds *and* whose
    words equal the item's, word for word; and per text, how many distinct n-grams matched by hash only.

    The first hit of each distinct n-gram in a text is compared with the item's words where the n-gram
    first occurs. Hits at consecutive words that continue the same item at consecutive words (a passage
    of the item) are compared as one span, so a text holding a whole item costs one comparison.
    """
    n_docs = len(keys)
    found = [_NONE] * n_docs
    rejected = np.zeros(n_docs, dtype=np.int64)
    rows, grams = ix.query(keys.hashes)
    if rows.size == 0:
        return found, rejected
    doc = np.searchsorted(keys.offsets, rows, side="right") - 1
    # the first hit of each distinct (text, n-gram), in text then word order (rows ascend)
    _, first = np.unique(doc * max(1, ix.n_ngrams) + grams, return_index=True)  # a stable sort: the first hit
    first.sort()
    d, u = doc[first], grams[first]
    p = rows[first] - keys.offsets[d]
    g, q = ix.rep_item[u], ix.rep_pos[u]
    brk = np.ones(first.size, dtype=bool)
    brk[1:] = (np.diff(d) != 0) | (np.diff(p) != 1) | (np.diff(g) != 0) | (np.diff(q) != 1)
    starts = np.flatnonzero(brk)
    run_start = starts.tolist()
    ok = np.zeros(first.size, dtype=bool)
    n = ix.ngram
    bounds: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    item_words: Dict[int, List[bytes]] = {}
    # a run is one text, one item: its first hit's text, position, item and item position say it all
    dl, pl, gl, ql = d[starts].tolist(), p[starts].tolist(), g[starts].tolist(), q[starts].tolist()

    def doc_words(di: int, at: int, k: int) -> List[bytes]:
        """Words ``at`` .. ``at + k - 1`` of text ``di`` (fewer at its end): one slice of its bytes, split."""
        if di not in bounds:
            bounds[di] = _word_bounds(keys.normalized[di])
        st, en = bounds[di]
        last = min(at + k, st.size) - 1
        if last < at:
            return []
        return split_words(keys.normalized[di][int(st[at]) : int(en[last])])

    for r, (a, e) in enumerate(zip(run_start, run_start[1:] + [first.size])):
        di, gi = dl[r], gl[r]
        if gi not in item_words:
            item_words[gi] = ix.words[gi].split(b" ")
        iw = item_words[gi]
        pa, qa, k = pl[r], ql[r], e - a + n - 1
        if doc_words(di, pa, k) == iw[qa : qa + k]:
            ok[a:e] = True
            continue
        for j in range(a, e):  # the span differs somewhere: each n-gram on its own (the run's n-grams
            pj, qj = pa + j - a, qa + j - a  # follow each other in the text and in the item)
            ok[j] = doc_words(di, pj, n) == iw[qj : qj + n]
    rejected += np.bincount(d[~ok], minlength=n_docs)
    if ok.any():
        # by text, then n-gram: one sort of a combined key (texts already ascend; n-grams within a text not)
        span = max(1, ix.n_ngrams)
        key = np.sort(d[ok].astype(np.int64) * span + u[ok])
        dk, uk = key // span, key % span
        cut = np.flatnonzero(np.diff(dk)) + 1
        for di, grams_d in zip(dk[np.concatenate([[0], cut])].tolist(), np.split(uk, cut)):
            found[di] = grams_d
    return found, rejected


def item_overlaps(ix: EvalIndex, found: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(doc, item, frac)``: for each text ``doc`` (its position in ``found``) and each item sharing one of
    its n-grams, the fraction of the item's distinct n-grams the text holds; sorted by text, then by
    decreasing fraction, then by item (so each text's first row is its largest overlap, on a tie the
    first item). ``found`` holds each text's distinct verified n-gram numbers."""
    sizes = np.fromiter((f.size for f in found), dtype=np.int64, count=len(found))
    if not sizes.any():
        return _NONE, _NONE, np.zeros(0, dtype=np.float64)
    grams = np.concatenate(found)
    a = ix.ptr[grams]
    lens = ix.ptr[grams + 1] - a
    total = int(lens.sum())
    at = np.repeat(a - np.cumsum(lens) + lens, lens) + np.arange(total, dtype=np.int64)
    docs = np.repeat(np.repeat(np.arange(len(found), dtype=np.int64), sizes), lens)
    n_items = max(1, int(ix.item_ngrams.size))
    pair, hits = np.unique(docs * n_items + ix.pair_item[at], return_counts=True)
    doc, item = pair // n_items, pair % n_items
    frac = hits / ix.item_ngrams[item]
    order = np.lexsort((item, -frac, doc))
    return doc[order], item[order], frac[order]
