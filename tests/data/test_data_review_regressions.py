"""Regressions for defects found in review: resume-then-wrap ids, repeated ids, huge integer ids,
fail-closed rewriting, quarantine withholding before the PII stage, no secrets in CLI errors."""
import json

import pytest
import torch.utils.data

import torchdataguard as tdg
from torchdataguard.cli import main
from torchdataguard.core.stage import Drop, Rewriter

RECS = [{"text": f"record number {i} with some words to make it longer than a few tokens"} for i in range(20)]


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
    first = [r["id"] for r in g.filter(recs)]
    second = [r["id"] for r in g.filter(recs)]
    assert first == second
    assert g.report()["seen"] == 2


def test_huge_integer_ids_do_not_allocate_by_value():
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    g.filter([{"id": 1_700_000_000_000, "text": "x"}, {"id": 5, "text": "y"}])
    assert g.ledger.memo._dense.numel() < 10_000_000
    assert g.ledger.replay(1_700_000_000_000) == 1


class Flaky(Rewriter):
    stage_name = "flaky_test_stage"
    needs_text = True

    def __init__(self):
        self.calls = 0

    def rewrite(self, ex):
        self.calls += 1
        return Drop("flaky/failed") if self.calls > 1 else ex.with_text(ex.text.upper())


def test_rewriting_fails_closed_at_fetch_time():
    g = tdg.Guard([Flaky()], device="cpu", progress=False)
    ds = g.wrap(_ListDS([{"text": "secret stuff"}]))
    with pytest.raises(tdg.GuardInputError, match="not deterministic"):
        ds[0]


class _ListDS(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def test_quarantine_withholds_records_dropped_before_the_pii_stage(tmp_path):
    q = tmp_path / "q.jsonl"
    g = tdg.Guard([tdg.ExactDedup(), tdg.PIIScrubber()], device="cpu", progress=False, quarantine=q)
    g.filter([{"text": "write to jane.doe@example.org"}, {"text": "write to jane.doe@example.org"}])
    g.close()
    row = json.loads(q.read_text())
    assert row["reason"] == "duplicate/exact" and row["record"] is None and "jane" not in q.read_text()
    q2 = tmp_path / "q2.jsonl"
    g2 = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], device="cpu", progress=False, quarantine=q2)
    g2.filter([{"text": "write to jane.doe@example.org"}, {"text": "write to jane.doe@example.org"}])
    g2.close()
    row2 = json.loads(q2.read_text())
    assert row2["record"]["text"] == "write to <EMAIL>"  # dropped after scrubbing: safe to write


def test_cli_errors_never_print_option_values(tmp_path, capsys):
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"text": "hello"}) + "\n")
    code = main(["scan", str(p), "--out", str(tmp_path / "o"), "--stages", "pii", "--device", "cpu",
                 "--set", "pii.key=supersecretkey-1234567890", "--set", "pii.entity=email"])
    assert code == 2
    assert "supersecretkey" not in capsys.readouterr().err
