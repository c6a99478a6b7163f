"""The scan's files agree with its report on the inputs of the scan fault tests: damaged inputs (partial
files), lines that are not records, ragged CSV rows, all-invalid input, strict and interrupted scans, a text
field no record has, reused and hashed ids (``tests/io/scan_agreement.py::assert_scan_agrees``)."""
from __future__ import annotations

import json

import pytest
from scan_agreement import assert_scan_agrees
from test_io_scan_faults import corrupt_inputs, jsonl_bytes, rows

from torchdataguard.cli import main

#: records each damaged input holds before its damage (None: not known without reading it)
WHOLE = {"truncated_gz": 1500, "bad_magic": 1500, "bad_crc": 1500, "truncated_xz": 1500, "garbage_state_json": 50,
         "truncated_json_array": 300, "truncated_parquet": 100}


def scan(src, out, *extra):
    return main(["scan", str(src), "--out", str(out), "--device", "cpu", "--no-progress", *map(str, extra)])


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    return corrupt_inputs(tmp_path_factory.mktemp("corrupt"))


@pytest.mark.parametrize("kind", sorted(WHOLE))
def test_partial_files_of_a_damaged_input_agree_with_the_report(tmp_path, corrupt, kind):
    assert scan(corrupt[kind], tmp_path / "out", "--id-field", "id", "--stages", "exact,near", "--chunk-size", 64) == 3
    rep, kept, dropped = assert_scan_agrees(tmp_path / "out", complete=False)
    assert rep["seen"] == rep["records_read"] < WHOLE[kind] or kind == "bad_crc"
    assert len({r["id"] for r in kept}) == len(kept)  # no record written twice


def _mixed_jsonl(path):
    recs = rows(40)
    recs += [{"id": i, "text": recs[i]["text"]} for i in range(5)]  # reused ids, the same text: exact duplicates
    recs += [{"id": i, "text": f"other content under the reused id {i}, and AKIAIOSFODNN7EXAMPLE"} for i in range(5, 9)]
    lines = [json.dumps(r) for r in recs] + ["[1, 2, 3]", "42", "true", "null", '"a text record"', '{"id": 99}']
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.mark.parametrize("extra", [(), ("--hash-ids",), ("--dropped-pii",)])
def test_not_a_record_lines_reused_ids_and_pii_drops_agree(tmp_path, extra):
    n = _mixed_jsonl(tmp_path / "in.jsonl")
    assert scan(tmp_path / "in.jsonl", tmp_path / "out", "--id-field", "id", "--stages", "pii,exact,near",
                "--set", "pii.actions=drop", "--chunk-size", 7, *extra) == 0
    rep, kept, dropped = assert_scan_agrees(tmp_path / "out", n_input=n, complete=True)
    reasons = rep["dropped_by_reason"]
    assert reasons == {"invalid/not_a_record": 3, "invalid/none": 1, "invalid/missing_field": 1,
                       "duplicate/exact": 5, "pii/secret": 4}
    assert not any("AKIA" in json.dumps(r) for r in kept)
    if "--hash-ids" in extra:
        assert all(str(r.get("id", "h:")).startswith("h:") for r in kept if isinstance(r, dict))


def test_ragged_csv_rows_agree(tmp_path):
    p = tmp_path / "in.csv"
    p.write_text("id,text\n1,first ordinary text\n2,second text, with an unquoted comma\n3\n4,fourth text\n"
                 "5,fifth text\n")
    assert scan(p, tmp_path / "out", "--id-field", "id") == 0
    rep, kept, dropped = assert_scan_agrees(tmp_path / "out", n_input=5, complete=True)
    assert rep["dropped_by_reason"] == {"invalid/ragged_row": 2} and [r["id"] for r in kept] == ["1", "4", "5"]


def test_all_invalid_input_agrees(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text("not json\n[1]\n{broken\n7\n")
    assert scan(p, tmp_path / "out") == 4
    rep, kept, _ = assert_scan_agrees(tmp_path / "out", n_input=4, complete=True)
    assert rep["status"] == "no_valid_records" and not kept


def test_a_csv_cell_over_the_bound_agrees(tmp_path):
    p = tmp_path / "big.csv"
    p.write_text("id,text\n1,short text one\n2,short text two\n3," + "x" * 200_000 + "\n4,after the fault\n")
    assert scan(p, tmp_path / "out", "--max-chars", 1000) == 3
    rep, kept, _ = assert_scan_agrees(tmp_path / "out", complete=False)
    assert rep["seen"] == 2 and len(kept) == 2


def test_strict_interrupted_and_missing_text_field_scans_agree(tmp_path, monkeypatch):
    p = tmp_path / "in.jsonl"
    p.write_bytes(jsonl_bytes(rows(30)) + b"{broken\n" + jsonl_bytes(rows(5, start=30)))
    assert scan(p, tmp_path / "strict", "--strict", "--chunk-size", 8) == 3
    rep, _, _ = assert_scan_agrees(tmp_path / "strict", complete=False)
    assert rep["seen"] == 24  # the chunk holding the bad record was not decided, and nothing of it written
    assert scan(p, tmp_path / "field", "--text-field", "body", "--chunk-size", 8) == 2
    assert_scan_agrees(tmp_path / "field", complete=False)

    import torchdataguard.io.readers as readers

    real = readers.read_records

    def interrupted(*a, **kw):
        for i, rec in enumerate(real(*a, **kw)):
            if i == 17:
                raise KeyboardInterrupt
            yield rec

    monkeypatch.setattr(readers, "read_records", interrupted)
    assert scan(p, tmp_path / "int", "--chunk-size", 5) == 130
    rep, _, _ = assert_scan_agrees(tmp_path / "int", complete=False)
    assert rep["seen"] == 15
