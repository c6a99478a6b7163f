"""The files of a scan, and how it ends: complete, incomplete (a fault), or complete but with nothing valid.

A scan writes into a hidden staging folder inside ``--out`` (as ``kept.partial.jsonl`` ...) and moves its files
into place only at the end, so a folder never holds one run's ``report.json`` beside another run's ``kept.jsonl``;
a staging folder left by a killed scan on this machine is removed by the next scan into that folder:

* a scan removes the previous run's files when it reads its first record (the report first), so a scan killed
  later (SIGKILL, out of memory) never leaves an older complete report beside its own staging folder;
* a complete scan replaces ``kept.jsonl``, ``dropped.jsonl``, ``report.json`` and ``report.html`` (the old
  report is removed first and the new one is moved last: a reader never pairs a report with other files);
* a scan stopped by a wrong setting before it read a record leaves the folder as it was;
* a scan stopped by a fault (a damaged input, a wrong setting found in the data, ``--strict`` on a bad
  record, an interruption: Ctrl-C or SIGTERM) removes the previous run's files and leaves ``kept.partial.jsonl``,
  ``dropped.partial.jsonl`` and a report with ``"complete": false``, the ``status``, the ``error`` and the
  records read before it; the error is then raised again.

Exit codes of ``torchdataguard scan`` (:data:`EXIT_CODES`): 0 complete; 2 usage or configuration error
(nothing read, or the text field is in none of the records); 3 input fault (partial report); 4 complete but
no valid record (an empty input, or every record dropped as ``invalid/...``); 130 interrupted (Ctrl-C); 143
terminated (SIGTERM: ``timeout``, Slurm, ``docker stop``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import Any, Callable, Dict, Iterator, Optional

from ..errors import ConfigError, GuardInputError
from ..report import save_report

__all__ = ["EXIT_CODES", "ReadCounter", "ScanRun", "Terminated", "check_reading", "exit_code", "interrupt_at_reads"]

#: status of a scan -> exit code of ``torchdataguard scan``
EXIT_CODES = {"complete": 0, "config_error": 2, "input_error": 3, "no_valid_records": 4, "interrupted": 130,
              "terminated": 143, "error": 1}
_FINAL = ("kept.jsonl", "dropped.jsonl")
_PARTIAL = {"kept.jsonl": "kept.partial.jsonl", "dropped.jsonl": "dropped.partial.jsonl"}
_REPORT = ("report.html", "report.json")  # json last: its presence means the set is whole


def exit_code(status: str) -> int:
    """The exit code for a scan's ``status`` (see :data:`EXIT_CODES`)."""
    return EXIT_CODES.get(status, 1)


def check_reading(fmt: str, *, limit: Optional[int], split: Optional[str]) -> None:
    """Refuse a ``limit`` that is not a positive integer and a ``split`` for an input that has no splits.

    Example:
        >>> check_reading("jsonl", limit=-1, split=None)
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: limit=-1 is invalid: expected a positive integer (the number of records to read). Leave it out to read them all.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError.bad("limit", limit, "a positive integer (the number of records to read)",
                              "Leave it out to read them all.")
    if split is not None and fmt != "datasets":
        raise ConfigError.bad("split", split, "no split for a {} file".format(fmt),
                              "--split picks a split of a saved DatasetDict folder; leave it out.")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm, ``docker stop``) stopped the scan: handled like a Ctrl-C, with the status
    ``"terminated"`` (exit code 143, 128 + the signal's number, as a shell reports a process it ended)."""


