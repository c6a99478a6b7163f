"""A scan killed with SIGKILL leaves nothing that looks like a complete output, and the next scan clears it."""
from __future__ import annotations

import json
import os
import random
import signal
import sys
import time

import pytest
from conftest import scan_process, staging_folders

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="kills a process with SIGKILL")


def test_a_killed_scan_leaves_no_kept_jsonl_and_the_next_scan_removes_its_staging_folder(tmp_path):
    rng = random.Random(0)
    src = tmp_path / "in.jsonl"
    with open(src, "w") as f:
        for i in range(400_000):
            f.write(json.dumps({"id": i, "text": " ".join(f"w{rng.randrange(9000)}" for _ in range(12))}) + "\n")
    out = tmp_path / "out"
    proc = scan_process(src, out)
    deadline = time.monotonic() + 120
    written = None
    while time.monotonic() < deadline and proc.poll() is None and written is None:
        for name in (staging_folders(out) if out.exists() else []):
            files = [os.path.join(out, name, f) for f in os.listdir(out / name)]
            if any(os.path.getsize(p) > 0 for p in files):
                written = name
        time.sleep(0.05)
    assert written is not None and proc.poll() is None, "the scan ended before it could be killed mid-run"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # before: the staging folder held 'kept.jsonl' and 'dropped.jsonl', cut off mid-run under the final names
    left = sorted(os.listdir(out / written))
    assert left and not {"kept.jsonl", "dropped.jsonl"} & set(left), left
    assert not (out / "kept.jsonl").exists() and not (out / "report.json").exists()
    # before: every later scan into the folder left the dead scan's staging folder (a partial copy) in place
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps({"id": i, "text": f"text number {i}"}) + "\n" for i in range(50)))
    again = scan_process(small, out)
    assert again.wait(240) == 0
    assert staging_folders(out) == []
    assert sorted(os.listdir(out)) == ["dropped.jsonl", "kept.jsonl", "report.html", "report.json"]


def test_a_staging_folder_of_another_pid_namespace_is_left_alone(tmp_path):
    # a scan in a container that shares the host name writes its own namespace's pid: that pid says nothing here
    # (review of the twelfth session: a scan removed the live staging folder of a scan started under unshare --pid)
    import socket

    from torchdataguard.scan import outputs

    for pidns, kept in (("pid:[1]", True), (outputs._pid_namespace(), False)):
        folder = tmp_path / f"{outputs._STAGING}x{kept}"
        folder.mkdir()
        dead = {"host": socket.gethostname(), "pid": 2**22 + 17, "start": "1", "pidns": pidns}
        (folder / outputs._OWNER).write_text(json.dumps(dead))
        outputs._remove_dead_stagings(str(tmp_path))
        assert folder.exists() == kept, pidns
