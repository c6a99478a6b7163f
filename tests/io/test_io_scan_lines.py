"""kept.jsonl writes a JSONL record that nothing rewrote as its source line; anything else is encoded again."""
from __future__ import annotations

import json
import sys

import pytest

import torchdataguard.cli as cli
from torchdataguard.core.plan import Planner
from torchdataguard.scan.local import scan

SOURCE = [
    '{"text": "caf\\u00e9 au lait, please", "id": 1, "n": 1.50, "tags": ["a",  "b"]}',  # escapes, spacing, 1.50
    '{"id": 2,"text":"Same text twice"}',
    '{"id": 3, "text": "same   TEXT twice"}',  # exact duplicate of 2
    '{"id": 4, "text": "Another plain line", "big": 123456789012345678901234567890}',
    '{"id": 5, "text": "a record with NaN in it", "x": NaN}',
    '"a bare string record"',
    '{"id": 7, "text": "Write to bob@example.org about it"}',
]


def _write(tmp_path, lines, end="\n"):
    p = tmp_path / "in.jsonl"
    p.write_bytes(end.join(lines).encode("utf-8") + end.encode())
    return str(p)


def _kept_lines(out):
    return (out / "kept.jsonl").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_kept_records_are_their_source_lines(tmp_path, end):
    src = _write(tmp_path, SOURCE, end)
    rep = scan(src, str(tmp_path / "out"), stages=["exact", "near"], id_field="id", device="cpu", progress=False)
    kept = _kept_lines(tmp_path / "out")
    assert rep["kept"] == len(kept) == 6 and rep["dropped_by_reason"] == {"duplicate/exact": 1}
    expect = [SOURCE[0], SOURCE[1], SOURCE[3], None, SOURCE[5], SOURCE[6]]
    for got, want in zip(kept, expect):
        if want is not None:
            assert got == want  # byte for byte: escapes, spacing, 1.50 and the big integer as they came
    assert [json.loads(line) for i, line in enumerate(kept) if i != 3] == \
        [json.loads(w) for i, w in enumerate(expect) if i != 3]
    # the NaN record is encoded again, as before: valid JSON with the value as a string
    assert json.loads(kept[3]) == {"id": 5, "text": "a record with NaN in it", "x": "nan"}


def test_overflowing_floats_and_inner_carriage_returns_are_encoded_again(tmp_path):
    """A float literal too large for a float (1e400) reads as inf, which kept.jsonl has always held as a string;
    a carriage return between a line's tokens is valid JSON but breaks the line for text-mode readers."""
    lines = ['{"id": 1, "text": "big float", "x": 1e400, "y": [-1E999]}',
             '{"id": 2,\r"text": "a carriage return between tokens"}',
             '{"id": 3, "text": "plain", "x": 1e300}']
    p = tmp_path / "in.jsonl"
    p.write_bytes("\n".join(lines).encode("utf-8") + b"\n")
    rep = scan(str(p), str(tmp_path / "out"), stages=["exact"], id_field="id", device="cpu", progress=False)
    with open(tmp_path / "out" / "kept.jsonl", encoding="utf-8") as fh:  # text mode: universal newlines
        kept = [json.loads(line) for line in fh]
    assert rep["kept"] == len(kept) == 3
    assert kept[0] == {"id": 1, "text": "big float", "x": "inf", "y": ["-inf"]}
    assert kept[1] == {"id": 2, "text": "a carriage return between tokens"}
    assert kept[2] == {"id": 3, "text": "plain", "x": 1e300}


def test_rewritten_records_are_encoded_again(tmp_path):
    src = _write(tmp_path, SOURCE)
    scan(src, str(tmp_path / "out"), stages=["pii", "exact"], id_field="id", device="cpu", progress=False)
    kept = {json.loads(line).get("id") if line.startswith("{") else "bare": line for line in _kept_lines(tmp_path / "out")}
    assert "bob@example.org" not in kept[7]  # scrubbed: the rewritten record, not the source line
    assert json.loads(kept[7])["text"] != json.loads(SOURCE[6])["text"]
    assert kept[2] == SOURCE[1]  # records nothing rewrote are still their source lines


