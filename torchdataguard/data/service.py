"""The decision service: lets DataLoader workers ask the main process for index decisions.

Workers run phase one (validation, record stages and the expensive key computation) and send the
:class:`~torchdataguard.core.plan.Plan` of each chunk over a local socket; a thread in the main process
runs the index stages and updates the ledger, so duplicates across workers are found and every example
is counted once, in one place.

A plan's tensors travel by value, as NumPy arrays in the message (:func:`dumps`), not as the shared-memory
file descriptors that ``multiprocessing`` would otherwise use for torch tensors: those cost a shared-memory
file and a socket connection to the worker per tensor, and rebuilding them ran torch code in the service's
threads that a worker's exit could leave half done.
"""
from __future__ import annotations

import io
import os
import pickle
import secrets
import select
import socket
import tempfile
import threading
import time
import weakref
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from typing import Any, List, Optional, Set, Tuple

import numpy as np
import torch

from ..core.alldups import worker_chunk, worker_end, worker_gone
from ..errors import ConfigError, GuardError, GuardInputError, StateError

__all__ = ["DecisionClient", "DecisionService"]

_ERRORS = {e.__name__: e for e in (ConfigError, GuardInputError, StateError)}


class DecisionService:
    """A listener thread in the main process serving ``decide`` requests for one guard."""

    def __init__(self, guard) -> None:
        self.guard = guard
        self.authkey = secrets.token_bytes(16)
        self._dir = tempfile.mkdtemp(prefix="tdg-")
        self.address = os.path.join(self._dir, "decide.sock")
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self._busy = _Busy()
        self._threads = _Threads()
        # the socket and its folder go with close(), or at the latest when the interpreter exits (after the
        # decisions under way, and the service's threads: see _Busy and _shutdown)
        self._cleanup = weakref.finalize(self, _shutdown, self._listener, self.address, self._dir, self._busy,
                                         self._threads)
        # the accept thread holds the service weakly: were it to hold the last reference, the guard (its dedup
        # index's tensors) would be freed in that thread when it ends, racing with the interpreter's exit
        self._thread = threading.Thread(target=_accept, args=(weakref.ref(self), self._listener, self._threads),
                                        name="torchdataguard-decisions", daemon=True)
        self._threads.accept = self._thread
        self._thread.start()

    def _serve(self, conn) -> None:
        threads = self._threads
        try:
            with conn:
                self._serve_conn(conn)
        finally:
            with threads.lock:
                threads.serving.discard(threading.current_thread())
                threads.conns.discard(conn)

    def _serve_conn(self, conn) -> None:
        mine: Set[str] = set()  # the sources this worker sent chunks of and has not ended (a pass broken off)
        while True:
            try:
                source, plan, split = loads(conn.recv_bytes())
            except (EOFError, OSError):
                return worker_gone(self.guard, mine)
            if not self._busy.enter():  # closed (the guard, or the interpreter is exiting)
                try:
                    conn.send(("error", ("", "ClosedError", "the guard's decision service was closed")))
                except OSError:
                    pass
                return
            try:
                if plan is None:  # the worker's stream ended (split: its worker id and the number of workers)
                    worker_end(self.guard, source, split, mine)  # (the end-of-stream checks, core/alldups.py)
                    conn.send(("ok", []))
                    continue
                split = worker_chunk(self.guard, source, split, mine)  # (and the tag of the worker's iterator)
                outcomes = self.guard.decide(plan, source, split=split)
                conn.send(("ok", [(d is None) for _, d, _ in outcomes]))
            except BaseException as exc:  # noqa: BLE001 - reported to the worker, which raises it
                kind = type(exc).__name__ if isinstance(exc, GuardError) else ""
                conn.send(("error", (kind, type(exc).__name__, str(exc))))
            finally:
                self._busy.leave()

    def client(self) -> "DecisionClient":
        return DecisionClient(self.address, self.authkey, owner=os.getpid())

    def close(self) -> None:
        """Stop accepting workers, wait for the decisions under way (up to :data:`DRAIN_S` seconds; later
        requests get an error), end the service's threads and remove the socket and its temporary folder."""
        self._cleanup()


#: seconds close() (and the interpreter's exit) waits for the decisions under way
DRAIN_S = 30.0


