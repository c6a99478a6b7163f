"""Checkpoints of a :class:`~torchdataguard.DistributedGuard`: one verified part per rank, one manifest.

Layout of ``dg.save(directory)`` (a folder every rank can reach):

* ``guard_state.rank<k>.<h>.safetensors`` and ``guard_state.rank<k>.<h>.json``: rank ``k``'s part, written
  as :func:`torchdataguard.core.state.write_state_files` writes a single guard's state (the JSON record
  holds the tensor file's SHA-256 and a checksum of its own content); ``<h>`` is a content hash, so the
  files of two saves never share a name;
* ``guard_state.distributed.json``: the manifest, the commit point. It names every rank's JSON record
  with its SHA-256. Rank 0 replaces it atomically only after every rank has written and fsynced its part,
  and files of earlier saves are removed only after that, so a crash (of any rank, at any point) leaves
  the previous checkpoint or the new one, never parts of both.

Saving and loading are collective: a rank that cannot write or read its part makes every rank raise the
same :class:`StateError`, and nothing is loaded anywhere unless every rank's part passes its checks.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from ..core.guard_state import apply_guard_state, check_guard_state
from ..core.state import fsync_dir, make_dir, read_state_file, remove_stale, write_bytes_atomic, write_state_files
from ..errors import StateError

if TYPE_CHECKING:  # pragma: no cover
    from .guard import DistributedGuard

__all__ = ["FORMAT", "MANIFEST", "apply_state", "check_state", "load_checkpoint", "save_checkpoint", "world_message"]

FORMAT = "torchdataguard.distributed/2"
MANIFEST = "guard_state.distributed.json"
_HEX16 = "[0-9a-f]{16}"


def _prefix(rank: int) -> str:
    return f"guard_state.rank{rank}"


def _agree(dg: "DistributedGuard", problem: str, what: str, extra: Any = None) -> List[Any]:
    """All-gather ``(problem, extra)``; raise the same StateError on every rank when some rank had a problem."""
    parts = dg.comm.all_gather_json({"problem": problem, "extra": extra})
    bad = [r for r, p in enumerate(parts) if p["problem"]]
    if bad:
        if problem:
            raise StateError(problem)
        raise StateError(f"another rank (rank(s) {bad}) could not {what}: {parts[bad[0]]['problem']}; "
                         f"no rank {'loaded' if 'read' in what else 'committed'} anything")
    return [p["extra"] for p in parts]


def world_message(dg: "DistributedGuard", saved_world: int, saved_rank: int) -> str:
    """Why a part saved by rank ``saved_rank`` of ``saved_world`` processes cannot be loaded by this rank."""
    return (f"this checkpoint was saved by rank {saved_rank} of a world of {saved_world} processes, and is being "
            f"loaded by rank {dg.comm.rank} of {dg.comm.world}. Each rank stores its own part of the dedup "
            f"index (documents are owned by rank = key mod world size) and its own ledger of positional ids, so "
            f"the parts cannot be reused with another world size: resume with {saved_world} processes, or start "
            f"a fresh guard")


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, StateError) else f"{type(exc).__name__}: {exc}"


def save_checkpoint(dg: "DistributedGuard", directory: str | os.PathLike) -> None:
    """Write this rank's part and, on rank 0, the manifest that commits every part (collective)."""
    directory = os.fspath(directory)
    rank, world = dg.comm.rank, dg.comm.world
    problem, entry, t_name = "", None, ""
    try:
        make_dir(directory)
        j_name, t_name, j_sha = write_state_files(directory, dg.state_dict(), _prefix(rank))
        entry = {"json": j_name, "sha256": j_sha}
    except (OSError, StateError, ValueError) as exc:
        problem = f"rank {rank} could not write its part of the checkpoint into {directory!r}: {_why(exc)}"
    entries = _agree(dg, problem, "write its part of the checkpoint", entry)
    if rank == 0:
        try:
            manifest = {"format": FORMAT, "world_size": world, "ranks": entries}
            write_bytes_atomic(os.path.join(directory, MANIFEST), json.dumps(manifest, indent=1).encode("ascii"),
                               tag="guard_state.distributed")
            fsync_dir(directory)
        except OSError as exc:
            problem = f"rank 0 could not write {os.path.join(directory, MANIFEST)}: {_why(exc)}"
    _agree(dg, problem, "commit the checkpoint (the previous one, if any, is unchanged)")
    keep = {entries[rank]["json"], t_name}
    remove_stale(directory, rf"{_prefix(rank)}\.({_HEX16}\.)?(safetensors|json)(\.tmp)?", keep, tmp_tag=_prefix(rank))
    if rank == 0:  # parts of a checkpoint saved by a larger world, temporary manifests of interrupted saves
        remove_stale(directory, r"guard_state\.rank(\d+)\..*", set(), tmp_tag="guard_state.distributed",
                     only=lambda m: int(m.group(1)) >= world)


