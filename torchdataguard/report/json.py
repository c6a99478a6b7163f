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
from typing import Any, Dict, Mapping

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
    return json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
