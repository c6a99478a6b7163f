"""A scan of a damaged or wrong input ends with a report that says what happened and a documented exit code.

Exit codes, stderr and the files left in --out are what a user sees: one case of each exit code runs the CLI
as a subprocess (``python -m torchdataguard.cli``; each start imports torch and transformers, seconds), the
other cases call ``main()``, which returns the same exit code to ``sys.exit``.
"""
import csv
import gzip
import json
import lzma
import os
import random
import subprocess
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "torchdataguard.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def scan_cli(src, out, *extra):
    return cli("scan", src, "--out", out, "--device", "cpu", "--no-progress", *extra)


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def scan_main(capsys):
    """``main(["scan", ...])`` in this process: the exit code and stderr, as scan_cli gives them."""
    from torchdataguard.cli import main

    def run(src, out, *extra):
        capsys.readouterr()
        code = main(["scan", str(src), "--out", str(out), "--device", "cpu", "--no-progress", *map(str, extra)])
        return Result(code, capsys.readouterr().err)

    return run


WORDS = [f"w{i}" for i in range(5000)]


def rows(n, start=0):
    """Distinct records: no two share more than a couple of words."""
    return [{"id": i, "text": " ".join(random.Random(i).sample(WORDS, 12))} for i in range(start, start + n)]


def jsonl_bytes(recs):
    return ("\n".join(json.dumps(r) for r in recs) + "\n").encode()


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def check_partial(res, out, code=3, all_read_decided=True):
    """Exit code, a readable message, partial files that agree with a report marked incomplete."""
    assert res.returncode == code, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and res.stderr.startswith("torchdataguard: ")
    names = sorted(os.listdir(out))
    assert names == ["dropped.partial.jsonl", "kept.partial.jsonl", "report.html", "report.json"], names
    rep = json.loads((out / "report.json").read_text())
    assert rep["complete"] is False and rep["exit_code"] == code and rep["error"]
    assert rep["seen"] == rep["kept"] + rep["dropped"]
    assert rep["records_read"] == rep["seen"] or not all_read_decided
    assert len(lines(out / "kept.partial.jsonl")) == rep["kept"]
    assert rep["outputs"]["kept"].endswith("kept.partial.jsonl")
    assert "Incomplete: the scan stopped early" in (out / "report.html").read_text()
    return rep


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    return corrupt_inputs(tmp_path_factory.mktemp("corrupt"))


