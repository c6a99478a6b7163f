"""Personal data: detections and drops by type (counts only; the report holds no detected value)."""
from __future__ import annotations

from typing import Any, Mapping

from ..context import RenderContext, section
from ..numbers import as_number
from ..page import Markup
from ..plots import PALETTE
from ..tables import code, note, table

__all__ = ["render_pii"]


@section("pii", "Personal data (PII)", order=70)
def render_pii(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """Bars of the ``pii/<type>`` counters and a table with the examples each type dropped."""
    found, bad = ctx.counts_under(rep, "pii/")
    drops = {str(k)[4:]: as_number(v) for k, v in ctx.mapping(rep, "dropped_by_reason").items()
             if str(k).startswith("pii/") and as_number(v) is not None}
    parts = [note("Counts by type only: the report holds no detected values, and this page shows none.")]
    if bad:
        parts.append(note(f"{bad} PII entries were not counts and are not shown."))
    types = sorted(set(found) | set(drops), key=lambda t: (-(found.get(t) or 0), t))
    if not types:
        parts.append(note("No personal data was counted (no PII stage ran, or it found nothing)."))
        return Markup("".join(parts))
    plotted = [t for t in types if found.get(t)][:30]
    parts.append(ctx.bars("PII detections by type", plotted, [found[t] for t in plotted],
                          [PALETTE[3]] * len(plotted), "detections"))
    parts.append(table(("type", "detections", "examples dropped"),
                       [(code(t), found.get(t, 0), drops.get(t, 0)) for t in types[: ctx.options.max_rows]],
                       numeric=(1, 2), cls="names"))
    return Markup("".join(parts))
