"""A :class:`~torchdataguard.Guard`'s state: what it holds, and the checks a state passes before it is loaded.

A state is loaded only when it is well formed, internally consistent and saved by a guard whose settings
would make the same decisions. Every problem found is listed in one :class:`StateError`; nothing is
changed in the guard before all checks pass.

Settings that must match (:func:`guard_settings` and each stage's
:meth:`~torchdataguard.core.stage.Stage.decision_settings`): the stages, in order, by name and class, and
every setting of each stage that changes what it decides or produces (dedup thresholds, permutations,
bands, shingling, seeds, normalisation; the quality rule sets and word lists; PII actions and key id;
normalisation steps; augmentation rates); the guard's ``text_field``, ``id_field`` and ``max_chars``,
whether the ledger remembers decisions, and how ids are hashed (``hash_ids``: none, plain or keyed, and
the key's one-way ``key_id``). Not compared: ``device``, ``chunk_size`` (decisions do not depend on
either), ``strict`` (it turns a drop into an error, never one decision into another), ``quarantine``
and ``progress``. Restored, not compared: the number of DataLoader workers each positional stream was
first read with (``ids.splits``; a later read with another number is refused then).

Consistency of the ledger: ``kept + dropped == seen``; the drops by reason add up to ``dropped``; when
decisions are remembered, the per-example decisions (the ``memo_dense`` tensor, the sparse list and the
examples under reused ids, ``memo_other``) count exactly ``kept`` kept and ``dropped`` dropped examples,
their content fingerprints are well formed (``memo_dense_fp`` one per ``memo_dense`` entry; each reused
id belongs to an example first met under it, with another fingerprint), and ``counts["ids/reused"]`` is
the number of examples under reused ids; the quarantine position holds at most one line per drop; and,
in a single process, every document an index stage stores is an example the ledger has decided. A guard
with a quarantine file checks that the file starts with the lines the saved run wrote, before anything
changes (the file is then cut back to them and appended to).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

import numpy as np

from ..errors import StateError
from .arrays import is_array, is_tensor, to_numpy
from .ids import ids_state
from .jsonable import to_jsonable
from .ledger import REUSED_ID
from .memo import DROPPED, KEPT
from .memo import check_memo_state
from .stage import IndexStage

if TYPE_CHECKING:  # pragma: no cover
    from .guard import Guard

__all__ = ["FORMAT", "apply_guard_state", "check_guard_state", "check_ledger_state", "guard_settings",
           "guard_state_dict", "stage_settings"]

FORMAT = "torchdataguard.guard/2"


def _leaf(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _leaf(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_leaf(v) for v in obj]
    if is_tensor(obj) or hasattr(obj, "tolist"):
        return to_jsonable(obj)
    # a function or another object: its type, not a repr that may hold a memory address
    return f"<{type(obj).__module__}.{type(obj).__qualname__}>"


def _json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file (tuples become lists; objects their type's name)."""
    return json.loads(json.dumps(_leaf(obj), allow_nan=True))


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (so that NaN equals NaN and 1 equals 1.0 only where JSON says so)."""
    return json.dumps(a, sort_keys=True, allow_nan=True) == json.dumps(b, sort_keys=True, allow_nan=True)


def guard_settings(guard: "Guard") -> Dict[str, Any]:
    """The guard-level settings that change decisions (compared when a state is loaded).

    ``hash_ids`` (``None``, ``"plain"`` or ``"keyed"``) and ``key_id`` (a one-way fingerprint of the key, never
    the key): hashed ids name other examples than raw ones, and ids hashed with another key other examples
    again, so the saved decisions would not find their examples.
    """
    ids = ids_state({}, guard.id_hasher)
    return _json({"text_field": guard.text_field, "id_field": guard.id_field, "max_chars": guard.max_chars,
                  "remember": guard.ledger.remember, "hash_ids": ids["hash_ids"], "key_id": ids["key_id"]})


#: settings added after the first states of this format; a state without them was saved with these values
_SETTING_DEFAULTS = {"hash_ids": None, "key_id": None}


def stage_settings(stage: Any) -> Dict[str, Any]:
    """A stage's :meth:`decision_settings` as JSON."""
    return _json(stage.decision_settings())


