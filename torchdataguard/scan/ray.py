"""``torchdataguard scan --engine ray``: record stages as Ray Data ``map_batches``, the index as sharded actors.

How a scan runs on Ray:

1. the driver streams the input with the same readers as the local scan (so parsing and bad-line handling
   are identical) in blocks of ``block_rows`` records;
2. each block becomes a Ray Data dataset; ``map_batches`` runs phase one on the cluster: validation,
   record stages (normalisation, quality, PII ...) and the dedup keys (hashes, MinHash signatures);
3. ``index_actors`` Ray actors form a ``torch.distributed`` gloo group and each holds one partition of
   the dedup indexes (a :class:`~torchdataguard.DistributedGuard` per actor); the driver hands them each
   global chunk split by stride, so their decisions equal the single-process scan's on the same order;
4. the driver writes ``kept.jsonl``, ``dropped.jsonl`` and ``report.json`` exactly as the local scan does
   (staged and moved into place at the end; a damaged input or a text field that no record has ends the
   scan with partial files and a report that says ``"complete": false``, as in the local scan).

Ray is an optional extra: ``pip install "torchdataguard[ray]"``. Without ``ray`` installed, asking for this
engine raises a :class:`~torchdataguard.errors.ConfigError` with the install hint.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import platform
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..core.guard import Guard
from ..core.jsonable import json_line, to_jsonable
from ..core.plan import BadRecord, Plan
from ..core.quarantine import QuarantineSink
from ..core.stage import Drop, Example
from ..core.fieldcheck import FieldChecks
from ..distributed.comm import Comm
from ..distributed.decider import EncodedKeys
from ..distributed.guard import DistributedGuard
from ..distributed.sharded import sharded_for
from ..errors import ConfigError, GuardError
from ..io import readers  # looked up at call time (tests stand a reader in)
from .outputs import ReadCounter, ScanRun, check_reading
from .piifields import OtherFieldsProbe
from .stages import build_stages

__all__ = ["scan_ray"]

#: why the Ray engine refuses the ``decontaminate`` stage (``--eval``), and what to use instead
DECONTAM_REFUSAL = (
    "the decontaminate stage (--eval) does not run on the Ray engine: the Ray engine plans keys in Ray Data tasks "
    "and hands the index actors fixed-width key columns, while decontamination sends each document's verified "
    "n-grams (a list of any length) from the process that checked it, and would rebuild the evaluation index in "
    "every Ray worker. Use the local engine (torchdataguard scan ... --stages decontaminate --eval NAME=PATH), "
    "or torchdataguard.DistributedGuard under torchrun, which runs it on every rank")
_PIP_HINT = 'the Ray engine needs Ray Data: pip install "torchdataguard[ray]" (or pip install "ray[data]")'


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"{_PIP_HINT} ({exc})") from None
    return ray


def _build(spec: Dict[str, Any]):
    """The guard described by ``spec`` (runs in Ray workers)."""
    built = build_stages(spec["stages"], threshold=spec["threshold"], options=spec["options"])
    g = Guard(built, text_field=spec["text_field"], id_field=spec["id_field"], device="cpu", strict=spec["strict"],
              max_chars=spec["max_chars"], chunk_size=spec["chunk_size"], progress=False)
    g.ledger.remember = False
    return g


_PLANNERS: Dict[str, "_PlanBatch"] = {}


def _plan_batch(batch: Dict[str, np.ndarray], spec_json: str) -> Dict[str, Any]:
    """The ``map_batches`` function (a task: Ray reuses worker processes, so each builds its planner once)."""
    fn = _PLANNERS.get(spec_json)
    if fn is None:
        fn = _PLANNERS[spec_json] = _PlanBatch(json.loads(spec_json))
    return fn(batch)


class _PlanBatch:
    """Phase one of a batch of records, as Arrow-friendly columns."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        g = _build(spec)
        self.planner = g.planner()
        comm = Comm(None, torch.device("cpu"))  # only encode() is used here: no collectives
        self.encoders = [(si, sharded_for(st, comm)) for si, st in enumerate(g.stages) if st.kind == "index"]

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, Any]:
        recs: List[Any] = []
        for r, bad, where in zip(batch["rec"], batch["bad"], batch["where"]):
            recs.append(BadRecord(str(bad), str(where)) if bad else json.loads(r))
        pos = [int(p) for p in batch["pos"]]
        plan = self.planner.plan(recs, pos)
        m = len(recs)
        width = sum(1 + sh.width for _, sh in self.encoders) + 1  # + 1: never a zero-width column
        keys = np.zeros((m, width), dtype=np.int64)
        col = 0
        for si, sh in self.encoders:
            rows, k = plan.keys.get(si, ([], None))
            if rows:
                keys[rows, col] = 1
                keys[rows, col + 1 : col + 1 + sh.width] = sh.encode(k, len(rows)).numpy()
            col += 1 + sh.width
        out: Dict[str, Any] = {"pos": np.asarray(pos, dtype=np.int64), "keys": keys}
        out["id"] = [json.dumps(to_jsonable(e.id)) for e in plan.examples]
        out["out"] = [json_line(to_jsonable(e.record)) for e in plan.examples]
        out["pre"] = [json.dumps(None if p is None else [p[0], p[1].reason, to_jsonable(p[1].matched), p[1].score,
                                                          p[1].line])
                      for p in plan.pre_drop]
        out["counts"] = [json.dumps(e.counts) for e in plan.examples]
        out["scores"] = [json.dumps(e.scores) for e in plan.examples]
        # for the driver's text-field check (core/textcheck.py): per-row marks, the batch's field names once
        out["probe"] = np.asarray(plan.text_flags or [0] * m, dtype=np.int64)
        out["pfields"] = [json.dumps(plan.missing_fields) if i == 0 else "" for i in range(m)]
        # and for the check of the fields the stages read besides the text (core/fieldcheck.py): the batch's counts
        out["xfields"] = [json.dumps(plan.field_probe) if i == 0 and plan.field_probe else "" for i in range(m)]
        return out


