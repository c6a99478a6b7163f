"""Example identity in training: a reused id never replays another record's decision, stream ids and worker
counts, the quarantine file across a resume, typed ids, hashed ids, no temporary folder left behind; plain ids
and decisions after a load, a repeated id within one chunk, huge integer ids."""
from __future__ import annotations

import json
import os
import tempfile

import pytest
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import torchdataguard as tdg

RECS = [{"text": f"record number {i} with some words to make it longer than a few tokens"} for i in range(20)]
SECRETS = ("AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "4111 1111 1111 1111")


def _reused_id_rows():
    rows = [{"id": i, "text": f"harmless note number {i} about the weather, tea and the garden {i * 7}"}
            for i in range(30)]
    rows += [{"id": i, "text": f"ticket {i}: the credential is {SECRETS[i % 3]} keep it safe {i * 11}"}
             for i in range(30)]
    rows.append({"id": 3, "text": None})
    return rows


def _pii_guard(**kw):
    return tdg.Guard([tdg.PIIScrubber(actions="drop"), tdg.ExactDedup(), tdg.NearDedup()], id_field="id",
                     device="cpu", progress=False, **kw)


def _clean(records):
    return all(isinstance(r["text"], str) and not any(s in r["text"] for s in SECRETS) for r in records)


@pytest.mark.parametrize("chunk_size", [1, 7, 256])
def test_a_reused_id_with_other_content_is_its_own_example(chunk_size):
    rows = _reused_id_rows()
    g = _pii_guard(chunk_size=chunk_size)
    kept = g.filter(rows)
    assert _clean(kept) and len(kept) == 30
    rep = g.report()
    assert (rep["seen"], rep["kept"], rep["dropped"], rep["replayed"]) == (61, 30, 31, 0)
    assert rep["counts"]["ids/reused"] == 31 and rep["dropped_by_reason"]["invalid/none"] == 1
    # a later epoch replays every example, the reused ids included, and lets nothing else through
    again = g.filter(rows)
    assert again == kept and g.report()["seen"] == 61 and g.report()["replayed"] == 61


def test_a_reused_id_survives_save_and_load(tmp_path):
    rows = _reused_id_rows()
    g = _pii_guard()
    kept = g.filter(rows)
    g.save(tmp_path)
    h = _pii_guard()
    h.load(tmp_path)
    assert h.filter(rows) == kept
    rep = h.report()
    assert rep["seen"] == 61 and rep["replayed"] == 61 and rep["kept"] == 30


def test_the_same_example_in_one_chunk_is_replayed_not_counted_twice():
    recs = [{"id": "a", "text": "same text"}, {"id": "a", "text": "same text"}, {"id": "a", "text": "other"}]
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    with pytest.warns(UserWarning, match="1 record repeated both the id"):
        assert [r["text"] for r in g.filter(recs)] == ["same text", "same text", "other"]
    rep = g.report()
    assert (rep["seen"], rep["replayed"], rep["counts"]["ids/reused"]) == (2, 1, 1)


class _Blocks(IterableDataset):
    """Splits itself across DataLoader workers in contiguous blocks (as a sharded file list does)."""

    def __init__(self, recs):
        self.recs = recs

    def __iter__(self):
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info else (0, 1)
        per = -(-len(self.recs) // n)
        yield from self.recs[w * per:(w + 1) * per]


def _stream_rows():
    recs = [{"uid": f"r{i}", "text": f"distinct record {i} about topic {i * 13} and some more words"} for i in range(60)]
    recs += [{"uid": f"n{i}", "text": None} for i in range(10)]
    recs += [{"uid": f"d{i}", "text": f"distinct record {i} about topic {i * 13} and some more words"} for i in range(10)]
    return recs


def _epoch(ds, workers):
    return [r for b in DataLoader(ds, batch_size=8, num_workers=workers, collate_fn=list) for r in b]


def test_positional_stream_ids_refuse_another_worker_count():
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False, chunk_size=16)
    ds = g.wrap(_Blocks(_stream_rows()))
    first = _epoch(ds, 0)
    assert len(first) == 60 and all(r["text"] is not None for r in first)
    assert _epoch(ds, 1) == first  # one worker reads the stream as the main process does
    with pytest.raises(tdg.ConfigError, match="id_field"):
        _epoch(ds, 2)
    rep = g.report()
    assert rep["seen"] == 80 and rep["replayed"] == 80
    g.close()


def test_stream_ids_from_a_field_work_with_any_worker_count():
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False, chunk_size=16, id_field="uid")
    ds = g.wrap(_Blocks(_stream_rows()))
    expected = sorted(f"r{i}" for i in range(60))
    for workers in (0, 2, 1, 2):
        got = _epoch(ds, workers)
        assert sorted(r["uid"] for r in got) == expected
        assert all(r["text"] is not None for r in got)
    rep = g.report()
    assert rep["seen"] == 80 and rep["replayed"] == 3 * 80 and rep["kept"] == 60
    g.close()


def test_a_resumed_stream_refuses_another_worker_count(tmp_path):
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=16)
    _epoch(g.wrap(_Blocks(_stream_rows())), 2)
    g.save(tmp_path)
    g.close()
    h = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=16)
    h.load(tmp_path)
    with pytest.raises(tdg.ConfigError, match="num_workers=2"):
        _epoch(h.wrap(_Blocks(_stream_rows())), 0)
    h.close()


def _lines(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(x) for x in fh]


def _dup_rows(n, start=0):
    return [{"id": i, "text": f"row {i % 7} of a corpus with exact copies and filler words"} for i in range(start, n)]