def guard_state_dict(guard: "Guard") -> Dict[str, Any]:
    """The state of ``guard``: settings, stage states, the ledger (counters and decisions), the sources."""
    return {
        "format": FORMAT,
        "settings": guard_settings(guard),
        "stages": [{"name": s.name, "class": type(s).__name__, "settings": stage_settings(s),
                    "state": s.state_dict()} for s in guard.stages],
        "ledger": guard.ledger.state_dict(),
        "sources": dict(guard.sources),
        "ids": {"splits": dict(guard.splits)},
    }


# -- checks ---------------------------------------------------------------------------------------------
def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _diff(saved: Mapping[str, Any], mine: Mapping[str, Any]) -> List[str]:
    keys = list(mine) + [k for k in saved if k not in mine]
    return [f"{k}={saved.get(k, '<absent>')!r} saved, {mine.get(k, '<absent>')!r} here"
            for k in keys if not _same(saved.get(k, "<absent>"), mine.get(k, "<absent>"))]


def check_ledger_state(tensors: Any, meta: Any, *, remember: bool) -> List[str]:
    """Problems with a saved ledger (types, ``kept + dropped == seen``, reasons, decisions vs counters)."""
    problems: List[str] = []
    if not isinstance(tensors, Mapping) or not isinstance(meta, Mapping):
        return ["ledger must hold 'tensors' and 'meta' objects"]
    bad = [k for k in ("seen", "kept", "dropped", "replayed") if not _is_count(meta.get(k))]
    if bad:
        return [f"ledger counters {bad} are missing or not non-negative integers"]
    seen, kept, dropped = meta["seen"], meta["kept"], meta["dropped"]
    if kept + dropped != seen:
        problems.append(f"ledger counters disagree: kept {kept} + dropped {dropped} != seen {seen} (the state was "
                        f"edited or is corrupt)")
    by_reason = meta.get("by_reason", {})
    if not isinstance(by_reason, Mapping) or not all(_is_count(v) for v in by_reason.values()):
        problems.append("ledger by_reason is not a mapping of reasons to counts")
    elif sum(by_reason.values()) != dropped:
        problems.append(f"ledger drops by reason add up to {sum(by_reason.values())}, but dropped is {dropped} (the "
                        f"state was edited or is corrupt)")
    for key in ("counts", "scores"):
        if not isinstance(meta.get(key, {}), Mapping):
            problems.append(f"ledger {key} is not a mapping")
    if not isinstance(meta.get("matches", []), list):
        problems.append("ledger matches is not a list")
    if remember:
        memo = check_memo_state(tensors, meta, problems)
        if memo is not None and (memo[KEPT], memo[DROPPED]) != (kept, dropped):
            problems.append(f"the per-example decisions record {memo[KEPT]} kept and {memo[DROPPED]} dropped examples, "
                            f"but the counters say kept {kept} and dropped {dropped} (the state was edited, is "
                            f"corrupt, or mixes parts of different saves)")
        counts = meta.get("counts", {})
        reused = counts.get(REUSED_ID, 0) if isinstance(counts, Mapping) else 0
        other = meta.get("memo_other", [])
        if memo is not None and reused != len(other):
            problems.append(f"the ledger counts {reused!r} examples under {REUSED_ID!r} but remembers {len(other)} "
                            f"examples under reused ids (the state was edited or is corrupt)")
    q = meta.get("quarantine")
    if q is not None and not (isinstance(q, Mapping) and _is_count(q.get("lines")) and _is_count(q.get("bytes"))
                              and q["lines"] <= q["bytes"] and q["lines"] <= dropped):
        problems.append(f"ledger quarantine is {q!r}; expected {{lines, bytes}} counts with at most one line per "
                        f"dropped example ({dropped})")
    return problems


