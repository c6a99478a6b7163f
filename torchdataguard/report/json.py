"""``report.json``: the report as strict JSON (non-finite floats as strings, tensors as lists, no NaN tokens).

Example:
    >>> print(report_json({"seen": 1, "mean": float("nan")}))
    {
      "seen": 1,
      "mean": "nan"
    }
    <BLANKLINE>
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping

from ..core.jsonable import to_jsonable
from ..errors import ConfigError

__all__ = ["indented_json", "jsonable_json", "jsonable_report", "report_json"]


def jsonable_report(report: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``report`` holding only JSON values (see :func:`torchdataguard.core.jsonable.to_jsonable`).

    Raises:
        ConfigError: ``report`` is not a mapping.
    """
    if not isinstance(report, Mapping):
        raise ConfigError.bad("report", type(report).__name__, "a mapping such as guard.report() returns")
    return to_jsonable(dict(report))


def report_json(report: Mapping[str, Any]) -> str:
    """``report`` as indented, strict JSON text with a final newline (non-ASCII kept as it is)."""
    return jsonable_json(jsonable_report(report))


def jsonable_json(clean: Dict[str, Any]) -> str:
    """:func:`report_json` of a report :func:`jsonable_report` already converted (the text is the same)."""
    return indented_json(clean) + "\n"


#: the JSON types an already converted report holds; a container holding only these is encoded in one C call
_SCALARS = (str, int, float, bool, type(None))
_encoders: Dict[int, Any] = {}


class _Unexpected(Exception):
    """A value :func:`indented_json` does not encode itself (the standard encoder is used for the whole text)."""


def indented_json(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)``, the same text, faster.

    With ``indent`` the standard library encodes in Python, value by value (14 ms for a report with 2,912
    ``matches``; 5 ms here). Here each list or object whose items are all plain JSON scalars is encoded by the
    C encoder, its item separator carrying the line break and indentation, and so is a list of such objects
    as a whole; only the nesting is walked in Python. Values of other types (a subclass of ``dict`` or
    ``list``, a tuple, anything a converted report does not hold) make the whole text come from
    ``json.dumps``.

    Example:
        >>> print(indented_json({"a": [1, 2.5], "b": {}, "c": "é"}))
        {
          "a": [
            1,
            2.5
          ],
          "b": {},
          "c": "é"
        }
    """
    try:
        return _indented(obj, 0)
    except (_Unexpected, RecursionError):  # (a cycle: json.dumps says so, as a ValueError)
        return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)


def _encoder(level: int) -> Any:
    enc = _encoders.get(level)
    if enc is None:
        enc = _encoders[level] = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                                                  separators=(",\n" + "  " * level, ": ")).encode
    return enc


def _indented(obj: Any, level: int) -> str:
    kind = type(obj)
    if kind is dict:
        if not obj:
            return "{}"
        values = obj.values()
    elif kind is list:
        if not obj:
            return "[]"
        values = obj
    elif kind in _SCALARS:
        return _encoder(0)(obj)
    else:
        raise _Unexpected
    inner = level + 1
    if kind is list and _flat_objects(obj):
        return _flat_object_list(obj, level)
    if all(type(v) in _SCALARS for v in values):  # (the C encoder writes or refuses keys as json.dumps does)
        text = _encoder(inner)(obj)[1:-1]  # items joined by ",\n" and the inner indentation
    else:
        sep = ",\n" + "  " * inner
        if kind is dict:
            encode = _encoder(0)
            parts = []
            for k, v in obj.items():
                if type(k) is not str:
                    raise _Unexpected
                parts.append(encode(k) + ": " + _indented(v, inner))
            text = sep.join(parts)
        else:
            text = sep.join([_indented(v, inner) for v in obj])
    opening, closing = ("{", "}") if kind is dict else ("[", "]")
    return opening + "\n" + "  " * inner + text + "\n" + "  " * level + closing


def _flat_objects(items: List[Any]) -> bool:
    """Every item is a non-empty ``dict`` of scalar values (the report's ``matches``)."""
    for d in items:
        if type(d) is not dict or not d:
            return False
        for v in d.values():
            if type(v) not in _SCALARS:
                return False
    return True


def _flat_object_list(items: List[Any], level: int) -> str:
    """A list of flat objects (:func:`_flat_objects`) at ``level``, encoded in one C call.

    Encoded with the item separator of the objects' items, the list's own separators are the ``"},\n"``
    followed by that indentation and ``"{"``: a line break is only ever a separator (in a string it is the
    escape ``\\n``) and ``}`` only ever closes an object, so these are replaced by the list's separator.
    """
    outer, inner = "  " * (level + 1), "  " * (level + 2)
    text = _encoder(level + 2)(items)  # '[{"a": 1,\n<inner>"b": 2},\n<inner>{"a": 3, ...}]'
    text = text[2:-2].replace("},\n" + inner + "{", "\n" + outer + "},\n" + outer + "{\n" + inner)
    return "[\n" + outer + "{\n" + inner + text + "\n" + outer + "}\n" + "  " * level + "]"
