"""``torchdataguard scan`` in this process: stream a corpus through a Guard into kept/dropped files and a report."""
from __future__ import annotations

import itertools
import os
import platform
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from ..core.gcpause import gc_paused
from ..core.guard import Guard
from ..core.ids import IdHasher, id_record_hook
from ..core.jsonable import json_line, to_jsonable
from ..errors import ConfigError, GuardError, StateError
from ..io import readers  # looked up at call time (tests stand a reader in)
from .outputs import ReadCounter, ScanRun, check_reading, interrupt_at_reads
from .piifields import OtherFieldsProbe
from .stages import build_stages

__all__ = ["eval_options", "read_eval_files", "scan"]


def read_eval_files(evals: Mapping[str, str], *, max_chars: int = 2_000_000) -> Dict[str, List[Any]]:
    """Read each evaluation set ``{name: path}`` whole, in any format the scan reads (``--eval NAME=PATH``).

    Raises:
        ConfigError: a missing or unreadable file, naming the ``--eval`` value.
    """
    out: Dict[str, List[Any]] = {}
    for name, path in evals.items():
        try:
            path = readers.resolve_input(path)
            out[name] = list(readers.read_records(path, readers.detect_format(path), max_chars=max_chars))
        except GuardError as exc:
            raise ConfigError(f"--eval {name}={path}: {exc}") from None
    return out


def eval_options(stages: Sequence[str], options: Optional[Dict[str, Dict[str, Any]]], evals: Optional[Mapping[str, str]],
                 *, fields: Optional[Sequence[str]] = None, id_field: Optional[str] = None,
                 ngram: Optional[int] = None, max_chars: int = 2_000_000) -> Dict[str, Dict[str, Any]]:
    """``options`` with the ``decontaminate`` stage's evaluation sets read from ``evals`` (``--eval``), its
    fields, id field and n-gram length; a ``decontaminate`` stage without ``--eval`` (or the reverse) is refused."""
    options = {k: dict(v) for k, v in (options or {}).items()}
    given = bool(evals) or fields is not None or id_field is not None or ngram is not None
    if "decontaminate" not in stages:
        if given:
            raise ConfigError("--eval, --eval-field, --eval-id-field and --ngram set the decontaminate stage: add it "
                              "to --stages, e.g. --stages decontaminate,exact,near")
        return options
    if not evals:
        raise ConfigError("--stages decontaminate needs at least one evaluation set: --eval NAME=PATH (repeatable)")
    kw = options.setdefault("decontaminate", {})
    kw["evals"] = read_eval_files(evals, max_chars=max_chars)
    for key, value in (("fields", fields), ("id_field", id_field), ("ngram", ngram)):
        if value is not None:
            kw[key] = value
    return options