def _check_ids(ids: Any, problems: List[str]) -> None:
    """The saved ids entry: ``splits`` maps each positional stream to the DataLoader workers it was read with."""
    if ids is None:  # saved before stream splits were recorded
        return
    splits = ids.get("splits") if isinstance(ids, Mapping) else None
    if not isinstance(splits, Mapping) or not all(_is_count(v) and v >= 1 for v in splits.values()):
        problems.append(f"ids is {ids!r}; expected {{'splits': {{source: number of DataLoader workers (>= 1)}}}}")


def _check_quarantine(guard: "Guard", ledger: Any, problems: List[str]) -> None:
    """A guard with a quarantine file continues the saved run's file: check it starts with the saved lines."""
    sink = guard.ledger.quarantine
    q = ledger.get("meta", {}).get("quarantine") if isinstance(ledger, Mapping) else None
    if sink is None or not isinstance(q, Mapping) or not q.get("bytes"):
        return
    problem = sink.check_resume(int(q["bytes"]), int(q["lines"]))
    if problem:
        problems.append(problem)


def _index_ids(stage_state: Any) -> Any:
    """The ids stored by a dedup index's saved state (a NumPy array, from a tensor or an array, or a list), or
    None for other formats."""
    index = stage_state.get("index") if isinstance(stage_state, Mapping) else None
    if not isinstance(index, Mapping):
        return None
    if is_array(index.get("ids")):
        return to_numpy(index["ids"])
    if isinstance(index.get("id_list"), list):
        return index["id_list"]
    return None


