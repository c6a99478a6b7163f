"""Gopher's n-gram repetition shares of a token list (Rae et al. 2021, table A1): :func:`ngram_shares`.

The character share of the most frequent 2-, 3- and 4-gram, and of all tokens inside an n-gram that occurs
more than once, for n = 5 .. 10. Tokens are identified by their 64-bit string hash and an n-gram by a
64-bit polynomial of those hashes (a collision is about as likely as 2**-64 per pair of n-grams).

Three methods give the same shares, chosen by the number of tokens:

* up to :data:`SHORT` tokens, counts on Python tuples (:func:`_on_tuples`, n = 2 .. 10 in turn, each n at the
  positions where both (n-1)-grams inside repeat): there numpy's per-call cost would dominate. Tuples compare
  the tokens themselves, so two different n-grams whose 64-bit keys collide (a chance of about 2**-64 per
  pair) are not merged here as they would be by the sorts. The sorting methods below hand over to the same
  counting once an n has at most :data:`_FEW_CANDIDATES` positions where it can repeat.
* up to :data:`LONG` tokens, two sorts: one of every 2-gram, then one of the n-grams for n = 3 .. 10
  together (a row each), at the positions where a 3-gram can repeat (its two 2-grams repeat, a tenth of the
  tokens of an e-mail). The arrays are short, so numpy's per-call cost is what counts: array methods and
  ufuncs, no Python-level wrappers (``np.diff``, ``np.flatnonzero``, ``np.append``, ``ndarray.min``), and
  Python lists where few values remain (the runs of equal keys, the spans of a few repeated 5- to 10-grams).
* beyond, step by step: the n-grams are sorted for n = 2, 3 .. 10 in turn, each time only at the positions
  where both (n-1)-grams inside repeat, so fewer positions at every step (long texts have many positions
  whose 3-gram can repeat, and few whose 10-gram can).

Sorts keep equal keys in ascending positions (a stable sort); long arrays are sorted by numpy's faster
unstable sort and then reordered within equal keys (:func:`stable_argsort`), the same order.
"""
from __future__ import annotations

from collections import Counter
from itertools import chain, compress, islice
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ...core.arrays import stable_argsort

__all__ = ["LONG", "MUL", "SHORT", "ngram_shares", "stable_argsort"]

#: The multiplier of the n-gram polynomial: ``key(t1 .. tn) = key(t1 .. tn-1) * MUL + hash(tn)`` mod 2**64.
MUL = 0x9E3779B97F4A7C15
_MUL = np.uint64(MUL)
_LONGEST = 10
_COLS = _LONGEST - 2  # the rows of the second sort: n = 3 .. 10
# _SHIFT[j]: MUL ** (j + 1); _TRIANGLE[i, j]: MUL ** (j - i) for i <= j, else 0. The key of the (j + 3)-gram at p
# is key2(p) * _SHIFT[j] + sum over i <= j of hash(token p + 2 + i) * _TRIANGLE[i, j] (mod 2**64)
_SHIFT = np.array([pow(MUL, j + 1, 1 << 64) for j in range(_COLS)], dtype=np.uint64)
_TRIANGLE = np.array([[pow(MUL, j - i, 1 << 64) if i <= j else 0 for j in range(_COLS)] for i in range(_COLS)],
                     dtype=np.uint64)
_OFFSETS = np.arange(2, _LONGEST, dtype=np.int64)  # the tokens after the first two of each row's n-gram
_ORDERS = np.arange(3, _LONGEST + 1, dtype=np.int64)  # n of each row of the second sort
_ROWS = np.arange(_COLS)[:, None]
_PAD = (0,) * _COLS
#: up to this many positions the rows of the second sort are sorted in one call, beyond it one by one
_ONE_SORT = 512
_STEPS = np.arange(4)
#: up to this many equal neighbours in sorted order the groups are found on a Python list
_FEW_EQUAL = 48
#: up to this many repeated 5- to 10-grams (all n together) their spans are merged on Python lists
_FEW_STARTS = 64
#: texts of more tokens than this are read step by step, shorter ones by two sorts
LONG = 1200
#: texts of at most this many tokens are counted on Python tuples (:func:`_on_tuples`), not sorted
SHORT = 64
_FEW_KEYS = 24  # up to this many n-grams :func:`_on_tuples` counts them in a loop, beyond in a Counter
#: up to this many positions where a 3-gram can repeat, n = 3 .. 10 are counted on tuples (:func:`_on_tuples`)
_FEW_CANDIDATES = 16
def _span(tokens: List[str], start: int, stop: int) -> int:
    """Characters of ``tokens[start:stop]``."""
    return sum(map(len, tokens[start:stop]))


