"""Near-duplicate filtering: one-permutation MinHash over shingles, a banded LSH index, verification; exact
shingle sets for texts with few shingles (:mod:`torchdataguard.dedup.smallsets`)."""
from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

from ..core.invisible import INVISIBLE_VERSION, warn_older_state
from ..core.stage import Drop, Example, IndexStage, Keyer, register_stage
from ..errors import ConfigError, StateError
from . import xp
from .index import LSHIndex
from .cpu import one_thread
from .near_config import NearDedupConfig, candidate_probability
from .near_keys import NearKeyer, NearKeys, nothing_to_compare
from .near_wait import waiting
from .smallsets import EXACT_BITS, SmallSetIndex, exact_key

if TYPE_CHECKING:  # pragma: no cover
    from .xp import Array, Device

__all__ = ["NearDedup", "WaveBest"]

SEQ_BITS = 40
SEQ_MAX = (1 << SEQ_BITS) - 1


class WaveBest:
    """The best earlier match of each row of one wave, found in this process's indexes.

    ``lkey``/``ekey`` rank the LSH and the exact match (0: none): ``(agreeing values or exact similarity
    rank) << 40 | (2**40 - 1 - insertion order)``, so the largest key is the most similar and, on a tie, the
    earliest document; ``lslot``/``eslot`` are the local slots of those matches and ``inter``/``union`` the
    set sizes of the exact one. The same keys are compared across ranks by the sharded decider.
    """

    def __init__(self, r: int, device: "Device") -> None:
        both = xp.zeros((6, r), device=device)
        self.lkey, self.lslot, self.ekey, self.eslot, self.inter, self.union = (both[i] for i in range(6))


