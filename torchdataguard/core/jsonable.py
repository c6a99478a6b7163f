"""Records as JSON: one JSON line per record (quarantine, scan outputs) and best-effort JSON-able values."""
from __future__ import annotations

import json
import math
from typing import Any

import torch

__all__ = ["json_line", "to_jsonable"]


#: what ``json.dumps(obj, ensure_ascii=False)`` uses, made once (its settings are all it holds)
_UTF8 = json.JSONEncoder(ensure_ascii=False)


def json_line(obj: Any) -> str:
    """One JSON line, UTF-8 where possible; strings with lone surrogates are written as escapes."""
    line = _UTF8.encode(obj)  # json.dumps(obj, ensure_ascii=False), without building an encoder each call
    if line.isascii():  # the usual line: nothing to check
        return line
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    return line


#: the types :func:`to_jsonable` returns as they are (exactly these: a subclass goes through the checks)
_SAME = frozenset((str, int, bool, type(None)))


def to_jsonable(obj: Any) -> Any:
    """Best-effort conversion of a record to JSON-able values (tensors to lists, bytes to text)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):  # the plain values of a container are taken as they are, without a call each
        return {str(k): v if type(v) in _SAME else to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [v if type(v) in _SAME else to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="replace")
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        try:
            return obj.item()
        except Exception:  # noqa: BLE001 - fall through to repr
            pass
    return repr(obj)
