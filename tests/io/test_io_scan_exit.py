"""The ``torchdataguard scan`` process ends with ``os._exit`` once its outputs are written (no interpreter
teardown): nothing it writes or prints may be lost on the way."""
import json
import os
import subprocess
import sys

from torchdataguard.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _records(n=400):
    out = []
    for i in range(n):
        text = f"record number {i % 300} about the weather in town and some words"
        out.append({"id": f"r{i}", "text": text})
    out.append({"id": "bad", "text": None})  # a counted drop, written to dropped.jsonl
    return out


def _read(folder):
    with open(os.path.join(folder, "kept.jsonl"), encoding="utf-8") as fh:
        kept = fh.read()
    with open(os.path.join(folder, "dropped.jsonl"), encoding="utf-8") as fh:
        dropped = fh.read()
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as fh:
        rep = json.load(fh)
    return kept, dropped, rep


def test_scan_process_writes_and_prints_everything_before_it_exits(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONUNBUFFERED", None)  # block-buffered stdout, as a user's pipe gets it
    p = subprocess.run([sys.executable, "-m", "torchdataguard.cli", "scan", str(src), "--out", str(tmp_path / "sub"),
                        "--device", "cpu", "--no-progress"], capture_output=True, text=True, env=env, timeout=240)
    assert p.returncode == 0, p.stderr
    # both printed lines reach a pipe (flushed before os._exit)
    assert p.stdout.splitlines()[0].startswith("seen 401, kept 300, dropped 101"), p.stdout
    assert p.stdout.splitlines()[-1].startswith("wrote "), p.stdout
    assert "using the field 'id' as the record id" in p.stderr
    code = main(["scan", str(src), "--out", str(tmp_path / "inproc"), "--device", "cpu", "--no-progress"])
    assert code == 0
    kept_s, dropped_s, rep_s = _read(tmp_path / "sub")
    kept_i, dropped_i, rep_i = _read(tmp_path / "inproc")
    assert kept_s == kept_i and kept_s.count("\n") == 300
    assert dropped_s == dropped_i and dropped_s.count("\n") == 101
    assert rep_s["complete"] is True and rep_s["seen"] == rep_i["seen"] == 401
    assert (tmp_path / "sub" / "report.html").stat().st_size > 1000
