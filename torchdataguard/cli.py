"""The ``torchdataguard`` command line: ``scan`` a corpus before training, or run the ``demo``.

Only the arguments live here; the scans are :func:`torchdataguard.scan.scan` (this process) and
:func:`torchdataguard.scan.scan_ray` (``--engine ray``).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, Dict, Iterator, NoReturn, Optional, Sequence

# argparse only at import: the scans, and torch with them, are imported when a command runs, so that
# ``torchdataguard --help`` answers at once (benchmarks/import_time.py)
from .demo import add_cli, run_cli
from .errors import ConfigError, GuardError, GuardInputError

__all__ = ["command", "main"]


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _parse_sets(items: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: expected STAGE.OPTION=VALUE, e.g. --set near.ngram=3")
        key, value = item.split("=", 1)
        stage, opt = key.split(".", 1)
        out.setdefault(stage, {})[opt] = _parse_value(value)
    return out


def _parse_evals(items: Sequence[str]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--eval {item!r}: expected NAME=PATH, e.g. --eval gsm8k=gsm8k_test.jsonl")
        if name in out:
            raise ConfigError(f"--eval {item!r}: the name {name!r} is given twice; give each evaluation set one name")
        out[name] = path
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    return _main(argv, fast_exit=False)


def command() -> NoReturn:
    """The ``torchdataguard`` console script (and ``python -m torchdataguard.cli``): :func:`main` on
    ``sys.argv``, then exit with its code; a local scan ends its process with :func:`_exit_now`.

    The cyclic garbage collector is off while the command imports what it runs (:func:`_imports_done` turns
    it back on): importing torch makes some 250,000 objects and almost no garbage, and the collections that
    the allocations trigger on the way walk them again and again, a tenth of the import's time (380
    collections, 2 of them full, took 0.13-0.16 s of CPU; docs/speed.md, ninth session).
    """
    global _gc_off_for_imports
    if gc.isenabled():
        gc.disable()
        _gc_off_for_imports = True
    sys.exit(_main(None, fast_exit=True))


#: :func:`command` turned the collector off for the imports (:func:`_imports_done` turns it back on)
_gc_off_for_imports = False


def _imports_done(freeze: bool) -> None:
    """What the command runs is imported: freeze what is alive (``freeze``, see :func:`_run_scan`) and turn
    the collector back on if :func:`command` turned it off (``main`` called from Python code leaves it as it
    found it)."""
    global _gc_off_for_imports
    if freeze:
        gc.freeze()
    if _gc_off_for_imports:
        _gc_off_for_imports = False
        gc.enable()


#: environment variables that set the number of threads of the OpenBLAS that NumPy loads (any of them set: left alone)
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _load_numpy_without_blas_threads() -> None:
    """Import NumPy with ``OPENBLAS_NUM_THREADS=1`` and put the environment back as it was.

    The OpenBLAS bundled with NumPy starts a pool of threads when it is loaded, which a scan never uses (its NumPy
    work is integer arithmetic, sorting and gathers; no float matrix product): 0.07-0.08 s of a 0.29 s two-record
    scan on a loaded 2-core machine (sixteenth session). Only the ``torchdataguard scan`` process does this, only
    when NumPy is not loaded yet and no thread count is set; the variable is removed again once NumPy is loaded, so
    that no process the scan starts (Ray's) inherits it. torch's CPU kernels (MKL, OpenMP) do not read it.
    """
    if "numpy" in sys.modules or any(v in os.environ for v in _BLAS_THREAD_VARS):
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)


def _main(argv: Optional[Sequence[str]], *, fast_exit: bool) -> int:
    own_process = argv is None  # the ``torchdataguard`` command, not a call from Python code
    argv = sys.argv[1:] if argv is None else list(argv)
    if own_process and argv[:1] == ["scan"]:
        _load_numpy_without_blas_threads()
    parser = argparse.ArgumentParser(prog="torchdataguard", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("scan", help="audit a corpus: kept.jsonl, dropped.jsonl (id, reason, matched), report.json",
                       epilog=_SCAN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="JSONL, JSON, CSV or Parquet file (optionally .gz/.xz/.bz2/.zst), a saved datasets "
                                 "folder, or a shipped sample: sample:spamassassin (an unknown sample:NAME lists them)")
    p.add_argument("--out", required=True, help="output folder")
    # the stage names are read from the stage table only for the scan command (it imports every stage, and torch)
    names = f"from {stage_names()}" if argv[:1] == ["scan"] else "see torchdataguard scan --help"
    p.add_argument("--stages", default="exact,near", help=f"comma-separated, in order; {names}")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default=None,
                   help=f"field holding each record's id (default: the field {ID_FIELD!r} when the first record has "
                        f"one, else the record's position; --id-field '' numbers records by position)")
    p.add_argument("--threshold", type=float, default=None, help="near-duplicate Jaccard threshold (default 0.8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--format", default=None, choices=["jsonl", "json", "csv", "parquet", "datasets"])
    p.add_argument("--split", default=None, help="split of a saved DatasetDict")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="examples per chunk (default: up to 16,384, fewer for long texts)")
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
    p.add_argument("--eval", action="append", default=[], metavar="NAME=PATH",
                   help="decontaminate stage: an evaluation set (any input format; repeatable); training records that "
                        "share an n-gram with one of its items are dropped as contamination/NAME")
    p.add_argument("--eval-field", default=None, metavar="FIELD[,FIELD]",
                   help="decontaminate: fields of an evaluation item joined into its text (default: every string field)")
    p.add_argument("--eval-id-field", default=None, help="decontaminate: field holding item ids (default: position)")
    p.add_argument("--ngram", type=int, default=None, help="decontaminate: words per n-gram (default 13)")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local (this process) or ray (record stages as Ray Data map_batches, the dedup index as "
                        "sharded actors; needs the 'ray' extra)")
    p.add_argument("--index-actors", type=int, default=2, help="--engine ray: actors holding the dedup index")
    p.add_argument("--ray-address", default=None, help="--engine ray: cluster to join (default: start a local one)")
    add_cli(sub)  # the demo subcommand
    args = parser.parse_args(argv)
    try:
        if args.cmd == "scan" and (args.hash_ids or args.hash_ids_key_env) and args.engine == "ray":
            raise ConfigError("--hash-ids / --hash-ids-key-env are not supported with --engine ray yet; use the local "
                              "engine")
        if args.cmd == "scan":
            with _warnings_as_lines():
                code = _run_scan(args, freeze=own_process)
            if fast_exit and args.engine == "local":
                _exit_now(code)
            return code
        _imports_done(False)  # the demo runs with the collector on
        return run_cli(args)
    except GuardError as exc:
        print(f"torchdataguard: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, GuardInputError) else 2


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show each Python warning raised during a scan as one line, ``torchdataguard: warning: MESSAGE``, like the
    command's own warnings, instead of Python's two lines with the file, line and source of the call that met it
    (``readers.py:205: UserWarning: ...`` then ``for rec in inner:``: the CSV separator note until the fifteenth
    session). A warning from another package names its category: ``torchdataguard: warning: FutureWarning: ...``.
    Which warnings show is left to the warnings filters; a line already shown is not shown again (the input is read
    twice, to look at its first record and to scan it, and Python's record of the warnings already shown at a place is
    cleared whenever a module changes the filters, as a lazy ``import torch`` between the two reads does). The way of
    showing them is restored on exit.
    """
    import warnings

    own = os.path.dirname(os.path.abspath(__file__)) + os.sep
    shown: set = set()

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        kind = "" if os.path.abspath(filename).startswith(own) else f"{category.__name__}: "
        text = f"torchdataguard: warning: {kind}{' '.join(str(message).split())}"  # one line, whatever the message holds
        if text in shown:
            return
        shown.add(text)
        try:
            print(text, file=file or sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed stderr: nothing to show it on
            pass

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _exit_now(code: int) -> NoReturn:
    """End the ``torchdataguard scan`` process at once, skipping the interpreter's teardown.

    Every output of the scan is written and closed when this is called; what is left is the teardown of the
    modules the scan imported, torch's above all: 0.11-0.13 s from :func:`main`'s return to the end of the
    process on a 26,000-text scan of 1.8 s in all (2-core benchmark machine; ``gc.freeze`` in
    :func:`_run_scan` already spares the teardown most of its collection).
    Logging handlers and the standard streams are flushed first, so no message is lost. Only the console
    script calls this (:func:`command`; never :func:`main`, which returns to its caller, nor a scan with
    ``--engine ray``, whose cluster is shut down at exit).
    """
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``) or a closed stream: nothing left to save
            pass
    os._exit(code)


def stage_names() -> list[str]:
    """The names of the stages a scan accepts (the built-in ones are imported only when a scan names them)."""
    from .scan.stages import stage_names as names

    return names()


def _run_scan(args, *, freeze: bool = False) -> int:
    """Run ``scan`` and return its exit code (see ``torchdataguard scan --help``).

    ``freeze`` (the command's own process): the objects alive once torch and the stages are imported are moved
    out of the cyclic garbage collector's reach (``gc.freeze``). They live until the process exits anyway, and
    each full collection would walk them all: 80-95 ms a collection after ``import torch``, measured on a
    26,000-text scan that made two of them (a fifth of its time).
    """
    from .core.ids import key_from_env
    from .scan.local import scan
    from .scan.outputs import Terminated, exit_code

    _imports_done(freeze)

    from .scan.stages import order_warnings

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages:  # a scan without a stage kept every valid record and said nothing (fifteenth session)
        raise ConfigError(f"--stages {args.stages!r} names no stage: give one or more, comma-separated, in order, "
                          f"from {stage_names()}, e.g. --stages exact,near (the default)")
    import warnings  # the command says this itself, in its own words (_id_field)

    warnings.filterwarnings("ignore", message=r"the ids in id_field=.* hold an '@'", category=UserWarning)
    for warning in order_warnings(stages):
        print(f"torchdataguard: warning: {warning}", file=sys.stderr)
    kw = dict(stages=stages, text_field=args.text_field,
              id_field=_id_field(args), threshold=args.threshold, fmt=args.format, split=args.split,
              chunk_size=args.chunk_size, max_chars=args.max_chars, strict=args.strict, limit=args.limit,
              options=_parse_sets(args.set), progress=not args.no_progress, dropped_pii=args.dropped_pii)
    try:
        if args.engine == "ray":
            if args.eval:
                from .scan.ray import DECONTAM_REFUSAL

                raise ConfigError(DECONTAM_REFUSAL)
            from .scan.ray import scan_ray

            rep = scan_ray(args.input, args.out, index_actors=args.index_actors, address=args.ray_address, **kw)
        else:
            hash_ids = key_from_env(args.hash_ids_key_env) if args.hash_ids_key_env else args.hash_ids
            fields = [f.strip() for f in args.eval_field.split(",") if f.strip()] if args.eval_field else None
            rep = scan(args.input, args.out, device=args.device, hash_ids=hash_ids, evals=_parse_evals(args.eval),
                       eval_fields=fields, eval_id_field=args.eval_id_field, ngram=args.ngram, **kw)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated): the partial files are written
        status = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"torchdataguard: {status}; partial results in {args.out} (report.json has \"complete\": false)",
              file=sys.stderr)
        return exit_code(status)
    print(_summary_line(rep))
    print(f"wrote {rep['outputs']['kept']}, {rep['outputs']['dropped']}, {rep['outputs']['report']} "
          f"and report.html")
    by_id = sum(n for r, n in rep["dropped_by_reason"].items() if r in ("invalid/id_type", "invalid/missing_id"))
    if by_id:
        field = rep.get("settings", {}).get("id_field") or kw["id_field"]
        print(f"torchdataguard: warning: {by_id:,} records were dropped for their id alone (invalid/id_type, "
              f"invalid/missing_id: the id field {field!r} holds null, a bool, a float such as 1.0, or no value): "
              f"give every record a str or int id, or pass --id-field '' to number records by position",
              file=sys.stderr)
    other = rep.get("pii_other_fields")
    if other:
        names = list(other["fields"])
        counts = ", ".join(f"{k!r} ({n} records)" for k, n in other["fields"].items())
        hidden = f" and {other['withheld_names']} field(s) whose names look like data" if other["withheld_names"] else ""
        print(f"torchdataguard: warning: personal data in fields other than the text, among the first "
              f"{other['checked_records']} records: {counts or 'none named'}{hidden}; kept.jsonl holds them as they "
              f"came, and so does dropped.jsonl for records dropped after the pii stage (it scrubs --text-field "
              f"only): add them with --set 'pii.fields={json.dumps(names)}'", file=sys.stderr)
    not_utf8 = rep["dropped_by_reason"].get("invalid/not_utf8", 0)
    if not_utf8:  # a file saved in a legacy encoding loses every row with an accent: say how to convert it
        from .io.compressed import convert_command

        print(f"torchdataguard: warning: {not_utf8:,} of {rep['seen']:,} records were dropped as invalid/not_utf8: if "
              f"the file was saved in another encoding (Excel's 'CSV' on Windows writes Windows-1252), convert it and "
              f"scan again, e.g. {convert_command(args.input, 'WINDOWS-1252')} (in Excel: save as 'CSV UTF-8')",
              file=sys.stderr)
    code = exit_code(rep.get("status", "complete"))
    if code:
        print(f"torchdataguard: error: {rep['error']} (exit code {code})", file=sys.stderr)
    return code