def test_resuming_with_the_same_quarantine_continues_it(tmp_path):
    q = tmp_path / "dropped.jsonl"
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id", quarantine=q)
    g.filter(_dup_rows(100))
    g.save(tmp_path / "state")
    g.filter(_dup_rows(150, 100))  # work after the last save: lost in the "crash", decided again on resume
    g.close()
    h = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id", quarantine=q)
    h.load(tmp_path / "state")
    h.filter(_dup_rows(200, 100))
    h.close()
    rows = _lines(q)
    rep = h.report()
    assert len(rows) == rep["dropped"] == 200 - 7
    assert sorted(r["id"] for r in rows) == list(range(7, 200))  # every drop once, none lost, none twice


def test_resuming_with_another_quarantine_file_is_refused(tmp_path):
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, quarantine=tmp_path / "a.jsonl")
    g.filter([r["text"] for r in _dup_rows(50)])
    g.save(tmp_path / "state")
    g.close()
    h = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, quarantine=tmp_path / "b.jsonl")
    with pytest.raises(tdg.StateError, match="a.jsonl|quarantine"):
        h.load(tmp_path / "state")
    h.close()
    fresh = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)  # no quarantine: nothing to continue
    fresh.load(tmp_path / "state")
    assert fresh.report()["dropped"] == 43


def test_reset_empties_the_quarantine_with_the_counters(tmp_path):
    q = tmp_path / "q.jsonl"
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, quarantine=q)
    g.filter(["a", "a", "b"])
    g.reset()
    g.filter(["c", "c", "c"])
    g.close()
    assert len(_lines(q)) == g.report()["dropped"] == 2


def test_ids_none_and_true_never_become_strings():
    recs = [{"id": "None", "text": "a string id that reads None"}, {"id": None, "text": "a null id"},
            {"id": True, "text": "a bool id"}, {"id": "True", "text": "a string id that reads True"},
            {"id": 1, "text": "an int id"}, {"id": 1.0, "text": "a float id"}, {"text": "no id field"}]
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    kept = g.filter(recs)
    assert [r["id"] for r in kept] == ["None", "True", 1]
    rep = g.report()
    assert rep["dropped_by_reason"] == {"invalid/missing_id": 2, "invalid/id_type": 2}
    assert g.filter(recs) == kept and g.report()["seen"] == 7  # a later epoch replays them all
    strict = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id", strict=True)
    with pytest.raises(tdg.GuardInputError, match="'id'.*id_type") as err:
        strict.filter([{"id": 1, "text": "fine"}, {"id": True, "text": "x"}])
    assert "position 1" in str(err.value)


def test_hash_ids_keeps_raw_ids_out_of_reports_quarantine_and_state(tmp_path):
    emails = [f"person{i}@example.org" for i in range(5)]
    recs = [{"id": e, "text": f"note {i} about the picnic"} for i, e in enumerate(emails)]
    recs.append({"id": emails[1], "text": recs[0]["text"]})  # other content under a reused id, an exact duplicate
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id", hash_ids=True,
                  quarantine=tmp_path / "q.jsonl")
    kept = g.filter(recs)
    assert kept == recs[:5]  # the records handed to training are unchanged
    g.save(tmp_path / "state")
    g.save_report(tmp_path / "report")
    g.close()
    for path in (tmp_path / "q.jsonl", tmp_path / "state" / "guard_state.json", tmp_path / "report" / "report.json",
                 tmp_path / "report" / "report.html"):
        assert not any(e in path.read_text(encoding="utf-8") for e in emails), path
    row = _lines(tmp_path / "q.jsonl")[0]
    assert row["id"].startswith("h:") and row["id"] == row["record"]["id"] and row["matched"].startswith("h:")
    keyed = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id", hash_ids="k" * 16)
    with pytest.raises(tdg.StateError, match="hash_ids"):
        keyed.load(tmp_path / "state")
    same = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id", hash_ids=True)
    same.load(tmp_path / "state")
    assert same.filter(recs) == kept and same.report()["replayed"] == 6
    with pytest.raises(tdg.ConfigError, match="hash_ids needs id_field"):
        tdg.Guard([tdg.ExactDedup()], device="cpu", hash_ids=True)
    with pytest.raises(tdg.ConfigError, match="at least 16 bytes"):
        tdg.Guard([tdg.ExactDedup()], device="cpu", id_field="id", hash_ids="short")


def test_close_leaves_no_temporary_folder(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    ds = g.wrap(_Blocks(_stream_rows()))
    assert len(_epoch(ds, 1)) == 60
    assert os.listdir(scratch)  # the decision service's socket folder, while the guard is open
    g.close()
    assert os.listdir(scratch) == []


def test_load_then_wrap_keeps_plain_ids_and_decisions(tmp_path):
    g1 = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    assert len(g1.wrap(list(RECS))) == 20
    g1.save(tmp_path)
    g2 = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    g2.load(tmp_path)
    assert len(g2.wrap(list(RECS))) == 20
    rep = g2.report()
    assert rep["seen"] == 20 and rep["replayed"] == 20 and rep["dropped"] == 0


def test_repeated_id_in_one_chunk_is_one_example_in_every_epoch():
    recs = [{"id": "a", "text": "same text"}, {"id": "a", "text": "same text"}, {"id": "b", "text": "other"}]
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    with pytest.warns(UserWarning, match="repeated both the id"):  # a first pass: the repeat is warned about
        first = [r["id"] for r in g.filter(recs)]
    second = [r["id"] for r in g.filter(recs)]
    assert first == second
    assert g.report()["seen"] == 2


def test_huge_integer_ids_do_not_allocate_by_value():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    g.filter([{"id": 1_700_000_000_000, "text": "x"}, {"id": 5, "text": "y"}])
    assert g.ledger.memo._dense.size < 10_000_000
    assert g.ledger.replay(1_700_000_000_000) == 1
