"""DataLoader workers of a guarded stream exit when the training process dies, as plain PyTorch workers do."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and forks DataLoader workers")

# The main process starts 2 workers and dies (os._exit, as after kill -9 or the OOM killer) before either has
# asked for its first decision: each worker sleeps first, then plans a chunk and asks the dead main process.
_SCRIPT = """
import os, sys, time
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
import torchdataguard as tdg

class Slow(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        time.sleep(2.0)
        for i in range(info.id, 400, info.num_workers):
            yield {"id": i, "text": f"record number {i} of the stream"}

guard = tdg.Guard([tdg.ExactDedup()], id_field="id", device="cpu", progress=False)
it = iter(DataLoader(guard.wrap(Slow()), batch_size=4, num_workers=2))
print(" ".join(str(w.pid) for w in it._workers), flush=True)
time.sleep(0.5)  # the workers are running their loop (PyTorch's own parent check starts there)
os._exit(0)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_exit_when_the_main_process_dies_before_they_ask():
    # Before: each worker inherited the decision service's listening socket, so its connection to the dead main
    # process was accepted into that socket's backlog and the handshake waited forever; the workers lived on
    # (holding the stream and the parent's pipes: a supervisor reading the job's output hung with them)
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # read the first line only: workers left running hold the pipe open, so reading to its end would hang
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    pids = [int(p) for p in proc.stdout.readline().split()]
    proc.wait(60)
    proc.stdout.close()
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.2)
    alive = [p for p in pids if _running(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, f"{len(alive)} DataLoader worker(s) still running 30 s after the main process died"