class DropRows:
    """Stands in for the quarantine file of an index actor's guard: keeps each drop the ledger would write
    (the driver, which holds the records, writes ``dropped.jsonl``)."""

    def __init__(self) -> None:
        self.rows: List[List[Any]] = []

    def write(self, ex: Example, drop: Drop, *, withhold: bool = False) -> None:
        self.rows.append([drop.reason, to_jsonable(drop.matched), drop.score, withhold, drop.line])

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class _IndexShard:
    """One partition of the dedup indexes: a DistributedGuard in a gloo group of Ray actors."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        self.spec = spec
        self.dg = None

    def address(self) -> List[Any]:
        import socket

        import ray

        ip = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return [ip, port]

    def join(self, rank: int, world: int, ip: str, port: int) -> bool:
        import torch.distributed as dist

        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://{ip}:{port}", rank=rank, world_size=world)
        self.dg = DistributedGuard(_build(self.spec))
        return True

    def decide(self, part: Dict[str, Any]) -> List[Optional[List[Any]]]:
        """Decide this actor's part of a global chunk: ``None`` per kept row, else ``[reason, matched, score,
        withhold]`` (withhold: what the guard's ledger decided about writing the record's content)."""
        g = self.dg.guard
        m = len(part["id"])
        exs: List[Example] = []
        pre = []
        # the records only while a stage still looks at its first ones for its messages (NearDedup.check_compares)
        probing = not all(getattr(sh.stage, "compares_checked", True) for sh in self.dg.decider.stages.values())
        for i in range(m):
            rec = json.loads(part["out"][i]) if probing else None
            text = rec if isinstance(rec, str) else rec.get(g.text_field) if isinstance(rec, dict) and g.text_field else None
            ex = Example(json.loads(part["id"][i]), rec, text if isinstance(text, str) else None, g.text_field)
            ex.counts = json.loads(part["counts"][i])
            ex.scores = json.loads(part["scores"][i])
            exs.append(ex)
            p = json.loads(part["pre"][i])
            pre.append(None if p is None else (int(p[0]), Drop(p[1], matched=p[2], score=p[3], line=p[4])))
        plan = Plan(exs, pre)
        keys = torch.from_numpy(np.stack(part["keys"]).astype(np.int64)) if m else torch.zeros(0, 1, dtype=torch.int64)
        col = 0
        for si, sh in self.dg.decider.stages.items():
            rows = torch.nonzero(keys[:, col] == 1).flatten() if m else torch.zeros(0, dtype=torch.int64)
            if rows.numel():
                plan.keys[si] = (rows.tolist(), EncodedKeys(keys[rows, col + 1 : col + 1 + sh.width]))
            col += 1 + sh.width
        sink = g.ledger.quarantine = DropRows()  # the ledger's drops, withhold rule applied, for the driver
        rnd = self.dg.decider.round(g, plan if m else None, ended=m == 0, source="")
        rows_out = iter(sink.rows)
        return [None if d is None else next(rows_out) for _, d, _ in rnd.outcomes]

    def report(self) -> Dict[str, Any]:
        return self.dg.report()

    def close(self) -> bool:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        return True


def scan_ray(input_path: str, out_dir: str, *, stages: Sequence[str] = ("exact", "near"),
             text_field: Optional[str] = "text", id_field: Optional[str] = None, threshold: Optional[float] = None,
             fmt: Optional[str] = None, split: Optional[str] = None, chunk_size: Optional[int] = None,
             max_chars: int = 2_000_000, strict: bool = False, limit: Optional[int] = None,
             options: Optional[Dict[str, Dict[str, Any]]] = None, index_actors: int = 2,
             block_rows: int = 65536, address: Optional[str] = None, progress: bool = False,
             dropped_pii: bool = False) -> Dict[str, Any]:
    """Scan a corpus on Ray: same outputs and decisions as :func:`torchdataguard.scan.scan`.

    Args:
        index_actors: how many actors hold a partition of the dedup indexes (memory per actor falls with it).
        block_rows: records handed to Ray Data at a time (bounds the driver's memory).
        address: a Ray cluster to join (``"auto"``, ``"ray://host:10001"``); by default a local instance
            is started (or the one already running in this process is used).
        progress: show Ray Data's progress bars.
        dropped_pii: also write records dropped before or by the PII stage into ``dropped.jsonl`` (withheld by
            default, as in the local scan).
    """
    if "decontaminate" in stages:
        raise ConfigError(DECONTAM_REFUSAL)
    ray = _import_ray()
    chunk_size = 1024 if chunk_size is None else chunk_size  # rows per index-actor call
    problems = []
    for name, v, lo in (("index_actors", index_actors, 1), ("block_rows", block_rows, 1), ("chunk_size", chunk_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            problems.append(f"{name}={v!r}: expected an integer >= {lo}")
    if problems:
        raise ConfigError.collect(problems, "Ray scan settings")
    input_path = readers.resolve_input(input_path)
    fmt = fmt or readers.detect_format(input_path)
    check_reading(fmt, limit=limit, split=split)
    spec = {"stages": list(stages), "threshold": threshold, "options": options or {}, "text_field": text_field,
            "id_field": id_field, "strict": strict, "max_chars": max_chars, "chunk_size": chunk_size}
    built = _build(spec)  # fail early, here, on bad stage names or options
    spec_json = json.dumps(spec, sort_keys=True)
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                     [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))] +
                     ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}})
        started = True
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = bool(progress)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    W = index_actors
    Shard = ray.remote(num_cpus=0)(_IndexShard)
    actors = [Shard.remote(spec) for _ in range(W)]
    t0 = time.perf_counter()
    ip, port = ray.get(actors[0].address.remote())
    ray.get([a.join.remote(r, W, ip, port) for r, a in enumerate(actors)])
    run = ScanRun(out_dir, inputs={"the input": input_path})  # files are staged here and moved into out_dir at the end
    kept_path = run.staged("kept.jsonl")
    sink = QuarantineSink(run.staged("dropped.jsonl"), include_pii=dropped_pii)
    reader = ReadCounter(readers.read_records(input_path, fmt, split=split, max_chars=max_chars),
                         on_first=run.clear_previous)
    records = reader if limit is None else itertools.islice(reader, limit)
    check = FieldChecks.for_stages(text_field, built.stages)  # the text field, and fields the stages read
    probe = OtherFieldsProbe(built)  # personal data in the other fields of the records written (scan/piifields.py)
    C = chunk_size
    pos = 0
    try:
        with open(kept_path, "w", encoding="utf-8") as kept_fh:
            while True:
                block = list(itertools.islice(records, block_rows))
                if not block:
                    break
                items = []
                for i, r in enumerate(block):
                    bad = isinstance(r, BadRecord)
                    items.append({"pos": pos + i, "rec": "" if bad else json_line(to_jsonable(r)),
                                  "bad": r.reason if bad else "", "where": r.where if bad else ""})
                pos += len(block)
                ds = ray.data.from_items(items).map_batches(_plan_batch, fn_kwargs={"spec_json": spec_json},
                                                           batch_size=C, batch_format="numpy")
                cols: Dict[str, List[Any]] = {"pos": [], "keys": [], "id": [], "out": [], "pre": [], "counts": [],
                                              "scores": [], "probe": [], "pfields": [], "xfields": []}
                for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for k in cols:
                        cols[k].extend(list(b[k]))
                order = np.argsort(np.asarray(cols["pos"], dtype=np.int64), kind="stable")
                cols = {k: [v[i] for i in order] for k, v in cols.items()}
                check.text.observe([int(x) for x in cols["probe"]], _merged_fields(cols["pfields"]))  # before deciding
                check.extra.observe(_merged_probe(cols["xfields"]))
                n = len(order)
                for a in range(0, n, W * C):
                    b = min(n, a + W * C)
                    parts = [{k: v[a + r : b : W] for k, v in cols.items()} for r in range(W)]
                    got = _get(ray, [act.decide.remote(p) for act, p in zip(actors, parts)])
                    for j in range(b - a):
                        r, o = j % W, j // W
                        d = got[r][o]
                        out = parts[r]["out"][o]
                        if probe.left:
                            probe.see(json.loads(out))
                        if d is None:
                            kept_fh.write(out + "\n")
                        else:
                            ex = Example(json.loads(parts[r]["id"][o]), json.loads(out))
                            sink.write(ex, Drop(d[0], matched=d[1], score=d[2], line=d[4]), withhold=bool(d[3]))
        check.finish()
    except BaseException as exc:  # noqa: BLE001 - written into the partial report, then raised again
        run.fail(exc)
    try:
        wall = time.perf_counter() - t0
        rep = ray.get([a.report.remote() for a in actors])[0]
        ray.get([a.close.remote() for a in actors])
    except BaseException:
        run.discard()  # no report could be made: the folder is left as it was
        raise
    finally:
        sink.close()
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()
    rep["input"] = {"path": os.path.abspath(input_path), "format": fmt, "split": split}
    other_pii = probe.report()
    if other_pii is not None:  # as the local scan reports it (scan/piifields.py)
        rep["pii_other_fields"] = other_pii
    rep["throughput"] = {"wall_seconds": round(wall, 3),
                         "examples_per_second": round(rep["seen"] / wall, 1) if wall > 0 else None}
    rep["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                      "cpu_count": os.cpu_count(), "device": "cpu"}
    rep["engine"] = {"name": "ray", "ray": ray.__version__, "index_actors": W, "block_rows": block_rows}
    # report.json and report.html, then the files moved into place; a fault is raised again from here
    return run.finish(rep, records_read=reader.n, reader_fault=reader.fault)


def _merged_fields(cells: List[str]) -> Dict[str, bool]:
    """The field names the batches reported for records without the text field (JSON cells, '' for none)."""
    out: Dict[str, bool] = {}
    for cell in cells:
        for k, v in (json.loads(cell) if cell else {}).items():
            out[k] = out.get(k, False) or bool(v)
    return out


def _merged_probe(cells: List[str]) -> Optional[List[Any]]:
    """The batches' counts of the fields the stages read besides the text (JSON cells, '' for none), summed."""
    n, held, names = 0, {}, {}  # type: ignore[var-annotated]
    for cell in cells:
        if cell:
            m, h, f = json.loads(cell)
            n += m
            for k, v in h.items():
                held[k] = held.get(k, 0) + v
            for k, v in f.items():
                names[k] = names.get(k, False) or v
    return [n, held, names] if n else None


def _get(ray: Any, refs: List[Any]) -> List[Any]:
    """``ray.get``, raising a torchdataguard error of an actor as itself (a wrong setting found in the data: the
    scan's status says so), not wrapped in Ray's task error."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, GuardError):
            raise cause from None
        raise