def scan(input_path: str, out_dir: str, *, stages: Sequence[str] = ("exact", "near"), text_field: Optional[str] = "text",
         id_field: Optional[str] = None, threshold: Optional[float] = None, device: str = "auto",
         fmt: Optional[str] = None, split: Optional[str] = None, chunk_size: Optional[int] = None, max_chars: int = 2_000_000,
         strict: bool = False, progress: bool = True, limit: Optional[int] = None, dropped_pii: bool = False,
         options: Optional[Dict[str, Dict[str, Any]]] = None, hash_ids: bool | str | bytes = False,
         evals: Optional[Mapping[str, str]] = None, eval_fields: Optional[Sequence[str]] = None,
         eval_id_field: Optional[str] = None, ngram: Optional[int] = None) -> Dict[str, Any]:
    """Audit a corpus: write ``kept.jsonl``, ``dropped.jsonl`` and ``report.json`` into ``out_dir``.

    Returns the report. Memory is bounded by the dedup index: records stream in and out. A scan is one
    pass: every record is its own example (ids name records in the outputs, they never replay a decision),
    so ``kept.jsonl`` and ``dropped.jsonl`` hold exactly ``kept`` and ``dropped`` lines. ``hash_ids`` (with
    ``id_field``): ids are hashed in every output, including the id field of the written records. The files
    are moved into ``out_dir`` when the scan ends (see :mod:`torchdataguard.scan.outputs`). The report's
    ``status`` is ``"complete"``, or ``"no_valid_records"`` when the input held no record or only invalid
    ones. A damaged input raises :class:`~torchdataguard.errors.GuardInputError` and a text field that no
    record has raises :class:`~torchdataguard.errors.ConfigError`, after writing ``kept.partial.jsonl``,
    ``dropped.partial.jsonl`` and a report with ``"complete": false``. ``evals`` (``{name: path}``),
    ``eval_fields``, ``eval_id_field`` and ``ngram`` set the ``decontaminate`` stage (:func:`eval_options`).

    Example:
        >>> import tempfile, os, json
        >>> d = tempfile.mkdtemp(); p = os.path.join(d, "in.jsonl")
        >>> _ = open(p, "w").write('{"text": "hello world"}\\n{"text": "Hello  world"}\\n')
        >>> scan(p, os.path.join(d, "out"), device="cpu", progress=False)["dropped_by_reason"]
        {'duplicate/exact': 1}
    """
    input_path = readers.resolve_input(input_path)
    fmt = fmt or readers.detect_format(input_path)
    check_reading(fmt, limit=limit, split=split)
    options = eval_options(list(stages), options, evals, fields=eval_fields, id_field=eval_id_field, ngram=ngram,
                           max_chars=max_chars)
    built = build_stages(list(stages), threshold=threshold, options=options)
    hasher = IdHasher.from_option(hash_ids, id_field=id_field)
    inputs = {"the input": input_path, **{f"--eval {n}": path for n, path in (evals or {}).items()}}
    run = ScanRun(out_dir, inputs=inputs)  # files are staged here and moved into out_dir at the end
    try:
        guard = Guard(built, text_field=text_field, id_field=id_field, device=device, strict=strict,
                      max_chars=max_chars, quarantine=run.staged("dropped.jsonl"), quarantine_pii=dropped_pii,
                      chunk_size=chunk_size, progress=progress, hash_ids=hasher or False)
    except BaseException:
        run.discard()
        raise
    guard.ledger.remember = False  # one pass: every record is its own example, no decision is replayed
    platform_name = _platform_in_background()
    hook = id_record_hook(id_field, hasher)
    total = readers.count_records(input_path, fmt)
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    # JSONL: each record's source line, in stream order; a kept record that is still the object read (nothing
    # rewrote it) and holds no NaN or Infinity (written as strings otherwise; the reader hands on no line whose
    # float overflows) nor a carriage return between its tokens (a line break to text-mode readers) is written as it
    lines: Optional[Deque[Tuple[Any, Optional[str]]]] = deque() if hook is None and fmt == "jsonl" else None
    reader = ReadCounter(readers.read_records(input_path, fmt, split=split, max_chars=max_chars, lines=lines),
                         on_first=run.clear_previous)
    records = reader if limit is None else itertools.islice(reader, limit)
    t0 = time.perf_counter()
    kept_path = run.staged("kept.jsonl")
    written = 0
    probe = OtherFieldsProbe(guard)
    try:
        # the collector paused for the whole pass, reading and writing too (see core/gcpause.py): between its
        # chunks a scan runs no user code, and the records read and written hold no reference cycles
        with gc_paused(), interrupt_at_reads(reader), open(kept_path, "w", encoding="utf-8") as out:
            for ex, drop, replayed in guard.process(records, total=total, desc="scan"):
                src, line = lines.popleft() if lines else (None, None)
                if probe.left:
                    probe.see(ex.record)
                if drop is None and not replayed:
                    if (line is not None and ex.record is src and "NaN" not in line and "Infinity" not in line
                            and "\r" not in line):
                        out.write(line + "\n")
                    else:
                        out.write(json_line(to_jsonable(ex.record if hook is None else hook(ex.record))) + "\n")
                    written += 1
    except BaseException as exc:  # noqa: BLE001 - written into the partial report, then raised again
        run.fail(exc)
    wall = time.perf_counter() - t0
    with gc_paused():  # the report's objects would otherwise trigger a full collection (see core/gcpause.py)
        return _finish(guard, run, rep_input=(input_path, fmt, split), wall=wall, written=written, reader=reader,
                       other_pii=probe.report(), platform_name=platform_name)


def _platform_in_background() -> Callable[[], str]:
    """``platform.platform()`` for the report, computed in a thread while the scan runs: on Linux it runs
    ``uname -p`` in a new process (5-12 ms of a two-record scan on the loaded 2-core machine, sixteenth session).
    Call the returned function for the name (it waits for the thread; the function again if the thread failed)."""
    box: List[str] = []
    thread = threading.Thread(target=lambda: box.append(platform.platform()), name="tdg-platform", daemon=True)
    thread.start()

    def name() -> str:
        thread.join()
        return box[0] if box else platform.platform()

    return name


def _finish(guard: Guard, run: ScanRun, *, rep_input: Tuple[str, str, Optional[str]], wall: float, written: int,
            reader: ReadCounter, other_pii: Optional[Dict[str, Any]] = None,
            platform_name: Callable[[], str] = platform.platform) -> Dict[str, Any]:
    """The report of a scan whose records are all decided, written with the files moved into place."""
    input_path, fmt, split = rep_input
    guard.close()
    rep = guard.report()
    if run.error is None and written != rep["kept"]:  # never a kept.jsonl the report does not account for
        run.fail(StateError(f"internal error: wrote {written} kept records but the report counts {rep['kept']}"))
    rep["input"] = {"path": os.path.abspath(input_path), "format": fmt, "split": split}
    if other_pii is not None:  # personal data left in fields the pii stage does not scrub (see .piifields)
        rep["pii_other_fields"] = other_pii
    rep["throughput"] = {"wall_seconds": round(wall, 3),
                         "examples_per_second": round(rep["seen"] / wall, 1) if wall > 0 else None}
    rep["machine"] = {"python": platform.python_version(), "platform": platform_name(),
                      "cpu_count": os.cpu_count(), "device": str(guard.device)}
    # report.json and report.html, then the files moved into place; a fault is raised again from here
    return run.finish(rep, records_read=reader.n, reader_fault=reader.fault)
