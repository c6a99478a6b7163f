"""Differential privacy: epsilon from the accountant in force, the other accountant as a secondary figure, the
clipping mode with the preflight's reason in full, the preflight's checks and notes, and epsilon over steps."""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Tuple

from ..context import RenderContext, section
from ..numbers import as_number, format_number, format_value
from ..page import Markup, escape
from ..plots import PALETTE, mpl_text, style_axes
from ..tables import bullet_list, flatten, kv_table, table

__all__ = ["accountants", "render_privacy"]

#: the fields shown first, in this order; the rest follow by name
ORDER = ("unit", "epsilon", "epsilon_prv", "epsilon_rdp", "delta", "accountant", "target_epsilon", "noise_multiplier",
         "max_grad_norm", "sample_rate", "steps", "clipping")
#: fields shown in their own block (or not at all: the raw composition history)
OWN_BLOCK = ("history", "history_ledger", "preflight", "notes")
SERIES = ("epsilon_prv", "epsilon_rdp", "epsilon")


def accountants(priv: Mapping[str, Any]) -> Optional[Tuple[str, float, Optional[str], Optional[float]]]:
    """``(accountant in force, its epsilon, the other accountant, its epsilon)``; ``None`` without an epsilon.

    The accountant in force is ``priv["accountant"]`` (``prv`` or ``rdp``); its epsilon is ``epsilon_<name>``
    (or ``epsilon``). The other accountant's figure is a secondary bound on the same training.
    """
    name = str(priv.get("accountant") or "").lower()
    if name in ("prv", "rdp"):
        eps = as_number(priv.get(f"epsilon_{name}"))
        if eps is None:
            eps = as_number(priv.get("epsilon"))
        other = "rdp" if name == "prv" else "prv"
        other_eps = as_number(priv.get(f"epsilon_{other}"))
        return (name, eps, other if other_eps is not None else None, other_eps) if eps is not None else None
    eps = as_number(priv.get("epsilon"))
    return (name or "the accountant", eps, None, None) if eps is not None else None


def headline(priv: Mapping[str, Any]) -> str:
    """The epsilon in force with delta and target, and one line on the secondary accountant (markup)."""
    found = accountants(priv)
    if found is None:
        return ""
    name, eps, other, other_eps = found
    delta = as_number(priv.get("delta"))
    target = as_number(priv.get("target_epsilon"))
    bits = [f"\u03b5 = {format_number(eps)}"]
    if delta is not None:
        bits.append(f" at \u03b4 = {format_number(delta)}")
    bits.append(f", from the {name.upper()} accountant (the one in force")
    bits.append(f"; target \u03b5 {format_number(target)})." if target is not None else ").")
    if priv.get("budget_stopped") is True:
        bits.append(" Training stopped when the budget was reached.")
    out = [f'<p class="lead">{escape("".join(bits))}</p>']
    if other is not None and other_eps is not None:
        if other == "rdp":
            why = (f"Secondary: the RDP accountant bounds the same training at \u03b5 = {format_number(other_eps)}. "
                   f"RDP's conversion to (\u03b5, \u03b4) is a looser upper bound, not more privacy spent; the "
                   f"guarantee of this run is the PRV figure above.")
        else:
            why = (f"Secondary: the PRV accountant estimates the same training at \u03b5 = "
                   f"{format_number(other_eps)} (usually tighter); this run is accounted with RDP as configured, "
                   f"so its guarantee is the RDP figure above.")
        out.append(f'<p class="muted">{escape(why)}</p>')
    if priv.get("epsilon_unbounded") is True:
        out.append(f'<p class="muted">{escape("An accountant found no finite epsilon for this training.")}</p>')
    if priv.get("approximate") is True:
        reason = priv.get("approximate_reason")
        out.append(f'<p class="muted">{escape("The guarantee is approximate: " + format_value(reason, 2000))}</p>')
    return "".join(out)