class ReadCounter:
    """Counts the records a reader yields and keeps its fault instead of raising it in the middle of a chunk.

    The records read before a damaged part of a file are then decided and written like any others; the
    scan raises the fault when the stream is done (:meth:`ScanRun.finish`).
    """

    def __init__(self, records: Iterator[Any], *, on_first: Optional[Callable[[], None]] = None) -> None:
        self._it = iter(records)
        self.n = 0
        self.fault: Optional[GuardInputError] = None
        #: set by a first Ctrl-C or SIGTERM (:func:`interrupt_at_reads`): the next read raises KeyboardInterrupt
        #: (:class:`Terminated` for SIGTERM, ``terminated``)
        self.stop = False
        self.terminated = False
        #: called once, before the first record is handed on (:meth:`ScanRun.clear_previous`)
        self._on_first = on_first

    def __iter__(self) -> "ReadCounter":
        return self

    def __next__(self) -> Any:
        if self.fault is not None:
            raise StopIteration
        if self.stop:  # between chunks: every decided record has been written
            raise _stopped(self.terminated)
        try:
            rec = next(self._it)
        except GuardInputError as exc:
            self.fault = exc
            raise StopIteration from None
        self.n += 1
        if self._on_first is not None:
            self._on_first, first = None, self._on_first
            first()
        return rec


def _stopped(terminated: bool) -> KeyboardInterrupt:
    if terminated:
        return Terminated("SIGTERM (sent by timeout, Slurm, docker stop): the scan stopped after the records decided "
                          "were written")
    return KeyboardInterrupt()


