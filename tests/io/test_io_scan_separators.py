"""A CSV saved with ';' (or tab, '|') separators is read with them; a text nested in a mapping gets advice that fits."""
import json
import re

import pytest

from torchdataguard.cli import main

ROWS = [("m-1", "The first message about the quarterly meeting schedule, with a comma."),
        ("m-2", "Completely different content about gardening and tomatoes in summer.")]


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_with_another_separator_is_read_with_it(tmp_path, capsys, sep):
    src = tmp_path / "in.csv"
    src.write_text(f"id{sep}text\n" + "".join(f"{i}{sep}\"{t}\"\n" for i, t in ROWS), encoding="utf-8")
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--text-field", "text",
                       "--device", "cpu", "--no-progress")
    assert code == 0, err
    # one line, like the command's own warnings (until the fifteenth session Python's, with a source line)
    assert (f"torchdataguard: warning: {src}: the CSV header is one column holding {sep!r} (2 names): read as a "
            f"{sep!r}-separated file, with the columns ['id', 'text']\n") in err
    assert "UserWarning" not in err and "for rec in inner" not in err
    kept = [json.loads(x) for x in (tmp_path / "o" / "kept.jsonl").read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in kept] == ROWS


def test_a_comma_csv_with_semicolons_in_its_cells_is_read_as_before(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,\"one; two; three\"\n", encoding="utf-8")
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--text-field", "text",
                       "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "kept.jsonl").read_text())["text"] == "one; two; three"


def test_a_text_nested_in_a_mapping_is_named_with_the_way_to_flatten_it(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "doc": {"body": t, "n": 3}}) + "\n" for i, t in ROWS))
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--text-field", "text",
                       "--device", "cpu", "--no-progress")
    assert code != 0
    assert "the strings are inside a mapping (doc.body)" in err
    assert "ds.map(lambda r: {'text': r['doc']['body']})" in err and "jq -c '. + {text: .doc.body}'" in err
    assert "text_field='doc'" not in err  # no advice to pass the mapping as the text


def test_a_one_column_csv_whose_quoted_name_holds_a_separator_stays_one_column(tmp_path, recwarn):
    from torchdataguard.io.csvread import read_csv

    src = tmp_path / "in.csv"
    src.write_bytes(b'"a|b"\r\nx|y\r\n"p|q"\r\n')  # quoted: the name holds the '|', and so do the cells
    assert list(read_csv(str(src), 10000, lambda p: open(p, "rb"))) == [{"a|b": "x|y"}, {"a|b": "p|q"}]
    assert not [w for w in recwarn if "separated" in str(w.message)]


def _nested_advice(record):
    from torchdataguard.core.textcheck import MISSING, TextFieldCheck, merge_fields

    fields = {}
    merge_fields(fields, record)
    check = TextFieldCheck("text", limit=1)
    with pytest.raises(Exception) as exc:
        check.observe([MISSING], fields)
    return str(exc.value)


def test_nested_advice_never_shows_keys_that_look_like_data():
    msg = _nested_advice({"id": "a1", "contacts": {"jane.doe@example.org": "Jane", "+1 415 555 0142": "Bob"}})
    assert "example.org" not in msg and "415" not in msg


def test_nested_advice_indexes_with_the_real_names():
    msg = _nested_advice({"doc.v1": {"body": "hello there"}})
    assert "r['doc.v1']['body']" in msg and """jq -c '. + {text: ."doc.v1".body}'""" in msg
    msg = _nested_advice({"doc": {1: "hello there"}})  # an int key: r['doc']['1'] would be a KeyError
    assert "r['doc']['1']" not in msg
    msg = _nested_advice({"it's": {"body": "hello"}})  # no jq line that the shell's quotes would break
    assert """r["it's"]['body']""" in msg and "jq" not in msg


def test_the_separator_warning_never_shows_header_names_that_look_like_personal_data(tmp_path, capsys):
    src = tmp_path / "in.csv"  # no header row: the first row is data
    src.write_text("jane.doe@example.org;+44 20 7946 0958;hello\nbob@example.org;+44 20 7946 0000;hi there\n",
                   encoding="utf-8")
    _, _, shown = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--text-field", "text",
                      "--device", "cpu", "--no-progress")
    assert "separated file" in shown
    assert "jane.doe@example.org" not in shown and "7946" not in shown
    assert "'hello'" in shown  # a name that does not look like data is still shown