def history_points(priv: Mapping[str, Any]) -> Tuple[List[Mapping[str, Any]], List[str]]:
    """The ``history`` rows that are objects, and the epsilon series they hold."""
    history = priv.get("history")
    rows = [h for h in history if isinstance(h, Mapping)] if isinstance(history, list) else []
    series = [k for k in SERIES if any(as_number(h.get(k)) is not None for h in rows)]
    return rows, series


def epsilon_plot(ctx: RenderContext, priv: Mapping[str, Any], rows, series) -> str:
    """Epsilon over optimizer steps: the accountant in force solid, the other dashed."""
    found = accountants(priv)
    in_force = f"epsilon_{found[0]}" if found else "epsilon"

    def label(k: str) -> str:
        text = k.replace("epsilon_", "\u03b5 ").replace("epsilon", "\u03b5")
        if found is None or k == "epsilon":
            return text
        return text + (" (in force)" if k == in_force else " (secondary)")

    def draw(fig) -> None:
        ax = fig.add_subplot()
        for i, k in enumerate(series):
            pts = sorted((x, y) for x, y in ((as_number(h.get("step")), as_number(h.get(k))) for h in rows)
                         if x is not None and y is not None)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) <= 30 else None, markersize=3,
                    color=PALETTE[i], linestyle="-" if k in (in_force, "epsilon") else "--", label=label(k))
        delta = priv.get("delta")
        title = f"privacy spent (\u03b4 = {format_value(delta)})" if delta is not None else "privacy spent"
        ax.set_title(mpl_text(title, 60), loc="left")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("\u03b5")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False)
        style_axes(ax)

    return ctx.plot("epsilon over training steps", draw, width=6.5, height=2.8)


def preflight_block(priv: Mapping[str, Any]) -> str:
    """The clipping mode with its reason in full, the preflight's checks and its notes (markup)."""
    pre = priv.get("preflight")
    pre = pre if isinstance(pre, Mapping) else {}
    reason = pre.get("clipping")
    mode = priv.get("clipping")
    if reason is None and mode is None and not pre:
        return ""
    parts = ["<h3>Clipping and preflight</h3>"]
    if reason is not None or mode is not None:
        parts.append(f"<p>Clipping: {escape(format_value(reason if reason is not None else mode, 4000))}</p>")
    rest = [(k, v) for k, v in flatten({k: v for k, v in pre.items() if k not in ("clipping", "notes")})]
    if rest:
        parts.append(kv_table(rest, limit=4000))
    notes = pre.get("notes")
    if isinstance(notes, list) and notes:
        parts.append("<p>Preflight notes:</p>" + bullet_list(notes))
    return "".join(parts)


@section("privacy", "Differential privacy", order=100, keys=("privacy",))
def render_privacy(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """The DP section; left out when the report has no ``privacy`` object."""
    priv = ctx.mapping(rep, "privacy")
    if not priv:
        return None
    parts = [headline(priv)]
    rows, series = history_points(priv)
    if len(rows) > 1 and series:  # one point is no curve: the headline and the table say it
        parts.append(epsilon_plot(ctx, priv, rows, series))
    scalars = [(k, v) for k, v in priv.items() if k not in OWN_BLOCK and not isinstance(v, (list, tuple))]
    scalars.sort(key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), str(kv[0])))
    parts.append(kv_table(scalars))
    parts.append(preflight_block(priv))
    notes = priv.get("notes")
    if isinstance(notes, list) and notes:
        parts.append("<h3>Notes</h3>" + bullet_list(notes))
    if rows:
        cap = ctx.options.max_rows
        step = max(1, math.ceil(len(rows) / cap))
        shown = rows[::step]
        cols = ["step"] + series
        parts.append(f"<details><summary>\u03b5 history ({len(rows):,} points"
                     f"{', every ' + str(step) + 'th shown' if step > 1 else ''})</summary>")
        parts.append(table(cols, [[h.get(c) for c in cols] for h in shown], numeric=range(len(cols))))
        parts.append("</details>")
    return Markup("".join(parts))
