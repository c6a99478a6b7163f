"""The report of a distributed guard: every rank's report summed (collective; every rank gets the same one)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from ..core.jsonable import to_jsonable

if TYPE_CHECKING:  # pragma: no cover
    from ..core.guard import Guard
    from .decider import ShardedDecider

__all__ = ["merged_report"]


def merged_report(guard: "Guard", decider: "ShardedDecider") -> Dict[str, Any]:
    """The guard's report summed over every rank (collective).

    Counts (``seen``, ``kept``, ``dropped``, reasons, counters) are sums; ``matches`` are concatenated;
    score summaries merge counts, min, max and mean, with quantiles from the pooled samples; a stage's own
    entries (``contamination``) are merged by its sharded implementation
    (:meth:`~torchdataguard.distributed.sharded.ShardedStage.merge_report`); an index every rank holds whole
    (``replicated``) counts its examples once and its bytes per example per rank;
    ``distributed`` holds per-rank counts, index sizes and communication figures.
    """
    comm = decider.comm
    rep = guard.report()
    mine = {
        "seen": rep["seen"], "kept": rep["kept"], "dropped": rep["dropped"], "replayed": rep["replayed"],
        "dropped_by_reason": rep["dropped_by_reason"], "counts": rep["counts"], "matches": rep["matches"],
        "matches_truncated": rep["matches_truncated"], "busy_seconds": rep["busy_seconds"],
        "scores": rep["scores"], "score_values": rep["score_values"],
        "index": {guard.stages[si].name: {"stored": sh.stored(), "bytes": sh.memory_bytes()}
                  for si, sh in decider.stages.items()},
        "comm": comm.stats(), "rounds": decider.rounds,
        "stage_parts": {str(si): sh.report_part() for si, sh in decider.stages.items()},
    }
    parts = comm.all_gather_json(to_jsonable(mine))
    out = dict(rep)
    for k in ("seen", "kept", "dropped", "replayed", "matches_truncated"):
        out[k] = sum(int(p[k]) for p in parts)
    for k in ("dropped_by_reason", "counts"):
        tot: Dict[str, int] = {}
        for p in parts:
            for name, v in p[k].items():
                tot[name] = tot.get(name, 0) + int(v)
        out[k] = dict(sorted(tot.items()))
    by_stage: Dict[str, int] = {}
    for reason, v in out["dropped_by_reason"].items():
        by_stage[reason.split("/", 1)[0]] = by_stage.get(reason.split("/", 1)[0], 0) + v
    out["dropped_by_stage"] = dict(sorted(by_stage.items()))
    out["matches"] = [m for p in parts for m in p["matches"]]
    out["busy_seconds"] = max(float(p["busy_seconds"]) for p in parts)
    out["examples_per_second"] = round(out["seen"] / out["busy_seconds"], 1) if out["busy_seconds"] > 0 else None
    _merge_scores(out, parts)
    for si, sh in decider.stages.items():
        sh.merge_report(out, [p["stage_parts"][str(si)] for p in parts])
    replicated = {guard.stages[si].name for si, sh in decider.stages.items() if sh.replicated}
    for entry in out["stages"]:
        if entry["kind"] == "index":
            per = [p["index"].get(entry["name"], {}) for p in parts]
            entry["index_bytes"] = sum(int(x.get("bytes", 0)) for x in per)
            entry["index_bytes_per_rank"] = [int(x.get("bytes", 0)) for x in per]
            if entry["name"] in replicated:  # the same index on every rank: its examples once, bytes per rank
                entry["indexed_examples"] = max(int(x.get("stored", 0)) for x in per)
                per_example = max(entry["index_bytes_per_rank"])
            else:
                entry["indexed_examples"] = sum(int(x.get("stored", 0)) for x in per)
                per_example = entry["index_bytes"]
            if entry["indexed_examples"]:
                entry["index_bytes_per_example"] = round(per_example / entry["indexed_examples"], 1)
    out["distributed"] = {
        "world_size": comm.world, "backend": comm.backend,
        "per_rank": [{"seen": p["seen"], "kept": p["kept"], "dropped": p["dropped"], "replayed": p["replayed"],
                      "comm": p["comm"], "rounds": p["rounds"]} for p in parts],
    }
    return out


def _merge_scores(out: Dict[str, Any], parts: List[Dict[str, Any]]) -> None:
    out["score_values"] = {}
    out["scores"] = {}
    for name in sorted({n for p in parts for n in p["scores"]}):
        vals = sorted(v for p in parts for v in p["score_values"].get(name, []))
        summ = [p["scores"][name] for p in parts if p["scores"].get(name, {}).get("count")]
        if not summ:
            out["scores"][name] = {"count": 0}
            continue
        cnt = sum(s["count"] for s in summ)
        entry = {"count": cnt, "min": min(s["min"] for s in summ), "max": max(s["max"] for s in summ),
                 "mean": sum(s["mean"] * s["count"] for s in summ) / cnt}
        for q in (5, 25, 50, 75, 95):
            entry[f"p{q:02d}"] = vals[min(len(vals) - 1, int(q / 100 * (len(vals) - 1) + 0.5))] if vals else None
        out["scores"][name] = entry
        out["score_values"][name] = vals