@contextlib.contextmanager
def interrupt_at_reads(reader: ReadCounter) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the scan at its next read, not in the middle of a chunk.

    A chunk is decided and counted whole, then written record by record: an interrupt in between left files
    shorter than the report's counts. The first SIGINT or SIGTERM sets ``reader.stop`` (the chunk being decided
    or written is finished; the next record read raises :class:`KeyboardInterrupt`, or :class:`Terminated`
    after SIGTERM), a second one interrupts at once. Only in the main thread, and only for a signal that has
    its default handler (Python's for SIGINT, the system's for SIGTERM, which ended the scan with no report
    at all); restored on exit.
    """
    taken = {}
    if threading.current_thread() is threading.main_thread():
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        taken = {s: h for s, h in defaults.items() if signal.getsignal(s) is h}
    if not taken:
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if reader.stop:
            for s, h in taken.items():
                signal.signal(s, h)
            raise _stopped(reader.terminated)
        reader.stop, reader.terminated = True, signum == signal.SIGTERM
        what = "terminated (SIGTERM)" if reader.terminated else "interrupted"
        print(f"torchdataguard: {what}: stopping after the chunk being decided is written (Ctrl-C or SIGTERM again "
              f"to stop at once, with partial files that may disagree with the report)", file=sys.stderr, flush=True)

    for s in taken:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s, h in taken.items():
            signal.signal(s, h)


class ScanRun:
    """The output folder of one scan: stage files, then :meth:`finish` moves them into place.

    Example:
        >>> import tempfile, os
        >>> run = ScanRun(tempfile.mkdtemp())
        >>> _ = open(run.staged("kept.jsonl"), "w").write("{}\\n")
        >>> open(run.staged("dropped.jsonl"), "w").close()
        >>> rep = run.finish({"seen": 1, "kept": 1, "dropped": 0, "dropped_by_reason": {}}, records_read=1)
        >>> rep["status"], sorted(os.listdir(run.out_dir))
        ('complete', ['dropped.jsonl', 'kept.jsonl', 'report.html', 'report.json'])
    """

    def __init__(self, out_dir: str, *, inputs: Optional[Dict[str, str]] = None) -> None:
        self.out_dir = os.fspath(out_dir)
        _refuse_overwriting(self.out_dir, inputs or {})
        try:
            os.makedirs(self.out_dir, exist_ok=True)
            _remove_dead_stagings(self.out_dir)
            self.stage_dir = tempfile.mkdtemp(prefix=_STAGING, dir=self.out_dir)
            with open(os.path.join(self.stage_dir, _OWNER), "w") as f:
                json.dump(_me(), f)
        except OSError as exc:  # a file in the way, no permission, a full disk: the folder is wrong, not the data
            what = "is a file, not a folder" if os.path.isfile(self.out_dir) else f"cannot be written ({exc.strerror or exc})"
            raise ConfigError(f"--out {self.out_dir!r} {what}: pass a folder this user can write into (it is "
                              f"created if missing), e.g. --out {_sibling(self.out_dir)}") from None
        self.error: Optional[BaseException] = None

    def staged(self, name: str) -> str:
        """Where to write ``name`` during the scan: ``kept.jsonl`` as ``kept.partial.jsonl`` until :meth:`finish`
        (a scan killed with SIGKILL leaves no file under a final name, even in its staging folder)."""
        return os.path.join(self.stage_dir, _PARTIAL.get(name, name))

    def fail(self, exc: BaseException) -> None:
        """Remember what stopped the scan (the first fault wins)."""
        if self.error is None:
            self.error = exc

    def status(self, rep: Dict[str, Any]) -> str:
        err = self.error
        if err is None:
            reasons = rep.get("dropped_by_reason", {})
            if rep.get("kept", 0) == 0 and sum(n for r, n in reasons.items() if r.startswith("invalid/")) == rep.get("seen", 0):
                return "no_valid_records"
            return "complete"
        if isinstance(err, GuardInputError):
            return "input_error"
        if isinstance(err, ConfigError):
            return "config_error"
        if isinstance(err, Terminated):
            return "terminated"
        if isinstance(err, KeyboardInterrupt):
            return "interrupted"
        return "error"

    def finish(self, rep: Dict[str, Any], *, records_read: int, reader_fault: Optional[BaseException] = None) -> Dict[str, Any]:
        """Write the report, move the files into place, and re-raise the fault, if any (message extended)."""
        if reader_fault is not None:
            first = self.error
            self.error = reader_fault  # the damaged input came first; a later error is a consequence
            if first is not None and not isinstance(first, GuardInputError):
                rep["later_error"] = f"{type(first).__name__}: {first}"
        if isinstance(self.error, ConfigError) and not records_read and not rep.get("seen"):
            self.discard()  # a wrong setting found before any record was read: the folder is left as it was
            raise self.error
        status = self.status(rep)
        complete = self.error is None
        names = {n: (n if complete else _PARTIAL[n]) for n in _FINAL}
        rep["complete"] = complete
        rep["status"] = status
        rep["exit_code"] = exit_code(status)
        rep["records_read"] = records_read
        rep["error"] = None if complete else f"{type(self.error).__name__}: {self.error}"
        if status == "no_valid_records":
            rep["error"] = _no_valid_message(rep)
        rep["outputs"] = {"kept": os.path.join(self.out_dir, names["kept.jsonl"]),
                          "dropped": os.path.join(self.out_dir, names["dropped.jsonl"]),
                          "report": os.path.join(self.out_dir, "report.json")}
        try:
            save_report(rep, self.stage_dir)
            self.clear_previous()
            for n in _FINAL:
                if os.path.exists(self.staged(n)):
                    os.replace(self.staged(n), os.path.join(self.out_dir, names[n]))
            for n in _REPORT:
                os.replace(self.staged(n), os.path.join(self.out_dir, n))
        finally:
            shutil.rmtree(self.stage_dir, ignore_errors=True)
        if self.error is not None:
            self._reraise(rep)
        return rep

    def clear_previous(self) -> None:
        """Remove the previous run's files from ``out_dir``, the report first: never a stale pairing. Called when
        the scan reads its first record (:class:`ReadCounter`) and again by :meth:`finish`."""
        for n in _REPORT + _FINAL + tuple(_PARTIAL.values()):
            p = os.path.join(self.out_dir, n)
            if os.path.lexists(p):
                os.remove(p)

    def _reraise(self, rep: Dict[str, Any]) -> None:
        err = self.error
        stop = "" if str(err).endswith((".", "?")) else "."  # never "..": the message may end a sentence itself
        where = (f"{stop} Records decided before it: {rep['seen']:,}; partial results in {rep['outputs']['kept']} and a "
                 f"report with \"complete\": false in {rep['outputs']['report']}")
        if isinstance(err, (GuardInputError, ConfigError)):
            raise type(err)(f"{err}{where}") from err
        raise err

    def discard(self) -> None:
        """Remove the staging folder (the scan did not start)."""
        shutil.rmtree(self.stage_dir, ignore_errors=True)


def _sibling(out_dir: str) -> str:
    """A folder name beside ``out_dir`` to suggest in a message."""
    return (out_dir.rstrip("/" + os.sep) or "scan") + "_scan"


def _refuse_overwriting(out_dir: str, inputs: Dict[str, str]) -> None:
    """Refuse an input that the scan would replace with one of its own files (``scan out/kept.jsonl --out out``
    read the file, then replaced it with the records kept: the input was gone, and with it the records dropped
    for personal data, which ``dropped.jsonl`` withholds). ``inputs``: what names each path in a message -> path.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp(); _ = open(os.path.join(d, "kept.jsonl"), "w").write("{}\\n")
        >>> _refuse_overwriting(d, {"the input": os.path.join(d, "kept.jsonl")})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: the input '...kept.jsonl' is a file this scan writes into --out ...
    """
    for what, path in inputs.items():
        for name in _REPORT + _FINAL + tuple(_PARTIAL.values()):
            target = os.path.join(out_dir, name)
            try:
                same = os.path.samefile(path, target)  # links and other spellings of the same path too
            except (OSError, ValueError):  # either one missing (or not a path): no clash
                same = False
            if same:
                raise ConfigError(f"{what} {path!r} is a file this scan writes into --out {out_dir!r} ({name}): it "
                                  f"would be replaced by the scan's output; pass another --out folder, e.g. "
                                  f"--out {_sibling(out_dir)}, or move the input first")


#: staging folders inside ``--out``, and the file in each that names the scan's process
_STAGING, _OWNER = ".tdg-scan-", "owner.json"


def _start_time(pid: int) -> Optional[str]:
    """The start time of process ``pid`` (Linux ``/proc``; ``None`` elsewhere or when it is gone), which tells a
    process from a later one given the same pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_namespace() -> Optional[str]:
    """This process's PID namespace (Linux; ``None`` elsewhere): a pid means another process in another one
    (a container that shares the host name)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _host() -> str:
    """This machine's host name, as ``socket.gethostname()`` gives it (which POSIX C libraries read from
    ``uname``): ``os.uname`` spares every scan the import of ``socket`` (~1.5 ms)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return uname().nodename
    import socket

    return socket.gethostname()


