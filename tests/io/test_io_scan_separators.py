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
    with pytest.warns(UserWarning, match=re.escape(f"read as a {sep!r}-separated file, with the columns ['id', 'text']")):
        code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o", "--stages", "exact", "--text-field", "text",
                           "--device", "cpu", "--no-progress")
    assert code == 0, err
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
