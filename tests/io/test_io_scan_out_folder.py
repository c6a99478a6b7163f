"""``--out`` that cannot hold the scan's files, or that holds the input itself.

Until the fifteenth session (2026-12-07) ``torchdataguard scan out/kept.jsonl --out out`` (a second pass over a
first scan's output) read the file and then replaced it with its own ``kept.jsonl``: the input was gone without a
word, and with it every record that ``dropped.jsonl`` withholds (those dropped by the ``pii`` stage). An ``--out``
that is a file ended in a ``FileExistsError`` traceback (exit 1).
"""
import json
import os

import pytest

from torchdataguard.cli import main


def _corpus(path, n=40):
    lines = [json.dumps({"id": i, "text": f"record {i % 30} about the weather in town, mail bob{i}@example.com"})
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path.read_bytes()


@pytest.mark.parametrize("via_link", [False, True])
def test_an_input_inside_out_under_an_output_name_is_refused_and_left_whole(tmp_path, capsys, via_link):
    out = tmp_path / "out"
    out.mkdir()
    src = out / "kept.jsonl"
    before = _corpus(src)
    given = src
    if via_link:  # another spelling of the same file
        given = tmp_path / "link.jsonl"
        os.symlink(src, given)
    code = main(["scan", str(given), "--out", str(out), "--stages", "pii,exact", "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "a file this scan writes into --out" in err and "kept.jsonl" in err and "pass another --out" in err
    assert src.read_bytes() == before  # the input is as it was
    assert sorted(os.listdir(out)) == ["kept.jsonl"]  # nothing written, no staging folder left


def test_an_eval_set_under_an_output_name_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    ev = out / "dropped.jsonl"
    before = _corpus(ev, 5)
    src = tmp_path / "train.jsonl"
    _corpus(src)
    code = main(["scan", str(src), "--out", str(out), "--stages", "decontaminate,exact", "--eval", f"quiz={ev}", "--ngram", "3",
                 "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--eval quiz" in err and "dropped.jsonl" in err, err
    assert ev.read_bytes() == before


def test_a_second_scan_of_kept_jsonl_into_another_folder_runs(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    src = tmp_path / "in.jsonl"
    _corpus(src)
    assert main(["scan", str(src), "--out", str(first), "--device", "cpu", "--no-progress"]) == 0
    assert main(["scan", str(first / "kept.jsonl"), "--out", str(second), "--device", "cpu", "--no-progress"]) == 0
    assert (second / "kept.jsonl").read_bytes() == (first / "kept.jsonl").read_bytes()


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_an_out_that_cannot_be_a_folder_is_a_usage_error_not_a_traceback(tmp_path, capsys, where):
    src = tmp_path / "in.jsonl"
    _corpus(src)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine\n")
    out = blocker if where == "file" else blocker / "sub"
    code = main(["scan", str(src), "--out", str(out), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--out {str(out)!r}" in err and "pass a folder this user can write into" in err
    assert ("is a file, not a folder" in err) == (where == "file")
    assert blocker.read_text() == "mine\n"
