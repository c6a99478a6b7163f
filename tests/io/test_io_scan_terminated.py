"""SIGTERM (``timeout``, Slurm, ``docker stop``) stops a scan like Ctrl-C, and no older complete report is left
in ``--out`` beside a newer scan that was stopped or killed."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import scan_process, staging_folders

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sends SIGTERM and SIGKILL to a scan")


def _first_then_long_scan(tmp_path):
    """A complete scan of a small file into ``out``, then a long scan into ``out`` that has written records."""
    out = tmp_path / "out"
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps({"id": i, "text": f"text number {i}"}) + "\n" for i in range(50)))
    first = scan_process(small, out, stderr=subprocess.PIPE)
    assert first.wait(240) == 0
    assert json.loads((out / "report.json").read_text())["complete"] is True
    rng = random.Random(0)
    big = tmp_path / "big.jsonl"
    with open(big, "w") as f:
        for i in range(300_000):
            f.write(json.dumps({"id": i, "text": " ".join(f"w{rng.randrange(9000)}" for _ in range(12))}) + "\n")
    proc = scan_process(big, out, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    written = False
    while time.monotonic() < deadline and proc.poll() is None and not written:
        for name in (staging_folders(out) if out.exists() else []):
            files = [os.path.join(out, name, f) for f in os.listdir(out / name)]
            written = written or any(os.path.getsize(p) > 0 for p in files)
        time.sleep(0.05)
    assert written and proc.poll() is None, "the scan ended before it could be stopped mid-run"
    return out, proc


def test_sigterm_writes_a_partial_report_and_exits_143(tmp_path):
    out, proc = _first_then_long_scan(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # before: the scan died at once (exit -15) and the first scan's report.json, "complete": true, stayed in out
    assert proc.returncode == 143, err.decode()
    rep = json.loads((out / "report.json").read_text())
    assert rep["complete"] is False and rep["status"] == "terminated" and rep["exit_code"] == 143
    assert rep["seen"] > 50 and rep["records_read"] >= rep["seen"]  # a chunk being read when it stopped is not decided
    kept = (out / "kept.partial.jsonl").read_text().splitlines()
    dropped = (out / "dropped.partial.jsonl").read_text().splitlines()
    assert len(kept) == rep["kept"] and len(dropped) == rep["dropped"] and rep["kept"] + rep["dropped"] == rep["seen"]
    assert not (out / "kept.jsonl").exists() and staging_folders(out) == []
    assert "terminated (SIGTERM)" in err.decode()


def test_a_scan_killed_after_reading_leaves_no_older_complete_report(tmp_path):
    # the SIGKILL that follows SIGTERM when a chunk outlasts the grace period (docker stop: 10 s), or the OOM killer
    out, proc = _first_then_long_scan(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # before: the first scan's report.json ("complete": true) and kept.jsonl sat beside the killed scan's staging
    assert not (out / "report.json").exists() and not (out / "kept.jsonl").exists()
    assert len(staging_folders(out)) == 1