def test_hashed_ids_are_encoded_again(tmp_path):
    src = _write(tmp_path, SOURCE[:4])
    scan(src, str(tmp_path / "out"), stages=["exact"], id_field="id", hash_ids=True, device="cpu", progress=False)
    kept = [json.loads(line) for line in _kept_lines(tmp_path / "out")]
    assert len(kept) == 3 and all(str(r["id"]).startswith("h:") for r in kept)


@pytest.mark.parametrize("record", [
    {"id": 5, "text": "plain"}, {"id": "a", "text": "plain"}, {"id": True, "text": "plain"},
    {"id": None, "text": "plain"}, {"id": 1.5, "text": "plain"}, {"text": "no id"}, {"id": 3, "text": "   "},
    {"id": 3, "text": ""}, {"id": 3, "text": "caf\u00e9"}, {"id": 3, "text": b"bytes"}, {"id": 3, "text": None},
    {"id": 3}, {"id": 3, "text": "x" * 11},
])
def test_make_example_with_an_id_field_matches_the_full_checks(record):
    """The fast path for dicts with a plain id gives what the full checks give (they run for a dict subclass)."""
    class D(dict):
        pass

    p = Planner([], text_field="text", id_field="id", strict=False, max_chars=10, needs_text=True)
    fast, slow = p.make_example(record, 0), p.make_example(D(record), 0)
    assert (fast[0].id, fast[0].text, fast[0].text_field, fast[1]) == (slow[0].id, slow[0].text, slow[0].text_field,
                                                                        slow[1])


def test_only_the_command_line_process_freezes_the_collector(tmp_path, monkeypatch):
    src = _write(tmp_path, SOURCE[:2])
    calls = []
    monkeypatch.setattr(cli.gc, "freeze", lambda: calls.append(1))
    assert cli.main(["scan", src, "--out", str(tmp_path / "a"), "--no-progress", "--device", "cpu"]) == 0
    assert calls == []  # a call from Python code leaves the caller's collector alone
    monkeypatch.setattr(sys, "argv", ["torchdataguard", "scan", src, "--out", str(tmp_path / "b"), "--no-progress",
                                      "--device", "cpu"])
    assert cli.main() == 0
    assert calls == [1]


def test_dropped_bad_lines_name_their_line_in_the_file(tmp_path):
    # until the fifteenth session such an entry had "record": null and an id that counts records (blank lines
    # skipped): nothing located the line; the reader's "line N" was never written out
    raw = (b'{"text": "first text"}\n\n{"text": broken\r\n\n\n{"text": "second text"}\n\xff\xfe not utf-8\n'
           b'[1, 2]\n{"text": "third text"}\r{"text": cut off\n')
    src = tmp_path / "in.jsonl"
    src.write_bytes(raw)
    rep = scan(str(src), str(tmp_path / "out"), stages=["exact"], device="cpu", progress=False)
    dropped = [json.loads(x) for x in (tmp_path / "out" / "dropped.jsonl").read_text().splitlines()]
    # the last two records share a line that ends in a lone CR (an old Mac file): lines 9 and 10
    assert [(d["reason"], d["line"], d["record"]) for d in dropped] == [
        ("invalid/json", 3, None), ("invalid/not_utf8", 7, None), ("invalid/not_a_record", 8, None),
        ("invalid/json", 10, None)]
    assert [d["id"] for d in dropped] == [1, 3, 4, 6]  # the ids stay record positions, as before
    assert rep["dropped"] == 4

    csv_src = tmp_path / "in.csv"
    csv_src.write_text('id,text\n1,"a text\nover two lines"\n\n2,ragged,row\n')
    scan(str(csv_src), str(tmp_path / "csv"), stages=["exact"], device="cpu", progress=False)
    (row,) = [json.loads(x) for x in (tmp_path / "csv" / "dropped.jsonl").read_text().splitlines()]
    assert row["reason"] == "invalid/ragged_row" and row["line"] == 5
