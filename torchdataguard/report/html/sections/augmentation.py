"""Augmentation: the ``augment/<stage>/<counter>`` counters as bars and a table."""
from __future__ import annotations

from typing import Any, Mapping

from ..context import RenderContext, section
from ..page import Markup
from ..plots import colors_for
from ..tables import code, note, table

__all__ = ["render_augmentation"]


@section("augmentation", "Augmentation", order=80)
def render_augmentation(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """Bars coloured by augmentation stage, then every counter (up to ``max_rows``)."""
    found, _ = ctx.counts_under(rep, "augment/")
    if not found:
        return note("No augmentation was counted (no augmentation stage ran).")
    names = sorted(found, key=lambda t: (-found[t], t))
    colors = colors_for([n.split("/", 1)[0] for n in names])
    plotted = names[:30]
    parts = [ctx.bars("augmentation counts", plotted, [found[n] for n in plotted],
                      [colors[n.split("/", 1)[0]] for n in plotted], "count")]
    parts.append(table(("counter", "count"),
                       [(code(f"augment/{n}"), found[n]) for n in names[: ctx.options.max_rows]],
                       numeric=(1,), cls="names"))
    return Markup("".join(parts))
