"""Scans with ids: a repeated id never lets a record skip the stages, the outcome does not depend on the
chunk size, the files always agree with the report, and --hash-ids keeps raw ids out of every output."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from scan_agreement import assert_scan_agrees

from torchdataguard.cli import main
from torchdataguard.scan import scan

AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
CARD = "4111 1111 1111 1111"
SECRETS = (AWS, GITHUB, CARD)


def _write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return path


def _reused_id_rows():
    """30 clean records, then records reusing their ids with secrets, a null text and an identical repeat."""
    rows = [{"id": i, "text": f"harmless note number {i} about the weather, tea and the garden {i * 7}"}
            for i in range(30)]
    for i in range(30):
        secret = SECRETS[i % 3]
        rows.append({"id": i, "text": f"ticket {i}: the credential is {secret} keep it safe {i * 11}"})
    rows.append({"id": 3, "text": None})
    rows.append(dict(rows[5]))  # the very same record again, same id
    return rows


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "torchdataguard.cli", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_scan_repeated_ids_never_pass_secrets_whatever_the_chunk_size(tmp_path):
    rows = _reused_id_rows()
    src = _write_jsonl(tmp_path / "in.jsonl", rows)
    outputs = {}
    for cs in (1, 7, 1024):
        out = tmp_path / f"out{cs}"
        if cs == 1024:  # the command line, as a user runs it
            res = _cli("scan", src, "--out", out, "--stages", "pii,exact,near", "--id-field", "id",
                       "--set", "pii.actions=drop", "--device", "cpu", "--no-progress", "--chunk-size", cs)
            assert res.returncode == 0, res.stderr
        else:
            scan(str(src), str(out), stages=["pii", "exact", "near"], id_field="id", device="cpu", progress=False,
                 chunk_size=cs, options={"pii": {"actions": "drop"}})
        rep, kept, dropped = assert_scan_agrees(out, n_input=len(rows))
        kept_text = (out / "kept.jsonl").read_text()
        assert not any(s in kept_text for s in SECRETS)
        assert all(isinstance(r["text"], str) for r in kept)
        assert rep["kept"] == 30  # the 30 clean records, once each
        assert rep["dropped_by_reason"]["invalid/none"] == 1
        assert rep["dropped_by_reason"]["duplicate/exact"] == 1  # the identical repeat: one pass, a duplicate
        assert sum(n for k, n in rep["dropped_by_reason"].items() if k.startswith("pii/")) == 30
        outputs[cs] = ((out / "kept.jsonl").read_bytes(), (out / "dropped.jsonl").read_bytes(),
                       {k: rep[k] for k in ("seen", "kept", "dropped", "dropped_by_reason", "counts")})
    assert outputs[1] == outputs[7] == outputs[1024]


def _inputs(tmp_path):
    """Several inputs, each (path, extra scan kwargs, number of records)."""
    out = []
    rows = _reused_id_rows()
    out.append((_write_jsonl(tmp_path / "reused.jsonl", rows), {"id_field": "id", "stages": ["pii", "exact", "near"],
                                                                 "options": {"pii": {"actions": "drop"}}}, len(rows)))
    odd = [{"id": "None", "text": "a string id that reads None"}, {"id": None, "text": "a null id"},
           {"id": True, "text": "a bool id"}, {"id": "True", "text": "a string id that reads True"},
           {"id": 1, "text": "an int id"}, {"id": 1.5, "text": "a float id"}, {"text": "no id at all"},
           {"id": [1, 2], "text": "a list id"}]
    out.append((_write_jsonl(tmp_path / "odd_ids.jsonl", odd), {"id_field": "id"}, len(odd)))
    dups = [{"text": f"row {i % 9} of a corpus with many exact and near copies, and filler words {i % 9}"}
            for i in range(60)]
    out.append((_write_jsonl(tmp_path / "dups.jsonl", dups), {}, len(dups)))
    with open(tmp_path / "broken.jsonl", "wb") as fh:
        fh.write(b'{"id": "a", "text": "fine"}\n{not json\n{"id": "b", "text": "\xff\xfe"}\n{"id": "a", "text": "x"}\n')
    out.append((tmp_path / "broken.jsonl", {"id_field": "id"}, 4))
    with open(tmp_path / "rows.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(12):
            w.writerow([str(i % 4), f"csv row {i % 5} with a few words"])
    out.append((tmp_path / "rows.csv", {"id_field": "id"}, 12))
    return out


@pytest.mark.parametrize("chunk_size", [1, 5, 256])
def test_scan_files_agree_with_the_report_on_every_input(tmp_path, chunk_size):
    for i, (src, kw, n) in enumerate(_inputs(tmp_path)):
        kw = dict(kw)
        stages = kw.pop("stages", ["exact", "near"])
        out = tmp_path / f"out{i}"
        scan(str(src), str(out), stages=stages, device="cpu", progress=False, chunk_size=chunk_size, **kw)
        assert_scan_agrees(out, n_input=n)


def test_scan_odd_ids_are_counted_drops_not_strings(tmp_path):
    src, kw, n = _inputs(tmp_path)[1]
    scan(str(src), str(tmp_path / "out"), device="cpu", progress=False, **kw)
    rep, kept, dropped = assert_scan_agrees(tmp_path / "out", n_input=n)
    assert [r["id"] for r in kept] == ["None", "True", 1]
    assert rep["dropped_by_reason"] == {"invalid/missing_id": 2, "invalid/id_type": 3}
    assert all(r["id"] is None for r in dropped)  # never "None"/"True": those name other records


def test_scan_hash_ids_keeps_raw_ids_out_of_every_output(tmp_path, capsys):
    emails = [f"person{i}@example.org" for i in range(6)]
    rows = [{"id": e, "text": f"message {i} from the mailing list about the picnic {i * 3}"} for i, e in enumerate(emails)]
    rows.append({"id": emails[0], "text": rows[0]["text"]})  # an exact duplicate, matched by a hashed id
    src = _write_jsonl(tmp_path / "in.jsonl", rows)
    plain, keyed = tmp_path / "plain", tmp_path / "keyed"
    scan(str(src), str(plain), id_field="id", hash_ids=True, device="cpu", progress=False)
    key = "a-secret-key-of-32-bytes-for-ids"
    res = _cli("scan", src, "--out", keyed, "--id-field", "id", "--hash-ids-key-env", "TDG_TEST_KEY", "--device",
               "cpu", "--no-progress", env={"TDG_TEST_KEY": key})
    assert res.returncode == 0, res.stderr
    for out in (plain, keyed):
        rep, kept, dropped = assert_scan_agrees(out, n_input=len(rows))
        assert rep["dropped_by_reason"] == {"duplicate/exact": 1}
        for name in ("kept.jsonl", "dropped.jsonl", "report.json", "report.html"):
            text = (out / name).read_text(encoding="utf-8")
            assert not any(e in text for e in emails), name
            assert key not in text
        assert all(r["id"].startswith("h:") for r in kept)  # the records' id field holds the hash too
        assert dropped[0]["id"] == dropped[0]["record"]["id"] and dropped[0]["matched"] == kept[0]["id"]
    assert [r["id"] for r in assert_scan_agrees(plain)[1]] != [r["id"] for r in assert_scan_agrees(keyed)[1]]
    assert main(["scan", str(src), "--out", str(tmp_path / "x"), "--hash-ids", "--device", "cpu", "--no-progress"]) == 2
    assert "hash_ids needs id_field" in capsys.readouterr().err
    assert main(["scan", str(src), "--out", str(tmp_path / "y"), "--id-field", "id", "--hash-ids-key-env",
                 "TDG_UNSET_VAR_X", "--device", "cpu", "--no-progress"]) == 2
    assert "TDG_UNSET_VAR_X" in capsys.readouterr().err