class _Busy:
    """The decisions under way, and whether new ones may start.

    The decision threads are daemon threads, and a decision runs torch operations, which release the GIL.
    When the interpreter exits while one runs, the thread is ended as it takes the GIL back, from inside
    torch's C++ code, and the process aborts ("terminate called without an active exception", exit code 134;
    the same happens to a thread that frees a large tensor then: see :func:`_accept`). So the service stops
    taking decisions and waits for those under way when it is closed, and at the latest when the interpreter
    starts to exit (before daemon threads are stopped).

    Example:
        >>> b = _Busy(); b.enter(), b.leave(), b.close(timeout=1.0), b.enter()
        (True, None, True, False)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._n = 0
        self._open = True

    def enter(self) -> bool:
        """A decision starts (``False``: closed, it must not)."""
        with self._cond:
            if not self._open:
                return False
            self._n += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._n -= 1
            self._cond.notify_all()

    def close(self, timeout: float = DRAIN_S) -> bool:
        """No decision starts from now on; wait up to ``timeout`` seconds for those under way (``True``: none
        is left)."""
        with self._cond:
            self._open = False
            return self._cond.wait_for(lambda: self._n == 0, timeout=timeout)


class _Threads:
    """The service's threads and the workers' connections, shared by the service, its accept thread and its
    finalizer (:func:`_shutdown`), none of which needs the service itself: ``closed`` (no worker is taken from
    then on), ``accept`` (the accept thread), ``serving`` (the threads serving one worker each) and ``conns``
    (their connections), the last three read and changed under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = False
        self.accept: Optional[threading.Thread] = None
        self.serving: Set[threading.Thread] = set()
        self.conns: Set[Any] = set()


def _accept(service: "weakref.ref[DecisionService]", listener: Listener, threads: _Threads) -> None:
    """The accept thread: starts a thread serving each worker that connects, until the service is closed or gone.

    It reaches the service through a weak reference only. Holding it (as a bound method target would), this
    thread could hold the last reference once ``close()`` has returned, and then free the guard (its dedup
    index's tensors) as it ends; freeing a large tensor releases the GIL, and a thread that takes the GIL back
    while the interpreter exits is ended from inside torch's C++ code: the process aborts ("terminate called
    without an active exception", exit code 134; a core of a guarded training run showed this thread freeing
    the NearDedup index from ``Thread.run``'s last line)."""
    while not threads.closed:
        try:
            conn = listener.accept()
        except (OSError, EOFError, AuthenticationError):  # a client without the key is turned away, not fatal
            continue
        with threads.lock:  # started under the lock: _shutdown never finds a thread it cannot join
            svc = None if threads.closed else service()
            if svc is None:
                conn.close()
                return
            # the serving thread holds the service while it serves (it is joined by _shutdown), so ``svc`` here
            # is never the last reference
            t = threading.Thread(target=svc._serve, args=(conn,), name="torchdataguard-decide", daemon=True)
            del svc
            threads.conns.add(conn)
            t.start()
            threads.serving.add(t)


def _shutdown(listener: Listener, address: str, path: str, busy: Optional[_Busy] = None,
              threads: Optional[_Threads] = None) -> None:
    """Stop taking workers, wait for the decisions under way, end the service's threads (``threads``), close the
    listener (which unlinks its socket file ``address``) and remove the temporary folder ``path``; never raises.

    It runs from ``close()``, when the service is freed, or at the latest when the interpreter starts to exit
    (``atexit``, before daemon threads are stopped): no thread of the service is left running Python or torch
    code, nor freeing the guard, when they are."""
    if threads is not None:
        with threads.lock:
            threads.closed = True
        try:
            # wake the accept() call with a bare connection that closes at once: its handshake fails there and
            # the thread sees ``closed``. (A full Client would wait for the handshake forever if the thread had
            # already seen ``closed`` and left: close() hung when a worker had connected just before.)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(address)
        except OSError:
            pass
    if busy is not None:
        busy.close()
    if threads is not None:
        _end_serving(threads)
        _join(threads.accept)
    try:
        listener.close()
    except OSError:
        pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _join(t: Optional[threading.Thread], timeout: float = 5.0) -> None:
    """Wait up to ``timeout`` seconds for thread ``t`` (not the calling thread, nor one never started)."""
    if t is not None and t is not threading.current_thread() and t.ident is not None:
        try:
            t.join(timeout)
        except RuntimeError:  # never raises (it runs at exit)
            pass