def _undecided_ids(ids: Any, tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> int:
    """How many of ``ids`` have no decision in the saved ledger."""
    dense = tensors.get("memo_dense")
    dense = np.zeros(0, dtype=np.uint8) if dense is None else to_numpy(dense).reshape(-1)
    sparse = {}
    for k, v, *_ in meta.get("memo_sparse", []):
        sparse[tuple(k) if isinstance(k, list) else k] = v
    if isinstance(ids, np.ndarray):
        ids = ids.astype(np.int64).reshape(-1)
        inside = (ids >= 0) & (ids < dense.size)
        known = np.zeros_like(inside)
        known[inside] = dense[ids[inside]] != 0
        rest = ids[~known].tolist()
    else:
        rest = ids
    missing = 0
    for i in rest:
        try:
            key = tuple(i) if isinstance(i, list) else i
            if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < dense.size and int(dense[key]):
                continue
            missing += key not in sparse
        except TypeError:
            continue
    return missing


def check_guard_state(guard: "Guard", state: Any, *, index_vs_ledger: bool = True) -> None:
    """Raise :class:`StateError` listing every reason ``state`` cannot be loaded into ``guard``.

    ``index_vs_ledger=False`` skips the check that stored documents are decided examples (a rank of a
    :class:`~torchdataguard.DistributedGuard` stores documents of every rank).
    """
    if not isinstance(state, Mapping):
        raise StateError(f"a guard state is a dict, got {type(state).__name__}")
    if state.get("format") != FORMAT:
        hint = (" (written by a torchdataguard before states carried checksums and settings: it cannot be verified; "
                "start from a fresh guard)" if state.get("format") == "torchdataguard.guard/1" else "")
        raise StateError(f"not a guard state of this version (format={state.get('format')!r}, expected "
                         f"{FORMAT!r}){hint}")
    missing = [k for k in ("settings", "stages", "ledger", "sources") if k not in state]
    if missing:
        raise StateError(f"the guard state lacks {missing}: it is not a complete guard state (guard.state_dict() and "
                         f"guard.save() write every part)")
    problems: List[str] = []
    settings, stages, ledger = state["settings"], state["stages"], state["ledger"]
    if not isinstance(settings, Mapping):
        problems.append("settings is not an object")
    else:
        diff = _diff({**_SETTING_DEFAULTS, **settings}, guard_settings(guard))
        if diff:
            problems.append("the guard was saved with other settings (" + "; ".join(diff) + "); build the guard with "
                            "the saved settings to resume")
    if not isinstance(stages, list) or not all(
            isinstance(s, Mapping) and isinstance(s.get("name"), str) and isinstance(s.get("class"), str)
            and isinstance(s.get("settings"), Mapping) and isinstance(s.get("state"), Mapping) for s in stages):
        problems.append("stages is not a list of {name, class, settings, state} objects")
    else:
        saved = [(s["name"], s["class"]) for s in stages]
        mine = [(s.name, type(s).__name__) for s in guard.stages]
        if saved != mine:
            problems.append(f"the saved guard had stages {saved}, this one has {mine}; build the guard with the same "
                            f"stages in the same order to resume")
        else:
            for i, (st, entry) in enumerate(zip(guard.stages, stages)):
                diff = _diff(_json(st.saved_settings(entry["settings"])), stage_settings(st))
                if diff:
                    problems.append(f"stage {i} {st.name!r} ({type(st).__name__}) was saved with other settings ("
                                    + "; ".join(diff) + "); build the stage with the saved settings to resume")
    _check_ids(state.get("ids"), problems)
    sources = state["sources"]
    if not isinstance(sources, Mapping) or not all(_is_count(v) for v in sources.values()):
        problems.append("sources is not a mapping of source names to counts")
    remember = bool(guard.ledger.remember)
    if not isinstance(ledger, Mapping):
        problems.append("ledger is not an object")
    else:
        ledger_problems = check_ledger_state(ledger.get("tensors"), ledger.get("meta"), remember=remember)
        problems += ledger_problems
        if index_vs_ledger and not ledger_problems and not problems and isinstance(stages, list):
            meta, tensors = ledger["meta"], ledger["tensors"]
            for i, (st, entry) in enumerate(zip(guard.stages, stages)):
                ids = _index_ids(entry["state"]) if isinstance(st, IndexStage) else None
                if ids is None:
                    continue
                n = int(ids.size) if isinstance(ids, np.ndarray) else len(ids)
                if n > meta["seen"]:
                    problems.append(f"stage {i} {st.name!r} stores {n} documents, but the ledger has seen only "
                                    f"{meta['seen']} examples: the index and the ledger come from different saves")
                elif remember:
                    lost = _undecided_ids(ids, tensors, meta)
                    if lost:
                        problems.append(f"stage {i} {st.name!r} stores {lost} documents whose ids the ledger has no "
                                        f"decision for: the index and the ledger come from different saves")
    if not problems:  # last: it reads the quarantine file
        _check_quarantine(guard, ledger, problems)
    if problems:
        raise StateError(f"{len(problems)} problem(s) with the saved guard state (nothing was loaded):\n"
                         + "\n".join(f"  - {p}" for p in problems))


def apply_guard_state(guard: "Guard", state: Mapping[str, Any]) -> None:
    """Load a state that passed :func:`check_guard_state`. If a stage still refuses its part, the guard is
    reset (never left half loaded) and a :class:`StateError` says which stage and why."""
    try:
        for i, (st, entry) in enumerate(zip(guard.stages, state["stages"])):
            try:
                st.load_state_dict(entry["state"])
            except Exception as exc:  # noqa: BLE001 - re-raised as a StateError naming the stage
                raise StateError(f"stage {i} {st.name!r} ({type(st).__name__}) refused its saved state: {exc}") from exc
            if isinstance(st, IndexStage):
                st.to(guard.device)
        try:
            guard.ledger.load_state_dict(state["ledger"])
        except Exception as exc:  # noqa: BLE001
            raise StateError(f"the saved ledger could not be loaded: {exc}") from exc
        guard.sources = {str(k): int(v) for k, v in state["sources"].items()}
        guard.splits = {str(k): int(v) for k, v in (state.get("ids") or {}).get("splits", {}).items()}
    except StateError as exc:
        guard.reset()
        raise StateError(f"{exc} (nothing was loaded: the guard was reset to empty)") from exc