def _top_share(eq: np.ndarray, pos: np.ndarray, n: int, tokens: List[str], total: int) -> float:
    """Character share of the most frequent n-gram, from sorted keys: ``eq[i]`` is True when sorted keys ``i``
    and ``i + 1`` are equal, ``pos`` the positions in sorted order (ascending within equal keys). Ties go to
    the n-gram with more characters, then to the earliest; overlapping occurrences count their tokens once."""
    same = eq.nonzero()[0]  # a group of equal keys a .. b shows as the run a, a + 1 .. b - 1 here
    if not same.shape[0]:
        return 0.0
    if same.shape[0] <= _FEW_EQUAL:  # few repeats: the runs on a Python list (numpy's per-call cost dominates)
        best, heads = 0, []  # the size of the largest groups, and their first sorted index
        listed = same.tolist()
        run = prev = listed[0]
        for i in listed[1:] + [-2]:
            if i != prev + 1:
                size = prev - run + 2
                if size > best:
                    best, heads = size, [run]
                elif size == best:
                    heads.append(run)
                run = i
            prev = i
        item = pos.item
        first = list(map(item, heads))
        i = 0
        if len(first) > 1:  # ties: more characters, then the earliest
            i = max(range(len(first)), key=lambda g: (_span(tokens, first[g], first[g] + n), -first[g]))
        start = first[i]
        if best == 2:  # two occurrences: overlapping, they cover the tokens from the first to the end of the last
            last = item(heads[i] + 1)
            if last - start >= n:
                return 2 * _span(tokens, start, start + n) / total
            return _span(tokens, start, last + n) / total
        members = pos[heads[i]: heads[i] + best]
    else:
        ends = (~eq).nonzero()[0]  # the last index of every group of equal keys but the last group
        bounds = np.empty(ends.shape[0] + 2, dtype=np.int64)  # group g is bounds[g] .. bounds[g + 1] - 1
        bounds[0] = 0
        bounds[1:-1] = ends + 1
        bounds[-1] = eq.shape[0] + 1
        sizes = bounds[1:] - bounds[:-1]
        best = int(sizes[sizes.argmax()])
        groups = (sizes == best).nonzero()[0]
        heads_at = pos[bounds[groups]]
        i = 0
        if groups.shape[0] > 1:  # the characters of each tied n-gram, from the lengths of its tokens alone
            at = (heads_at[:, None] + _STEPS[:n]).ravel().tolist()
            lens = np.fromiter(map(len, map(tokens.__getitem__, at)), dtype=np.int64, count=len(at))
            i = int((lens.reshape(-1, n).sum(axis=1) * (len(tokens) + 1) - heads_at).argmax())
        start = int(heads_at[i])
        members = pos[bounds[groups[i]]: bounds[groups[i]] + best]
    gaps = members[1:] - members[:-1]
    if int(gaps[gaps.argmin()]) >= n:  # occurrences do not overlap (members ascend)
        return best * _span(tokens, start, start + n) / total
    inside = np.zeros(len(tokens), dtype=bool)  # overlapping occurrences: each token once
    for k in range(n):
        inside[members + k] = True
    return sum(map(len, map(tokens.__getitem__, inside.nonzero()[0].tolist()))) / total


