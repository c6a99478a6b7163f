"""The summary: seen, kept, dropped, replayed, the guard's scan speed, and a kept/dropped bar."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

from ..context import RenderContext, section
from ..numbers import as_number, format_number, format_percent, format_value
from ..page import Markup, escape
from ..tables import note

__all__ = ["render_summary", "scan_speed"]


def scan_speed(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Tuple[str, float, str]]:
    """``(label, examples per second, what it measures)``: the scan's wall-clock speed when the report has one
    (``throughput.examples_per_second``, from ``torchdataguard scan``), else the guard's own speed
    (``examples_per_second``: examples over the seconds spent inside the guard). Neither is training speed."""
    eps = as_number(ctx.mapping(rep, "throughput").get("examples_per_second"))
    if eps is not None:
        return "scan speed", eps, "examples/s over the scan's wall-clock time"
    eps = as_number(rep.get("examples_per_second"))
    if eps is not None:
        return "guard scan speed", eps, "examples/s inside the guard, not training speed"
    return None


@section("summary", "Summary", order=10, keys=("seen", "kept", "dropped", "replayed", "examples_per_second"))
def render_summary(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """Cards for the counts, the speed card when a speed is known, and the kept/dropped split."""
    seen = as_number(rep.get("seen")) or 0
    kept = as_number(rep.get("kept")) or 0
    dropped = as_number(rep.get("dropped")) or 0
    replayed = as_number(rep.get("replayed")) or 0
    cards: List[Tuple[str, str, str, str]] = [
        ("seen", "seen", format_value(rep.get("seen", 0)), "examples met for the first time"),
        ("kept", "kept", format_value(rep.get("kept", 0)), f"{format_percent(kept, seen)} of seen"),
        ("dropped", "dropped", format_value(rep.get("dropped", 0)), f"{format_percent(dropped, seen)} of seen"),
        ("replayed", "replayed", format_value(rep.get("replayed", 0)),
         "met again (later epochs)" if replayed else "no later epochs"),
    ]
    speed = scan_speed(ctx, rep)
    if speed is not None:
        label, eps, sub = speed
        cards.append(("speed", label, format_number(eps), sub))
    parts = ['<div class="cards">']
    for cls, name, value, sub in cards:
        parts.append(f'<div class="card card-{cls}"><div class="card-label">{escape(name)}</div>'
                     f'<div class="card-value">{escape(value)}</div><div class="card-sub">{escape(sub)}</div></div>')
    parts.append("</div>")
    if seen > 0:
        kw = max(0.0, min(100.0, 100.0 * kept / seen))
        parts.append(f'<div class="split" title="kept {escape(format_percent(kept, seen))}, dropped '
                     f'{escape(format_percent(dropped, seen))}">'
                     f'<span class="split-kept" style="width:{kw:.2f}%"></span>'
                     f'<span class="split-dropped" style="width:{100 - kw:.2f}%"></span></div>')
    elif not rep.get("seen"):
        parts.append(note("No example was seen: the guard has not processed any data yet."))
    return Markup("".join(parts))