#: the field used as the record id when the records have it and --id-field is not given
ID_FIELD = "id"


def _id_field(args) -> Optional[str]:
    """``--id-field`` as given (``''``: positions), else ``id`` when the first record has that field (and say so).

    Hashed ids (``--hash-ids``) are asked for by naming the field: they are never switched on by a guess.
    """
    if args.hash_ids or args.hash_ids_key_env:
        return args.id_field or None
    if args.id_field == "":
        return None
    from .io import readers

    path = readers.resolve_input(args.input)
    first = readers.first_record(path, args.format, split=args.split)
    field = args.id_field
    if field is None and isinstance(first, Mapping) and ID_FIELD in first:
        print(f"torchdataguard: using the field {ID_FIELD!r} as the record id (ids in kept.jsonl, dropped.jsonl and "
              f"the report); pass --id-field '' to number records by position instead", file=sys.stderr)
        field = ID_FIELD
    value = first.get(field) if field is not None and isinstance(first, Mapping) else None
    if isinstance(value, str) and "@" in value:  # never the value itself: it is the personal data
        print(f"torchdataguard: warning: the ids in field {field!r} hold an '@', like e-mail addresses; they are "
              f"written in clear into report.json and report.html (the duplicates' matches) and both .jsonl files: "
              f"pass --hash-ids-key-env VAR to write keyed hashes instead", file=sys.stderr)
    return field


_SCAN_EPILOG = """exit codes:
  0    complete: every record read, kept or dropped with a reason (report.json: "complete": true)
  2    usage or configuration error: a bad option, a missing input, or a --text-field that none of the
       records has (nothing is written if no record was read)
  3    input fault: the input is truncated or corrupt (or --strict met a bad record); the records before
       the fault are in kept.partial.jsonl / dropped.partial.jsonl and report.json says "complete": false,
       the error and records_read
  4    complete, but no valid record: the input is empty or every record was dropped as invalid/...
  130  interrupted by Ctrl-C (partial files, as for 3)
  143  terminated by SIGTERM (timeout, Slurm, docker stop): partial files, as for 3
"""


def _summary_line(rep: Dict[str, Any]) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in rep["dropped_by_reason"].items()) or "none"
    tp = rep.get("throughput", {}).get("examples_per_second")
    return f"seen {rep['seen']}, kept {rep['kept']}, dropped {rep['dropped']} ({reasons}); {tp} examples/s"


if __name__ == "__main__":  # pragma: no cover
    command()
