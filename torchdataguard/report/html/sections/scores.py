"""Score distributions: a histogram per recorded score with the stages' thresholds, and a summary table."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ..context import RenderContext, section
from ..numbers import as_number, format_number
from ..page import Markup
from ..tables import code, note, table

__all__ = ["render_scores", "threshold_text", "thresholds"]

Threshold = Tuple[str, float, str]


def thresholds(ctx: RenderContext, rep: Mapping[str, Any]) -> Dict[str, List[Threshold]]:
    """score key -> ``[(bound, value, stage name)]`` from every stage's ``config["thresholds"]``.

    ``bound`` is ``"min"`` or ``"max"``, with a trailing ``"!"`` when the threshold is ``exclusive``.
    """
    out: Dict[str, List[Threshold]] = {}
    for st in ctx.sequence(rep, "stages"):
        if not isinstance(st, Mapping):
            continue
        cfg = st.get("config")
        th = cfg.get("thresholds") if isinstance(cfg, Mapping) else None
        if not isinstance(th, Mapping):
            continue
        for key, bounds in th.items():
            if not isinstance(bounds, Mapping):
                continue
            strict = bounds.get("exclusive") is True
            for bound in ("min", "max"):
                v = as_number(bounds.get(bound))
                if v is not None:
                    out.setdefault(str(key), []).append((bound + ("!" if strict else ""), v,
                                                         str(st.get("name", "?"))))
    return out


def threshold_text(items: Sequence[Threshold]) -> str:
    """``keep ≥ 12 (stage); keep < 0.2 (stage)``."""
    signs = {"min": "\u2265", "max": "\u2264", "min!": ">", "max!": "<"}
    return "; ".join(f"keep {signs[b]} {format_number(v)} ({s})" for b, v, s in items)


def sample(values: Any) -> List[float]:
    """The finite numbers of a list of score values ([] for anything else)."""
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        return []
    return [v for v in (as_number(x) for x in values) if v is not None]


@section("scores", "Score distributions", order=50, keys=("scores", "score_values"))
def render_scores(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """Up to ``max_score_plots`` histograms (titles wrapped, never cut), then every score in a table."""
    summaries = ctx.mapping(rep, "scores")
    values = ctx.mapping(rep, "score_values")
    ths_by_key = thresholds(ctx, rep)
    keys = sorted({str(k) for k in summaries} | {str(k) for k in values} | set(ths_by_key))
    if not keys:
        return note("No scores were recorded (no stage in this run computes per-example scores).")
    parts = []
    figs = []
    for key in keys:
        nums = sample(values.get(key))
        if not nums or len(figs) >= ctx.options.max_score_plots:
            continue
        lines = [(b.rstrip("!"), v, f"{b.rstrip('!')} {format_number(v)}") for b, v, _s in ths_by_key.get(key, [])]
        svg = ctx.histogram(f"distribution of {key}", nums, title=key, lines=lines)
        if svg:
            figs.append(svg)
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
        parts.append(note("Histograms of a bounded, seeded sample of each score; dashed lines are the stages' "
                          "thresholds, shaded where examples are dropped."))
    n_with_values = sum(1 for k in keys if sample(values.get(k)))
    if n_with_values > ctx.options.max_score_plots and figs:
        parts.append(note(f"{len(figs)} of {n_with_values} scores plotted (max_score_plots="
                          f"{ctx.options.max_score_plots}); the table lists all."))
    rows = []
    for key in keys:
        s = summaries.get(key)
        s = s if isinstance(s, Mapping) else {}
        rows.append((code(key), s.get("count", 0), s.get("min"), s.get("p05"), s.get("p50"), s.get("p95"),
                     s.get("max"), s.get("mean"), threshold_text(ths_by_key.get(key, [])) or "\u2014"))
    parts.append(table(("score", "count", "min", "p05", "median", "p95", "max", "mean", "threshold"), rows,
                       numeric=(1, 2, 3, 4, 5, 6, 7), cls="names"))
    if any(isinstance(st, Mapping) and isinstance(st.get("config"), Mapping)
           and st["config"].get("score_all") is False for st in ctx.sequence(rep, "stages")):
        parts.append(note("A quality stage stops scoring a text at the first rule set that drops it: a later "
                          "set's scores cover the texts that passed the sets before it (QualityFilter("
                          "score_all=True) scores every set of every text)."))
    return Markup("".join(parts))