def _read_manifest(dg: "DistributedGuard", directory: str) -> Dict[str, Any]:
    mpath = os.path.join(directory, MANIFEST)
    if not os.path.exists(mpath):
        raise StateError(f"no distributed guard state in {directory!r}: {MANIFEST} is missing (a single-process "
                         f"guard.save() checkpoint loads with guard.load() in a single process)")
    try:
        with open(mpath, "rb") as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"{mpath}: cannot be read as JSON ({exc}): the manifest is truncated or corrupt; restore "
                         f"the checkpoint from a good copy") from None
    if not isinstance(manifest, dict):
        raise StateError(f"{mpath}: holds a JSON {type(manifest).__name__}, not a checkpoint manifest (an object)")
    if manifest.get("format") != FORMAT:
        old = manifest.get("format") == "torchdataguard.distributed/1"
        raise StateError(f"{mpath} has format {manifest.get('format')!r}, expected {FORMAT!r}"
                         + ("; it was written before checkpoints carried checksums and cannot be verified: start "
                            "from a fresh guard" if old else ""))
    world = manifest.get("world_size")
    if isinstance(world, bool) or not isinstance(world, int):
        raise StateError(f"{mpath}: world_size={world!r} is not an integer")
    if world != dg.comm.world:
        raise StateError(world_message(dg, world, dg.comm.rank))
    ranks = manifest.get("ranks")
    if not (isinstance(ranks, list) and len(ranks) == world and all(
            isinstance(e, dict) and isinstance(e.get("json"), str) and isinstance(e.get("sha256"), str)
            and os.path.basename(e["json"]) == e["json"] and e["json"] not in ("", ".", "..") for e in ranks)):
        raise StateError(f"{mpath}: 'ranks' is not a list of {world} {{json, sha256}} entries naming files of the "
                         f"folder")
    return manifest


def check_state(dg: "DistributedGuard", state: Any) -> None:
    """Raise :class:`StateError` if ``state`` cannot be loaded into this rank (nothing is changed)."""
    if not isinstance(state, Mapping):
        raise StateError(f"a distributed guard state is a dict, got {type(state).__name__}")
    if state.get("format") != FORMAT:
        raise StateError(f"not a distributed guard state (format={state.get('format')!r}, expected {FORMAT!r})")
    world, rank = state.get("world_size"), state.get("rank")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (world, rank)):
        raise StateError(f"the state's world_size={world!r} and rank={rank!r} must be integers")
    if world != dg.comm.world or rank != dg.comm.rank:
        raise StateError(world_message(dg, world, rank))
    check_guard_state(dg.guard, state.get("guard"), index_vs_ledger=False)
    sharded = state.get("sharded")
    if not isinstance(sharded, Mapping):
        raise StateError("the state's 'sharded' entry is not an object")
    problems: List[str] = []
    stages = state["guard"]["stages"]
    for si, sh in dg.decider.stages.items():
        found = sh.check_state(stages[si]["state"], sharded.get(str(si)))
        problems += [f"stage {si} {sh.stage.name!r}: {p}" for p in found]
    if problems:
        raise StateError(f"{len(problems)} problem(s) with this rank's part of the index:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def apply_state(dg: "DistributedGuard", state: Mapping[str, Any]) -> None:
    """Load a state that passed :func:`check_state` (on failure the rank's guard is reset, never half loaded)."""
    apply_guard_state(dg.guard, state["guard"])
    try:
        for si, sh in dg.decider.stages.items():
            sh.load_state_dict(state["sharded"].get(str(si), {}))
    except Exception as exc:  # noqa: BLE001 - re-raised as a StateError
        dg.reset()
        raise StateError(f"the saved partition state could not be loaded: {exc} (nothing was loaded: the guard was "
                         f"reset to empty)") from exc


def load_checkpoint(dg: "DistributedGuard", directory: str | os.PathLike) -> None:
    """Read, verify and check this rank's part; load it only if every rank's part passed (collective)."""
    directory = os.fspath(directory)
    problem, state, seqs = "", None, None
    try:
        entry = _read_manifest(dg, directory)["ranks"][dg.comm.rank]
        jpath = os.path.join(directory, entry["json"])
        if not os.path.exists(jpath):
            raise StateError(f"{jpath}: named by {MANIFEST} for rank {dg.comm.rank} but missing (No such file); the "
                             f"checkpoint is incomplete: restore it from a good copy")
        state = read_state_file(jpath, expect_sha256=entry["sha256"])
        try:
            check_state(dg, state)
        except StateError as exc:
            raise StateError(f"{jpath}: {exc}") from None
        seqs = {str(si): state["sharded"].get(str(si), {}).get("next_seq") for si in sorted(dg.decider.stages)}
    except (OSError, ValueError, KeyError, TypeError, StateError) as exc:
        problem = _why(exc)
    all_seqs = _agree(dg, problem, "read its part of the checkpoint", seqs)
    if any(s != all_seqs[0] for s in all_seqs):
        raise StateError(f"the ranks' parts of the checkpoint in {directory!r} disagree on the global insertion "
                         f"counters ({all_seqs}): they come from different saves; no rank loaded anything")
    apply_state(dg, state)  # type: ignore[arg-type]
