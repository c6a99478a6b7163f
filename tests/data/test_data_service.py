"""The worker decision service shuts down without hanging, and after the decisions under way."""
from __future__ import annotations

import os
import threading
from multiprocessing.connection import Client

import torchdataguard as tdg
from torchdataguard.data.service import DecisionService


def test_close_returns_when_the_accept_thread_has_already_left():
    # the race behind a hang seen in the suite: a worker connects, the accept thread returns from accept() and
    # sees _closed set by close() at that moment, leaves; close() must not then wait on a handshake no one answers
    svc = DecisionService(tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False))
    svc._threads.closed = True  # the accept thread leaves after its next accept()
    Client(svc.address, family="AF_UNIX", authkey=svc.authkey).close()
    svc._thread.join(5)
    assert not svc._thread.is_alive()
    svc._threads.closed = False
    done = threading.Event()
    threading.Thread(target=lambda: (svc.close(), done.set()), daemon=True).start()
    assert done.wait(10), "DecisionService.close() hung waiting for an accept thread that had left"
    assert not os.path.exists(os.path.dirname(svc.address))


class _SlowGuard:
    """A guard whose decisions run torch operations (which release the GIL) for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.finished = threading.Event()

    def decide(self, plan, source, split=None):
        import time

        import torch

        self.started.set()
        x, t0 = torch.randn(128, 128), time.perf_counter()
        while time.perf_counter() - t0 < self.seconds:
            x = (x @ x).tanh()
        self.finished.set()
        return []


def test_close_waits_for_the_decision_under_way_and_refuses_later_ones():
    guard = _SlowGuard(0.5)
    svc = DecisionService(guard)
    client = svc.client()
    threading.Thread(target=lambda: client.decide("plan", "src"), daemon=True).start()
    assert guard.started.wait(10)
    svc.close()
    assert guard.finished.is_set(), "close() returned while a decision was still running"
    late = svc.client()
    try:
        late.decide("plan", "src")
    except (RuntimeError, OSError, EOFError) as exc:  # refused, or no longer listening
        assert "closed" in str(exc) or not isinstance(exc, RuntimeError)
    else:
        raise AssertionError("a decision was taken after close()")


_EXIT_SCRIPT = """
import threading
from torchdataguard.data.service import DecisionService
from tests.data.test_data_service import _SlowGuard
guard = _SlowGuard(1.0)
svc = DecisionService(guard)
client = svc.client()
threading.Thread(target=lambda: client.decide("plan", "src"), daemon=True).start()
assert guard.started.wait(10)
print("exiting while a decision runs", flush=True)
"""


def test_the_interpreter_exits_cleanly_while_a_decision_runs():
    # a decision thread is a daemon thread inside torch's C++ code; ended there by the interpreter's exit, it
    # aborted the process ("terminate called without an active exception", exit code 134)
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for _ in range(2):
        p = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
        assert "terminate called" not in p.stderr


def _decide_threads(svc: DecisionService) -> list:
    return [t for t in svc._threads.serving if t.is_alive()]


def test_close_ends_the_threads_serving_workers_that_are_still_connected():
    # a worker that is still connected (idle, or stopped without closing its socket) kept a daemon thread waiting
    # in the main process; the interpreter's exit could then stop it inside torch code (exit code 134)
    guard = _SlowGuard(0.01)
    svc = DecisionService(guard)
    client = svc.client()
    assert client.decide("plan", "src") == []
    assert len(_decide_threads(svc)) == 1
    svc.close()
    assert _decide_threads(svc) == [], "a thread serving a connected worker outlived close()"
    try:
        client.decide("plan", "src")
    except RuntimeError as exc:  # the worker learns why, and what to do
        assert "decision service is closed" in str(exc) and "guard.close()" in str(exc)
    else:
        raise AssertionError("a decision was taken after close()")


_SEND_SCRIPT = """
import sys, torch
from torchdataguard.data.service import dumps
sys.stdout.buffer.write(dumps({"nib": torch.arange(6, dtype=torch.uint8).reshape(2, 3), "ids": [1, 2]}))
"""


def test_a_plans_tensors_travel_by_value():
    # tensors sent as shared-memory file descriptors need the sending worker alive while the main process
    # rebuilds them (a socket connection to it per tensor); by value, the bytes are the whole message
    import subprocess
    import sys

    import torch

    from torchdataguard.data.service import loads

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", _SEND_SCRIPT], cwd=root, env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    back = loads(p.stdout)  # the sender has exited
    assert back["ids"] == [1, 2]
    assert torch.equal(back["nib"], torch.arange(6, dtype=torch.uint8).reshape(2, 3))


def test_the_accept_thread_does_not_keep_the_service_and_its_guard_alive():
    # held by its thread, the service (and the guard, its dedup index's tensors) was freed in that thread when it
    # ended after close(), while the interpreter could be exiting: exit code 134 (see the next test)
    import weakref

    guard = _SlowGuard(0.0)
    svc = DecisionService(guard)
    accept, gone = svc._thread, weakref.ref(guard)
    del svc, guard
    assert gone() is None, "the service's accept thread keeps the service and its guard alive"
    accept.join(5)  # freeing the service closed it: its thread is woken and joined
    assert not accept.is_alive()


def test_close_ends_the_accept_thread(monkeypatch):
    from multiprocessing.connection import Listener

    accept = Listener.accept

    def late_accept(self):  # the accept thread is slow to wake (a busy machine)
        threading.Event().wait(0.3)
        return accept(self)

    monkeypatch.setattr(Listener, "accept", late_accept)
    svc = DecisionService(_SlowGuard(0.0))
    svc.close()
    assert not svc._thread.is_alive(), "the accept thread outlived close()"


_FREE_AT_EXIT_SCRIPT = """
import threading, torch
from multiprocessing.connection import Listener
from torchdataguard.data.service import DecisionService

go, freeing = threading.Event(), threading.Event()
_accept = Listener.accept

def late_accept(self):  # the accept thread wakes late (a busy machine): after close() has returned
    go.wait(1.0)
    return _accept(self)

Listener.accept = late_accept

class _Marker:
    def __del__(self):
        freeing.set()

class Heavy:  # stands for a guard: its state holds many tensors (a list frees its items last to first)
    def __init__(self):
        self.state = [torch.zeros(1) for _ in range(20000)] + [_Marker()]

svc = DecisionService(Heavy())
svc.close()
del svc
go.set()
freeing.wait(5)  # the guard's tensors are being freed, in whichever thread holds the last reference: exit now
"""


def test_the_interpreter_exits_cleanly_after_close_when_the_accept_thread_is_late():
    # a core of a guarded training run that aborted at exit (exit code 134): the accept thread, ending after
    # close(), held the last reference to the service and freed the guard's NearDedup index; freeing a tensor
    # releases the GIL, and taking it back while the interpreter exits ends the thread inside torch's C++ code
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", _FREE_AT_EXIT_SCRIPT], cwd=root, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert "terminate called" not in p.stderr


def test_a_client_with_the_wrong_key_is_turned_away_and_workers_are_still_served():
    import multiprocessing

    import pytest

    svc = DecisionService(tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False))
    try:
        with pytest.raises(multiprocessing.AuthenticationError):
            Client(svc.address, family="AF_UNIX", authkey=b"not the service's key")
        svc._thread.join(0.5)
        assert svc._thread.is_alive(), "a client without the key ended the accept thread: no worker can connect"
        with Client(svc.address, family="AF_UNIX", authkey=svc.authkey):
            pass  # the handshake succeeded: the accept thread still serves
    finally:
        svc.close()
