"""Other counters: every ``counts`` entry no other section shows (normalisation, quality rules fired ...)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..context import RenderContext, section
from ..page import Markup
from ..tables import code, table

__all__ = ["render_counters"]

#: counter prefixes with their own section
SHOWN_ELSEWHERE = ("pii/", "augment/", "langid/")


@section("counters", "Other counters", order=90, keys=("counts",))
def render_counters(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """The remaining counters, sorted by name; left out when there are none."""
    rest = sorted((str(k), v) for k, v in ctx.mapping(rep, "counts").items()
                  if not str(k).startswith(SHOWN_ELSEWHERE))
    if not rest:
        return None
    return table(("counter", "count"), [(code(k), v) for k, v in rest[: ctx.options.max_rows]], numeric=(1,),
                 cls="names")
