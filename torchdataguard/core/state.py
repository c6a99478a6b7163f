"""Saving state without pickle: tensors go to safetensors, everything else to JSON."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Tuple

import torch
from safetensors.torch import load_file, save_file

from ..errors import StateError

__all__ = ["flatten_state", "load_state", "save_state", "unflatten_state"]

TENSOR_FILE = "guard_state.safetensors"
JSON_FILE = "guard_state.json"


def flatten_state(state: Dict[str, Any], prefix: str = "") -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Split a nested state dict into ``{"a.b": tensor}`` and a JSON-able tree with tensor placeholders."""
    tensors: Dict[str, torch.Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[path] = obj.detach().to("cpu").contiguous()
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
        raise StateError(f"state value at {path} has type {type(obj).__name__}: only tensors and JSON values are saved")

    tree = walk(state, prefix)
    return tensors, tree


def unflatten_state(tensors: Dict[str, torch.Tensor], tree: Any) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            key = tree["__tensor__"]
            if key not in tensors:
                raise StateError(f"saved state refers to tensor {key!r}, which the safetensors file lacks")
            return tensors[key]
        return {k: unflatten_state(tensors, v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten_state(tensors, v) for v in tree]
    return tree


def save_state(directory: str | os.PathLike, state: Dict[str, Any]) -> None:
    """Write ``state`` to ``directory/guard_state.safetensors`` and ``directory/guard_state.json``."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    tensors, tree = flatten_state(state)
    tmp_t = os.path.join(directory, TENSOR_FILE + ".tmp")
    tmp_j = os.path.join(directory, JSON_FILE + ".tmp")
    save_file(tensors, tmp_t)
    with open(tmp_j, "w", encoding="utf-8") as fh:
        json.dump(tree, fh)
    os.replace(tmp_t, os.path.join(directory, TENSOR_FILE))
    os.replace(tmp_j, os.path.join(directory, JSON_FILE))


def load_state(directory: str | os.PathLike) -> Dict[str, Any]:
    """Read what :func:`save_state` wrote."""
    directory = os.fspath(directory)
    tpath = os.path.join(directory, TENSOR_FILE)
    jpath = os.path.join(directory, JSON_FILE)
    if not (os.path.exists(tpath) and os.path.exists(jpath)):
        raise StateError(f"no guard state in {directory!r}: expected {TENSOR_FILE} and {JSON_FILE}")
    tensors = load_file(tpath)
    with open(jpath, encoding="utf-8") as fh:
        tree = json.load(fh)
    return unflatten_state(tensors, tree)
