"""The ``decontaminate`` stage: drop training documents that share n-grams with evaluation sets."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..core.stage import Drop, Example, IndexStage, Keyer, register_stage
from ..errors import ConfigError, StateError
from .evalsets import EvalSet, read_eval_set
from .index import EvalIndex
from .matching import item_overlaps, verify_hits
from .ngrams import NgramHashes, ngram_hashes

__all__ = ["Decontaminate"]

#: benchmarks one stage can hold (per-n-gram benchmark sets are 63-bit masks)
MAX_BENCHMARKS = 63


class NgramKeyer(Keyer):
    """Hashes the normalised word n-grams of each text (picklable; runs in DataLoader workers)."""

    def __init__(self, ngram: int) -> None:
        self.ngram = ngram

    def __call__(self, exs: Sequence[Example]) -> NgramHashes:
        return ngram_hashes([ex.text for ex in exs], self.ngram)


def _positive_int(name: str, v: Any, problems: List[str], *, lo: int = 1) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        problems.append(f"{name}={v!r}: expected an integer >= {lo}")


@register_stage("decontaminate")
class Decontaminate(IndexStage):
    """Drop training documents that share a normalised word n-gram with an item of an evaluation set.

    Built once from the evaluation sets, then every training document's n-grams are looked up in a hash
    set on the guard's device; every hit is verified word for word before it counts, so a hash collision
    never drops a document. Normalisation follows GPT-3 (lower case, punctuation deleted, split on
    whitespace); characters of scripts written without spaces (Chinese, Japanese, Thai ...) are words of
    their own. The drop reason is ``contamination/<NAME>`` and ``matched`` is the id of the overlapping item
    (the one with the largest overlap when there are several); the guard's report gets
    ``report["contamination"][NAME]`` (items, dirty items and their ids, documents dropped ...).

    Args:
        evals: ``{name: items}``; items are a list, a ``datasets.Dataset`` or any iterable of strings or
            records (see :mod:`torchdataguard.decontam.evalsets`).
        ngram: words per n-gram (13, as GPT-3 and lm-evaluation-harness).
        fields: the record fields whose texts are joined into an item (a list for every set, or
            ``{name: list}``); default: every string field except the id field.
        id_field: the field holding item ids (default: the position in the set).
        min_overlap: ``None`` (default): one shared n-gram makes a document dirty. A fraction in (0, 1]:
            dirty when the document holds at least that fraction of an item's distinct n-grams.
        max_train_count: ignore an evaluation n-gram once it has been found in this many earlier training
            documents (boilerplate); the documents before were judged with it. ``None``: never ignore.
        drop: ``False`` only reports contamination (dirty items) and keeps every document.

    Example:
        >>> import torchdataguard as tdg
        >>> test = ["What is the capital of France? The answer is Paris, of course."]
        >>> g = tdg.Guard([tdg.Decontaminate({"quiz": test}, ngram=5)], device="cpu", progress=False)
        >>> g.filter(["Q: what is the capital of France. The answer is Paris!", "Paris is nice."])
        ['Paris is nice.']
        >>> g.report()["contamination"]["quiz"]["dirty_item_ids"], g.clean_eval_ids("quiz")
        ([0], [])
    """

    needs_text = True

    def __init__(self, evals: Mapping[str, Any], *, ngram: int = 13,
                 fields: Optional[Sequence[str] | Mapping[str, Sequence[str]]] = None, id_field: Optional[str] = None,
                 min_overlap: Optional[float] = None, max_train_count: Optional[int] = None,
                 drop: bool = True) -> None:
        problems: List[str] = []
        _positive_int("ngram", ngram, problems)
        if min_overlap is not None and not (isinstance(min_overlap, (int, float)) and not isinstance(min_overlap, bool)
                                            and 0 < min_overlap <= 1):
            problems.append(f"min_overlap={min_overlap!r}: expected None or a fraction in (0, 1]")
        if max_train_count is not None:
            _positive_int("max_train_count", max_train_count, problems)
        if not isinstance(drop, bool):
            problems.append(f"drop={drop!r}: expected True or False")
        if not isinstance(evals, Mapping) or not evals:
            problems.append(f"evals={type(evals).__name__}: expected a non-empty mapping {{name: items}}, e.g. "
                            f"{{'gsm8k': test_split}}")
        elif len(evals) > MAX_BENCHMARKS:
            problems.append(f"{len(evals)} eval sets: at most {MAX_BENCHMARKS} per stage; use several stages")
        if isinstance(fields, Mapping) and isinstance(evals, Mapping):
            extra = sorted(set(map(str, fields)) - set(map(str, evals)))
            if extra:
                problems.append(f"fields names eval sets {extra} that are not in evals {sorted(map(str, evals))}")
        if problems:
            raise ConfigError.collect(problems, "Decontaminate settings")
        self.ngram = ngram
        self.min_overlap = None if min_overlap is None else float(min_overlap)
        self.max_train_count = max_train_count
        self.drop = drop
        self.id_field = id_field
        self.sets: List[EvalSet] = []
        for name, data in evals.items():
            f = fields.get(name) if isinstance(fields, Mapping) else fields
            try:
                self.sets.append(read_eval_set(name, data, fields=f, id_field=id_field))
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError.collect(problems, "evaluation sets")
        self.device = torch.device("cpu")
        self.index = EvalIndex.build([s.texts for s in self.sets], ngram=ngram)
        self.bench_of = {s.name: b for b, s in enumerate(self.sets)}
        first = np.concatenate([[0], np.cumsum([len(s.ids) for s in self.sets])]).astype(np.int64)
        self.first_item = first  # global item numbers of benchmark b: first[b] .. first[b + 1] - 1
        for b, s in enumerate(self.sets):
            short = np.flatnonzero(self.index.item_ngrams[first[b] : first[b + 1]] == 0)
            for j in short.tolist():
                s.skip("shorter_than_ngram", s.ids[j])
            if short.size == len(s.ids):
                problems.append(f"eval set {s.name!r}: none of its {s.items} items has {ngram} normalised words "
                                f"(skipped: {self._skipped_counts(s)}); lower ngram (--ngram) or check the fields")
        if problems:
            raise ConfigError.collect(problems, "evaluation sets")
        self.reset()

    # -- settings --------------------------------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        return {"benchmarks": {s.name: s.items for s in self.sets}, "ngram": self.ngram,
                "fields": {s.name: s.fields for s in self.sets}, "id_field": self.id_field,
                "min_overlap": self.min_overlap, "max_train_count": self.max_train_count, "drop": self.drop,
                "eval_digest": self.index.digest}

    def keyer(self) -> Keyer:
        return NgramKeyer(self.ngram)

    def to(self, device) -> "Decontaminate":
        self.device = torch.device(device)
        self.index.to(self.device)
        return self

    # -- deciding --------------------------------------------------------------------------------------
    def decide(self, exs: Sequence[Example], keys: NgramHashes) -> List[Optional[Drop]]:
        found, rejected = self.verify(keys)
        out: List[Optional[Drop]] = [None] * len(exs)
        for d in np.flatnonzero(rejected).tolist():
            exs[d].count("contamination/unverified_hash_hits", int(rejected[d]))
        hit = [d for d, grams in enumerate(found) if grams.size]
        if self.max_train_count is None:  # no boilerplate counts: the texts can be judged all at once
            for d, drop in zip(hit, self.judge_many([found[d] for d in hit])):
                out[d] = drop
        else:
            for d in hit:
                out[d] = self.judge(found[d])
        return out

    def verify(self, keys: NgramHashes) -> Tuple[List[np.ndarray], np.ndarray]:
        """The evaluation n-grams each text of ``keys`` verifiably holds, and its hash hits that failed.

        Stateless (reads only the index): returns, per text, the sorted distinct n-gram numbers
        (``int64``) whose hash it holds *and* whose words equal the item's, word for word; and, per text,
        how many distinct n-grams matched by hash only (a collision, never a drop). See
        :func:`~torchdataguard.decontam.matching.verify_hits`.
        """
        return verify_hits(self.index, keys)

    def judge_many(self, found: Sequence[np.ndarray]) -> List[Optional[Drop]]:
        """:meth:`judge` for several documents at once, in stream order, when no boilerplate count is set
        (``max_train_count=None``: then no document's decision depends on the ones before)."""
        if self.max_train_count is not None:
            raise ConfigError("judge_many needs max_train_count=None; judge documents one by one with judge()")
        out: List[Optional[Drop]] = [None] * len(found)
        if not found:
            return out
        ix = self.index
        np.add.at(self.counts, np.concatenate(found), 1)
        doc, items, frac = item_overlaps(ix, found)
        if self.min_overlap is not None:
            keep = frac >= self.min_overlap
            doc, items, frac = doc[keep], items[keep], frac[keep]
        if doc.size == 0:
            return out
        np.add.at(self.item_docs, items, 1)
        n_sets = len(self.sets)
        self.overlapping += np.bincount(np.unique(doc * n_sets + ix.item_bench[items]) % n_sets, minlength=n_sets)
        if not self.drop:
            return out
        first = np.flatnonzero(np.diff(doc, prepend=-1))  # each document's largest overlap
        bench = ix.item_bench[items[first]]
        self.dropped += np.bincount(bench, minlength=n_sets)
        for d, g, b, f in zip(doc[first].tolist(), items[first].tolist(), bench.tolist(), frac[first].tolist()):
            out[d] = Drop(f"contamination/{self.sets[b].name}", matched=self.sets[b].ids[g - int(self.first_item[b])],
                          score=round(float(f), 4))
        return out

    def judge(self, grams: np.ndarray, *, account: bool = True) -> Optional[Drop]:
        """Decide one training document from the distinct evaluation n-grams it verifiably holds (``grams``,
        from :meth:`verify`), in stream order: updates the boilerplate counts and, with ``account``, the
        per-item and per-benchmark counts (a distributed guard judges other ranks' documents too, for the
        global boilerplate counts, and accounts only for its own)."""
        if grams.size == 0:
            return None
        ix = self.index
        active = grams if self.max_train_count is None else grams[self.counts[grams] < self.max_train_count]
        self.counts[grams] += 1
        if active.size == 0:
            return None
        _, items, frac = item_overlaps(ix, [active])  # the largest overlap first; on a tie the first item
        if self.min_overlap is not None:
            keep = frac >= self.min_overlap
            items, frac = items[keep], frac[keep]
            if items.size == 0:
                return None
        best = 0
        g, b = int(items[best]), int(ix.item_bench[items[best]])
        if account:
            self.item_docs[items] += 1
            self.overlapping[np.unique(ix.item_bench[items])] += 1
        if not self.drop:
            return None
        if account:
            self.dropped[b] += 1
        return Drop(f"contamination/{self.sets[b].name}", matched=self.sets[b].ids[g - int(self.first_item[b])],
                    score=round(float(frac[best]), 4))

    # -- results ---------------------------------------------------------------------------------------
    def _set(self, name: str) -> int:
        if name not in self.bench_of:
            raise ConfigError(f"no eval set {name!r} in this Decontaminate stage; it has {sorted(self.bench_of)}")
        return self.bench_of[name]

    @staticmethod
    def _skipped_counts(s: EvalSet) -> Dict[str, int]:
        return {r: len(v) for r, v in sorted(s.skipped.items())}

    def dirty_eval_ids(self, name: str, *, item_docs: Optional[np.ndarray] = None) -> List[Any]:
        """Ids of the items of ``name`` that overlap a training document seen so far (``item_docs``: dirty
        documents per item to use instead of this stage's own, e.g. every rank's summed)."""
        b = self._set(name)
        a, e = int(self.first_item[b]), int(self.first_item[b + 1])
        docs = self.item_docs if item_docs is None else item_docs
        return [self.sets[b].ids[j] for j in np.flatnonzero(docs[a:e] > 0).tolist()]

    def clean_eval_ids(self, name: str, *, include_unchecked: bool = False,
                       item_docs: Optional[np.ndarray] = None) -> List[Any]:
        """Ids of the items of ``name`` that no training document seen so far overlaps, in the set's order.

        Items that could not be checked (shorter than ``ngram`` words, without text) are left out unless
        ``include_unchecked=True``. ``item_docs``: as in :meth:`dirty_eval_ids`.
        """
        s = self.sets[self._set(name)]
        dirty = set(self.dirty_eval_ids(name, item_docs=item_docs))
        unchecked = set() if include_unchecked else {i for ids in s.skipped.values() for i in ids}
        return [i for i in s.all_ids if i not in dirty and i not in unchecked]

    def report_entries(self, *, item_docs: Optional[np.ndarray] = None, dropped: Optional[np.ndarray] = None,
                       overlapping: Optional[np.ndarray] = None) -> Dict[str, Any]:
        """``{"contamination": {name: {...}}}`` for the guard's report (the keyword arguments replace this
        stage's own counts, e.g. with every rank's summed by a distributed guard)."""
        item_docs = self.item_docs if item_docs is None else item_docs
        dropped = self.dropped if dropped is None else dropped
        overlapping = self.overlapping if overlapping is None else overlapping
        ignored = (self.counts >= self.max_train_count) if self.max_train_count is not None else None
        out: Dict[str, Any] = {}
        for b, s in enumerate(self.sets):
            a, e = int(self.first_item[b]), int(self.first_item[b + 1])
            dirty = self.dirty_eval_ids(s.name, item_docs=item_docs)
            mine = (self.index.ngram_benches >> b) & 1 == 1
            out[s.name] = {
                "items": s.items, "checked_items": int((self.index.item_ngrams[a:e] > 0).sum()),
                "dirty_items": len(dirty), "dirty_item_ids": dirty,
                "clean_items": len(self.clean_eval_ids(s.name, item_docs=item_docs)),
                "skipped_items": self._skipped_counts(s),
                "skipped_item_ids": {r: list(v) for r, v in sorted(s.skipped.items())},
                "documents_dropped": int(dropped[b]), "documents_overlapping": int(overlapping[b]),
                "ngrams": int(mine.sum()),
                "ignored_ngrams": int((ignored & mine).sum()) if ignored is not None else 0,
            }
        return {"contamination": out}

    def indexed_count(self) -> int:
        """Evaluation items with at least one n-gram (the report's bytes per indexed example are per item)."""
        return int((self.index.item_ngrams > 0).sum())

    def memory_bytes(self) -> int:
        return self.index.nbytes() + self.counts.nbytes + self.item_docs.nbytes

    # -- state -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.counts = np.zeros(self.index.n_ngrams, dtype=np.int64)  # training documents holding each n-gram
        self.item_docs = np.zeros(len(self.index.words), dtype=np.int64)  # dirty documents per item
        self.dropped = np.zeros(len(self.sets), dtype=np.int64)
        self.overlapping = np.zeros(len(self.sets), dtype=np.int64)

    def state_dict(self) -> Dict[str, Any]:
        return {"eval_digest": self.index.digest, "counts": torch.from_numpy(self.counts.copy()),
                "item_docs": torch.from_numpy(self.item_docs.copy()),
                "documents_dropped": self.dropped.tolist(), "documents_overlapping": self.overlapping.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("eval_digest") != self.index.digest:
            raise StateError(f"Decontaminate state was saved with other evaluation sets, n-gram length or n-gram "
                             f"hashing (an earlier version; digest {state.get('eval_digest')!r}, this stage has "
                             f"{self.index.digest!r}); start the stage afresh or use the version that saved it")
        counts, items = state.get("counts"), state.get("item_docs")
        dropped, over = state.get("documents_dropped"), state.get("documents_overlapping")
        if (not isinstance(counts, torch.Tensor) or counts.numel() != self.index.n_ngrams
                or not isinstance(items, torch.Tensor) or items.numel() != len(self.index.words)
                or not isinstance(dropped, list) or len(dropped) != len(self.sets)
                or not isinstance(over, list) or len(over) != len(self.sets)):
            raise StateError("Decontaminate state is malformed (counts, item_docs, documents_dropped or "
                             "documents_overlapping missing or of the wrong size)")
        self.counts = counts.to(torch.int64).cpu().numpy().copy()
        self.item_docs = items.to(torch.int64).cpu().numpy().copy()
        self.dropped = np.asarray(dropped, dtype=np.int64)
        self.overlapping = np.asarray(over, dtype=np.int64)