def _me() -> Dict[str, Any]:
    return {"host": _host(), "pid": os.getpid(), "start": _start_time(os.getpid()),
            "pidns": _pid_namespace()}


def _remove_dead_stagings(out_dir: str) -> None:
    """Remove the staging folders that scans killed on this machine (SIGKILL, a crash, a power cut) left in
    ``out_dir``: those whose process is gone. A folder of a scan that still runs, of another machine (a shared
    file system) or PID namespace (a container), or without its owner file is left alone."""
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        if not name.startswith(_STAGING) or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, _OWNER)) as f:
                owner = json.load(f)
            pid, host, start = int(owner["pid"]), owner["host"], owner.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host != _host() or owner.get("pidns") != _pid_namespace():
            continue  # another machine, or another PID namespace: its pid says nothing here
        try:
            os.kill(pid, 0)
            alive = start is None or _start_time(pid) in (None, start)
        except ProcessLookupError:
            alive = False
        except OSError:
            alive = True
        if not alive:
            shutil.rmtree(path, ignore_errors=True)


def _no_valid_message(rep: Dict[str, Any]) -> str:
    if not rep.get("seen"):
        return "the input holds no records"
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(rep.get("dropped_by_reason", {}).items()))
    return f"no valid record: all {rep['seen']:,} records were dropped as invalid ({reasons})"
