"""Stages: each stage's kind, class, settings and index memory."""
from __future__ import annotations

from typing import Any, Mapping

from ..context import RenderContext, section
from ..numbers import format_bytes, format_value
from ..page import Markup
from ..tables import code, note, table

__all__ = ["render_stages"]


@section("stages", "Stages", order=120, keys=("stages",))
def render_stages(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """One row per stage of ``stages``."""
    stages = [s for s in ctx.sequence(rep, "stages") if isinstance(s, Mapping)]
    if not stages:
        return note("The report lists no stages.")
    rows = []
    for s in stages:
        cfg = s.get("config")
        mem = s.get("index_bytes")
        rows.append((s.get("name"), s.get("kind"), s.get("class"), code(format_value(cfg, 600) if cfg else "\u2014"),
                     format_bytes(mem) if mem is not None else "\u2014", s.get("indexed_examples"),
                     s.get("index_bytes_per_example")))
    return table(("stage", "kind", "class", "settings", "index memory", "indexed", "bytes / example"), rows,
                 numeric=(4, 5, 6), cls="stages")
