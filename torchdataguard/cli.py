"""The ``torchdataguard`` command line: ``scan`` a corpus before training, or run the ``demo``."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["build_stages", "main", "scan"]


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def build_stages(names: Sequence[str], *, threshold: Optional[float] = None,
                 options: Optional[Dict[str, Dict[str, Any]]] = None) -> List[Any]:
    """Build stages by registry name with their defaults, ``threshold`` for ``near``, and per-stage options.

    Example:
        >>> [type(s).__name__ for s in build_stages(["exact", "near"], threshold=0.9)]
        ['ExactDedup', 'NearDedup']
    """
    from .core.stage import STAGES
    from .errors import ConfigError

    options = options or {}
    stages = []
    unknown = [n for n in options if n not in names]
    if unknown:
        raise ConfigError(f"--set names stages {unknown} that are not in --stages {list(names)}")
    for name in names:
        cls = STAGES.get(name)
        kw = dict(options.get(name, {}))
        if name == "near" and threshold is not None:
            kw.setdefault("threshold", threshold)
        try:
            stages.append(cls(**kw))
        except TypeError as exc:  # name the options, never their values (a key may be among them)
            raise ConfigError(f"stage {name!r} does not take the options {sorted(kw)}: {exc}") from None
    return stages


def scan(input_path: str, out_dir: str, *, stages: Sequence[str] = ("exact", "near"), text_field: Optional[str] = "text",
         id_field: Optional[str] = None, threshold: Optional[float] = None, device: str = "auto",
         fmt: Optional[str] = None, split: Optional[str] = None, chunk_size: int = 1024, max_chars: int = 2_000_000,
         strict: bool = False, progress: bool = True, limit: Optional[int] = None, dropped_pii: bool = False,
         options: Optional[Dict[str, Dict[str, Any]]] = None, hash_ids: bool | str | bytes = False) -> Dict[str, Any]:
    """Audit a corpus: write ``kept.jsonl``, ``dropped.jsonl`` and ``report.json`` into ``out_dir``.

    Returns the report. Memory is bounded by the dedup index: records stream in and out. A scan is one
    pass: every record is its own example (ids name records in the outputs, they never replay a decision),
    so ``kept.jsonl`` and ``dropped.jsonl`` hold exactly ``kept`` and ``dropped`` lines. ``hash_ids`` (with
    ``id_field``): ids are hashed in every output, including the id field of the written records. The files
    are moved into ``out_dir`` when the scan ends (see :mod:`torchdataguard.io.outputs`). The report's
    ``status`` is ``"complete"``, or ``"no_valid_records"`` when the input held no record or only invalid
    ones. A damaged input raises :class:`~torchdataguard.errors.GuardInputError` and a text field that no
    record has raises :class:`~torchdataguard.errors.ConfigError`, after writing ``kept.partial.jsonl``,
    ``dropped.partial.jsonl`` and a report with ``"complete": false``.

    Example:
        >>> import tempfile, os, json
        >>> d = tempfile.mkdtemp(); p = os.path.join(d, "in.jsonl")
        >>> _ = open(p, "w").write('{"text": "hello world"}\\n{"text": "Hello  world"}\\n')
        >>> scan(p, os.path.join(d, "out"), device="cpu", progress=False)["dropped_by_reason"]
        {'duplicate/exact': 1}
    """
    import itertools

    from .core.guard import Guard
    from .core.ids import IdHasher, id_record_hook
    from .core.ledger import json_line, to_jsonable
    from .errors import StateError
    from .io.outputs import ReadCounter, ScanRun
    from .io.readers import count_records, detect_format, read_records, resolve_input

    input_path = resolve_input(input_path)
    fmt = fmt or detect_format(input_path)
    built = build_stages(list(stages), threshold=threshold, options=options)
    hasher = IdHasher.from_option(hash_ids, id_field=id_field)
    run = ScanRun(out_dir)  # files are staged here and moved into out_dir at the end
    try:
        guard = Guard(built, text_field=text_field, id_field=id_field, device=device, strict=strict,
                      max_chars=max_chars, quarantine=run.staged("dropped.jsonl"), quarantine_pii=dropped_pii,
                      chunk_size=chunk_size, progress=progress, hash_ids=hasher or False)
    except BaseException:
        run.discard()
        raise
    guard.ledger.remember = False  # one pass: every record is its own example, no decision is replayed
    hook = id_record_hook(id_field, hasher)
    total = count_records(input_path, fmt)
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    reader = ReadCounter(read_records(input_path, fmt, split=split, max_chars=max_chars))
    records = reader if limit is None else itertools.islice(reader, limit)
    t0 = time.perf_counter()
    kept_path = run.staged("kept.jsonl")
    written = 0
    try:
        with open(kept_path, "w", encoding="utf-8") as out:
            for ex, drop, replayed in guard.process(records, total=total, desc="scan"):
                if drop is None and not replayed:
                    out.write(json_line(to_jsonable(ex.record if hook is None else hook(ex.record))) + "\n")
                    written += 1
    except BaseException as exc:  # noqa: BLE001 - written into the partial report, then raised again
        run.fail(exc)
    wall = time.perf_counter() - t0
    guard.close()
    rep = guard.report()
    if run.error is None and written != rep["kept"]:  # never a kept.jsonl the report does not account for
        run.fail(StateError(f"internal error: wrote {written} kept records but the report counts {rep['kept']}"))
    rep["input"] = {"path": os.path.abspath(input_path), "format": fmt, "split": split}
    rep["throughput"] = {"wall_seconds": round(wall, 3),
                         "examples_per_second": round(rep["seen"] / wall, 1) if wall > 0 else None}
    rep["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                      "cpu_count": os.cpu_count(), "device": str(guard.device)}
    # report.json and report.html, then the files moved into place; a fault is raised again from here
    return run.finish(rep, records_read=reader.n, reader_fault=reader.fault)


def _parse_sets(items: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    from .errors import ConfigError

    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: expected STAGE.OPTION=VALUE, e.g. --set near.ngram=3")
        key, value = item.split("=", 1)
        stage, opt = key.split(".", 1)
        out.setdefault(stage, {})[opt] = _parse_value(value)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .core.stage import STAGES
    from .errors import ConfigError, GuardError, GuardInputError
    from . import stages as _register  # noqa: F401  (registers every built-in stage)

    parser = argparse.ArgumentParser(prog="torchdataguard", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("scan", help="audit a corpus: kept.jsonl, dropped.jsonl (id, reason, matched), report.json",
                       epilog=_SCAN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="JSONL, JSON, CSV or Parquet file (optionally .gz/.xz), a saved datasets folder, or sample:spamassassin")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--stages", default="exact,near", help=f"comma-separated, in order; from {STAGES.names()}")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default=None)
    p.add_argument("--threshold", type=float, default=None, help="near-duplicate Jaccard threshold (default 0.8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--format", default=None, choices=["jsonl", "json", "csv", "parquet", "datasets"])
    p.add_argument("--split", default=None, help="split of a saved DatasetDict")
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--max-chars", type=int, default=2_000_000)
    p.add_argument("--limit", type=int, default=None, help="stop after this many records")
    p.add_argument("--strict", action="store_true", help="stop at the first malformed record instead of dropping it")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--hash-ids", action="store_true",
                   help="with --id-field: replace ids by a plain BLAKE2b hash in every output (kept.jsonl, dropped.jsonl, "
                        "reports); a guessable id can be confirmed by hashing the guess: prefer --hash-ids-key-env")
    p.add_argument("--hash-ids-key-env", default=None, metavar="VAR",
                   help="with --id-field: hash ids with the secret key held in environment variable VAR (keyed "
                        "BLAKE2b, at least 16 bytes; the key is never written anywhere)")
    p.add_argument("--dropped-pii", action="store_true",
                   help="also write records dropped for personal data (pii/...) into dropped.jsonl (withheld by default)")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.OPTION=VALUE",
                   help="stage option, e.g. --set near.ngram=3 (repeatable)")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local (this process) or ray (record stages as Ray Data map_batches, the dedup index as "
                        "sharded actors; needs the 'ray' extra)")
    p.add_argument("--index-actors", type=int, default=2, help="--engine ray: actors holding the dedup index")
    p.add_argument("--ray-address", default=None, help="--engine ray: cluster to join (default: start a local one)")
    _add_extra_commands(sub)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "scan" and (args.hash_ids or args.hash_ids_key_env) and args.engine == "ray":
            raise ConfigError("--hash-ids / --hash-ids-key-env are not supported with --engine ray yet; use the local "
                              "engine")
        if args.cmd == "scan":
            return _run_scan(args)
        return _run_extra(args)
    except GuardError as exc:
        print(f"torchdataguard: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, GuardInputError) else 2


def _run_scan(args) -> int:
    """Run ``scan`` and return its exit code (see ``torchdataguard scan --help``)."""
    from .core.ids import key_from_env
    from .io.outputs import exit_code

    kw = dict(stages=[s.strip() for s in args.stages.split(",") if s.strip()], text_field=args.text_field,
              id_field=args.id_field, threshold=args.threshold, fmt=args.format, split=args.split,
              chunk_size=args.chunk_size, max_chars=args.max_chars, strict=args.strict, limit=args.limit,
              options=_parse_sets(args.set), progress=not args.no_progress, dropped_pii=args.dropped_pii)
    try:
        if args.engine == "ray":
            from .distributed.ray_scan import scan_ray

            rep = scan_ray(args.input, args.out, index_actors=args.index_actors, address=args.ray_address, **kw)
        else:
            hash_ids = key_from_env(args.hash_ids_key_env) if args.hash_ids_key_env else args.hash_ids
            rep = scan(args.input, args.out, device=args.device, hash_ids=hash_ids, **kw)
    except KeyboardInterrupt:
        print(f"torchdataguard: interrupted; partial results in {args.out} (report.json has \"complete\": false)",
              file=sys.stderr)
        return exit_code("interrupted")
    print(_summary_line(rep))
    print(f"wrote {rep['outputs']['kept']}, {rep['outputs']['dropped']}, {rep['outputs']['report']} "
          f"and report.html")
    code = exit_code(rep.get("status", "complete"))
    if code:
        print(f"torchdataguard: error: {rep['error']} (exit code {code})", file=sys.stderr)
    return code


_SCAN_EPILOG = """exit codes:
  0    complete: every record read, kept or dropped with a reason (report.json: "complete": true)
  2    usage or configuration error: a bad option, a missing input, or a --text-field that none of the
       records has (nothing is written if no record was read)
  3    input fault: the input is truncated or corrupt (or --strict met a bad record); the records before
       the fault are in kept.partial.jsonl / dropped.partial.jsonl and report.json says "complete": false,
       the error and records_read
  4    complete, but no valid record: the input is empty or every record was dropped as invalid/...
  130  interrupted (partial files, as for 3)
"""


def _summary_line(rep: Dict[str, Any]) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in rep["dropped_by_reason"].items()) or "none"
    tp = rep.get("throughput", {}).get("examples_per_second")
    return f"seen {rep['seen']}, kept {rep['kept']}, dropped {rep['dropped']} ({reasons}); {tp} examples/s"


def _add_extra_commands(sub) -> None:
    """Other subcommands (the demo) register here when their modules are present."""
    try:
        from .demo import add_cli
    except ImportError:
        return
    add_cli(sub)


def _run_extra(args) -> int:
    from .demo import run_cli

    return run_cli(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
