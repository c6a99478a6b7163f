"""Distributed: world size, backend and each rank's counts and communication (``DistributedGuard.report``)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..context import RenderContext, section
from ..numbers import format_bytes, format_value
from ..page import Markup, escape
from ..tables import table

__all__ = ["render_distributed"]


@section("distributed", "Distributed", order=115, keys=("distributed",))
def render_distributed(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """One row per rank; left out when the report has no ``distributed`` object."""
    dist = ctx.mapping(rep, "distributed")
    if not dist:
        return None
    parts = [f"<p>{escape(format_value(dist.get('world_size')))} ranks, backend "
             f"{escape(format_value(dist.get('backend')))}; the counts above are sums over the ranks.</p>"]
    per_rank = dist.get("per_rank")
    rows = []
    for rank, p in enumerate(per_rank if isinstance(per_rank, list) else []):
        if not isinstance(p, Mapping):
            continue
        comm = p.get("comm") if isinstance(p.get("comm"), Mapping) else {}
        rows.append((rank, p.get("seen"), p.get("kept"), p.get("dropped"), p.get("replayed"), p.get("rounds"),
                     comm.get("calls"), format_bytes(comm.get("bytes_sent")) if "bytes_sent" in comm else None,
                     comm.get("seconds")))
    if rows:
        parts.append(table(("rank", "seen", "kept", "dropped", "replayed", "rounds", "collectives", "sent",
                            "seconds in collectives"), rows, numeric=range(9)))
    return Markup("".join(parts))
