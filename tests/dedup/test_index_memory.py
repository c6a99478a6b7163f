"""Memory of the dedup indexes (issue 13: at most 200 bytes per kept document) and the id store behind it."""
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.dedup.index import IdStore, LSHIndex

from short_texts import sentences


def test_id_store_holds_int32_until_an_id_does_not_fit_and_saves_int64():
    s = IdStore()
    s.extend(list(range(100)))
    assert s.nbytes() <= 4 * 100 * 1.45 + 4 * 64  # 4 bytes an id (with the growth slack)
    s.extend([-(2**31), 2**31 - 1])
    assert s.nbytes() < 8 * 102
    s.extend([2**40, -(2**45)])  # do not fit int32: the store widens, keeping every id
    assert [s.get(i) for i in (0, 99, 100, 101, 102, 103)] == [0, 99, -(2**31), 2**31 - 1, 2**40, -(2**45)]
    state = s.state_dict()
    assert state["ids"].dtype == torch.int64 and state["ids"].tolist()[-2:] == [2**40, -(2**45)]
    back = IdStore()
    back.load_state_dict(state)
    assert [back.get(i) for i in range(back.n)] == state["ids"].tolist()


def test_id_store_takes_integers_beyond_int64():
    s = IdStore()
    s.extend([1, 2])
    s.extend([2**70, 3])  # raised "Overflow when unpacking long" before
    assert [s.get(i) for i in range(4)] == [1, 2, 2**70, 3]
    assert s.state_dict() == {"id_list": [1, 2, 2**70, 3]}


def test_a_few_hundred_long_documents_cost_under_200_bytes_each():
    # the over-2,000-word benchmark row: 518 kept documents arriving a few dozen at a time (253 bytes before:
    # the first allocation held 1,024 signatures)
    g = torch.Generator().manual_seed(0)
    index = LSHIndex(128, 16)
    for a in range(0, 520, 80):
        m = min(80, 520 - a)
        index.insert(torch.randint(0, 16, (m, 128), generator=g, dtype=torch.uint8), list(range(a, a + m)))
    assert index.nbytes() / index.n <= 200


def test_exact_set_index_of_short_texts_is_smaller():
    near = tdg.NearDedup()
    tdg.Guard([near], device="cpu", progress=False).filter(list(sentences(3, 14, 4000)))
    assert near.small.n > 3900 and near.index.n == 0
    # 77.9 bytes per text before (int64 ids and table entries, a dead mark per stored shingle); 59.5 now
    assert near.small.nbytes() / near.small.n < 65


@pytest.mark.parametrize("ids", ["ints", "strings"])
def test_near_state_round_trip_keeps_ids_and_decisions(ids, tmp_path):
    texts = list(sentences(3, 40, 600))
    recs = [{"id": i if ids == "ints" else f"doc-{i}", "text": t} for i, t in enumerate(texts)]
    g = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False, id_field="id")
    g.filter(recs[:400])
    g.save(str(tmp_path))
    g2 = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False, id_field="id")
    g2.load(str(tmp_path))
    again = recs[:50] + recs[400:]
    g3 = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False, id_field="id")
    g3.filter(recs[:400])
    assert g2.filter(again) == g3.filter(again)