def _covered_chars(rows: List[int], starts: List[int], tokens: List[str], total: int, dup: List[float]) -> None:
    """``dup[j]``: the characters of the tokens inside the repeated (j + 5)-grams, over ``total``, from the
    positions ``starts[i]`` of repeated n-grams, ``n = rows[i] + 5`` (each position once per n)."""
    by_row: List[List[int]] = [[] for _ in dup]
    for j, p in zip(rows, starts):
        by_row[j].append(p)
    for j, ps in enumerate(by_row):
        if not ps:
            continue
        ps.sort()
        n = j + 5
        chars = 0
        lo, hi = ps[0], ps[0] + n  # the tokens lo .. hi - 1: a run of overlapping occurrences
        for p in ps[1:]:
            if p > hi:
                chars += _span(tokens, lo, hi)
                lo = p
            hi = p + n
        dup[j] = (chars + _span(tokens, lo, hi)) / total


def _union_chars(tokens: List[str], starts: List[int], n: int) -> int:
    """Characters of the tokens inside the n-grams at the ascending positions ``starts`` (each token once)."""
    lo = starts[0]
    hi = lo + n
    chars = 0
    for p in starts[1:]:
        if p > hi:
            chars += _span(tokens, lo, hi)
            lo = p
        hi = p + n
    return chars + _span(tokens, lo, hi)


def _on_tuples(tokens: List[str], total: int, top: List[float], dup: List[float],
               cand: Optional[List[int]] = None, first: int = 3) -> None:
    """The shares counted on Python tuples, n = 2 .. 10 in turn (or n = ``first`` .. 10 from the ascending
    positions ``cand`` where an n-gram can repeat): ``top`` and ``dup`` filled in. For short token lists
    (:data:`SHORT` tokens at most) and few such positions (:data:`_FEW_CANDIDATES`), where numpy's per-call
    cost dominates.
    Each n looks only at the positions whose two (n-1)-grams repeat. The counts keep the order of first
    occurrence, so ties go to the earliest n-gram as in the sorts; every pass over the positions is a C-level
    iteration (``compress``, ``map``), no Python loop per token."""
    pos: Sequence[int] = range(len(tokens) - 1)
    if cand is None:
        first = 2
        keys: List[tuple] = list(zip(tokens, islice(tokens, 1, None)))
    else:
        pos = cand
        keys = list(map(tuple, map(tokens.__getitem__, map(slice, pos, map(first.__add__, pos)))))
    for n in range(first, _LONGEST + 1):
        if len(keys) > _FEW_KEYS:
            counts = Counter(keys)
        else:  # a few keys: a loop costs less than building a Counter
            counts = {}
            get = counts.get
            for k in keys:
                counts[k] = get(k, 0) + 1
        if len(counts) == len(keys):  # no n-gram repeats, so no longer one does
            return
        if n <= 4:
            best = max(counts.values())
            tied = list(compress(counts, map(best.__eq__, counts.values())))
            k = tied[0] if len(tied) == 1 else max(tied, key=_chars)  # the first (earliest) of the longest
            top[n - 2] = _union_chars(tokens, list(compress(pos, map(k.__eq__, keys))), n) / total
        reps = list(compress(pos, map((1).__lt__, map(counts.__getitem__, keys))))
        if n >= 5:
            dup[n - 5] = _union_chars(tokens, reps, n) / total
        repeated = set(reps)
        # an (n + 1)-gram repeats only where both n-grams inside it do
        pos = list(compress(reps, map(repeated.__contains__, map((1).__add__, reps))))
        if len(pos) < 2:
            return
        keys = list(map(tuple, map(tokens.__getitem__, map(slice, pos, map((n + 1).__add__, pos)))))


def _chars(gram: tuple) -> int:
    return sum(map(len, gram))


def _repeated(eq: np.ndarray, pos: np.ndarray, size: int) -> np.ndarray:
    """By position (``size`` of them): True where the n-gram occurs more than once, from its sorted keys."""
    flag = np.zeros(pos.shape[0], dtype=bool)  # sorted keys equal to a neighbour
    flag[1:] = eq
    flag[:-1] |= eq
    rep = np.zeros(size, dtype=bool)
    rep[pos[flag]] = True
    return rep