def _end_serving(threads: _Threads, timeout: float = 5.0) -> None:
    """Shut the workers' connections down, which ends each serving thread's wait for a request, and wait up to
    ``timeout`` seconds for those threads: none is left running Python or torch code when the interpreter
    stops its daemon threads (one stopped inside torch's C++ code aborts the process)."""
    with threads.lock:
        live, open_conns = list(threads.serving), list(threads.conns)
    for c in open_conns:
        try:
            with socket.fromfd(c.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass
    for t in live:
        _join(t, timeout)


#: seconds a worker waits for the main process between checks that it is still running
ALIVE_CHECK_S = 1.0


class DecisionClient:
    """Picklable handle a worker uses to reach the :class:`DecisionService` of process ``owner``.

    A worker never waits on the main process without checking, every :data:`ALIVE_CHECK_S` seconds, that it is
    still running (as PyTorch's own worker loop does): a forked worker holds a copy of the service's listening
    socket, so after the main process died (``kill -9``, the OOM killer, ``os._exit``) a connection to it is
    still accepted into that socket's backlog, and a blocking handshake or reply would wait forever, leaving the
    worker running with the parent's pipes open. A main process that is gone is a ``RuntimeError`` instead.
    """

    def __init__(self, address: str, authkey: bytes, owner: Optional[int] = None) -> None:
        self.address = address
        self.authkey = authkey
        self.owner = os.getpid() if owner is None else owner
        self._conn = None
        self._parent: Optional[int] = None

    def __getstate__(self):
        return {"address": self.address, "authkey": self.authkey, "owner": self.owner, "_conn": None,
                "_parent": None}

    def decide(self, plan, source: str, *, split: Any = None) -> List[bool]:
        """Whether each example of ``plan`` is kept (decided by the main process); ``split``: the number of DataLoader
        workers the plan's positional stream ids are numbered across (and the tag of their iterator, stream.py)."""
        return self._ask(source, plan, split)

    def end(self, source: str, split: Optional[Tuple[int, ...]] = None) -> None:
        """Tell the main process that this worker's stream of ``source`` ended (``split``: core/alldups.worker_end)."""
        self._ask(source, None, split)

    def _owner_alive(self) -> bool:
        """Whether the service's process still runs: a worker's parent changes the moment it dies (a zombie
        still answers ``kill(pid, 0)``); a process that is not its child is probed by pid."""
        if self._parent == self.owner:
            return os.getppid() == self.owner
        try:
            os.kill(self.owner, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True

    def _wait(self, conn: Connection) -> None:
        """Wait until ``conn`` can be read, as long as the service's process runs (``select.poll`` on its file
        descriptor: ``Connection.poll`` builds a selector per call, about 10 us a request)."""
        waiter = select.poll()
        waiter.register(conn.fileno(), select.POLLIN)
        while not waiter.poll(int(ALIVE_CHECK_S * 1000)):
            if not self._owner_alive():
                raise EOFError(f"the process that holds the guard (pid {self.owner}) is gone")

    def _connect(self) -> Connection:
        """``multiprocessing.connection.Client(address, authkey=...)``, without waiting on a dead main process."""
        self._parent = os.getppid()
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(ALIVE_CHECK_S)  # a full backlog blocks connect()
                s.connect(self.address)
                s.settimeout(None)
            except (socket.timeout, BlockingIOError, InterruptedError):
                s.close()
                if not self._owner_alive():
                    raise EOFError(f"the process that holds the guard (pid {self.owner}) is gone") from None
                time.sleep(0.01)
                continue
            except BaseException:
                s.close()
                raise
            break
        conn = Connection(s.detach())
        try:
            self._wait(conn)  # the service's challenge
            answer_challenge(conn, self.authkey)
            deliver_challenge(conn, self.authkey)
        except BaseException:
            conn.close()
            raise
        return conn

    def _ask(self, source: str, plan, split: Optional[int]) -> List[bool]:
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._conn.send_bytes(dumps((source, plan, split)))
            self._wait(self._conn)
            status, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise RuntimeError("torchdataguard decision service is closed: the guard was closed (guard.close()) or "
                               "the main process is exiting while this DataLoader worker still reads; close the "
                               f"guard after the loader is done ({type(exc).__name__}: {exc})") from None
        if status != "ok":
            kind, name, msg = payload
            # the guard's own errors keep their type and message (a wrong text_field is a ConfigError)
            cls = _ERRORS.get(kind)
            if cls is not None:
                raise cls(msg) from None
            raise RuntimeError(f"torchdataguard decision service failed: {name}: {msg}")
        return payload


class _ByValue(pickle.Pickler):
    """Pickles torch tensors as NumPy arrays (by value); everything else as pickle does."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is torch.Tensor and obj.device.type == "cpu" and obj.dtype in _NUMPY_DTYPES:
            return _tensor, (obj.detach().numpy(),)
        return NotImplemented


#: torch dtypes that NumPy holds as they are (a tensor of another dtype is pickled as torch pickles it)
_NUMPY_DTYPES = frozenset({torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                           torch.float16, torch.float32, torch.float64})


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def dumps(obj: Any) -> bytes:
    """``obj`` pickled for the decision socket, its CPU tensors as NumPy arrays (:func:`loads` reads it).

    Example:
        >>> t = torch.arange(4)
        >>> back = loads(dumps({"keys": t, "n": 1}))
        >>> back["n"], torch.equal(back["keys"], t), back["keys"].dtype
        (1, True, torch.int64)
    """
    buf = io.BytesIO()
    _ByValue(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """What :func:`dumps` wrote (the socket is local and authenticated: only this guard's workers write).

    Messages between the guard's own processes, as ``multiprocessing``'s ``Connection.recv`` reads them (pickle,
    behind the same authentication); never state: state is saved as safetensors and JSON."""
    return pickle.loads(data)
