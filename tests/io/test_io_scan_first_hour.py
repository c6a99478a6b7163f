"""Issue 19 item 6: the command line a new user meets first (samples, --set, the id column)."""
import csv
import json

from torchdataguard.cli import main

ROWS = [{"id": "m-1", "text": "The first message about the quarterly meeting schedule for the team."},
        {"id": "m-2", "text": "the first message about the quarterly  meeting schedule for the team."},
        {"id": "m-3", "text": "Completely different content about gardening and tomatoes in summer."}]


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_unknown_sample_lists_the_shipped_ones_instead_of_a_traceback(tmp_path, capsys):
    code, out, err = run(capsys, "scan", "sample:spam", "--out", tmp_path / "o", "--device", "cpu", "--no-progress")
    assert code == 2
    assert "Traceback" not in err and "FileNotFoundError" not in err
    assert "no shipped sample 'spam'" in err and "did you mean sample:spamassassin?" in err
    assert "sample:spamassassin (6,046 e-mails" in err
    assert not (tmp_path / "o").exists()


def test_an_unknown_set_option_lists_the_valid_ones(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--set", "near.ngramz=3", "--device", "cpu",
                       "--no-progress")
    assert code == 2
    assert "unexpected keyword argument" not in err
    assert "no option 'ngramz'" in err and "did you mean near.ngram?" in err
    assert "its options are abugida_ngram, bands, char_ngram, exact_below, ngram, num_perm, seed" in err
    # a valid option still works, and so do several at once
    assert run(capsys, "scan", src, "--out", tmp_path / "o2", "--set", "near.ngram=3", "--set", "exact.normalize=false",
               "--device", "cpu", "--no-progress")[0] == 0


def _csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_a_csv_id_column_is_the_default_id_and_the_scan_says_so(tmp_path, capsys):
    src = _csv(tmp_path / "in.csv", ROWS)
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--device", "cpu", "--no-progress")
    assert code == 0
    assert "using the field 'id' as the record id" in err
    kept = [json.loads(x) for x in (tmp_path / "o" / "kept.jsonl").read_text().splitlines()]
    dropped = [json.loads(x) for x in (tmp_path / "o" / "dropped.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == ["m-1", "m-3"]
    assert dropped[0]["id"] == "m-2" and dropped[0]["matched"] == "m-1"
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["settings"]["id_field"] == "id"
    # --id-field '' numbers records by position, as before; a file without an id column is not affected
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "p", "--id-field", "", "--device", "cpu",
                       "--no-progress")
    assert code == 0 and "using the field" not in err
    assert [json.loads(x)["matched"] for x in (tmp_path / "p" / "dropped.jsonl").read_text().splitlines()] == [0]
    plain = _csv(tmp_path / "plain.csv", [{"text": r["text"]} for r in ROWS])
    code, _, err = run(capsys, "scan", plain, "--out", tmp_path / "q", "--device", "cpu", "--no-progress")
    assert code == 0 and "using the field" not in err
    assert json.loads((tmp_path / "q" / "report.json").read_text())["settings"]["id_field"] is None


def test_exit_codes_stay_as_documented(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert run(capsys, "scan", src, "--out", tmp_path / "a", "--device", "cpu", "--no-progress")[0] == 0
    assert run(capsys, "scan", src, "--out", tmp_path / "b", "--text-field", "body", "--device", "cpu",
               "--no-progress")[0] == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run(capsys, "scan", empty, "--out", tmp_path / "c", "--device", "cpu", "--no-progress")[0] == 4