def ngram_shares(tokens: List[str], *, total: Optional[int] = None,
                 long: Optional[bool] = None) -> Tuple[List[float], List[float]]:
    """Gopher's n-gram repetition shares over ``tokens``: ``([top 2-, 3-, 4-gram], [duplicated 5- .. 10-grams])``,
    each the share of the tokens' characters (``total``, their sum, when the caller knows it already).

    ``long`` picks the method (``True``: step by step, ``False``: two sorts); by default step by step for
    more than :data:`LONG` tokens. Both give the same shares.

    Example:
        >>> top, dup = ngram_shares("a b c a b c x".split())
        >>> top  # "a b" covers 4 of the 7 characters, "a b c" 6, and no 4-gram repeats
        [0.5714285714285714, 0.8571428571428571, 0.0]
        >>> ngram_shares("a b c a b c x".split(), long=True)[0] == top
        True
    """
    top = [0.0, 0.0, 0.0]  # n = 2, 3, 4
    dup = [0.0] * 6  # n = 5 .. 10
    m = len(tokens)
    if m < 2:
        return top, dup
    if total is None:
        total = sum(map(len, tokens))
    if total == 0:
        return top, dup
    if long is None and m <= SHORT:
        _on_tuples(tokens, total, top, dup)
        return top, dup
    # the tokens' hashes, then zeros for the n-grams past the end
    h = np.fromiter(chain(map(hash, tokens), _PAD), dtype=np.int64, count=m + _COLS).view(np.uint64)
    # the 2-grams, all of them
    key2 = h[: m - 1] * _MUL + h[1:m]
    order = stable_argsort(key2)
    skeys = key2[order]
    eq = skeys[1:] == skeys[:-1]
    if not np.count_nonzero(eq):
        return top, dup
    top[0] = _top_share(eq, order, 2, tokens, total)
    if m < 3:
        return top, dup
    rep = _repeated(eq, order, m - 1)  # 2-grams that occur more than once, by position
    auto = long is None
    if auto:
        # an n-gram occurring twice holds two 2-grams that do, and its other occurrence is such a position too
        cand = (rep[:-1] & rep[1:]).nonzero()[0]
        if cand.shape[0] < 2:
            return top, dup
        if cand.shape[0] <= _FEW_CANDIDATES:
            _on_tuples(tokens, total, top, dup, cand.tolist())
            return top, dup
        long = m > LONG
    if long:
        _step_by_step(tokens, h, key2, rep, total, top, dup, _FEW_CANDIDATES if auto else 0)
    else:
        _two_sorts(tokens, h, key2, rep, total, top, dup)
    return top, dup


