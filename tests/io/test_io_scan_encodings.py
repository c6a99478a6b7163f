"""Files in other encodings than UTF-8: a UTF-16/32 file is refused with the command that converts it, and rows
dropped as invalid/not_utf8 (a Windows-1252 CSV from Excel) come with the same hint. Before, a UTF-16 JSONL
ended in exit 4 (every line invalid/json or invalid/not_utf8), a UTF-16 CSV in a ConfigError listing column
names full of NUL characters, and a Windows-1252 CSV exited 0 having dropped every row with an accent."""
import csv
import json

import pytest

from torchdataguard.cli import main

ROWS = [("1", "Le café est très bon aujourd'hui, merci beaucoup"), ("2", "plain ascii row that is fine to keep"),
        ("3", "Größe und Übermaß sind schön")]


def run(capsys, *argv):
    code = main([*map(str, argv), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def write(path, encoding):
    if path.suffix == ".csv":
        with open(path, "w", encoding=encoding, newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "text"])
            w.writerows(ROWS)
    else:
        with open(path, "w", encoding=encoding) as f:
            f.writelines(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in ROWS)


@pytest.mark.parametrize("name", ["in.jsonl", "in.csv", "in.json"])
@pytest.mark.parametrize("encoding, label, bom", [("utf-16", "UTF-16", "FF FE"), ("utf-16-be", "UTF-16", "FE FF"),
                                                  ("utf-32", "UTF-32", "FF FE 00 00")])
def test_a_utf16_or_utf32_file_is_refused_with_the_conversion(tmp_path, capsys, name, encoding, label, bom):
    src = tmp_path / name
    if encoding == "utf-16-be":
        write(src, encoding)
        src.write_bytes(b"\xfe\xff" + src.read_bytes())
    elif name.endswith(".json"):
        src.write_text(json.dumps([{"id": i, "text": t} for i, t in ROWS], ensure_ascii=False), encoding=encoding)
    else:
        write(src, encoding)
    code, _, err = run(capsys, "scan", src, "--out", tmp_path / "o")
    assert code == 2
    assert f"is {label} text (it starts with the byte order mark {bom})" in err
    assert f"iconv -f {label} -t UTF-8" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["in.jsonl", "in.csv"])
def test_rows_in_windows_1252_are_dropped_with_the_conversion_hint(tmp_path, capsys, name):
    src = tmp_path / name
    write(src, "cp1252")
    code, out, err = run(capsys, "scan", src, "--out", tmp_path / "o")
    assert code == 0 and "invalid/not_utf8 2" in out
    assert "2 of 3 records were dropped as invalid/not_utf8" in err and "iconv -f WINDOWS-1252 -t UTF-8" in err
    write(src, "utf-8")
    code, out, err = run(capsys, "scan", src, "--out", tmp_path / "o2")
    assert code == 0 and "not_utf8" not in out + err
