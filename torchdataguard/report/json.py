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
from typing import Any, Dict, List, Mapping, Optional

from ..core.jsonable import to_jsonable
from ..errors import ConfigError

__all__ = ["jsonable_json", "jsonable_report", "report_json"]


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
    return _indented(clean, 0) + "\n"


#: values the C encoder writes exactly as the indenting (pure Python) encoder does
_SCALARS = (str, int, float, bool, type(None))


def _indented(obj: Any, level: int) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)`` as written at nesting ``level``.

    ``indent`` makes :mod:`json` use its pure Python encoder: a quarter of a second for the 30,000 matches of
    a 250,000-text scan's report. Dicts with str keys are walked here, a list of flat dicts (:func:`_flat_dicts`)
    goes to the C encoder in one call, and anything else to ``json.dumps``, re-indented (JSON text holds no
    raw line break, so every line break in it is the encoder's).
    """
    kind = type(obj)
    if kind is dict and obj and all(type(k) is str for k in obj):
        inner = "\n" + "  " * (level + 1)
        items = [json.dumps(k, ensure_ascii=False) + ": " + _indented(v, level + 1) for k, v in obj.items()]
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * level + "}"
    if kind is list and len(obj) > 1 and _all_flat_dicts(obj):
        text = _flat_dicts(obj, level)
        if text is not None:
            return text
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    return text.replace("\n", "\n" + "  " * level) if level else text


def _all_flat_dicts(items: List[Any]) -> bool:
    """True when every item is a non-empty dict of str keys and :data:`_SCALARS` values, exactly."""
    scalars = _SCALARS
    for m in items:
        if type(m) is not dict or not m:
            return False
        for k, v in m.items():
            if type(k) is not str or type(v) not in scalars:
                return False
    return True


def _flat_dicts(items: List[Dict[str, Any]], level: int) -> Optional[str]:
    """A list of non-empty dicts of str keys and plain scalars (:data:`_SCALARS`), indented at ``level``.

    The C encoder writes the list with the item separator of the dicts' own items (a line break and their
    indentation); the dicts are then cut apart where one ends and the next starts (``}``, that separator,
    ``{``: only there, since a string holds no raw line break and a scalar before a separator never ends in
    ``}`` outside a string) and put back with their own brackets and indentation. ``None``: the cut did not
    give one piece per dict (never expected; the caller then uses ``json.dumps``).
    """
    ind1, ind2 = "\n" + "  " * (level + 1), "\n" + "  " * (level + 2)
    body = json.dumps(items, ensure_ascii=False, allow_nan=False, separators=("," + ind2, ": "))
    parts = body[2:-2].split("}," + ind2 + "{")
    if len(parts) != len(items):
        return None
    opening, closing = "{" + ind2, ind1 + "}"
    return ("[" + ind1 + opening + (closing + "," + ind1 + opening).join(parts) + closing + "\n" + "  " * level
            + "]")
