import random

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.dedup.near_config import candidate_probability, choose_bands

rng = random.Random(7)
VOCAB = [f"w{i}" for i in range(5000)]


def doc(n=120):
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def mutate(text, frac):
    ws = text.split()
    for _ in range(int(len(ws) * frac)):
        ws[rng.randrange(len(ws))] = rng.choice(VOCAB) + "z"
    return " ".join(ws)


def test_near_finds_planted_duplicates_and_keeps_first():
    base = [doc() for _ in range(80)]
    records, truth = [], {}
    for i, b in enumerate(base):
        records.append({"text": b})
        if i % 2 == 0:
            truth[len(records)] = len(records) - 1
            records.append({"text": mutate(b, 0.01)})
    g = tdg.Guard([tdg.NearDedup(threshold=0.8)], device="cpu", chunk_size=16, progress=False)
    out = list(g.process(records))
    dropped = {ex.id: d for ex, d, _ in out if d is not None}
    assert set(dropped) == set(truth)
    for i, d in dropped.items():
        assert d.reason == "duplicate/near" and d.matched == truth[i] and d.score >= 0.8
    rep = g.report()
    assert rep["kept"] + rep["dropped"] == rep["seen"] == len(records)


def test_near_duplicates_inside_one_chunk_and_chains():
    a = doc()
    recs = [a, mutate(a, 0.01), mutate(a, 0.01), doc()]
    g = tdg.Guard([tdg.NearDedup()], device="cpu", chunk_size=64, progress=False)
    res = [(d.matched if d else None) for _, d, _ in g.process(recs)]
    assert res == [None, 0, 0, None]


def test_near_token_ids_path():
    seq = list(range(100, 160))
    recs = [{"input_ids": seq}, {"input_ids": seq[:-1] + [7]}, {"input_ids": list(range(500, 560))}]
    g = tdg.Guard([tdg.NearDedup(shingles="tokens")], device="cpu", progress=False)
    assert [d and d.reason for _, d, _ in g.process(recs)] == [None, "duplicate/near", None]


@pytest.mark.parametrize("kw, match", [
    ({"threshold": 0.0}, "threshold"), ({"threshold": 1.5}, "threshold"), ({"threshold": "x"}, "threshold"),
    ({"num_perm": 127}, "num_perm"), ({"num_perm": 128, "bands": 3}, "not divisible"),
    ({"ngram": 0}, "ngram"), ({"shingles": "chars"}, "shingles")])
def test_near_bad_settings_raise(kw, match):
    with pytest.raises(tdg.ConfigError, match=match):
        tdg.NearDedup(**kw)


def test_bands_are_chosen_for_recall():
    assert choose_bands(128, 0.8) == 16
    assert candidate_probability(0.8, 16, 8) > 0.95
    # datasketch's optimiser picks 9 x 13 at 0.8, which finds well under half of the pairs at J = 0.8
    assert candidate_probability(0.8, 9, 13, bits=32) < 0.45


def test_index_memory_per_document_is_bounded():
    st = tdg.NearDedup()
    g = tdg.Guard([st], device="cpu", chunk_size=512, progress=False)
    g.filter([doc(40) for _ in range(3000)])
    rep = g.report()["stages"][0]
    assert rep["indexed_examples"] == 3000
    assert rep["index_bytes_per_example"] <= 200  # allocated capacity included (issue 13: at most 200 B)


def test_near_state_mismatch_is_refused(tmp_path):
    g = tdg.Guard([tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
    g.filter([doc() for _ in range(5)])
    g.save(tmp_path)
    other = tdg.Guard([tdg.NearDedup(threshold=0.7)], device="cpu", progress=False)
    with pytest.raises(tdg.StateError, match="threshold"):
        other.load(tmp_path)
    exact = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    with pytest.raises(tdg.StateError, match="stages"):
        exact.load(tmp_path)


def test_exact_normalises_and_reports_match():
    recs = [{"text": "Hello   World"}, {"text": "hello world"}, {"text": "HELLO WORLD!"}]
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    res = [(d.reason, d.matched) if d else None for _, d, _ in g.process(recs)]
    assert res == [None, ("duplicate/exact", 0), None]
    g2 = tdg.Guard([tdg.ExactDedup(normalize=False)], device="cpu", progress=False)
    assert [d for _, d, _ in g2.process(recs)] == [None, None, None]


def test_exact_on_tensor_records():
    x = torch.arange(12.0).view(3, 4)
    recs = [(x, torch.tensor(1)), (x.clone(), torch.tensor(1)), (x + 1, torch.tensor(1)), (x, torch.tensor(2))]
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, text_field=None)
    assert [d and d.matched for _, d, _ in g.process(recs)] == [None, 0, None, None]


def test_same_example_in_later_epoch_is_not_its_own_duplicate():
    recs = [{"text": doc()} for _ in range(10)] + [{"text": "dup"}, {"text": "dup"}]
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", chunk_size=5, progress=False)
    first = g.filter(recs)
    second = g.filter(recs)
    assert first == second and len(first) == 11
    rep = g.report()
    assert rep["seen"] == 12 and rep["replayed"] == 12 and rep["dropped"] == 1
