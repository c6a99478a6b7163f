"""Languages: examples by the language the ``langid`` stage found (left out when it did not run)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..context import RenderContext, section
from ..numbers import as_number, format_number, format_percent
from ..page import Markup
from ..tables import code, note, table

__all__ = ["render_languages"]


@section("languages", "Languages", order=40)
def render_languages(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """Examples, share, drops and mean probability per language (the ``langid/<lang>`` counters)."""
    found, _ = ctx.counts_under(rep, "langid/")
    if not found:
        return None
    drops = ctx.mapping(rep, "dropped_by_reason")
    scores = ctx.mapping(rep, "scores")
    total = sum(found.values())
    rows = []
    for lang in sorted(found, key=lambda t: (-found[t], t))[: ctx.options.max_rows]:
        summary = scores.get(f"langid/{lang}")
        mean = as_number(summary.get("mean")) if isinstance(summary, Mapping) else None
        rows.append((code(f"langid/{lang}"), found[lang], format_percent(found[lang], total),
                     as_number(drops.get(f"langid/{lang}")) or 0, "\u2014" if mean is None else format_number(mean)))
    return Markup(note("Examples by the language the langid stage found (und: undetermined, below its min_score "
                       "or without letters), how many it dropped, and the mean probability of that language.")
                  + table(("language", "examples", "share", "dropped by langid", "mean score"), rows,
                          numeric=(1, 2, 3, 4)))
