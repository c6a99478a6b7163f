"""A scan with the pii stage names the other fields of the kept records that still hold personal data (they are
written to kept.jsonl as they came: the stage scrubs the text field only). Before, a CSV's `email` column left
the scan whole while the report counted the addresses scrubbed from the text, and nothing said so."""
import csv
import json

from torchdataguard.cli import main


def write_people(path, n=6):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "email", "note", "text"])
        for i in range(n):
            w.writerow([i, "Jane Doe", f"jane{i}@example.org", "no personal data here",
                        f"hello, write to me at jane{i}@example.org or call +1 415 555 01{i}2, message {i}"])


def run(capsys, *argv):
    code = main([*map(str, argv), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_other_fields_with_personal_data_are_named_with_the_fix(tmp_path, capsys):
    src = tmp_path / "people.csv"
    write_people(src)
    code, _, err = run(capsys, "scan", src, "--stages", "pii,exact", "--out", tmp_path / "o")
    assert code == 0
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["pii_other_fields"] == {"checked_records": 6, "fields": {"email": 6}, "withheld_names": 0}
    assert "fields other than the text" in err and "'email' (6 records)" in err and "dropped.jsonl" in err
    assert """--set 'pii.fields=["email"]'""" in err
    assert "jane0@example.org" not in err + (tmp_path / "o" / "report.json").read_text()  # names, never values
    # the fix it names scrubs them, and nothing is said any more
    code, _, err = run(capsys, "scan", src, "--stages", "pii,exact", "--out", tmp_path / "o2", "--set", 'pii.fields=["email"]')
    kept = [json.loads(line) for line in (tmp_path / "o2" / "kept.jsonl").read_text().splitlines()]
    assert code == 0 and all(r["email"] == "<EMAIL>" for r in kept)
    assert "fields other than the text" not in err
    assert "pii_other_fields" not in json.loads((tmp_path / "o2" / "report.json").read_text())


def test_without_the_pii_stage_nothing_is_probed(tmp_path, capsys):
    src = tmp_path / "people.csv"
    write_people(src)
    code, _, err = run(capsys, "scan", src, "--stages", "exact", "--out", tmp_path / "o")
    assert code == 0 and "fields other than the text" not in err


def test_records_dropped_after_the_pii_stage_are_probed_too(tmp_path, capsys):
    src = tmp_path / "dups.jsonl"
    row = {"text": "mail jane@example.org now please", "note": "ask bob@example.org"}
    src.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    code, _, err = run(capsys, "scan", src, "--stages", "pii,exact", "--out", tmp_path / "o")
    dropped = json.loads((tmp_path / "o" / "dropped.jsonl").read_text())
    assert code == 0 and dropped["record"]["note"] == "ask bob@example.org"  # what the warning is about
    assert json.loads((tmp_path / "o" / "report.json").read_text())["pii_other_fields"]["fields"] == {"note": 2}
    assert "'note' (2 records)" in err
