"""JSONL files with CR-only line ends (old Mac files) are read line by line, like LF and CRLF files."""
import json

import pytest

from torchdataguard.cli import main
from torchdataguard.io.readers import count_records, read_records


def _write(tmp_path, body: bytes, name="in.jsonl"):
    p = tmp_path / name
    p.write_bytes(body)
    return str(p)


def test_scan_reads_cr_only_line_ends_as_line_ends(tmp_path, capsys):
    src = _write(tmp_path, b'{"text":"a b c"}\r{"text":"d e f"}\r{"text":"g h i"}\r')
    out = tmp_path / "out"
    assert main(["scan", src, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["seen"] == rep["kept"] == 3 and rep["dropped_by_reason"] == {}
    # kept records are written as their source lines, one per line
    assert (out / "kept.jsonl").read_text(encoding="utf-8").splitlines() == \
        ['{"text":"a b c"}', '{"text":"d e f"}', '{"text":"g h i"}']


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_every_line_end_gives_the_same_records_and_line_numbers(tmp_path, end):
    lines = [b'\xef\xbb\xbf{"text": "one"}', b'"two"', b'[3]', b'', b'{"text": "four"', b'\xff', b'{"text": "x"}']
    src = _write(tmp_path, end.join(lines) + end)
    got = [r if isinstance(r, (dict, str)) else (r.reason, r.where) for r in read_records(src)]
    assert got == [{"text": "one"}, "two", ("not_a_record", "line 3"), ("json", "line 5"), ("not_utf8", "line 6"),
                   {"text": "x"}]
    assert count_records(src) == 7


def test_cr_only_lines_after_lf_lines_keep_the_file_line_numbers(tmp_path):
    src = _write(tmp_path, b'{"text": "a"}\n{"text": "b"}\r[1]\r{"text": "c"}\n[2]\n')
    got = [r["text"] if isinstance(r, dict) else (r.reason, r.where) for r in read_records(src)]
    assert got == ["a", "b", ("not_a_record", "line 3"), "c", ("not_a_record", "line 5")]


def test_a_raw_cr_inside_a_damaged_string_stays_one_invalid_line(tmp_path):
    src = _write(tmp_path, b'{"text": "broken\rstring"}\n{"text": "ok"}\n')
    got = [r["text"] if isinstance(r, dict) else (r.reason, r.where) for r in read_records(src)]
    assert got == [("json", "line 1"), "ok"]


@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_files_joined_with_cat_keep_the_records_after_a_byte_order_mark(tmp_path, capsys, end):
    """``cat a.jsonl b.jsonl`` of two files saved by Windows tools puts b's UTF-8 byte order mark at the start of a
    line: until 2026-12-07 its record was dropped as invalid/json (and dropped.jsonl held no copy of it)."""
    bom = b"\xef\xbb\xbf"
    part = lambda name: bom + end.join(json.dumps({"text": f"{name} record {i}"}).encode() for i in range(2)) + end
    src = _write(tmp_path, part("first") + part("second"))
    got = [r["text"] if isinstance(r, dict) else (r.reason, r.where) for r in read_records(src)]
    assert got == ["first record 0", "first record 1", "second record 0", "second record 1"]
    out = tmp_path / "out"
    assert main(["scan", src, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    kept = (out / "kept.jsonl").read_text(encoding="utf-8").splitlines()
    assert kept[2] == '{"text": "second record 0"}'  # written as its line, without the mark
    bad = _write(tmp_path, b'{"text": "a"}\n' + bom + b'{"text": \n', name="bad.jsonl")  # a mark, then bad JSON
    assert [getattr(r, "reason", r) for r in read_records(bad)] == [{"text": "a"}, "json"]
