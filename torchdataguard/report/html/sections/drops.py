"""Dropped examples: a bar per drop reason, and tables by stage and by reason."""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from ..context import RenderContext, section
from ..numbers import as_number, format_percent
from ..page import Markup, escape
from ..plots import colors_for
from ..tables import code, note, table

__all__ = ["render_drops", "stage_of"]


def stage_of(reason: str) -> str:
    """The stage part of a reason (``duplicate`` of ``duplicate/near``)."""
    return reason.split("/", 1)[0]


@section("drops", "Dropped examples", order=30, keys=("dropped_by_reason", "dropped_by_stage"))
def render_drops(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """The 30 most frequent reasons as bars; stage totals; every reason (up to ``max_rows``) in a table whose
    names never wrap inside a word."""
    by_reason = {str(k): v for k, v in ctx.mapping(rep, "dropped_by_reason").items() if as_number(v) is not None}
    by_stage = {str(k): v for k, v in ctx.mapping(rep, "dropped_by_stage").items() if as_number(v) is not None}
    if not by_stage and by_reason:
        agg: Counter = Counter()
        for r, n in by_reason.items():
            agg[stage_of(r)] += as_number(n) or 0
        by_stage = dict(agg)
    if not by_reason and not by_stage:
        return note("No example was dropped.")
    seen = as_number(rep.get("seen")) or 0
    total = (sum(as_number(v) or 0 for v in by_reason.values())
             or sum(as_number(v) or 0 for v in by_stage.values()))
    parts = []
    stage_rows = sorted(by_stage.items(), key=lambda kv: (-(as_number(kv[1]) or 0), kv[0]))
    colors = colors_for([s for s, _ in stage_rows] + [stage_of(r) for r in by_reason])
    reasons = sorted(by_reason.items(), key=lambda kv: (-(as_number(kv[1]) or 0), kv[0]))
    cap = ctx.options.max_rows
    plotted = reasons[:30]
    parts.append(ctx.bars("examples dropped by reason", [r for r, _ in plotted],
                          [as_number(n) or 0 for _, n in plotted], [colors[stage_of(r)] for r, _ in plotted],
                          "examples dropped"))
    if len(reasons) > len(plotted):
        parts.append(note(f"The chart shows the {len(plotted)} most frequent of {len(reasons)} reasons."))
    parts.append('<div class="wide-right"><div><h3>By stage</h3>')
    parts.append(table(("stage", "dropped", "% of seen"),
                       [(Markup(f'<span class="swatch" style="background:{colors[s]}"></span>{escape(s)}'), n,
                         format_percent(as_number(n) or 0, seen)) for s, n in stage_rows],
                       numeric=(1, 2)))
    parts.append("</div><div><h3>By reason</h3>")
    parts.append(table(("reason", "dropped", "% of dropped"),
                       [(code(r), n, format_percent(as_number(n) or 0, total)) for r, n in reasons[:cap]],
                       numeric=(1, 2), cls="names"))
    if len(reasons) > cap:
        parts.append(note(f"{len(reasons) - cap} more reasons not listed (max_rows={cap})."))
    parts.append("</div></div>")
    return Markup("".join(parts))
