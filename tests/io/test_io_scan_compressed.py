"""Compressed inputs are read by what their first bytes say (``torchdataguard/io/compressed.py``).

Until the fifteenth session (2026-12-07) the file name decided: ``data.jsonl.bz2`` and ``data.jsonl.zst`` were
refused ("cannot tell the format"), and with ``--format jsonl`` (as that error advised) their compressed bytes were
read as text: the scan reported one record read, dropped it as ``invalid/not_utf8`` and ended with exit 4 and
advice to convert the file with ``iconv``. A gzip file without ``.gz`` in its name went the same way. (A file
named ``.gz`` whose first bytes are not gzip's is still a damaged input, exit 3: ``test_io_scan_faults.py``; one holding plain text is refused, exit 2, with the rename.)
"""
import bz2
import gzip
import json
import shutil
import subprocess

import pytest

from torchdataguard.cli import main
from torchdataguard.io.readers import detect_format


def _plain(tmp_path, n=60):
    lines = [json.dumps({"id": i, "text": f"record {i % 40} is about the weather in town and a few other words"})
             for i in range(n)]
    p = tmp_path / "plain.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _zstd(src, dst):
    pa = pytest.importorskip("pyarrow")
    if not pa.Codec.is_available("zstd"):
        pytest.skip("this pyarrow has no zstd codec")
    with pa.output_stream(str(dst), compression="zstd") as out:
        out.write(src.read_bytes())


def _scan(src, out, *extra):
    code = main(["scan", str(src), "--out", str(out), "--device", "cpu", "--no-progress", *extra])
    rep = json.loads((out / "report.json").read_text())
    return code, rep, (out / "kept.jsonl").read_bytes() if code in (0, 4) else None


@pytest.mark.parametrize("kind", ["bz2", "zst", "gz_without_suffix", "bz2_named_gz"])
def test_compressed_inputs_give_the_same_scan_as_the_plain_file(tmp_path, capsys, kind):
    plain = _plain(tmp_path)
    extra = []
    if kind == "bz2":
        src = tmp_path / "in.jsonl.bz2"
        src.write_bytes(bz2.compress(plain.read_bytes()))
    elif kind == "zst":
        src = tmp_path / "in.jsonl.zst"
        _zstd(plain, src)
    elif kind == "gz_without_suffix":
        src = tmp_path / "download"
        src.write_bytes(gzip.compress(plain.read_bytes()))
        extra = ["--format", "jsonl"]
    else:  # the first bytes decide
        src = tmp_path / "in.jsonl.gz"
        src.write_bytes(bz2.compress(plain.read_bytes()))
    base_code, base, base_kept = _scan(plain, tmp_path / "base")
    code, rep, kept = _scan(src, tmp_path / "out", *extra)
    err = capsys.readouterr().err
    assert base_code == 0 and code == 0, err
    assert "iconv" not in err and "not_utf8" not in err
    assert rep["seen"] == base["seen"] == 60 and rep["dropped_by_reason"] == base["dropped_by_reason"]
    assert kept == base_kept


def test_a_truncated_bz2_is_a_damaged_input(tmp_path, capsys):
    data = bz2.compress(b"".join(json.dumps({"text": f"line {i} " * 30}).encode() + b"\n" for i in range(3000)))
    src = tmp_path / "in.jsonl.bz2"
    src.write_bytes(data[: len(data) // 2])
    code = main(["scan", str(src), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and "truncated or corrupt" in err, err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["complete"] is False


@pytest.mark.parametrize("name", ["book.zip", "book.xlsx", "book.csv"])
def test_a_zip_archive_is_refused_with_the_fix(tmp_path, capsys, name):
    import zipfile

    src = tmp_path / name
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("data.csv", "id,text\n1,hello there\n")
    out = tmp_path / "out"
    code = main(["scan", str(src), "--out", str(out), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "is a ZIP archive" in err and f"unzip {src}" in err, err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("name,fmt", [("a.jsonl.bz2", "jsonl"), ("a.csv.zst", "csv"), ("a.json.zstd", "json"),
                                      ("a.ndjson.xz", "jsonl")])
def test_detect_format_looks_past_every_compression_suffix(tmp_path, name, fmt):
    p = tmp_path / name
    p.write_bytes(b"")
    assert detect_format(str(p)) == fmt


@pytest.mark.parametrize("encoding", ["UTF-16", "WINDOWS-1252"])
def test_the_conversion_line_for_a_compressed_file_decompresses_it_first_and_works(tmp_path, capsys, encoding):
    """Until 2026-12-07 both messages advised ``iconv -f ENC -t UTF-8 sheet.csv.gz > converted.gz``: iconv on the
    compressed bytes, which writes garbage (or stops at the first byte it cannot read)."""
    text = "id,text\n1,café crème brûlée for the whole table\n2,plain words about the weather\n"
    src = tmp_path / "sheet.csv.gz"
    src.write_bytes(gzip.compress(text.encode("utf-16" if encoding == "UTF-16" else "cp1252")))
    code = main(["scan", str(src), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == (2 if encoding == "UTF-16" else 0), err
    line = f"zcat {src} | iconv -f {encoding} -t UTF-8 > converted.csv"
    assert line in err and "converted.gz" not in err
    if not (shutil.which("zcat") and shutil.which("iconv")):
        pytest.skip("no zcat or iconv here to run the line")
    subprocess.run(line, shell=True, check=True, cwd=tmp_path)
    assert main(["scan", str(tmp_path / "converted.csv"), "--out", str(tmp_path / "ok"), "--device", "cpu",
                 "--no-progress"]) == 0
    assert "café crème" in (tmp_path / "ok" / "kept.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["rows.jsonl.gz", "rows.jsonl.xz", "rows.jsonl.bz2", "rows.jsonl.zst"])
def test_a_plain_text_file_named_as_compressed_is_refused_with_the_rename(tmp_path, capsys, name):
    """A browser decompresses a .gz download and keeps the name: until 2026-12-07 the scan ended with exit 3,
    "Not a gzipped file" and advice to re-download a file that was fine."""
    src = tmp_path / name
    shutil.copy(_plain(tmp_path), src)
    code = main(["scan", str(src), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "plain text" in err and f"mv {src} {tmp_path / 'rows.jsonl'}" in err and "re-download" not in err


@pytest.mark.parametrize("name, line", [("rows.jsonl.zst", "zstd -d {p}"), ("rows", "zstd -d {p} -o {p}.decompressed")])
def test_without_pyarrow_s_zstd_codec_the_advice_is_a_zstd_line_that_works(tmp_path, capsys, monkeypatch, name, line):
    """zstd -d on a name without .zst writes nothing ("unknown suffix"): a file found Zstandard by its first bytes
    needs -o."""
    src = tmp_path / name
    _zstd(_plain(tmp_path), src)
    pa = pytest.importorskip("pyarrow")

    class NoZstd:
        @staticmethod
        def is_available(codec):
            return False

    monkeypatch.setattr(pa, "Codec", NoZstd)
    code = main(["scan", str(src), "--out", str(tmp_path / "out"), "--format", "jsonl", "--device", "cpu",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "no zstd codec" in err, err
    assert err.rstrip().endswith(line.format(p=src)), err
    if shutil.which("zstd"):
        assert subprocess.run(line.format(p=src).split(), capture_output=True).returncode == 0
