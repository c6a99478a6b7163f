"""Train/test leakage: near-duplicate pairs that straddle the split (the demo and ``find_leakage`` add them)."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from ..context import RenderContext, section
from ..numbers import format_id
from ..page import Markup
from ..tables import code, flatten, kv_table, note, table

__all__ = ["render_leakage"]


def pairs_table(ctx: RenderContext, pairs: Sequence[Any]) -> Markup:
    """Up to ``max_rows`` pairs: objects by their keys (ids as code), lists as train id / test id / similarity."""
    cap = ctx.options.max_rows
    shown = list(pairs[:cap])
    if shown and all(isinstance(p, Mapping) for p in shown):
        cols: List[str] = []
        for p in shown:
            for k in p:
                if str(k) not in cols and len(cols) < 8:
                    cols.append(str(k))
        rows = [[code(format_id(p.get(c))) if "id" in c and not isinstance(p.get(c), (float, bool)) else p.get(c)
                 for c in cols] for p in shown]
        out = table(cols, rows)
    else:
        width = max((len(p) for p in shown if isinstance(p, (list, tuple))), default=1)
        cols = ["train id", "test id", "similarity"][:width] if width <= 3 else [f"item {i + 1}" for i in range(width)]
        rows = []
        for p in shown:
            p = list(p) if isinstance(p, (list, tuple)) else [p]
            rows.append([code(format_id(v)) if i < 2 else v for i, v in enumerate(p)] + [""] * (width - len(p)))
        out = table(cols, rows)
    more = note(f"{len(pairs) - cap:,} more pairs not listed (max_rows={cap}).") if len(pairs) > cap else ""
    return Markup(out + more)


@section("leakage", "Train/test leakage", order=110, keys=("leakage",))
def render_leakage(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """The leakage settings and pairs; left out when the report has no ``leakage``."""
    leak = rep.get("leakage")
    if leak is None:
        return None
    parts = []
    pairs: Sequence[Any] = []
    if isinstance(leak, Mapping):
        scalars = []
        for k, v in leak.items():
            if isinstance(v, (list, tuple)) and not pairs:
                pairs = v
            elif not isinstance(v, (list, tuple)):
                scalars.append((k, v))
        if scalars:
            parts.append(kv_table(flatten(dict(scalars))))
    elif isinstance(leak, (list, tuple)):
        pairs = leak
    else:
        ctx.notes.append(f"report field 'leakage' has type {type(leak).__name__}, expected an object or a list; "
                         f"skipped")
        return None
    parts.append(f"<p>{len(pairs):,} near-duplicate pairs straddle the train/test split: the test set partly "
                 f"measures memorisation.</p>" if pairs else
                 "<p>No near-duplicate pair straddles the train/test split.</p>")
    if pairs:
        parts.append(pairs_table(ctx, pairs))
    return Markup("".join(parts))