@register_stage("near")
class NearDedup(IndexStage):
    """Drop near-duplicates: Jaccard similarity of shingle sets at or above ``threshold``.

    How it decides, keep-first and query-then-insert. Shingles of text are script-aware
    (``text_shingles="auto"``, :func:`~torchdataguard.dedup.hashing.shingles`): after NFKC, lower-casing and
    folding punctuation away, a character of a script written without spaces (Han, kana, Thai, Lao, Khmer,
    Myanmar ...) starts a character ``char_ngram``-gram (default 5; ``abugida_ngram``, default 8, for Thai, Lao,
    Khmer, Myanmar and the other scripts whose vowel signs and tone marks are code points of their own) and a
    word of other scripts a word ``ngram``-gram, so Chinese text gets character 5-grams, English text word
    5-grams and mixed text both
    (a text too short for one window is one shingle); ``"words"`` shingles words only, as versions before
    script-aware shingles did (a run of Han characters is one word), ``"chars"`` characters only. Records
    with ``input_ids`` and no text get token-id n-grams. A pair in which either example has fewer than ``exact_below`` distinct
    shingles (``None``: ``ceil(9 / threshold)``, 12 at 0.8, so texts of up to 15 words at ``ngram=5``) is
    decided on the exact shingle sets (see :mod:`torchdataguard.dedup.smallsets`): candidates from a prefix
    filter that misses no pair at or above the threshold, then exact Jaccard. Other pairs are estimated: each example gets a 128-value one-permutation MinHash signature of which the low 4 bits are
    kept; examples that share a band (``rows`` consecutive values) with an earlier kept example are
    candidates, dropped when the similarity estimated on the full signature is ``>= threshold``. Duplicates
    inside one chunk are found the same way, so decisions do not depend on how the stream is chunked.

    ``bands=None`` picks the fewest bands whose candidate probability at the threshold is at least 0.9
    (16 bands of 8 rows at 0.8: 0.966 at J = 0.8, against 0.40 for datasketch's optimiser's 9 x 13).

    Drop reason ``duplicate/near``; ``matched`` is the id of the most similar earlier kept example and ``score``
    the Jaccard (exact, or estimated). A row is decided only once every earlier row of its chunk that it could
    match is stored or dropped (:meth:`waiting`), so the match named does not depend on how the stream is
    chunked either, with one exception: of two earlier examples exactly as similar, the one stored first is
    named, and within a chunk rows may be stored out of stream order.

    Example:
        >>> import torchdataguard as tdg
        >>> a = "the quick brown fox jumps over the lazy dog " * 20
        >>> g = tdg.Guard([tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
        >>> len(g.filter([{"text": a}, {"text": a + " extra"}, {"text": "something else entirely"}]))
        2
        >>> len(g.filter(["What time is it?", "Paris is in France.", "what time is it"]))
        2
        >>> zh = "近似去重把只改了标点或全角字符的副本当作重复文档丢弃，不同的短文本即使只有几个字也会保留。"
        >>> len(g.filter([zh, zh.replace("，", ", ").replace("。", "!"), "今天天气很好", "今天天气不好"]))
        3
    """

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, bands: Optional[int] = None, ngram: int = 5,
                 shingles: Literal["auto", "words", "tokens"] = "auto", token_field: str = "input_ids",
                 seed: int = 1, exact_below: Optional[int] = None,
                 text_shingles: Literal["auto", "words", "chars"] = "auto", char_ngram: Optional[int] = None,
                 abugida_ngram: Optional[int] = None) -> None:
        self.cfg = NearDedupConfig(threshold, num_perm, bands, ngram, shingles, token_field, seed, exact_below,
                                   text_shingles=text_shingles, char_ngram=char_ngram, abugida_ngram=abugida_ngram)
        self.device: "Device" = "cpu"
        self.index = LSHIndex(self.cfg.num_perm, int(self.cfg.bands), self.device)
        self.small = SmallSetIndex(self.threshold, self.device)
        self._probed = False  # the first records decided were looked at (nothing to compare in all: ConfigError)

    @property
    def needs_text(self) -> bool:  # type: ignore[override]
        return self.cfg.shingles == "words"

    @property
    def threshold(self) -> float:
        return float(self.cfg.threshold)

    def config(self) -> Dict[str, Any]:
        d = asdict(self.cfg)
        d["rows"] = self.cfg.rows
        d["exact_sets_below"] = self.cfg.limits[1]
        d["exact_queries_below"] = self.cfg.limits[2]
        d["candidate_probability_at_threshold"] = round(candidate_probability(self.threshold, int(self.cfg.bands), self.cfg.rows), 4)
        return d

    def keyer(self) -> Keyer:
        return NearKeyer(self.cfg)

    def to(self, device: "Device") -> "NearDedup":
        self.device = device
        self.index.to(self.device)
        self.small.to(self.device)
        return self

    def indexed_count(self) -> int:
        """Kept documents held by the two indexes (each is in one)."""
        return int(self.index.n) + int(self.small.n)

    # -- deciding ----------------------------------------------------------------------------------
    def wave_best(self, keys: NearKeys, R: "Array", lsh_order: Optional["Array"] = None,
                  small_order: Optional["Array"] = None) -> WaveBest:
        """Best match of each row ``R`` in this process's indexes (orders: insertion rank of each slot)."""
        K, _, K3 = self.cfg.limits
        r = xp.numel(R)
        out = WaveBest(r, self.device)
        lpos: Optional["Array"] = None  # rows of R that ask the LSH index (None: all of them)
        spos: Optional["Array"] = None  # rows of R that bring their set (None: none)
        if not keys.all_large(K3):  # the usual case for documents of more than a few sentences skips this
            size = keys.size[R]
            lpos = xp.nonzero(size >= K)
            spos = xp.nonzero(size < K3)
        if self.index.n and (lpos is None or xp.numel(lpos)):
            sub = keys.nib[R if lpos is None else R[lpos]]
            packed = self.index.pack(sub)
            q, s = self.index.candidates(sub, packed)
            if xp.numel(q):
                agree = self.index.agreement(packed[q], s)
                sim = xp.clip((xp.astype(agree, "float32") / self.cfg.num_perm - 1.0 / 16) / (15.0 / 16), 0.0, 1.0)
                ok = sim >= self.threshold - 1e-9
                q, s, agree = q[ok], s[ok], agree[ok]
                if lpos is not None:
                    q = lpos[q]
                order = s if lsh_order is None else lsh_order[s]
                _best_into(out.lkey, out.lslot, q, (agree << SEQ_BITS) | (SEQ_MAX - order), s)
        if self.small.n and spos is not None and xp.numel(spos):
            q, s, inter, union = self.small.matches(keys.sets, keys.off, keys.size, R[spos])
            if xp.numel(q):
                q = spos[q]
                order = s if small_order is None else small_order[s]
                key = (exact_key(inter, union) << SEQ_BITS) | (SEQ_MAX - order)
                won = _best_into(out.ekey, out.eslot, q, key, s)
                out.inter[q[won]] = inter[won]
                out.union[q[won]] = union[won]
        return out

    def score_of(self, lkey: int) -> float:
        """The estimated similarity ranked by an LSH key."""
        agree = lkey >> SEQ_BITS
        return float(min(1.0, max(0.0, (agree / self.cfg.num_perm - 1.0 / 16) / (15.0 / 16))))

    def waiting(self, keys: NearKeys, R: "Array", hit: "Array", ekey: "Array") -> "Array":
        """bool over ``R``: the rows that wait for a later round (:func:`~torchdataguard.dedup.near_wait.waiting`:
        rows with a match (``hit``) wait as well, so that the match a drop names does not depend on chunking).
        A row whose best exact-set match (``ekey``, as :meth:`wave_best` ranks it) is a Jaccard of 1 is decided
        now: no row stored later can rank above it (an equal similarity goes to the row stored first)."""
        whole = (ekey >> SEQ_BITS) == (1 << EXACT_BITS)
        if not bool(whole.any()):
            return waiting(self, keys, R, hit)
        out = xp.zeros(xp.numel(R), "bool", like=R)
        rest = xp.nonzero(~whole)  # those rows neither wait nor make others wait: left out exactly
        out[rest] = waiting(self, keys, R[rest], hit[rest])
        return out

    def store(self, keys: NearKeys, rows: "Array", ids: Sequence[Any]) -> Tuple["Array", "Array"]:
        """Insert ``rows`` (in order) into the index each belongs to (sets under ``K2`` shingles, else LSH);
        returns the positions of ``rows`` that went to the LSH index and to the exact-set index."""
        _, K2, K3 = self.cfg.limits
        if keys.all_large(K3):
            every = xp.arange(xp.numel(rows), like=rows)
            if xp.numel(rows):
                self.index.insert(keys.nib[rows], list(ids))
            return every, every[:0]
        size = keys.size[rows]
        to_lsh = xp.nonzero(size >= K2)
        to_small = xp.nonzero(size < K2)
        if xp.numel(to_lsh):
            self.index.insert(keys.nib[rows[to_lsh]], [ids[i] for i in to_lsh.tolist()])
        if xp.numel(to_small):
            self.small.insert(keys.sets, keys.off, rows[to_small], [ids[i] for i in to_small.tolist()])
        return to_lsh, to_small

    def check_compares(self, valid: "Array", exs: Sequence[Example], n: Optional[int] = None) -> None:
        """On the first rows decided (``valid``: which hold anything to compare; ``exs``: those rows, or a rank's
        share of them, ``n`` in all), refuse settings under which nothing is compared: before 2026-12-07 every
        record passed, counted as near/no_content. Also run by the distributed stage (distributed/sharded_near.py)."""
        if not self._probed:
            self._probed = True
            if not bool(valid.any()):
                raise ConfigError(nothing_to_compare(self.cfg, exs, n=n))

    @property
    def compares_checked(self) -> bool:
        """Whether :meth:`check_compares` has looked at the first rows decided (since the last reset)."""
        return self._probed

    @one_thread
    def decide(self, exs: Sequence[Example], keys: NearKeys) -> List[Optional[Drop]]:
        m = len(exs)
        out: List[Optional[Drop]] = [None] * m
        if m == 0:
            return out
        keys = keys.to(self.device)
        self.check_compares(keys.valid, exs)
        for i in xp.nonzero(~keys.valid).tolist():
            exs[i].count("near/no_content")
        R = xp.nonzero(keys.valid)
        while xp.numel(R):
            b = self.wave_best(keys, R)
            hit = (b.lkey > 0) if keys.all_large(self.cfg.limits[2]) else (b.lkey > 0) | (b.ekey > 0)
            wait = self.waiting(keys, R, hit, b.ekey)
            h = xp.nonzero(hit & ~wait)
            if xp.numel(h):
                cols = (R[h], b.lkey[h], b.lslot[h], b.ekey[h], b.eslot[h], b.inter[h], b.union[h])
                small: List[Tuple[int, int, float]] = []  # (row, slot, score) of drops naming each index
                lsh: List[Tuple[int, int, float]] = []
                for j, lk, ls_, ek, es_, inter, union in zip(*(c.tolist() for c in cols)):
                    ls = self.score_of(lk) if lk else -1.0
                    es = inter / union if ek else -1.0
                    if es >= ls:
                        small.append((j, es_, es))
                    else:
                        lsh.append((j, ls_, ls))
                for found, ids in ((small, self.small.ids), (lsh, self.index.ids)):
                    for (j, _, score), matched in zip(found, ids.get_many([f[1] for f in found])):
                        out[j] = Drop("duplicate/near", matched=matched, score=score)
            safe = R[~hit & ~wait]
            if xp.numel(safe):
                self.store(keys, safe, [exs[i].id for i in safe.tolist()])
            R = R[wait]
        return out

    def memory_bytes(self) -> int:
        return self.index.nbytes() + (self.small.nbytes() if self.small.n else 0)

    def reset(self) -> None:
        self.index = LSHIndex(self.cfg.num_perm, int(self.cfg.bands), self.device)
        self.small = SmallSetIndex(self.threshold, self.device)
        self._probed = False

    def state_dict(self) -> Dict[str, Any]:
        return {"config": self.config(), "index": self.index.state_dict(), "small": self.small.state_dict(),
                "invisible": INVISIBLE_VERSION}

    def saved_settings(self, saved: Mapping[str, Any]) -> Dict[str, Any]:
        """Settings of a state saved before script-aware shingles existed read as what they were: word shingles
        (``text_shingles="words"``, no ``char_ngram``), so such a state resumes in ``NearDedup(text_shingles="words")``
        and is refused by any other (never mixing two shinglings in one index)."""
        out = dict(saved)
        if saved and "text_shingles" not in saved:
            out.update(text_shingles="words", char_ngram=None)
        if saved and "abugida_ngram" not in saved:  # saved before Thai, Lao ... had n-grams of their own
            out["abugida_ngram"] = out.get("char_ngram") if out.get("text_shingles") == "auto" else None
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        raw = dict(state.get("config", {}))
        saved = self.saved_settings(raw)
        mine = self.config()
        diff = {k: (saved.get(k), v) for k, v in mine.items() if saved.get(k) != v}
        if diff:
            old_words = "text_shingles" not in raw and self.cfg.text_shingles != "words"
            raise StateError("NearDedup state was saved with other settings (saved, now): "
                             + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items())
                             + ("; a state saved before exact short-text decisions (exact_below) cannot be resumed: "
                                "its short texts were indexed by estimate, start a fresh index"
                                if "exact_below" not in raw else "")
                             + ("; the state was saved before script-aware shingles: its index holds word shingles "
                                "(a run of Han, kana or Thai characters was one word), which cannot be compared with "
                                f"text_shingles={self.cfg.text_shingles!r}; resume it with "
                                "NearDedup(text_shingles='words', ...) or start a fresh index" if old_words else "")
                               + ("; the state was saved before Thai, Lao, Khmer and Myanmar got their own n-gram "
                                  f"size: resume it with abugida_ngram={saved.get('abugida_ngram')!r} or start a "
                                  "fresh index" if "abugida_ngram" in diff and "abugida_ngram" not in raw
                                  and not old_words else ""))
        if "small" not in state:
            raise StateError("NearDedup state lacks its exact-set index ('small'); it was written by another version")
        warn_older_state("NearDedup", state)
        self.reset()
        self.index.load_state_dict(dict(state["index"]))
        self.small.load_state_dict(dict(state["small"]))


def _best_into(best: "Array", slot: "Array", q: "Array", key: "Array", s: "Array") -> "Array":
    """Max ``key`` per query ``q`` into ``best`` and its slot into ``slot``; returns the winning pairs' mask."""
    xp.scatter_amax_(best, q, key)
    won = key == best[q]
    slot[q[won]] = s[won]
    return won
