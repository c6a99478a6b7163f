"""Saving state without pickle: tensors go to safetensors, everything else to JSON, tied by SHA-256.

"Tensors" are torch tensors or NumPy arrays (the ledger's decisions, dedup indexes on the CPU): both are
written to the same safetensors file, named, typed and shaped alike. Loading returns torch tensors when this
process has imported torch (as every version before did), else NumPy arrays, so that a guard whose stages
and records hold no tensors saves and loads without importing torch; stages accept either kind.

Layout of ``guard.save(directory)``:

* ``guard_state.<h>.safetensors``: the tensors; ``<h>`` is the first 16 hex digits of the file's SHA-256;
* ``guard_state.json``: the commit record. It names the tensor file, holds its SHA-256 and size, the rest of
  the state (JSON), and the SHA-256 of that JSON (canonical form), so that a bit flip in either file, or
  a tensor file from another save, is detected when loading.

Why versioned files and one pointer file, rather than a temporary folder renamed into place: the folder a
user saves into may hold other files (model weights, the DP ledger), which a folder swap would replace,
and ``rename(2)`` cannot move a folder onto a non-empty one, so a swap takes two renames and a recovery
step on load. Here the only step that changes which state is current is one ``os.replace`` of
``guard_state.json``, which POSIX makes atomic. Every file it names is written, fsynced and in place
(and the folder fsynced) before that rename; files of earlier saves are removed only after it. A crash at
any point therefore leaves the old complete state or the new complete state; leftovers of an interrupted
save (temporary files, an unreferenced tensor file) are ignored by :func:`load_state` and removed by the
next save. Two processes must not save into the same folder at once.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import StateError
from .arrays import is_tensor, loaded_torch, tensors_of

__all__ = ["JSON_FILE", "canonical_sha256", "flatten_state", "fsync_dir", "load_state", "load_tensors", "make_dir",
           "read_state_file", "remove_stale", "save_state", "save_tensors", "sha256_file", "unflatten_state",
           "write_bytes_atomic", "write_state_files"]

STEM = "guard_state"
JSON_FILE = STEM + ".json"
CONTAINER = "torchdataguard.state-files/1"
TMP_PREFIX = ".tdg-tmp-"
_HEX16 = "[0-9a-f]{16}"


def flatten_state(state: Dict[str, Any], prefix: str = "") -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Split a nested state dict into ``{"a.b": tensor or array}`` (CPU, contiguous) and a JSON-able tree with
    tensor placeholders."""
    tensors: Dict[str, Any] = {}

    def walk(obj: Any, path: str) -> Any:
        if is_tensor(obj):
            tensors[path] = obj.detach().to("cpu").contiguous()
            return {"__tensor__": path}
        if isinstance(obj, np.ndarray):
            tensors[path] = np.ascontiguousarray(obj)
            return {"__tensor__": path}
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise StateError(f"state keys must be strings, got {k!r} at {path or '<root>'}")
                out[k] = walk(v, f"{path}.{k}" if path else k)
            return out
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise StateError(f"state value at {path} has type {type(obj).__name__}: only tensors, NumPy arrays and JSON "
                         f"values are saved")

    tree = walk(state, prefix)
    return tensors, tree