def corrupt_inputs(tmp_path):
    data = jsonl_bytes(rows(1500))
    gz = gzip.compress(data)
    xz = lzma.compress(data)
    made = {}
    made["truncated_gz"] = tmp_path / "a.jsonl.gz"
    made["truncated_gz"].write_bytes(gz[: len(gz) // 2])
    made["bad_magic"] = tmp_path / "b.jsonl.gz"
    made["bad_magic"].write_bytes(b"XX" + gz[2:])
    bad = bytearray(gz)
    bad[-8] ^= 0xFF  # the CRC32 in the trailer: every line decompresses, the checksum fails at the end
    made["bad_crc"] = tmp_path / "c.jsonl.gz"
    made["bad_crc"].write_bytes(bytes(bad))
    made["truncated_xz"] = tmp_path / "d.jsonl.xz"
    made["truncated_xz"].write_bytes(xz[: len(xz) // 2])
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(rows(50)).save_to_disk(str(saved))
    (saved / "state.json").write_text("{{{ not json")
    made["garbage_state_json"] = saved
    made["truncated_json_array"] = tmp_path / "e.json"
    made["truncated_json_array"].write_text(json.dumps(rows(300))[:-500])
    pq.write_table(pa.Table.from_pylist(rows(100)), tmp_path / "f.parquet")
    made["truncated_parquet"] = tmp_path / "g.parquet"
    made["truncated_parquet"].write_bytes((tmp_path / "f.parquet").read_bytes()[:-100])
    return made


@pytest.mark.parametrize("kind", ["truncated_gz", "bad_magic", "bad_crc", "truncated_xz", "garbage_state_json",
                                  "truncated_json_array", "truncated_parquet"])
def test_damaged_input_ends_with_partial_report_and_exit_3(tmp_path, corrupt, scan_main, kind):
    src = corrupt[kind]
    out = tmp_path / "out"
    res = (scan_cli if kind == "truncated_gz" else scan_main)(src, out, "--id-field", "id")
    rep = check_partial(res, out)
    assert rep["status"] == "input_error"
    assert str(src) in rep["error"] or os.path.basename(str(src)) in rep["error"]
    if kind == "bad_crc":  # every line was read and decided before the checksum failed: all of it is partial
        assert rep["seen"] == 1500 and rep["kept"] == 1500 and "CRC" in rep["error"]
    if kind in ("truncated_gz", "truncated_xz", "truncated_json_array"):
        assert 0 < rep["seen"] < 1500
    if kind in ("bad_magic", "garbage_state_json"):
        assert rep["seen"] == 0


def test_a_failed_scan_never_leaves_the_previous_report_beside_its_files(tmp_path, corrupt, scan_main):
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl_bytes(rows(40)))
    out = tmp_path / "out"
    assert scan_main(good, out).returncode == 0
    assert json.loads((out / "report.json").read_text())["kept"] == 40
    damaged = corrupt["truncated_gz"]
    rep = check_partial(scan_main(damaged, out), out)  # the same folder: old kept.jsonl and report.json are gone
    assert rep["input"]["path"].endswith("a.jsonl.gz")
    assert not any(n.startswith(".tdg-scan-") for n in os.listdir(out))
    # and a complete scan afterwards replaces the partial files
    assert scan_main(good, out).returncode == 0
    assert sorted(os.listdir(out)) == ["dropped.jsonl", "kept.jsonl", "report.html", "report.json"]
    assert json.loads((out / "report.json").read_text())["complete"] is True


def test_csv_cells_over_the_csv_default_limit_are_read(tmp_path, scan_main):
    p = tmp_path / "big.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "notes"])
        w.writerow(["1", "long " * 40000, "x"])  # 200,000 characters: over csv's default 131,072
        w.writerow(["2", "a short and ordinary text", "y" * 150000])
        w.writerow(["3", "z" * 60, "n"])
    limit = csv.field_size_limit()
    res = scan_main(p, tmp_path / "out", "--id-field", "id", "--max-chars", "100000")
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    # the 200,000-character text is over --max-chars: a counted drop, not a crash
    assert rep["seen"] == 3 and rep["dropped_by_reason"] == {"invalid/too_long": 1}
    kept = lines(tmp_path / "out" / "kept.jsonl")
    assert [r["id"] for r in kept] == ["2", "3"] and len(kept[0]["notes"]) == 150000
    # a cell over the reader's bound (4 x max_chars, at least 131,072) ends the scan as an input fault
    res = scan_main(p, tmp_path / "out2", "--max-chars", "1000")
    rep = check_partial(res, tmp_path / "out2")
    assert "field limit" in rep["error"] and "--max-chars" in rep["error"]
    assert csv.field_size_limit() == limit  # the process-wide csv setting is restored


def test_jsonl_lines_that_are_not_records_are_invalid(tmp_path, scan_main):
    p = tmp_path / "in.jsonl"
    p.write_text('{"text": "a real record with some words"}\n[1, 2, 3]\n42\ntrue\n"a text record"\n')
    res = scan_main(p, tmp_path / "out")
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["dropped_by_reason"] == {"invalid/not_a_record": 3} and rep["kept"] == 2
    assert lines(tmp_path / "out" / "kept.jsonl") == [{"text": "a real record with some words"}, "a text record"]


def test_ragged_csv_rows_are_invalid_not_kept_under_none(tmp_path, scan_main):
    p = tmp_path / "in.csv"
    p.write_text("id,text\n1,first ordinary text\n2,second text, with an unquoted comma\n3\n4,fourth text\n")
    res = scan_main(p, tmp_path / "out", "--id-field", "id")
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["dropped_by_reason"] == {"invalid/ragged_row": 2} and rep["seen"] == 4
    kept = lines(tmp_path / "out" / "kept.jsonl")
    assert [sorted(r) for r in kept] == [["id", "text"], ["id", "text"]] and [r["id"] for r in kept] == ["1", "4"]


@pytest.mark.parametrize("content,expect", [
    ("not json\n[1]\n{broken\n", "all 3 records were dropped as invalid"),
    ("", "holds no records"),
])
def test_all_garbage_or_empty_input_exits_4(tmp_path, scan_main, content, expect):
    p = tmp_path / "in.jsonl"
    p.write_text(content)
    res = (scan_cli if content else scan_main)(p, tmp_path / "out")
    assert res.returncode == 4 and expect in res.stderr, (res.returncode, res.stderr[-2000:])
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["complete"] is True and rep["status"] == "no_valid_records" and rep["kept"] == 0


def test_missing_text_field_exits_2_naming_the_fields(tmp_path):
    p = tmp_path / "small.csv"
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text"])
        w.writeheader()
        w.writerows(rows(30))
    res = scan_cli(p, tmp_path / "out", "--text-field", "body")
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    err = res.stderr
    assert "Traceback" not in err and "text_field='body'" in err and "['id', 'text']" in err
    assert "--text-field" in err
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["status"] == "config_error" and rep["complete"] is False


def test_exit_codes_are_documented_in_help(capsys):
    from torchdataguard.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["scan", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for code in ("0 ", "2 ", "3 ", "4 "):
        assert f"\n  {code}" in out
    assert "kept.partial.jsonl" in out


def test_strict_mode_and_interruption_also_leave_partial_reports(tmp_path, scan_main, monkeypatch):
    p = tmp_path / "in.jsonl"
    p.write_bytes(jsonl_bytes(rows(30)) + b"{broken\n" + jsonl_bytes(rows(5, start=30)))
    res = scan_main(p, tmp_path / "strict", "--strict", "--chunk-size", "8")
    rep = check_partial(res, tmp_path / "strict", all_read_decided=False)
    # the chunks before the one holding the bad record were decided; that chunk (records 24-31) was not
    assert rep["status"] == "input_error" and "line 31" in rep["error"]
    assert rep["seen"] == 24 and rep["records_read"] >= 31

    import torchdataguard.io.readers as readers

    real = readers.read_records

    def interrupted(*a, **kw):
        for i, rec in enumerate(real(*a, **kw)):
            if i == 12:
                raise KeyboardInterrupt
            yield rec

    monkeypatch.setattr(readers, "read_records", interrupted)
    res = scan_main(p, tmp_path / "int", "--chunk-size", "5")
    rep = check_partial(res, tmp_path / "int", code=130, all_read_decided=False)
    assert rep["status"] == "interrupted" and rep["seen"] == 10 and rep["records_read"] == 12
