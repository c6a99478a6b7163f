"""Training: what the demo or a Trainer run adds under ``training`` (model, accuracy, timings)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..context import RenderContext, section
from ..page import Markup
from ..tables import flatten, kv_table

__all__ = ["render_training"]


@section("training", "Training", order=20, keys=("training",))
def render_training(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """The ``training`` fields as a table; left out when there are none."""
    training = ctx.mapping(rep, "training")
    if not training:
        return None
    return kv_table(flatten(training))
