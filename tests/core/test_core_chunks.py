"""How a streamed guard cuts its chunks: ``chunk_size`` records, or fewer once their texts hold CHUNK_CHARS
characters (long documents), with the same decisions either way."""
from __future__ import annotations

import random

import torchdataguard as tdg
from torchdataguard.core import decider
from torchdataguard.core.plan import Planner


def _docs(n: int, words: int, seed: int = 0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    base = [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]
    return base + [base[i] for i in range(0, n, 3)]  # a third copied


def _spy_plans(monkeypatch):
    """Record the number of records of every chunk planned from now on (a list that fills as plans are made)."""
    seen = []
    plan = Planner.plan

    def spy(self, recs, ids):
        seen.append(len(recs))
        return plan(self, recs, ids)

    monkeypatch.setattr(Planner, "plan", spy)
    return seen


def _chunk_lengths(monkeypatch, records, **kw):
    plan = Planner.plan
    seen = _spy_plans(monkeypatch)
    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False, **kw)
    kept = [ex.id for ex, drop, _ in guard.process(records) if drop is None]
    monkeypatch.setattr(Planner, "plan", plan)
    return seen, kept


def test_long_texts_are_cut_by_characters_with_the_same_decisions(monkeypatch):
    monkeypatch.setattr(decider, "CHUNK_CHARS", 40_000)
    docs = _docs(60, 400)  # about 2,400 characters each
    cut, kept = _chunk_lengths(monkeypatch, docs)
    assert max(cut) < 20 and sum(cut) == len(docs)  # cut at 40,000 characters, not at 1,024 records
    monkeypatch.setattr(decider, "CHUNK_CHARS", 10 ** 12)
    whole, kept_whole = _chunk_lengths(monkeypatch, docs)
    assert whole == [len(docs)] and kept == kept_whole and len(kept) == 60


def test_short_texts_are_cut_by_chunk_size(monkeypatch):
    """By default a stream of short texts goes 16,384 at a time (STREAM_CHUNK: they share a chunk's fixed cost
    widely); an explicit chunk_size is kept; the decisions are the same."""
    docs = [{"text": t, "id": i} for i, t in enumerate(_docs(13000, 8, seed=1))]
    n = len(docs)
    cut, kept = _chunk_lengths(monkeypatch, docs, text_field="text", id_field="id")
    assert decider.STREAM_CHUNK == 16384 and cut == [16384, n - 16384]
    cut, kept_1024 = _chunk_lengths(monkeypatch, docs, text_field="text", id_field="id", chunk_size=1024)
    assert cut == [1024] * (n // 1024) + [n % 1024] and kept_1024 == kept and len(kept) == 13000


def test_a_wrapped_stream_cuts_as_the_guard_does_and_counted_paths_keep_1024(monkeypatch):
    from torch.utils.data import IterableDataset

    docs = _docs(13000, 8, seed=2)

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(docs)

    seen = _spy_plans(monkeypatch)
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    # a wrapped stream read in the main process ramps up to the guard's cut (data/pacing.py): 64, 256, 1,024, ...
    assert len(list(guard.wrap(Stream()))) == 13000 and seen == [64, 256, 1024, 4096, len(docs) - 5440]
    fixed = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=16384)
    seen.clear()
    assert len(list(fixed.wrap(Stream()))) == 13000 and seen == [16384, len(docs) - 16384]
    assert guard.chunk_size == 1024 and guard.report()["settings"]["stream_chunk"] == 16384
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=100)
    assert (g.chunk_size, g.stream_chunk) == (100, 100)


def test_text_length_reads_the_text_field_only():
    assert decider.text_length("abc", None) == 3
    assert decider.text_length({"text": "abcd", "other": "x" * 99}, "text") == 4
    assert decider.text_length({"text": None}, "text") == 0 and decider.text_length(b"abc", None) == 0


def test_every_streaming_path_cuts_long_texts_by_characters(monkeypatch):
    """The wrapped stream and the distributed guard's plans (with and without workers) cut as the guard does."""
    from torch.utils.data import IterableDataset

    from torchdataguard.distributed.plans import PlanStream, stream_plans

    monkeypatch.setattr(decider, "CHUNK_CHARS", 40_000)
    docs = _docs(60, 400)
    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    sizes = [len(p.examples) for p in stream_plans(guard.planner(), docs, None, chunk=1024, rank=0, world=1,
                                                    num_workers=0)]
    assert max(sizes) < 20 and sum(sizes) == len(docs)
    sizes = [len(p.examples) for p in PlanStream(docs, guard.planner(), 1024)]
    assert max(sizes) < 20 and sum(sizes) == len(docs)

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(docs)

    seen = _spy_plans(monkeypatch)
    kept = list(tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False).wrap(Stream()))
    assert max(seen) < 20 and sum(seen) == len(docs) and len(kept) == 60


def test_the_distributed_plans_of_short_texts_end_where_the_stream_ends():
    from torchdataguard.distributed.plans import stream_plans

    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    for n in (0, 5, 1024, 2048, 2050):
        sizes = [len(p.examples) for p in stream_plans(guard.planner(), [f"t{i}" for i in range(n)], None,
                                                        chunk=1024, rank=0, world=1, num_workers=0)]
        assert sum(sizes) == n and all(s <= 1024 for s in sizes)