@pytest.mark.parametrize("name", ["in.tsv", "in.tab", "in.tsv.gz"])
def test_a_tsv_is_read_with_tabs_even_when_a_column_name_holds_a_comma(tmp_path, capsys, name):
    """Until 2026-12-07 ``.tsv`` was an unknown format ("pass --format"), and with ``--format csv`` a header with a
    comma in a name (``body, raw``) was split at the comma: every row was ragged and dropped, or the error then
    advised ``--text-field 'id\\tbody'``."""
    import gzip

    body = "id\tbody, raw\n" + "".join(f"{i}\t{t}\n" for i, t in ROWS)
    src = tmp_path / name
    src.write_bytes(gzip.compress(body.encode()) if name.endswith(".gz") else body.encode())
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--text-field", "body, raw",
                       "--id-field", "id", "--device", "cpu", "--no-progress")
    assert code == 0, err
    kept = [json.loads(x) for x in (tmp_path / "o" / "kept.jsonl").read_text().splitlines()]
    assert [(r["id"], r["body, raw"]) for r in kept] == ROWS


def test_excel_trailing_empty_columns_are_read_not_called_damage(tmp_path, capsys):
    # Excel saves 'id,text,,' for columns once used: until the fifteenth session this was exit 3, "the CSV header
    # repeats the column names ['']"
    src = tmp_path / "in.csv"
    src.write_text("id,text,,\r\n" + "".join(f"{i},\"{t}\",,\r\n" for i, t in ROWS) + "m-3,A third text.,kept,\r\n",
                   encoding="utf-8")
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--device", "cpu",
                       "--no-progress")
    assert code == 0, err
    assert "torchdataguard: warning: " + str(src) + ": the CSV header has 2 unnamed column(s), read as ['column_3', " \
           "'column_4']" in err
    kept = [json.loads(x) for x in (tmp_path / "o" / "kept.jsonl").read_text().splitlines()]
    # empty cells of an unnamed column are left out; a filled one is kept under the column's position
    assert kept == [{"id": i, "text": t} for i, t in ROWS] + [{"id": "m-3", "text": "A third text.", "column_3": "kept"}]


def test_a_header_that_repeats_a_real_name_is_still_an_error_without_showing_data(tmp_path, capsys):
    from torchdataguard.io.csvread import read_csv

    src = tmp_path / "in.csv"
    src.write_text("id,text,text\n1,a,b\n", encoding="utf-8")
    with pytest.raises(Exception, match=re.escape("repeats the column names ['text']")):
        list(read_csv(str(src), 10000, lambda p: open(p, "rb")))
    # a file without a header row: its first row is data, and the names it repeats are not shown
    src.write_text("jane@example.org,jane@example.org,\n1,2,3\n", encoding="utf-8")
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--device", "cpu",
                       "--no-progress", "--text-field", "x")
    assert code == 3 and "repeats the column names ['<hidden: looks like data>']" in err, err
    assert "jane" not in err


def test_the_command_shows_a_python_warning_as_one_line(tmp_path):
    # until the fifteenth session the console script printed Python's form: ".../readers.py:205: UserWarning: ..."
    # and then the source line "  for rec in inner:"
    import os
    import subprocess
    import sys

    src = tmp_path / "in.csv"
    src.write_text("id;text\n1;hello there\n", encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "torchdataguard.cli", "scan", str(src), "--out", str(tmp_path / "o"),
                           "--stages", "exact", "--device", "cpu", "--no-progress"], capture_output=True, text=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "separated file" in x]
    assert lines == [f"torchdataguard: warning: {src}: the CSV header is one column holding ';' (2 names): read as a "
                     f"';'-separated file, with the columns ['id', 'text']"], proc.stderr
    assert "UserWarning" not in proc.stderr and "for rec in inner" not in proc.stderr


def test_the_command_shows_a_warning_once_when_the_filters_change_between_two_reads(capsys):
    # the input is read twice (its first record, then the scan); a lazy `import torch` between the two reads
    # changes the warning filters, which clears Python's record of the warnings shown: the note showed twice
    import warnings

    from torchdataguard.cli import _warnings_as_lines

    def read():
        warnings.warn("in.csv: the CSV header is one column holding ';'", UserWarning)

    with _warnings_as_lines():
        read()
        warnings.filterwarnings("ignore", message="something else")  # what importing a module may do
        read()
    assert capsys.readouterr().err.count("the CSV header is one column") == 1
