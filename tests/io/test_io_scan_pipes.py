"""An input that is a pipe (``cat x | torchdataguard scan /dev/stdin``, ``<(zcat x.gz)``, ``-``) is refused.

The scan opens its input more than once (the record count for the progress bar, the first record for the id
field, then the records), and a pipe gives its bytes once: until the fifteenth session (2026-12-07) the first
reads took every record and the scan ended with "the input holds no records" (exit 4), the corpus unread.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(args, timeout=240, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "torchdataguard.cli", "scan", *args, "--device", "cpu",
                           "--no-progress"], capture_output=True, env=env, timeout=timeout, **kw)


def _data(n=30):
    return "".join(json.dumps({"text": f"record {i} about the weather and the town"}) + "\n" for i in range(n)).encode()


@pytest.mark.skipif(not os.path.exists("/dev/stdin"), reason="no /dev/stdin here")
@pytest.mark.parametrize("name", ["/dev/stdin", "-"])
def test_a_pipe_is_refused_with_the_fix_instead_of_read_empty(tmp_path, name):
    out = tmp_path / "out"
    p = _cli([name, "--out", str(out), "--format", "jsonl"], input=_data())
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert "save them to a file first" in err and ("standard input" in err or "a pipe or a device" in err)
    assert not out.exists() or not (out / "report.json").exists()


@pytest.mark.skipif(not os.path.exists("/dev/stdin"), reason="no /dev/stdin here")
def test_stdin_redirected_from_a_file_is_a_file_and_is_read(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(_data())
    with open(src, "rb") as fh:
        p = _cli(["/dev/stdin", "--out", str(tmp_path / "out"), "--format", "jsonl"], stdin=fh)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["seen"] == 30


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused(tmp_path):
    fifo = tmp_path / "records.jsonl"
    os.mkfifo(fifo)
    p = _cli([str(fifo), "--out", str(tmp_path / "out")], timeout=120)  # opened, it would wait for a writer
    assert p.returncode == 2 and "a pipe or a device" in p.stderr.decode(), p.stderr.decode()