def unflatten_state(tensors: Dict[str, Any], tree: Any) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            key = tree["__tensor__"]
            if not isinstance(key, str) or key not in tensors:
                raise StateError(f"saved state refers to tensor {key!r}, which the safetensors file lacks")
            return tensors[key]
        return {k: unflatten_state(tensors, v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten_state(tensors, v) for v in tree]
    return tree


def save_tensors(tensors: Dict[str, Any], path: str) -> None:
    """Write :func:`flatten_state`'s tensors to the safetensors file ``path``: through ``safetensors.numpy``
    when they are all NumPy arrays (torch stays unimported), else through ``safetensors.torch`` with the arrays
    as tensors sharing their memory. Both write the same bytes for the same names, dtypes, shapes and values."""
    if any(is_tensor(v) for v in tensors.values()):
        from safetensors.torch import save_file

        save_file(tensors_of(tensors), path)
    else:
        from safetensors.numpy import save_file as save_numpy

        save_numpy(tensors, path)


def load_tensors(path: str) -> Dict[str, Any]:
    """Read a safetensors file: torch tensors when this process has imported torch, else NumPy arrays."""
    if loaded_torch() is not None:
        from safetensors.torch import load_file
    else:
        from safetensors.numpy import load_file
    return load_file(path)


# -- hashing and durable writes ------------------------------------------------------------------------
def canonical_sha256(tree: Any) -> str:
    """SHA-256 of the canonical JSON form of ``tree`` (sorted keys, no spaces, ASCII)."""
    text = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def sha256_file(path: str) -> Tuple[str, int]:
    """SHA-256 (hex) and size in bytes of the file at ``path``, read in 4 MiB blocks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def fsync_dir(directory: str) -> None:
    """Make renames and new names in ``directory`` durable (no-op where folders cannot be opened: Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _tmp_path(directory: str, tag: str, suffix: str) -> str:
    return os.path.join(directory, f"{TMP_PREFIX}{tag}-{uuid.uuid4().hex}{suffix}")


def write_bytes_atomic(path: str, data: bytes, *, tag: str = "") -> None:
    """Write ``data`` to a temporary file beside ``path`` (named after ``tag``), fsync it, rename it onto ``path``."""
    tmp = _tmp_path(os.path.dirname(path) or ".", tag or os.path.basename(path), ".part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def make_dir(directory: str | os.PathLike) -> str:
    """Create ``directory`` if needed (its name made durable in its parent); returns it as a string."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
        fsync_dir(os.path.dirname(os.path.abspath(directory)))
    return directory


def write_state_files(directory: str, state: Dict[str, Any], prefix: str,
                      json_name: Optional[str] = None) -> Tuple[str, str, str]:
    """Write ``state`` as ``<prefix>.<h>.safetensors`` and its JSON record.

    Returns the names of the JSON record and of the tensor file, and the record's SHA-256.
    The JSON record goes to ``json_name`` when given (replacing it atomically: the commit), else to the
    versioned name ``<prefix>.<h>.json`` (the caller commits by writing a manifest that names it). The
    tensor file is fsynced and renamed into place, and the folder fsynced, before the record is written.
    """
    tensors, tree = flatten_state(state)
    # safetensors may stage its own temporary file beside the target (".tmpXXXXXX"); a private folder keeps
    # whatever an interrupted save leaves under our prefix, where the next save removes it
    tmp_dir = _tmp_path(directory, prefix, ".d")
    os.mkdir(tmp_dir)
    tmp = os.path.join(tmp_dir, "state.safetensors")
    try:
        save_tensors(tensors, tmp)
        _fsync_file(tmp)
        t_sha, t_bytes = sha256_file(tmp)
        t_name = f"{prefix}.{t_sha[:16]}.safetensors"
        os.replace(tmp, os.path.join(directory, t_name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    record = {"container": CONTAINER, "tensors": {"file": t_name, "sha256": t_sha, "bytes": t_bytes},
              "state_sha256": canonical_sha256(tree), "state": tree}
    data = json.dumps(record, ensure_ascii=True, allow_nan=True).encode("ascii")
    j_sha = hashlib.sha256(data).hexdigest()
    j_name = json_name or f"{prefix}.{j_sha[:16]}.json"
    fsync_dir(directory)  # the tensor file's name is durable before the record that names it
    write_bytes_atomic(os.path.join(directory, j_name), data, tag=prefix)
    fsync_dir(directory)
    return j_name, t_name, j_sha


def remove_stale(directory: str, pattern: str, keep: set, *, tmp_tag: Optional[str],
                 only: Optional[Callable[[Any], bool]] = None) -> None:
    """Remove the files of ``directory`` whose names fully match ``pattern`` (and pass ``only``, given the
    match) and are not in ``keep``, and the temporary files that interrupted saves tagged ``tmp_tag`` left."""
    rx = re.compile(pattern)
    tmp = None if tmp_tag is None else f"{TMP_PREFIX}{tmp_tag}-"
    for name in os.listdir(directory):
        if name in keep:
            continue
        m = rx.fullmatch(name)
        if (m and (only is None or only(m))) or (tmp is not None and name.startswith(tmp)):
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                _remove_quietly(path)


def save_state(directory: str | os.PathLike, state: Dict[str, Any]) -> None:
    """Write ``state`` into ``directory`` (``guard_state.json`` + ``guard_state.<h>.safetensors``), atomically."""
    directory = make_dir(directory)
    _, t_name, _ = write_state_files(directory, state, STEM, json_name=JSON_FILE)
    # files of earlier saves (and of the layout before checksums), now unreferenced
    remove_stale(directory, rf"{STEM}\.({_HEX16}\.)?safetensors(\.tmp)?|{STEM}\.json\.tmp", {t_name, JSON_FILE},
                 tmp_tag=STEM)


# -- reading --------------------------------------------------------------------------------------------
def _bad(path: str, what: str, fix: str = "") -> StateError:
    return StateError(f"{path}: {what}" + (f"; {fix}" if fix else ""))


def read_state_file(json_path: str, *, expect_sha256: Optional[str] = None,
                    legacy_fix: str = "start from a fresh guard") -> Dict[str, Any]:
    """Read and verify a JSON record written by :func:`write_state_files` and the tensor file it names.

    Raises :class:`StateError` naming the file and the problem: unreadable or truncated JSON, a record of
    the wrong shape, a tensor file that is missing, truncated, altered or from another save (its SHA-256
    differs from the one recorded), or JSON content that differs from its recorded checksum.
    """
    directory = os.path.dirname(json_path) or "."
    try:
        with open(json_path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise _bad(json_path, f"cannot be read ({exc.strerror or exc})") from None
    if expect_sha256 is not None and hashlib.sha256(data).hexdigest() != expect_sha256:
        raise _bad(json_path, "its SHA-256 differs from the one the manifest records (the file was altered, "
                              "truncated or comes from another save)", "restore the checkpoint from a good copy")
    if not data.strip():
        raise _bad(json_path, "is empty (an interrupted copy or a full disk?)", "restore it from a good copy")
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(json_path, f"is not valid JSON ({exc}): the file is truncated or corrupt",
                   "restore it from a good copy") from None
    if not isinstance(record, dict):
        raise _bad(json_path, f"holds a JSON {type(record).__name__}, not a saved guard state (an object)")
    if record.get("container") != CONTAINER:
        if "format" in record:
            raise _bad(json_path, f"is a state in the format {record.get('format')!r}, written by a torchdataguard "
                                  f"before saved states carried checksums and their settings; it cannot be verified, "
                                  f"so it is not loaded", legacy_fix)
        raise _bad(json_path, f"is not a torchdataguard state record (container={record.get('container')!r}, "
                              f"expected {CONTAINER!r})")
    tinfo, tree = record.get("tensors"), record.get("state")
    if not (isinstance(tinfo, dict) and isinstance(tinfo.get("file"), str) and isinstance(tinfo.get("sha256"), str)
            and isinstance(record.get("state_sha256"), str) and "state" in record):
        raise _bad(json_path, "lacks its tensors entry (file, sha256), state or state_sha256")
    if canonical_sha256(tree) != record["state_sha256"]:
        raise _bad(json_path, "its content differs from the checksum it records (the file was edited or is corrupt)",
                   "restore it from a good copy")
    t_name = tinfo["file"]
    if os.path.basename(t_name) != t_name or t_name in ("", ".", ".."):
        raise _bad(json_path, f"names the tensor file {t_name!r}, which is not a plain file name")
    tpath = os.path.join(directory, t_name)
    try:
        t_sha, t_bytes = sha256_file(tpath)
    except OSError as exc:
        raise _bad(tpath, f"named by {os.path.basename(json_path)} cannot be read ({exc.strerror or exc})",
                   "the checkpoint is incomplete: restore it from a good copy") from None
    if t_sha != tinfo["sha256"]:
        size = tinfo.get("bytes")
        how = f" ({t_bytes} bytes, {size} expected: truncated)" if isinstance(size, int) and size != t_bytes else ""
        raise _bad(tpath, f"does not match {os.path.basename(json_path)}: its SHA-256 is {t_sha[:16]}..., the record "
                          f"says {tinfo['sha256'][:16]}...{how}. The tensor file is corrupt or comes from another save",
                   "restore the checkpoint from a good copy")
    from safetensors import SafetensorError  # here: a scan that saves no state never imports safetensors

    try:
        tensors = load_tensors(tpath)
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise _bad(tpath, f"is not a readable safetensors file ({exc})") from None
    try:
        state = unflatten_state(tensors, tree)
    except StateError as exc:
        raise _bad(json_path, str(exc)) from None
    if not isinstance(state, dict):
        raise _bad(json_path, f"its state is a JSON {type(state).__name__}, expected an object")
    return state


def load_state(directory: str | os.PathLike) -> Dict[str, Any]:
    """Read what :func:`save_state` wrote, verified (see :func:`read_state_file`)."""
    directory = os.fspath(directory)
    jpath = os.path.join(directory, JSON_FILE)
    if not os.path.exists(jpath):
        distributed = os.path.exists(os.path.join(directory, "guard_state.distributed.json"))
        hint = ("; this folder holds a DistributedGuard checkpoint: load it with DistributedGuard(guard).load("
                "directory) on the same number of processes" if distributed else " (guard.save(directory) writes it)")
        raise StateError(f"no guard state in {directory!r}: {JSON_FILE} is missing{hint}")
    return read_state_file(jpath)