def _two_sorts(tokens: List[str], h: np.ndarray, key2: np.ndarray, rep: np.ndarray, total: int,
               top: List[float], dup: List[float]) -> None:
    """n = 3 .. 10 in one sort (a row per n) at the positions where a 3-gram can repeat: ``top[1:]`` and
    ``dup`` filled in. ``h`` holds the tokens' hashes and zeros after them, ``rep`` the repeated 2-grams."""
    m = len(tokens)
    # an n-gram occurring twice holds two 2-grams that do, and its other occurrence is such a position too
    cand = (rep[:-1] & rep[1:]).nonzero()[0]
    k = cand.shape[0]
    if k < 2:
        return
    cols = min(_COLS, m - 2)
    # keys[j, r]: the key of the (j + 3)-gram at position cand[r]; a row per n, sorted on its own
    keys = _SHIFT[:cols, None] * key2[cand] + _TRIANGLE[:cols, :cols].T @ h[_OFFSETS[:cols, None] + cand]
    if k <= _ONE_SORT:
        order = keys.argsort(axis=1, kind="stable")  # ascending positions within equal keys
    else:  # numpy sorts long rows one by one faster than a 2-D array
        order = np.empty((cols, k), dtype=np.intp)
        for j in range(cols):
            order[j] = stable_argsort(keys[j])
    skeys = keys[_ROWS[:cols], order]
    eq = skeys[:, 1:] == skeys[:, :-1]
    if int(cand[-1]) + cols + 2 > m:  # the last positions' longer n-grams run past the end: they are no n-grams
        # and equal no n-gram (their keys hold the zeros after the hashes); within equal keys they sort last
        # (ascending positions), so leaving them out of every run of equal keys splits no run
        inside = cand[order] + _ORDERS[:cols, None] <= m
        eq &= inside[:, 1:] & inside[:, :-1]
    if not np.count_nonzero(eq[0]):  # no 3-gram repeats, so no longer n-gram does
        return
    top[1] = _top_share(eq[0], cand[order[0]], 3, tokens, total)
    if cols > 1:
        top[2] = _top_share(eq[1], cand[order[1]], 4, tokens, total)
    if cols <= 2:
        return
    # n = 5 .. 10: the characters of the tokens inside n-grams that occur more than once
    flag = np.zeros((cols - 2, k), dtype=bool)  # sorted keys equal to a neighbour
    flag[:, 1:] = eq[2:]
    flag[:, :-1] |= eq[2:]
    js, at = flag.nonzero()
    if not js.shape[0]:
        return
    starts = cand[order[js + 2, at]]
    if js.shape[0] <= _FEW_STARTS:  # few repeated n-grams: their spans merged on Python lists
        _covered_chars(js.tolist(), starts.tolist(), tokens, total, dup)
        return
    cover = np.zeros((cols - 2, m + 1), dtype=np.int32)  # +1 where a repeated n-gram starts, -1 past its end
    cover[js, starts] = 1
    cover[js, starts + js + 5] -= 1
    covered = cover.cumsum(axis=1)[:, :m] > 0  # the tokens each n covers
    # a repeated (n + 1)-gram holds two repeated n-grams: the 5-grams cover every token a longer one does
    inside = covered[0].nonzero()[0]  # only the lengths of these tokens are needed
    lens = np.fromiter(map(len, map(tokens.__getitem__, inside.tolist())), dtype=np.int64, count=inside.shape[0])
    sums = covered[:, inside] @ lens
    for j in range(cols - 2):
        dup[j] = int(sums[j]) / total


def _step_by_step(tokens: List[str], h: np.ndarray, key2: np.ndarray, rep: np.ndarray, total: int,
                  top: List[float], dup: List[float], few: int = 0) -> None:
    """n = 3 .. 10 in turn, each n sorted at the positions where both (n-1)-grams inside repeat: ``top[1:]``
    and ``dup`` filled in, the same shares as :func:`_two_sorts`. Stops at the first n that does not repeat;
    from the first n with at most ``few`` such positions on, counts on tuples (:func:`_on_tuples`)."""
    m = len(tokens)
    key = key2
    lens: Optional[np.ndarray] = None
    for n in range(3, _LONGEST + 1):
        if m < n:
            return
        cand = (rep[:-1] & rep[1:]).nonzero()[0]
        if cand.shape[0] < 2:
            return
        if cand.shape[0] <= few:
            _on_tuples(tokens, total, top, dup, cand.tolist(), n)
            return
        key = key[:-1] * _MUL + h[n - 1:m]  # the n-grams at 0 .. m - n
        sub = key[cand]
        order = stable_argsort(sub)
        ranked = sub[order]
        eq = ranked[1:] == ranked[:-1]
        if not np.count_nonzero(eq):
            return
        pos = cand[order]
        if n <= 4:
            top[n - 2] = _top_share(eq, pos, n, tokens, total)
        rep = _repeated(eq, pos, m - n + 1)
        if n >= 5:
            starts = rep.nonzero()[0]
            cover = np.zeros(m + 1, dtype=np.int32)  # +1 where a repeated n-gram starts, -1 past its end
            cover[starts] = 1
            cover[starts + n] -= 1
            if lens is None:
                lens = np.fromiter(map(len, tokens), dtype=np.int64, count=m)
            dup[n - 5] = int(lens[cover.cumsum()[:m] > 0].sum()) / total
