"""Short texts are decided exactly by NearDedup: no distinct short text is ever dropped (issue 12, item 1).

Texts come from the shipped SpamAssassin corpus (sentences of email bodies); every decision on a text with
fewer than ``exact_below`` distinct shingles is compared with an independent exact keep-first reference.
"""
import random

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.core.state import load_state, save_state

from short_texts import jaccard, reference, sentences, shingles

EIGHT = ["What time is it?", "Paris is in France.", "I like green tea.", "The dog barked loudly.",
         "Send me the report.", "Where is the station?", "She sings well.", "Turn left here."]


def decisions(texts, threshold=0.8, chunk_size=256, **kw):
    g = tdg.Guard([tdg.NearDedup(threshold=threshold, **kw)], device="cpu", chunk_size=chunk_size, progress=False)
    out = [None if d is None else (d.matched, d.score) for _, d, _ in g.process([{"text": t} for t in texts])]
    return g, out


def test_eight_distinct_sentences_are_all_kept():
    g = tdg.Guard([tdg.NearDedup(threshold=0.8)], progress=False)
    assert g.wrap(EIGHT) == EIGHT
    assert g.report()["stages"][0]["indexed_examples"] == 8


def test_thousands_of_real_short_texts_match_the_exact_reference():
    texts = list(sentences(1, 7, 6000))
    assert len(texts) == 6000
    _, got = decisions(texts)
    want = reference(texts, 0.8)
    assert [None if w is None else w[0] for w in want] == [None if d is None else d[0] for d in got]
    false = [i for i, d in enumerate(got) if d is not None and jaccard(shingles(texts[i]), shingles(texts[d[0]])) < 0.8]
    assert false == []
    assert sum(d is None for d in got) == 6000  # all distinct after normalisation: nothing may be dropped


def test_generated_short_texts_from_a_word_list_are_all_kept():
    rng = random.Random(5)
    vocab = sorted({w for t in sentences(1, 7, 3000) for w in t.lower().split() if w.isalpha()})
    texts, seen = [], set()
    while len(texts) < 3000:
        t = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 7)))
        if t not in seen:
            seen.add(t)
            texts.append(t)
    _, got = decisions(texts)
    assert got == [None if w is None else (w[0], w[1]) for w in reference(texts, 0.8)]
    assert sum(d is None for d in got) >= 2990  # a few share every 5-gram with an earlier one (J >= 0.8)


def test_texts_with_few_distinct_shingles_are_exact_however_long():
    # 600 long texts of two alternating words: each has at most 2 distinct 5-grams
    rng = random.Random(1)
    pairs = set()
    while len(pairs) < 600:
        pairs.add((f"w{rng.randrange(400)}", f"v{rng.randrange(400)}"))
    texts = [f"{a} {b} " * 60 for a, b in sorted(pairs)]
    g, got = decisions(texts)
    assert got == [None] * 600
    assert g.stages[0].small.n == 600 and g.stages[0].index.n == 0


@pytest.mark.parametrize("threshold", [0.7, 0.8])
def test_near_duplicate_short_pairs_are_found(threshold):
    base = list(sentences(8, 14, 1200))
    rng = random.Random(3)
    texts = list(base)
    planted = {}
    for i, t in enumerate(base):
        ws = t.split()
        kind = i % 3
        if kind == 0:
            v = t.upper().replace(".", " !")  # case and punctuation: J = 1
        elif kind == 1:
            v = t + " " + rng.choice(["indeed", "thanks", "again"])  # one word more: J = k / (k + 1)
        else:
            if threshold > 0.75 or len(ws) < 12:
                continue
            v = " ".join(ws[:-1] + ["zzz"])  # one word changed at the end of 12+ words: J = (k-1)/(k+1)
        planted[len(texts)] = i
        texts.append(v)
    order = list(range(len(texts)))
    rng.shuffle(order)
    order.sort(key=lambda j: j in planted)  # originals first, then the variants
    texts = [texts[j] for j in order]
    where = {j: n for n, j in enumerate(order)}
    assert max(len(shingles(t)) for t in texts) < 9 / threshold  # all in the exact tier (exact_below = ceil(9 / t))
    _, got = decisions(texts, threshold=threshold, chunk_size=64)
    want = reference(texts, threshold)
    assert got == want  # every decision, matched id and score equals the exact reference
    for v, o in planted.items():
        J = jaccard(shingles(texts[where[v]]), shingles(texts[where[o]]))
        if J >= threshold and got[where[o]] is None:
            assert got[where[v]] is not None  # found (possibly as a copy of an even closer kept text)
    assert sum(1 for v in planted if got[where[v]] is not None) >= 0.9 * len(planted)


def test_texts_shorter_than_the_ngram():
    texts = ["a b c", "A, b; C!", "a b c d", "!!!", "!!!", "???", "a b c d e", "a b c d e f"]
    _, got = decisions(texts)
    assert got == [None, (0, 1.0), None, None, (3, 1.0), None, None, None]


