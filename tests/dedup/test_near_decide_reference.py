"""NearDedup.decide against a plain restatement of its rules, on short texts, in several chunkings.

The reference below re-decides every chunk from the same keys (the keyer's signatures and exact shingle sets)
with Python sets, dicts and loops: per round, each row's best earlier match (exact sets: the highest
``floor(J * 2**22)``, then the earliest slot; signatures: the most agreeing 4-bit values, then the earliest
slot), the rule of which rows wait (a row waits when it could match an earlier row of the round that is
without a match or waits itself; a row whose best exact match is a Jaccard of 1 neither waits nor makes
others wait), drops naming the best match, stores in stream order. The texts are short (1 to 38 words:
rows only in the exact-set index, in both, and only in the LSH index) with planted near copies, exact
copies and ties (two kept texts exactly as similar to a later one). Every decision -- kept or dropped, the
id of the match named and the score -- must be the reference's, for chunks of 4,096, 1,000, 97 and 7 rows.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Tuple

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.core.stage import Example

SEQ = 1 << 22


def corpus(seed: int, n: int = 2400) -> List[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)]
    docs: List[List[str]] = []
    while len(docs) < n:
        r = rng.random()
        if r < 0.45 or not docs:
            docs.append([rng.choice(vocab) for _ in range(rng.randint(1, 30))])
        elif r < 0.75:  # a near copy of an earlier text: a word replaced, inserted or deleted
            v = list(rng.choice(docs[-300:]))
            k = rng.randrange(len(v))
            op = rng.random()
            if op < 0.4:
                v[k] = rng.choice(vocab)
            elif op < 0.7 or len(v) < 3:
                v.insert(k, rng.choice(vocab))
            else:
                del v[k]
            docs.append(v)
        elif r < 0.85:  # an exact copy
            docs.append(list(rng.choice(docs[-300:])))
        else:  # a tie: the base with its first c words changed, with its last c words changed, then the base
            c = rng.choice([1, 2])  # J(base, either) = (n - c) / (n + c) >= 0.8 > J(first, last) for n shingles
            base = [rng.choice(vocab) for _ in range(rng.randint(13, 21) if c == 1 else rng.randint(22, 38))]
            first = [rng.choice(vocab) for _ in range(c)] + base[c:]
            last = base[:-c] + [rng.choice(vocab) for _ in range(c)]
            docs += [first, last] if rng.random() < 0.5 else [last, first]
            docs.insert(len(docs) - rng.randint(0, 2), base)
    return [" ".join(d) for d in docs[:n]]


class Reference:
    """The rules of NearDedup.decide, restated row by row (settings of ``stage``)."""

    def __init__(self, stage: tdg.NearDedup) -> None:
        cfg = stage.cfg
        self.t = float(cfg.threshold)
        self.P, self.bands = cfg.num_perm, int(cfg.bands)
        self.K, self.K2, self.K3 = cfg.limits
        est = ((torch.arange(self.P + 1).float() / self.P - 1.0 / 16) / (15.0 / 16)).clamp(0.0, 1.0)
        self.est_ok = (est >= self.t - 1e-9).tolist()  # the estimate is compared in float32, as decide does
        self.lsh: List[Tuple[bytes, Any]] = []  # (signature, id) by slot
        self.by_band: Dict[Tuple[int, bytes], List[int]] = {}
        self.small: List[Tuple[frozenset, Any]] = []
        self.by_token: Dict[int, List[int]] = {}
        self.ties = {"lsh": 0, "exact": 0}  # best matches met with another stored match exactly as similar

    def bands_of(self, sig: bytes) -> List[Tuple[int, bytes]]:
        w = self.P // self.bands
        return [(b, sig[b * w : (b + 1) * w]) for b in range(self.bands)]

    def reaches(self, a: frozenset, b: frozenset) -> Tuple[bool, int, int]:
        inter = len(a & b)
        union = len(a) + len(b) - inter
        return inter >= (self.t - 1e-9) * union, inter, union

    def best(self, sig: bytes, size: int, s: frozenset) -> Tuple[Optional[tuple], Optional[tuple]]:
        lbest = ebest = None
        if size >= self.K:
            for slot in sorted({x for k in self.bands_of(sig) for x in self.by_band.get(k, ())}):
                agree = sum(p == q for p, q in zip(sig, self.lsh[slot][0]))
                if self.est_ok[agree] and lbest is not None and agree == lbest[0]:
                    self.ties["lsh"] += 1
                if self.est_ok[agree] and (lbest is None or agree > lbest[0]):
                    lbest = (agree, slot)
        if size < self.K3:
            for slot in sorted({x for v in s for x in self.by_token.get(v, ())}):
                ok, inter, union = self.reaches(s, self.small[slot][0])
                if ok and ebest is not None and (inter * SEQ) // union == ebest[0]:
                    self.ties["exact"] += 1
                if ok and (ebest is None or (inter * SEQ) // union > ebest[0]):
                    ebest = ((inter * SEQ) // union, slot, inter, union)
        return lbest, ebest

    def earlier_matches(self, rows: List[int], sig, size, sets) -> Dict[int, set]:
        """For each row, the earlier ``rows`` it could match: a shared band (both asking the LSH index), or an
        exact Jaccard at or above the threshold (both with exact sets)."""
        out: Dict[int, set] = {j: set() for j in rows}
        groups: Dict[Any, List[int]] = {}
        for j in rows:
            keys = ([("band",) + k for k in self.bands_of(sig[j])] if size[j] >= self.K else []) + (
                [("token", v) for v in sets[j]] if size[j] < self.K3 else [])
            for k in keys:
                for a in groups.get(k, ()):
                    if k[0] == "band" or self.reaches(sets[a], sets[j])[0]:
                        out[j].add(a)
                groups.setdefault(k, []).append(j)
        return out

    def decide(self, ids: List[Any], sig: List[bytes], size: List[int], sets: List[frozenset]) -> List[Optional[tuple]]:
        out: List[Optional[tuple]] = [None] * len(ids)
        R = [i for i in range(len(ids)) if size[i] > 0]
        while R:
            found = {j: self.best(sig[j], size[j], sets[j]) for j in R}
            hit = {j: found[j][0] is not None or found[j][1] is not None for j in R}
            whole = {j for j in R if found[j][1] is not None and found[j][1][0] == SEQ}
            waits = {j: False for j in R}
            rest = [j for j in R if j not in whole]
            before = self.earlier_matches(rest, sig, size, sets)
            for b in rest:
                waits[b] = any(not hit[a] or waits[a] for a in before[b])
            for j in R:
                if hit[j] and not waits[j]:
                    (lb, eb) = found[j]
                    es = eb[2] / eb[3] if eb else -1.0
                    ls = min(1.0, max(0.0, (lb[0] / self.P - 1.0 / 16) / (15.0 / 16))) if lb else -1.0
                    out[j] = ("duplicate/near", self.small[eb[1]][1], es) if es >= ls else ("duplicate/near", self.lsh[lb[1]][1], ls)
            for j in R:
                if not hit[j] and not waits[j]:
                    if size[j] >= self.K2:
                        for k in self.bands_of(sig[j]):
                            self.by_band.setdefault(k, []).append(len(self.lsh))
                        self.lsh.append((sig[j], ids[j]))
                    else:
                        for v in sets[j]:
                            self.by_token.setdefault(v, []).append(len(self.small))
                        self.small.append((sets[j], ids[j]))
            R = [j for j in R if waits[j]]
        return out


def run(texts: List[str], chunk: int, name=lambda i: i,
        **settings) -> Tuple[List[Optional[tuple]], List[Optional[tuple]], Dict[str, int]]:
    stage = tdg.NearDedup(**settings)
    ref = Reference(stage)
    keyer = stage.keyer()
    got: List[Optional[tuple]] = []
    want: List[Optional[tuple]] = []
    for a in range(0, len(texts), chunk):
        exs = [Example(name(i), t, t) for i, t in enumerate(texts[a : a + chunk], start=a)]
        keys = keyer(exs)
        sig = [bytes(r) for r in keys.nib.tolist()]
        size = keys.size.tolist()
        sets = [frozenset(keys.sets[keys.off[i] : keys.off[i + 1]].tolist()) for i in range(len(exs))]
        want += ref.decide([e.id for e in exs], sig, size, sets)
        got += [None if d is None else (d.reason, d.matched, d.score) for d in stage.decide(exs, keys)]
    return got, want, ref.ties


@pytest.mark.parametrize("chunk", [4096, 1000, 97, 7])
def test_decisions_equal_the_reference(chunk):
    texts = corpus(11)
    got, want, ties = run(texts, chunk)
    assert got == want
    drops = [w for w in want if w is not None]
    assert len(drops) > 600 and sum(w[2] == 1.0 for w in drops) > 100  # near copies, and exact copies
    assert sum(0.8 <= w[2] < 1.0 for w in drops) > 200
    assert ties["lsh"] >= 3 and ties["exact"] >= 20


def test_decisions_with_two_word_shingles_and_more_ties():
    """Two-word shingles: the texts of 12 words and more ask the LSH index, and exact-set ties are many; ids
    that are strings."""
    texts = corpus(12, 1500)
    for chunk in (1500, 50):
        got, want, ties = run(texts, chunk, name=lambda i: f"text-{i}", ngram=2)
        assert all(isinstance(w[1], str) for w in want if w is not None)
        assert got == want
        assert sum(w is not None for w in want) > 300 and ties["exact"] >= 8 and ties["lsh"] >= 3
