"""Inputs from an adversarial sweep of ``torchdataguard scan`` (session 10): each once crashed the scan, lost a
record or leaked personal data."""
from __future__ import annotations

import json

import pytest

from torchdataguard.core.textcheck import TextFieldCheck
from torchdataguard.errors import ConfigError, GuardInputError
from torchdataguard.io.readers import first_record, read_records
from torchdataguard.scan.local import scan

from scan_agreement import assert_scan_agrees

GOOD = [json.dumps({"id": f"g{i}", "text": f"record number {i} about the river"}) for i in range(3)]


def _scan(tmp_path, name, data, **kw):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    kw.setdefault("stages", ["exact", "near"])
    return scan(str(p), str(tmp_path / "out"), device="cpu", progress=False, **kw)


@pytest.mark.parametrize("bad", ['{"id": "d", "text": "deep", "m": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                 '{"id": "h", "text": "huge", "n": ' + "9" * 5_000 + "}",
                                 '{"id": ' + "9" * 5_000 + ', "text": "huge id"}'])
def test_a_jsonl_line_python_cannot_decode_is_a_counted_drop(tmp_path, bad):
    """Nesting past the recursion limit and integers over 4,300 digits raised RecursionError / ValueError out of
    the reader: a traceback, exit 1, and the records of the chunk read before it never written."""
    rep = _scan(tmp_path, "in.jsonl", "\n".join(GOOD[:2] + [bad] + GOOD[2:]) + "\n")
    assert rep["dropped_by_reason"] == {"invalid/json": 1} and rep["kept"] == 3
    assert_scan_agrees(tmp_path / "out", n_input=4, complete=True)


def test_a_json_array_element_python_cannot_decode_is_an_input_fault(tmp_path):
    p = tmp_path / "in.json"
    p.write_text("[" + ",".join(GOOD) + ', {"m": ' + "[" * 100_000 + "]" * 100_000 + "}]", encoding="utf-8")
    got = []
    with pytest.raises(GuardInputError, match="nested too deeply"):
        for rec in read_records(str(p)):
            got.append(rec)
    assert len(got) == 3


def test_a_byte_order_mark_does_not_cost_the_first_jsonl_record(tmp_path):
    """Windows tools write UTF-8 with a BOM: the first line was dropped as invalid/json."""
    rep = _scan(tmp_path, "in.jsonl", b"\xef\xbb\xbf" + "\r\n".join(GOOD).encode() + b"\r\n")
    assert rep["kept"] == 3 and rep["dropped"] == 0
    _, kept, _ = assert_scan_agrees(tmp_path / "out", n_input=3, complete=True)
    assert [r["id"] for r in kept] == ["g0", "g1", "g2"]
    assert (tmp_path / "out" / "kept.jsonl").read_bytes().startswith(b'{"id": "g0"')


@pytest.mark.parametrize("header", ["text,id", "id,text"])
def test_a_byte_order_mark_does_not_rename_the_first_csv_column(tmp_path, header):
    """Excel's "CSV UTF-8" starts with a BOM: the first column was read as '\\ufefftext' (text first: the scan
    refused the file, exit 2) or '\\ufeffid' (ids silently became positions)."""
    rows = [f"record {i} about rivers,c{i}" if header.startswith("text") else f"c{i},record {i} about rivers"
            for i in range(3)]
    rep = _scan(tmp_path, "in.csv", "\ufeff" + header + "\n" + "\n".join(rows) + "\n")
    assert rep["kept"] == 3 and sorted(first_record(str(tmp_path / "in.csv"))) == ["id", "text"]  # the CLI's id guess
    _, kept, _ = assert_scan_agrees(tmp_path / "out", n_input=3, complete=True)
    assert sorted(kept[0]) == ["id", "text"] and [r["id"] for r in kept] == ["c0", "c1", "c2"]


def test_a_csv_quote_left_open_at_the_end_is_an_input_fault(tmp_path):
    """The csv module reads an unclosed quote to the end of the file as one cell: the rows after it vanished
    into that cell (2 of 4 records seen, exit 0)."""
    data = "id,text\nc1,fine\nc2,\"opened and never closed\nc3,lost\nc4,lost too\n"
    with pytest.raises(GuardInputError, match="quote"):
        _scan(tmp_path, "in.csv", data)
    rep, _, _ = assert_scan_agrees(tmp_path / "out", complete=False)
    assert rep["kept"] == 1 and rep["status"] == "input_error"


def test_a_closed_quote_on_the_last_line_is_fine(tmp_path):
    rep = _scan(tmp_path, "in.csv", 'id,text\nc1,fine\nc2,"two\nlines, quoted"')
    assert rep["kept"] == 2
    _, kept, _ = assert_scan_agrees(tmp_path / "out", n_input=2, complete=True)
    assert kept[1]["text"] == "two\nlines, quoted"


def test_field_names_that_look_like_personal_data_are_not_shown(tmp_path):
    """A CSV without a header row: its first row (e-mail, phone) became the field names, which the wrong-text-field
    error printed to stderr and wrote into report.json and report.html."""
    data = "jane.doe@example.com,+1 415 555 0142,hello there friend\nbob@example.org,+1 415 555 0199,another line\n"
    with pytest.raises(ConfigError) as err:
        _scan(tmp_path, "in.csv", data)
    msg = str(err.value)
    assert "example.com" not in msg and "555" not in msg and "hello there friend" in msg
    assert "header" in msg
    for name in ("report.json", "report.html"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "jane.doe" not in text and "415 555" not in text


def test_text_field_check_masks_names_holding_an_at_sign_or_many_digits():
    check = TextFieldCheck("text")
    check.observe([0], {"body": True, "a.b@c.org": True, "4111 1111 1111 1111": True, "col_2024": False})
    with pytest.raises(ConfigError) as err:
        check.observe([1], {})
        check.finish()
    msg = str(err.value)
    assert "'body'" in msg and "'col_2024'" in msg and "a.b@c.org" not in msg and "4111" not in msg


@pytest.mark.parametrize("flags", [["--id-field", "email"], []])
def test_ids_that_look_like_e_mail_addresses_are_warned_about(tmp_path, capsys, flags):
    """Ids are written in clear into the report's matches: an id field of e-mail addresses (named, or the guessed
    'id') put them into report.json and report.html without a word."""
    from torchdataguard.cli import main

    field = "email" if flags else "id"
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps({field: f"user{i}@example.com", "text": "same text"}) for i in range(2)) + "\n")
    assert main(["scan", str(p), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress", *flags]) == 0
    err = capsys.readouterr().err
    assert f"the ids in field {field!r} hold an '@'" in err and "--hash-ids-key-env" in err
    assert "example.com" not in err
    p.write_text("\n".join(json.dumps({field: f"u{i}", "text": "same text"}) for i in range(2)) + "\n")
    assert main(["scan", str(p), "--out", str(tmp_path / "out2"), "--device", "cpu", "--no-progress", *flags]) == 0
    assert "hold an '@'" not in capsys.readouterr().err


def test_a_random_rewrite_before_dedup_is_warned_about(tmp_path, capsys):
    """--stages text_augment,exact kept 1,883 of 1,896 records where exact alone dropped 145 copies: each copy was
    augmented differently first, and nothing said so."""
    from torchdataguard.cli import main

    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps({"text": "the same words in the same order, again and again"})
                           for _ in range(3)) + "\n")
    common = ["scan", str(p), "--device", "cpu", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a"), "--stages", "text_augment,exact"]) == 0
    err = capsys.readouterr().err
    assert "'text_augment' before ['exact']" in err and "--stages exact,text_augment" in err
    assert main([*common, "--out", str(tmp_path / "b"), "--stages", "exact,text_augment"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("flags, needle", [(["--limit", "-1"], "limit=-1 is invalid"),
                                           (["--limit", "0"], "limit=0 is invalid"),
                                           (["--split", "train"], "split='train' is invalid")])
def test_a_limit_below_one_or_a_split_of_a_file_is_a_usage_error(tmp_path, capsys, flags, needle):
    """--limit -1 crashed in itertools.islice (exit 1, a traceback), --limit 0 ended as "the input holds no
    records" (exit 4), and --split on a JSONL file was silently ignored."""
    from torchdataguard.cli import main

    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(GOOD) + "\n")
    assert main(["scan", str(p), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress", *flags]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.json").exists()


def test_ctrl_c_while_a_chunk_is_written_leaves_files_that_agree(tmp_path, monkeypatch, capsys):
    """A real Ctrl-C lands while a decided chunk is being written: the report counted the whole chunk (98,304 kept)
    and kept.partial.jsonl held 93,084 lines. Now the chunk is finished and the scan stops at the next read."""
    import signal

    from torchdataguard.cli import main
    from torchdataguard.core.guard import Guard

    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps({"text": f"text number {i} of twelve"}) for i in range(12)) + "\n")
    real = Guard.process

    def process(self, *a, **kw):
        for i, outcome in enumerate(real(self, *a, **kw)):
            yield outcome
            if i == 1:  # the handler runs in the scan's loop, between two kept lines of the first chunk
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Guard, "process", process)
    # the scan takes over Ctrl-C only from Python's default handler; an earlier test (Ray's) may have left another
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT)
        code = main(["scan", str(p), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress",
                     "--chunk-size", "5"])
        after = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, outer)
    assert code == 130 and after is before
    rep, kept, _ = assert_scan_agrees(tmp_path / "out", complete=False)
    assert rep["status"] == "interrupted" and rep["seen"] == 5 and len(kept) == 5
    assert "stopping after the chunk" in capsys.readouterr().err


def test_records_dropped_for_their_id_alone_name_the_fix(tmp_path, capsys):
    """pandas writes an integer column holding a gap as floats: with the guessed id field every record was
    dropped as invalid/id_type (exit 4) and nothing said that --id-field '' keeps them."""
    from torchdataguard.cli import main

    p = tmp_path / "in.jsonl"
    p.write_text('{"id": 1.0, "text": "first text"}\n{"id": null, "text": "second text"}\n')
    assert main(["scan", str(p), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"]) == 4
    err = capsys.readouterr().err
    assert "2 records were dropped for their id alone" in err and "--id-field ''" in err
    assert main(["scan", str(p), "--out", str(tmp_path / "out2"), "--device", "cpu", "--no-progress",
                 "--id-field", ""]) == 0
    assert "dropped for their id" not in capsys.readouterr().err
