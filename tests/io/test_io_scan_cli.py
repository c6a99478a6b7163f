import csv
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from torchdataguard.cli import main
from torchdataguard.scan import scan

ROWS = [
    {"id": "a", "text": "The first message about the quarterly meeting schedule for the team."},
    {"id": "b", "text": "the first message about the quarterly  meeting schedule for the team."},
    {"id": "c", "text": "Completely different content about gardening and tomatoes in summer."},
    {"id": "d", "text": ""},
]


def _check(out, n_bad=0):
    kept = [json.loads(x) for x in (out / "kept.jsonl").read_text().splitlines()]
    dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
    rep = json.loads((out / "report.json").read_text())
    assert [r["id"] for r in kept] == ["a", "c"]
    reasons = {r["id"]: r for r in dropped}
    assert reasons["b"]["reason"] == "duplicate/exact" and reasons["b"]["matched"] == "a"
    assert reasons["d"]["reason"] == "invalid/empty"
    assert rep["seen"] == 4 + n_bad and rep["kept"] == 2 and rep["dropped"] == 2 + n_bad
    assert rep["throughput"]["examples_per_second"] > 0
    assert rep["settings"]["text_field"] == "text" and "machine" in rep
    return rep


def test_scan_jsonl_with_broken_lines(tmp_path):
    p = tmp_path / "in.jsonl"
    with open(p, "wb") as fh:
        for r in ROWS:
            fh.write(json.dumps(r).encode() + b"\n")
        fh.write(b"{not json\n")
        fh.write(b'{"id": "z", "text": "\xff\xfe"}\n')
    rep = _check_cli(p, tmp_path / "out", n_bad=2)
    assert rep["dropped_by_reason"]["invalid/json"] == 1
    assert rep["dropped_by_reason"]["invalid/not_utf8"] == 1


def _check_cli(p, out, n_bad=0, extra=()):
    code = main(["scan", str(p), "--out", str(out), "--id-field", "id", "--device", "cpu", "--no-progress", *extra])
    assert code == 0
    return _check(out, n_bad)


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "datasets"])
def test_scan_formats(tmp_path, fmt):
    if fmt == "json":
        p = tmp_path / "in.json"
        p.write_text(json.dumps(ROWS))
    elif fmt == "csv":
        p = tmp_path / "in.csv"
        with open(p, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["id", "text"])
            w.writeheader()
            w.writerows(ROWS)
    elif fmt == "parquet":
        p = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), p)
    else:
        p = tmp_path / "saved"
        datasets.Dataset.from_list(ROWS).save_to_disk(str(p))
    _check_cli(p, tmp_path / "out")


def test_scan_python_api_and_bad_arguments(tmp_path, capsys):
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in ROWS))
    rep = scan(str(p), str(tmp_path / "o"), id_field="id", device="cpu", progress=False, stages=["exact"])
    assert rep["dropped_by_reason"] == {"duplicate/exact": 1, "invalid/empty": 1}
    assert main(["scan", str(p), "--out", str(tmp_path / "o2"), "--stages", "exact,nope"]) == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err
    assert main(["scan", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o3")]) == 2
    assert main(["scan", str(p), "--out", str(tmp_path / "o4"), "--threshold", "1.5", "--device", "cpu"]) == 2
    assert main(["scan", str(p), "--out", str(tmp_path / "o5"), "--set", "near.ngram=3", "--device", "cpu",
                 "--no-progress"]) == 0


def test_scan_shipped_sample(tmp_path):
    rep = scan("sample:spamassassin", str(tmp_path / "s"), device="cpu", progress=False, limit=400)
    assert rep["seen"] == 400 and rep["kept"] + rep["dropped"] == 400


def test_records_dropped_for_pii_are_withheld_from_dropped_jsonl(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [
        {"id": "k", "text": "plain text without anything personal in it at all"},
        {"id": "p", "text": "mail me at jane.doe@example.org about the thing"}]))
    rep = scan(str(p), str(tmp_path / "o"), id_field="id", device="cpu", progress=False, stages=["pii"],
               options={"pii": {"actions": {"default": "keep", "email": "drop"}}})
    assert rep["dropped_by_reason"] == {"pii/email": 1}
    dropped = (tmp_path / "o" / "dropped.jsonl").read_text()
    assert "jane.doe@example.org" not in dropped and json.loads(dropped)["withheld"]
    scan(str(p), str(tmp_path / "o2"), id_field="id", device="cpu", progress=False, stages=["pii"],
         options={"pii": {"actions": {"default": "keep", "email": "drop"}}}, dropped_pii=True)
    assert "jane.doe@example.org" in (tmp_path / "o2" / "dropped.jsonl").read_text()


@pytest.mark.parametrize("stages", ["", ",", " , "])
def test_stages_that_name_no_stage_are_refused_with_the_names(tmp_path, capsys, stages):
    # until the fifteenth session a scan ran with no stage, kept every valid record and exited 0
    p = tmp_path / "in.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert main(["scan", str(p), "--out", str(tmp_path / "o"), "--stages", stages, "--device", "cpu",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--stages {stages!r} names no stage" in err and "'exact', 'langid', 'near'" in err
    assert not (tmp_path / "o").exists()
