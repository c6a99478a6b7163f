"""Settings and machine: the guard's settings, the input, speeds, the machine, the engine and the outputs."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ..context import RenderContext, section
from ..page import Markup, escape
from ..tables import flatten, kv_table

__all__ = ["render_run"]

#: what the speed fields measure, shown next to their names
SPEED_NAMES = {
    "examples_per_second": "scan speed, examples/s (wall clock)",
    "guard_examples_per_second": "guard scan speed, examples/s (not training speed)",
    "guard_busy_seconds": "seconds inside the guard",
    "wall_seconds": "wall-clock seconds",
}


@section("run", "Settings and machine", order=130,
         keys=("settings", "input", "throughput", "machine", "outputs", "busy_seconds", "engine"))
def render_run(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """A table per block that is present; left out when none is."""
    speeds: Dict[str, Any] = dict(ctx.mapping(rep, "throughput"))
    for k in ("busy_seconds", "examples_per_second"):
        if k in rep and f"guard_{k}" not in speeds:
            speeds[f"guard_{k}"] = rep.get(k)
    named = {f"{k} \u2014 {SPEED_NAMES[k]}" if k in SPEED_NAMES else k: v for k, v in speeds.items()}
    parts = []
    for title, block in (("Settings", ctx.mapping(rep, "settings")), ("Input", ctx.mapping(rep, "input")),
                         ("Speed", named), ("Machine", ctx.mapping(rep, "machine")),
                         ("Engine", ctx.mapping(rep, "engine")), ("Outputs", ctx.mapping(rep, "outputs"))):
        if block:
            parts.append(f"<div><h3>{escape(title)}</h3>{kv_table(flatten(block))}</div>")
    if not parts:
        return None
    return Markup('<div class="two-col">' + "".join(parts) + "</div>")
