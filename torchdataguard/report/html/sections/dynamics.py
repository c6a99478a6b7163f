"""Training dynamics: the data map (confidence against variability), regions and the flagged ids."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..context import RenderContext, section
from ..numbers import as_number, format_number
from ..page import Markup
from ..plots import people_ticks, style_axes
from ..tables import code, id_list, note, table

__all__ = ["render_dynamics"]


def _draw_map(fig: Any, points: Sequence[Sequence[float]]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    plain = [p for p in points if not p[2]]
    flagged = [p for p in points if p[2]]
    if plain:
        ax.scatter([p[1] for p in plain], [p[0] for p in plain], s=6, alpha=0.5, color="#4c78a8", label="not flagged")
    if flagged:
        ax.scatter([p[1] for p in flagged], [p[0] for p in flagged], s=10, alpha=0.8, color="#e45756",
                   label="flagged label issue")
    ax.set_xlabel("variability (std of p(given label) over epochs)")
    ax.set_ylabel("confidence")
    ax.set_ylim(-0.02, 1.02)
    people_ticks(ax.xaxis)
    people_ticks(ax.yaxis)
    style_axes(ax)
    ax.legend(loc="lower right", fontsize=8, frameon=False)


@section("dynamics", "Training dynamics", order=107, keys=("dynamics",))
def render_dynamics(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """Settings, counts by data-map region, the data-map scatter and the flagged ids (most suspicious first)."""
    dyn = ctx.mapping(rep, "dynamics")
    if not dyn:
        return None
    cfg = dyn.get("config") if isinstance(dyn.get("config"), Mapping) else {}
    parts = []
    if dyn.get("dp_note"):
        parts.append(note(f"Warning: {dyn['dp_note']}."))
    parts.append(note(f"Per-example statistics of {format_number(as_number(dyn.get('tracked')) or 0)} training "
                      f"examples over {format_number(as_number(dyn.get('epochs')) or 0)} completed epochs. Detector "
                      f"{cfg.get('detector', '?')} (threshold {cfg.get('threshold') if cfg.get('threshold') is not None else 'default'}); "
                      f"action {cfg.get('action', '?')} from epoch {cfg.get('from_epoch', '?')}."))
    regions = dyn.get("regions") if isinstance(dyn.get("regions"), Mapping) else {}
    rows = [(code("flagged label issues"), as_number(dyn.get("flagged")) or 0),
            (code("acted on (drop / downweight)"), as_number(dyn.get("acted_on")) or 0),
            (code("dropped in the ledger"), as_number(dyn.get("dropped_in_ledger")) or 0)]
    rows += [(code(f"region {r}"), as_number(regions.get(r)) or 0) for r in ("easy", "ambiguous", "hard")]
    parts.append(table(("measure", "examples"), rows, numeric=(1,)))
    points = dyn.get("data_map")
    if isinstance(points, Sequence) and points and not isinstance(points, (str, bytes)):
        pts = [p for p in points if isinstance(p, Sequence) and len(p) == 3 and all(as_number(v) is not None for v in p)]
        svg = ctx.plot("data map: confidence against variability", lambda fig: _draw_map(fig, pts), width=6.0,
                       height=3.6) if pts else ""
        if svg:
            parts.append(svg)
    ids = dyn.get("flagged_ids")
    if isinstance(ids, Sequence) and not isinstance(ids, (str, bytes)) and ids:
        parts.append(note("Flagged ids, most suspicious first:"))
        parts.append(id_list(list(ids), ctx.options.max_rows))
    return Markup("".join(parts))