def test_medium_short_texts_false_drops():
    texts = list(sentences(6, 30, 8000))
    g, got = decisions(texts)
    K = getattr(g.stages[0].cfg, "exact_below", 12)
    sh = [shingles(t) for t in texts]
    kept = [i for i, d in enumerate(got) if d is None]
    for i, d in enumerate(got):
        if d is not None:
            J = jaccard(sh[i], sh[d[0]])
            if min(len(sh[i]), len(sh[d[0]])) < K:
                assert J >= 0.8 and abs(d[1] - J) < 1e-12  # decided exactly
            else:
                assert J >= 0.6  # estimated: only near the threshold can the estimate err
    # a text under K shingles is dropped exactly when an earlier kept text reaches the threshold
    post = {}
    for i in range(len(texts)):
        if len(sh[i]) < K:
            best = max((jaccard(sh[i], sh[j]) for j in {j for x in sh[i] for j in post.get(x, ())}), default=0.0)
            assert (got[i] is not None) == (best >= 0.8), texts[i]
        if got[i] is None:
            for x in sh[i]:
                post.setdefault(x, []).append(i)
    assert len(kept) < len(texts)  # the corpus has real near-duplicates among these


def test_token_ids_short_sequences():
    rng = random.Random(2)
    seqs, seen = [], set()
    while len(seqs) < 2000:
        s = tuple(rng.randrange(30000) for _ in range(rng.randint(1, 6)))
        if s not in seen:
            seen.add(s)
            seqs.append(s)
    longer = list(range(1000, 1012))  # 12 tokens: 8 shingles; one token more: 9, J = 8/9
    recs = [{"input_ids": list(s)} for s in seqs] + [{"input_ids": list(seqs[7])}, {"input_ids": longer},
                                                     {"input_ids": longer + [5]}]
    g = tdg.Guard([tdg.NearDedup(shingles="tokens")], device="cpu", progress=False)
    got = [None if d is None else (d.matched, d.score) for _, d, _ in g.process(recs)]
    assert got[:2000] == [None] * 2000
    assert got[2000:] == [(7, 1.0), None, (2001, 8 / 9)]


def test_token_path_from_a_collated_batch():
    from torchdataguard.dedup.near_keys import signatures_from_batch

    st = tdg.NearDedup(shingles="tokens")
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0], [5, 6, 7, 0, 0], [0, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    keys = signatures_from_batch({"input_ids": ids, "attention_mask": mask}, st.cfg)
    assert keys.valid.tolist() == [True, True, True, False]
    assert keys.size.tolist() == [1, 1, 1, 0]
    exs = [tdg.Example(i, None) for i in range(4)]
    drops = st.decide(exs, keys)
    assert [d and d.matched for d in drops] == [None, None, 0, None]


def test_resume_mid_stream_equals_uninterrupted(tmp_path):
    texts = list(sentences(1, 14, 1500))
    texts += [t.upper() for t in texts[::7]] + [t + " again" for t in texts[::5]]
    random.Random(4).shuffle(texts)
    recs = [{"text": t} for t in texts]
    full = tdg.Guard([tdg.NearDedup()], device="cpu", chunk_size=100, progress=False)
    want = [(ex.id, d and d.matched, d and d.score) for ex, d, _ in full.process(recs)]
    assert sum(w[1] is not None for w in want) > 300
    half = 1030
    first = tdg.Guard([tdg.NearDedup()], device="cpu", chunk_size=100, progress=False)
    got = [(ex.id, d and d.matched, d and d.score) for ex, d, _ in first.process(recs[:half])]
    save_state(tmp_path, first.state_dict())
    second = tdg.Guard([tdg.NearDedup()], device="cpu", chunk_size=100, progress=False)
    state = load_state(tmp_path)
    assert state["stages"][0]["state"]["small"]["sets"].dtype == torch.int64  # the sets travel as tensors
    second.load_state_dict(state)
    got += [(ex.id, d and d.matched, d and d.score)
            for ex, d, _ in second.process(recs[half:], ids=range(half, len(recs)))]
    assert got == want


def test_state_from_before_exact_short_texts_is_refused(tmp_path):
    g = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False)
    g.filter(EIGHT)
    state = g.state_dict()
    near = state["stages"][0]["state"]
    del near["config"]["exact_below"], near["config"]["exact_sets_below"], near["config"]["exact_queries_below"]
    del near["small"]
    with pytest.raises(tdg.StateError, match="exact_below"):
        tdg.Guard([tdg.NearDedup()], device="cpu", progress=False).load_state_dict(state)


def test_memory_per_short_text():
    texts = list(sentences(1, 7, 6000))
    g, _ = decisions(texts)
    st = g.stages[0]
    small = st.small
    per_doc = (small.nbytes() - 0) / small.n
    assert small.n == 6000 and st.index.n == 0
    # 8 bytes per shingle + 8 of offset + 8 of id + prefix tokens in a table 50-75% full
    assert per_doc <= 8 * small.npool / small.n + 16 + 8 * 2 / 0.5 + 1
    assert g.report()["stages"][0]["index_bytes_per_example"] < 100


def test_exact_below_settings():
    from torchdataguard.dedup.near_config import default_exact_below
    from torchdataguard.dedup.smallsets import exact_limits

    assert default_exact_below(0.8) == 12 and exact_limits(0.8, 12) == (12, 14, 17)
    assert tdg.NearDedup(threshold=0.5).cfg.exact_below == 18
    assert tdg.NearDedup(exact_below=32).cfg.exact_below == 32
    with pytest.raises(tdg.ConfigError, match="exact_below=4"):
        tdg.NearDedup(exact_below=4)
    with pytest.raises(tdg.ConfigError, match="exact_below"):
        tdg.NearDedup(exact_below="12")
