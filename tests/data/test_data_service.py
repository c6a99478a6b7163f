"""The worker decision service shuts down without waiting on anyone."""
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
    svc._closed = True  # the accept thread leaves after its next accept()
    Client(svc.address, family="AF_UNIX", authkey=svc.authkey).close()
    svc._thread.join(5)
    assert not svc._thread.is_alive()
    svc._closed = False
    done = threading.Event()
    threading.Thread(target=lambda: (svc.close(), done.set()), daemon=True).start()
    assert done.wait(10), "DecisionService.close() hung waiting for an accept thread that had left"
    assert not os.path.exists(os.path.dirname(svc.address))
