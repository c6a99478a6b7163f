"""Other report fields: every top-level key no section shows, as JSON."""
from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from ..context import RenderContext, known_keys, section
from ..page import Markup, clip, escape

__all__ = ["render_other"]


@section("other", "Other report fields", order=1000)
def render_other(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """The unclaimed keys, sorted, each as indented JSON (up to 20,000 characters); left out when none."""
    shown = known_keys()
    extra = [k for k in rep if k not in shown]
    if not extra:
        return None
    parts = []
    for k in sorted(extra, key=str):
        try:
            text = json.dumps(rep[k], indent=2, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = type(rep[k]).__name__
        parts.append(f"<h3><code>{escape(k)}</code></h3><pre>{escape(clip(text, 20_000))}</pre>")
    return Markup("".join(parts))
