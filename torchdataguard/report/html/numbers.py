"""Numbers and values as people read them: ``13,110``, ``0.942``, ``7.99``, ``7.75e-05`` (one helper for the page).

:func:`format_number` is the only place the page turns a number into text (tables, cards, plot labels and
ticks); :func:`format_value` renders any report value with it.

Example:
    >>> [format_number(x) for x in (13110.4, 1600, 0.9417, 7.992254, 11.815561, 7.75e-05, 1e-05, 0)]
    ['13,110', '1,600', '0.942', '7.99', '11.8', '7.75e-05', '1e-05', '0']
"""
from __future__ import annotations

import json
import math
from typing import Any, Optional

from .page import clip

__all__ = ["as_number", "format_bytes", "format_id", "format_number", "format_percent", "format_value"]

#: shown for a missing value
DASH = "\u2014"


def as_number(value: Any) -> Optional[float]:
    """A finite float, or ``None`` for anything else (bools, strings, NaN ...).

    Example:
        >>> as_number(3), as_number(True), as_number(float("nan")), as_number("4")
        (3.0, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def format_number(value: float, digits: int = 3) -> str:
    """``value`` for a person: whole numbers with thousands separators, others to ``digits`` significant digits.

    Whole numbers and anything of magnitude 1,000 or more are shown as integers with separators (``13,110``);
    smaller numbers with ``digits`` significant digits and no trailing zeros (``0.942``, ``7.99``); below 0.001
    (or from 1e15 on) in scientific notation (``7.75e-05``). Non-finite values are shown as ``nan``/``inf``.

    Example:
        >>> format_number(654.9), format_number(0.0124031), format_number(2.0), format_number(-0.5)
        ('655', '0.0124', '2', '-0.5')
    """
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a >= 1e15 or (0 < a < 1e-3):
        return f"{v:.{digits}g}"
    if v == int(v) or a >= 1000:
        return f"{int(round(v)):,}"
    text = f"{v:.{digits}g}"
    if "e" in text:  # 100 <= |v| < 1000 rounds to, e.g., '1e+03'
        return f"{int(round(v)):,}"
    return text


def format_percent(part: float, whole: float) -> str:
    """``part`` as a share of ``whole`` with one decimal (``80.6%``); a dash when ``whole`` is 0."""
    return f"{100.0 * part / whole:.1f}%" if whole else DASH


def format_bytes(n: Any) -> str:
    """A byte count in binary units (``1.5 MiB``); non-numbers through :func:`format_value`."""
    v = as_number(n)
    if v is None:
        return format_value(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024:
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return f"{v:,.1f} TiB"


def format_value(value: Any, limit: int = 300) -> str:
    """Plain text for any report value (escape the result before use): numbers through :func:`format_number`,
    ``None`` as a dash, booleans as yes/no, empty lists and objects as ``none``, lists of plain values joined
    by commas, anything else as JSON;
    cut to ``limit`` characters."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, (list, tuple, dict)) and not value:
        return "none"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                                for v in value):
        return clip(", ".join(v if isinstance(v, str) else format_number(v) for v in value), limit)
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = type(value).__name__
    return clip(text, limit)


def format_id(value: Any) -> str:
    """An example id as text: strings as they are, integers without separators (an id, not a quantity)."""
    if isinstance(value, str):
        return clip(value, 120)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return format_value(value, 120)
