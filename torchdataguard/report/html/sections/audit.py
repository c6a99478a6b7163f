"""Privacy audit: the one-run lower bound on epsilon next to the accountant's (infinite without DP), exposure and
AUC, a loud warning when the lower bound is above the accountant's epsilon, and a histogram of canary losses by
coin (the report holds losses and counts only, never a canary's secret)."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional

from ..context import RenderContext, section
from ..numbers import as_number, format_number
from ..page import Markup, escape
from ..plots import PALETTE, people_ticks, style_axes
from ..tables import kv_table, note

__all__ = ["render_audit"]

#: scalar fields shown in the table, in this order
FIELDS = ("epsilon_lower_bound", "accountant_epsilon", "confidence", "delta", "guesses", "correct", "auc",
          "exposure_mean", "exposure_max", "exposure_chance", "exposure_ceiling", "num_canaries", "included",
          "canary_fraction", "kind", "num_candidates")


def losses(values: Any) -> List[float]:
    """The finite numbers of a list ([] for anything else)."""
    if not isinstance(values, (list, tuple)):
        return []
    return [v for v in (as_number(x) for x in values) if v is not None]


def histogram(ctx: RenderContext, inside: List[float], outside: List[float]) -> str:
    """Canary losses, trained-on and left-out canaries overlaid on the same bins."""

    def draw(fig) -> None:
        ax = fig.add_subplot()
        both = inside + outside
        lo, hi = min(both), max(both)
        bins = [lo + (hi - lo) * i / 30 for i in range(31)] if hi > lo else 10
        ax.hist(outside, bins=bins, color=PALETTE[1], alpha=0.6, label=f"left out ({len(outside)})")
        ax.hist(inside, bins=bins, color=PALETTE[0], alpha=0.6, label=f"trained on ({len(inside)})")
        ax.set_xlabel("canary loss (lower: fitted better)")
        ax.set_ylabel("canaries")
        ax.set_title("canary losses by coin", loc="left")
        ax.legend(frameon=False)
        people_ticks(ax.xaxis, nbins=5)
        people_ticks(ax.yaxis, integer=True, nbins=5)
        style_axes(ax)

    return ctx.plot("canary losses by coin", draw, width=6.5, height=2.8)


@section("audit", "Privacy audit", order=105, keys=("audit",))
def render_audit(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """The audit section; left out when the report has no ``audit`` object."""
    audit = ctx.mapping(rep, "audit")
    if not audit:
        return None
    parts = []
    lower = as_number(audit.get("epsilon_lower_bound"))
    acc = audit.get("accountant_epsilon")
    acc_num = as_number(acc)
    acc_text = format_number(acc_num) if acc_num is not None else "\u221e (no DP)"
    conf = as_number(audit.get("confidence"))
    lead = (f"Empirical lower bound \u03b5 \u2265 {format_number(lower) if lower is not None else '?'}"
            f"{f' at {format_number(conf * 100)}% confidence' if conf is not None else ''}, next to the "
            f"accountant's \u03b5 = {acc_text}.")
    parts.append(f'<p class="lead">{escape(lead)}</p>')
    if audit.get("exceeds_accountant") is True:
        warn = audit.get("warning") or "The lower bound is above the accountant's epsilon: the DP guarantee is broken."
        parts.append(f'<div class="notes" id="audit-warning" role="alert"><h3>Broken privacy guarantee</h3>'
                     f'<p>{escape(str(warn))}</p></div>')
    else:
        parts.append(note("The lower bound is what this run provably leaked about its canaries (one-run audit, "
                          "Steinke, Nasr and Jagielski 2023); the accountant's epsilon is what it could leak at most. "
                          "A lower bound above the accountant's would mean a DP bug."))
    rows = [(k, audit.get(k)) for k in FIELDS if k in audit and not isinstance(audit.get(k), (list, dict))]
    parts.append(kv_table(rows))
    if audit.get("note"):
        parts.append(note(str(audit.get("note"))))
    inside, outside = losses(audit.get("losses_in")), losses(audit.get("losses_out"))
    if inside and outside:
        parts.append(histogram(ctx, inside, outside))
    return Markup("".join(parts))
