"""Render a guard report as one self-contained HTML page (inline CSS, plots as inline SVG, no scripts).

The input is the dict that :meth:`torchdataguard.Guard.report` returns, plus the optional sections the
command line, the demo and the Trainer callback add (``input``, ``throughput``, ``machine``, ``privacy``,
``leakage``, ``training`` ...). Every section copes with being absent or empty, and every string taken from
the report is HTML-escaped, so ids holding arbitrary text cannot inject markup (bidirectional and C1
control characters are shown as visible ``\\u202e`` escapes, so they cannot reorder the text). The page carries a
Content-Security-Policy that forbids scripts and every network request: it opens offline, from a file.

Plots are drawn with matplotlib's SVG backend on a private :class:`matplotlib.figure.Figure` (pyplot and
its global state are never touched). Without matplotlib the page still renders, with tables only.

Example:
    >>> from torchdataguard.report.html import render_html
    >>> page = render_html({"seen": 3, "kept": 2, "dropped": 1, "dropped_by_reason": {"duplicate/exact": 1},
    ...                     "matches": [{"id": 2, "matched": 0, "reason": "duplicate/exact", "score": None}]},
    ...                    options=HtmlReportConfig(plots=False))
    >>> page.startswith("<!DOCTYPE html>") and "Duplicate clusters</h2>" in page
    True
"""
from __future__ import annotations

import html as _html
import io
import json
import math
import os
import re
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError

__all__ = ["HtmlReportConfig", "render_html", "save_report", "write_html_report"]

#: Top-level report keys this page knows how to show; any other key lands in "Other report fields".
KNOWN_KEYS = frozenset({
    "seen", "kept", "dropped", "replayed", "dropped_by_reason", "dropped_by_stage", "counts", "scores",
    "score_values", "busy_seconds", "examples_per_second", "stages", "matches", "matches_truncated", "settings",
    "input", "throughput", "machine", "outputs", "privacy", "leakage", "training",
})

_PALETTE = ("#3b6ea8", "#d9822b", "#4e9a51", "#b8434d", "#7b5ea7", "#8c6d4f", "#c76bab", "#6f7781",
            "#a7a33a", "#3aa3a7")
_DROP_COLOR = "#b8434d"


@dataclass(frozen=True)
class HtmlReportConfig:
    """How the HTML report is drawn (checked in ``__post_init__``).

    Attributes:
        title: the page title.
        plots: draw plots (needs matplotlib); ``False`` gives tables only.
        max_clusters: duplicate clusters listed, largest first.
        max_ids_per_cluster: ids shown per cluster before "... and N more".
        max_rows: rows shown in long tables (drop reasons, leakage pairs, epsilon history).
        max_score_plots: score histograms drawn (the summary table lists every score).
        strict: re-raise when a section fails to render instead of replacing it by a note (for tests).

    Example:
        >>> HtmlReportConfig(max_clusters=5).max_clusters
        5
        >>> HtmlReportConfig(max_rows=0)
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: 1 problem(s) with the HtmlReportConfig:
          - max_rows=0: expected an integer in [1, 100000], e.g. 200
    """

    title: str = "torchdataguard report"
    plots: bool = True
    max_clusters: int = 25
    max_ids_per_cluster: int = 40
    max_rows: int = 200
    max_score_plots: int = 24
    strict: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.title, str) or not self.title.strip():
            problems.append(f"title={self.title!r}: expected a non-empty string")
        for name in ("plots", "strict"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name}={getattr(self, name)!r}: expected True or False")
        for name, default in (("max_clusters", 25), ("max_ids_per_cluster", 40), ("max_rows", 200),
                              ("max_score_plots", 24)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not (1 <= v <= 100_000):
                problems.append(f"{name}={v!r}: expected an integer in [1, 100000], e.g. {default}")
        if problems:
            raise ConfigError.collect(problems, "HtmlReportConfig")


# -- small helpers -------------------------------------------------------------------------------------
class _Html(str):
    """A string of trusted markup (built here from escaped parts); anything else gets escaped."""


#: C0 controls (but tab, newline, carriage return), DEL and lone surrogates: not text a page should carry.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: bidirectional controls (embeddings, overrides, isolates, marks) and C1 controls: they would reorder or hide
#: the text around them (an id holding U+202E shows its characters backwards); shown as visible escapes
_INVISIBLE = re.compile("[\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(text: str) -> str:
    """``text`` with unprintable characters as U+FFFD and bidi/C1 controls as visible ``\\u202e`` escapes."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", _UNPRINTABLE.sub("\ufffd", text))


def _e(value: Any) -> str:
    """HTML-escape ``value`` (quotes too); unprintable and bidi control characters are neutralised first."""
    return _html.escape(_visible(str(value)), quote=True)


def _num(value: Any) -> Optional[float]:
    """A finite float, or ``None`` for anything else (bools, strings, NaN ...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _fmt(value: Any, limit: int = 300) -> str:
    """Plain-text rendering of a report value (escape the result before use)."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, str):
        return _clip(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = type(value).__name__
    return _clip(text, limit)


def _fmt_id(value: Any) -> str:
    """An example id as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return _clip(value, 120)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an id, not a quantity: no thousands separators
    return _fmt(value, 120)


def _id_key(value: Any) -> str:
    """A hashable, canonical key for an id of any JSON type."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "\u2014"


def _bytes(n: Any) -> str:
    v = _num(n)
    if v is None:
        return _fmt(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(v) < 1024 or unit == "TiB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return f"{v:,.1f} TiB"  # pragma: no cover - the loop always returns


def _cell(value: Any) -> str:
    return value if isinstance(value, _Html) else _e(_fmt(value))


def _code(value: Any) -> _Html:
    return _Html(f"<code>{_e(value)}</code>")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = (),
           cls: str = "") -> _Html:
    num = set(numeric)
    head = "".join(f'<th{" class=num" if i in num else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td{" class=num" if i in num else ""}>{_cell(v)}</td>' for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    klass = f' class="{_e(cls)}"' if cls else ""
    return _Html(f'<div class="tbl"><table{klass}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                 f"</table></div>")


def _kv_table(items: Iterable[Tuple[Any, Any]]) -> _Html:
    rows = [(_code(k), v if isinstance(v, _Html) else _fmt(v)) for k, v in items]
    return _table(("field", "value"), rows, cls="kv")


def _flatten(obj: Mapping[str, Any], prefix: str = "", depth: int = 0) -> List[Tuple[str, Any]]:
    out: List[Tuple[str, Any]] = []
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and depth < 3:
            out.extend(_flatten(v, key + ".", depth + 1))
        else:
            out.append((key, v))
    return out


def _note(text: str) -> _Html:
    return _Html(f'<p class="muted">{_e(text)}</p>')


def _mpl_text(text: Any, limit: int = 48) -> str:
    """Text safe for a matplotlib label: clipped, and ``$`` escaped so mathtext never parses it."""
    return _visible(_clip(str(text), limit)).replace("$", r"\$")


# -- plots ---------------------------------------------------------------------------------------------
def _load_matplotlib():
    """The matplotlib module with its Figure class, or ``None`` when it is not installed."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (imported here so a broken install shows now)
    except ImportError:
        return None
    return matplotlib


_TAG = re.compile(r"<[^<>]+>")
_ID_ATTR = re.compile(r'(\sid=")([^"]*)(")')
_HREF = re.compile(r'(\s(?:xlink:)?href="#)([^"]*)(")')
_URL_REF = re.compile(r"(url\(#)([^)]*)(\))")


class _Ctx:
    """What the section renderers share: options, the plot switch, notes about the report's shape."""

    def __init__(self, options: HtmlReportConfig) -> None:
        self.options = options
        self.mpl = _load_matplotlib() if options.plots else None
        self.plots_missing = options.plots and self.mpl is None
        self.notes: List[str] = []
        self._figures = 0

    # shape checks ------------------------------------------------------------------------------------
    def mapping(self, report: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = report.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.notes.append(f"report field {key!r} has type {type(value).__name__}, expected an object; skipped")
            return {}
        return value

    def sequence(self, report: Mapping[str, Any], key: str) -> Sequence[Any]:
        value = report.get(key)
        if value is None:
            return []
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            self.notes.append(f"report field {key!r} has type {type(value).__name__}, expected a list; skipped")
            return []
        return value

    # plots -------------------------------------------------------------------------------------------
    def figure(self, width: float, height: float):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height), dpi=96, layout="constrained")
        fig.patch.set_alpha(0.0)
        return fig

    def plot(self, label: str, draw: Callable[[Any], None], *, width: float = 7.0, height: float = 3.0) -> str:
        """Run ``draw(fig)`` and return the figure as inline SVG markup ('' without matplotlib or on failure)."""
        if self.mpl is None:
            return ""
        try:
            fig = self.figure(width, height)
            draw(fig)
            buf = io.StringIO()
            with self.mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "torchdataguard",
                                      "font.size": 9.0, "axes.titlesize": 10.0}), warnings.catch_warnings():
                # text stays text in the SVG (the browser picks the font), so matplotlib's missing-glyph
                # warnings for ids in other scripts are noise
                warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
                fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None,
                                                          "Type": None})
        except Exception as exc:  # noqa: BLE001 - a plot must never cost the report
            if self.options.strict:
                raise
            warnings.warn(f"torchdataguard report: the plot {label!r} failed ({type(exc).__name__}); the page "
                          f"shows its table only", RuntimeWarning, stacklevel=2)
            return ""
        self._figures += 1
        return self._inline_svg(buf.getvalue(), f"f{self._figures}-", label)

    @staticmethod
    def _inline_svg(svg: str, prefix: str, label: str) -> str:
        svg = svg[svg.index("<svg"):]
        # the default style block would apply to the whole page; the page's CSS sets the same rule
        svg = re.sub(r"<defs>\s*<style[^>]*>[^<]*</style>\s*</defs>", "", svg, count=1)

        def fix_tag(m: "re.Match[str]") -> str:
            tag = m.group(0)
            tag = re.sub(r'\sxmlns(?::\w+)?="[^"]*"', "", tag)
            tag = _ID_ATTR.sub(lambda t: f"{t.group(1)}{prefix}{t.group(2)}{t.group(3)}", tag)
            tag = _HREF.sub(lambda t: f' href="#{prefix}{t.group(2)}{t.group(3)}', tag)
            tag = _URL_REF.sub(lambda t: f"{t.group(1)}{prefix}{t.group(2)}{t.group(3)}", tag)
            return tag

        svg = _TAG.sub(fix_tag, svg)  # text content is escaped by matplotlib, so every <...> is a tag
        svg = svg.replace("<svg ", f'<svg class="plot" role="img" aria-label="{_e(label)}" ', 1)
        return f'<figure>{svg.strip()}</figure>'


def _count_axis(axis) -> None:
    """Whole-number ticks with thousands separators on an axis that counts examples."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _style_axes(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def _barh(ctx: _Ctx, label: str, names: Sequence[str], values: Sequence[float], colors: Sequence[str],
          xlabel: str) -> str:
    if not names:
        return ""

    def draw(fig) -> None:
        ax = fig.add_subplot()
        ys = list(range(len(names)))
        ax.barh(ys, values, color=list(colors), height=0.6)
        ax.set_yticks(ys, [_mpl_text(n) for n in names])
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        top = max(values) if values else 1
        for y, v in zip(ys, values):
            ax.text(v + top * 0.01, y, _fmt(v), va="center", fontsize=8, color="#333333")
        ax.set_xlim(0, top * 1.12 if top > 0 else 1)
        _count_axis(ax.xaxis)
        _style_axes(ax)

    return ctx.plot(label, draw, width=6.5, height=max(1.2, 0.26 * len(names) + 0.7))


def _stage_of(reason: str) -> str:
    return reason.split("/", 1)[0]


def _colors_for(groups: Sequence[str]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for g in groups:
        if g not in out:
            out[g] = _PALETTE[len(out) % len(_PALETTE)]
    return out


# -- sections ------------------------------------------------------------------------------------------
def _section_summary(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    seen = _num(rep.get("seen")) or 0
    kept = _num(rep.get("kept")) or 0
    dropped = _num(rep.get("dropped")) or 0
    replayed = _num(rep.get("replayed")) or 0
    throughput = ctx.mapping(rep, "throughput")
    eps = _num(throughput.get("examples_per_second"))
    if eps is None:
        eps = _num(rep.get("examples_per_second"))
    cards = [
        ("seen", _fmt(rep.get("seen", 0)), "examples met for the first time"),
        ("kept", _fmt(rep.get("kept", 0)), f"{_pct(kept, seen)} of seen"),
        ("dropped", _fmt(rep.get("dropped", 0)), f"{_pct(dropped, seen)} of seen"),
        ("replayed", _fmt(rep.get("replayed", 0)), "met again (later epochs)" if replayed else "no later epochs"),
    ]
    if eps is not None:
        cards.append(("examples / s", _fmt(round(eps, 1)), "throughput"))
    parts = ['<div class="cards">']
    for name, value, sub in cards:
        parts.append(f'<div class="card card-{_e(name.split()[0])}"><div class="card-label">{_e(name)}</div>'
                     f'<div class="card-value">{_e(value)}</div><div class="card-sub">{_e(sub)}</div></div>')
    parts.append("</div>")
    if seen > 0:
        kw = max(0.0, min(100.0, 100.0 * kept / seen))
        parts.append(f'<div class="split" title="kept {_e(_pct(kept, seen))}, dropped {_e(_pct(dropped, seen))}">'
                     f'<span class="split-kept" style="width:{kw:.2f}%"></span>'
                     f'<span class="split-dropped" style="width:{100 - kw:.2f}%"></span></div>')
    elif not rep.get("seen"):
        parts.append(_note("No example was seen: the guard has not processed any data yet."))
    return _Html("".join(parts))


def _section_training(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    training = ctx.mapping(rep, "training")
    if not training:
        return None
    return _kv_table(_flatten(training))


def _section_drops(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    by_reason = {str(k): v for k, v in ctx.mapping(rep, "dropped_by_reason").items() if _num(v) is not None}
    by_stage = {str(k): v for k, v in ctx.mapping(rep, "dropped_by_stage").items() if _num(v) is not None}
    if not by_stage and by_reason:
        agg: Counter = Counter()
        for r, n in by_reason.items():
            agg[_stage_of(r)] += _num(n) or 0
        by_stage = dict(agg)
    if not by_reason and not by_stage:
        return _note("No example was dropped.")
    seen = _num(rep.get("seen")) or 0
    total = sum(_num(v) or 0 for v in by_reason.values()) or sum(_num(v) or 0 for v in by_stage.values())
    parts = []
    stage_rows = sorted(by_stage.items(), key=lambda kv: (-(_num(kv[1]) or 0), kv[0]))
    colors = _colors_for([s for s, _ in stage_rows] + [_stage_of(r) for r in by_reason])
    reasons = sorted(by_reason.items(), key=lambda kv: (-(_num(kv[1]) or 0), kv[0]))
    cap = ctx.options.max_rows
    plotted = reasons[:30]
    parts.append(_barh(ctx, "examples dropped by reason", [r for r, _ in plotted],
                       [_num(n) or 0 for _, n in plotted], [colors[_stage_of(r)] for r, _ in plotted],
                       "examples dropped"))
    if len(reasons) > len(plotted):
        parts.append(_note(f"The chart shows the {len(plotted)} most frequent of {len(reasons)} reasons."))
    parts.append('<div class="two-col"><div><h3>By stage</h3>')
    parts.append(_table(("stage", "dropped", "% of seen"),
                        [(_Html(f'<span class="swatch" style="background:{colors[s]}"></span>{_e(s)}'), n,
                          _pct(_num(n) or 0, seen)) for s, n in stage_rows],
                        numeric=(1, 2)))
    parts.append("</div><div><h3>By reason</h3>")
    parts.append(_table(("reason", "dropped", "% of dropped"),
                        [(_code(r), n, _pct(_num(n) or 0, total)) for r, n in reasons[:cap]], numeric=(1, 2)))
    if len(reasons) > cap:
        parts.append(_note(f"{len(reasons) - cap} more reasons not listed (max_rows={cap})."))
    parts.append("</div></div>")
    return _Html("".join(parts))


def _thresholds(ctx: _Ctx, rep: Mapping[str, Any]) -> Dict[str, List[Tuple[str, float, str]]]:
    """score key -> [(bound, value, stage name)] from every stage's ``config["thresholds"]``.

    ``bound`` is ``"min"`` or ``"max"``, with a trailing ``"!"`` when the threshold is ``exclusive``.
    """
    out: Dict[str, List[Tuple[str, float, str]]] = {}
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
                v = _num(bounds.get(bound))
                if v is not None:
                    out.setdefault(str(key), []).append((bound + ("!" if strict else ""), v, str(st.get("name", "?"))))
    return out


def _threshold_text(items: Sequence[Tuple[str, float, str]]) -> str:
    signs = {"min": "\u2265", "max": "\u2264", "min!": ">", "max!": "<"}
    return "; ".join(f"keep {signs[b]} {_fmt(v)} ({s})" for b, v, s in items)


def _section_scores(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    summaries = ctx.mapping(rep, "scores")
    values = ctx.mapping(rep, "score_values")
    thresholds = _thresholds(ctx, rep)
    keys = sorted({str(k) for k in summaries} | {str(k) for k in values} | set(thresholds))
    if not keys:
        return _note("No scores were recorded (no stage in this run computes per-example scores).")
    parts = []
    figs = []
    for key in keys:
        vals = values.get(key)
        nums = [v for v in (_num(x) for x in vals) if v is not None] if isinstance(vals, Sequence) and not \
            isinstance(vals, (str, bytes)) else []
        if not nums or len(figs) >= ctx.options.max_score_plots:
            continue
        ths = thresholds.get(key, [])

        def draw(fig, key=key, nums=nums, ths=ths) -> None:
            ax = fig.add_subplot()
            lo, hi = min(nums), max(nums)
            for _, v, _s in ths:
                lo, hi = min(lo, v), max(hi, v)
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            pad = (hi - lo) * 0.04
            bins = max(5, min(40, int(math.sqrt(len(nums))) + 1))
            ax.hist(nums, bins=bins, range=(min(nums), max(nums)) if max(nums) > min(nums) else None,
                    color=_PALETTE[0], alpha=0.85)
            for bound, v, stage in ths:
                ax.axvline(v, color=_DROP_COLOR, linestyle="--", linewidth=1.4)
                if bound.startswith("min"):
                    ax.axvspan(lo - pad, v, color=_DROP_COLOR, alpha=0.08, linewidth=0)
                else:
                    ax.axvspan(v, hi + pad, color=_DROP_COLOR, alpha=0.08, linewidth=0)
                ax.annotate(_mpl_text(f"{bound.rstrip('!')} {_fmt(v)}", 24), xy=(v, 1.0),
                            xycoords=("data", "axes fraction"),
                            xytext=(3, -10), textcoords="offset points", color=_DROP_COLOR, fontsize=8,
                            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_title(_mpl_text(key, 60), loc="left")
            ax.set_ylabel("examples")
            _count_axis(ax.yaxis)
            _style_axes(ax)

        svg = ctx.plot(f"distribution of {key}", draw, width=4.6, height=2.4)
        if svg:
            figs.append(svg)
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
        parts.append(_note("Histograms of a bounded, seeded sample of each score; dashed lines are the stages' "
                           "thresholds, shaded where examples are dropped."))
    n_with_values = sum(1 for k in keys if isinstance(values.get(k), Sequence) and values.get(k))
    if n_with_values > ctx.options.max_score_plots and figs:
        parts.append(_note(f"{len(figs)} of {n_with_values} scores plotted (max_score_plots="
                           f"{ctx.options.max_score_plots}); the table lists all."))
    rows = []
    for key in keys:
        s = summaries.get(key)
        s = s if isinstance(s, Mapping) else {}
        rows.append((_code(key), s.get("count", 0), s.get("min"), s.get("p05"), s.get("p50"), s.get("p95"),
                     s.get("max"), s.get("mean"), _threshold_text(thresholds.get(key, [])) or "\u2014"))
    parts.append(_table(("score", "count", "min", "p05", "median", "p95", "max", "mean", "threshold"), rows,
                        numeric=(1, 2, 3, 4, 5, 6, 7)))
    return _Html("".join(parts))


def _clusters(matches: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Union the matched pairs into clusters; members in order of first appearance, largest cluster first."""
    parent: Dict[str, str] = {}
    order: Dict[str, int] = {}
    shown: Dict[str, Any] = {}
    dropped: Dict[str, Mapping[str, Any]] = {}

    def add(k: str, v: Any) -> None:
        if k not in parent:
            parent[k] = k
            order[k] = len(order)
            shown[k] = v

    def find(k: str) -> str:
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root

    for m in matches:
        a, b = _id_key(m.get("id")), _id_key(m.get("matched"))
        add(b, m.get("matched"))  # the matched (kept) example first
        add(a, m.get("id"))
        dropped[a] = m
        ra, rb = find(a), find(b)
        if ra != rb:
            if order[ra] < order[rb]:
                ra, rb = rb, ra
            parent[ra] = rb
    groups: Dict[str, List[str]] = {}
    for k in parent:
        groups.setdefault(find(k), []).append(k)
    out = []
    for members in groups.values():
        members.sort(key=order.__getitem__)
        scores = [s for s in (_num(dropped[k].get("score")) for k in members if k in dropped) if s is not None]
        out.append({
            "size": len(members),
            "first": order[members[0]],
            "kept": [shown[k] for k in members if k not in dropped],
            "dropped": [(shown[k], str(dropped[k].get("reason", "")), _num(dropped[k].get("score")))
                        for k in members if k in dropped],
            "reasons": Counter(str(dropped[k].get("reason", "")) for k in members if k in dropped),
            "scores": scores,
        })
    out.sort(key=lambda c: (-c["size"], c["first"]))
    return out


def _id_list(ids: Sequence[Any], cap: int, titles: Optional[Sequence[str]] = None) -> _Html:
    items = []
    for i, v in enumerate(ids[:cap]):
        title = f' title="{_e(titles[i])}"' if titles else ""
        items.append(f"<code{title}>{_e(_fmt_id(v))}</code>")
    if len(ids) > cap:
        items.append(f'<span class="muted">\u2026 and {len(ids) - cap:,} more</span>')
    return _Html(" ".join(items) or "\u2014")


def _section_duplicates(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    raw = ctx.sequence(rep, "matches")
    matches = [m for m in raw if isinstance(m, Mapping) and "id" in m and "matched" in m]
    truncated = _num(rep.get("matches_truncated")) or 0
    if len(matches) < len(raw):
        ctx.notes.append(f"{len(raw) - len(matches)} entries of 'matches' lack an id or a matched id; skipped")
    if not matches:
        return _note("No duplicate was found." if not truncated else
                     f"{int(truncated):,} duplicate pairs were found but not kept in the report.")
    clusters = _clusters(matches)
    parts = []
    by_reason = Counter(str(m.get("reason", "")) for m in matches)
    largest = clusters[0]["size"]
    reasons = ", ".join(f"{r} {n:,}" for r, n in by_reason.most_common())
    parts.append(f"<p>{len(matches):,} duplicate pairs ({_e(reasons)}) form {len(clusters):,} clusters; the "
                 f"largest holds {largest:,} examples. Each cluster keeps its first example and drops the rest "
                 f"(keep-first).</p>")
    if truncated:
        parts.append(_note(f"{int(truncated):,} further pairs were counted but not kept in memory "
                           f"(the ledger's max_matches); clusters below come from the kept pairs."))
    scores = [s for s in (_num(m.get("score")) for m in matches) if s is not None]
    near_th = []
    for st in ctx.sequence(rep, "stages"):
        if isinstance(st, Mapping) and st.get("kind") == "index" and isinstance(st.get("config"), Mapping):
            t = _num(st["config"].get("threshold"))
            if t is not None:
                near_th.append((t, str(st.get("name", "?"))))
    sizes = Counter(c["size"] for c in clusters)
    figs = []
    if scores:
        def draw_scores(fig) -> None:
            ax = fig.add_subplot()
            lo = min(scores + [t for t, _ in near_th])
            ax.hist(scores, bins=max(5, min(30, int(math.sqrt(len(scores))) + 1)), color=_PALETTE[1], alpha=0.9)
            for t, name in near_th:
                ax.axvline(t, color=_DROP_COLOR, linestyle="--", linewidth=1.4)
                ax.annotate(_mpl_text(f"{name} threshold {_fmt(t)}", 30), xy=(t, 1.0),
                            xycoords=("data", "axes fraction"), xytext=(3, -10), textcoords="offset points",
                            color=_DROP_COLOR, fontsize=8,
                            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
            ax.set_xlim(lo - 0.02, 1.01)
            ax.set_title("similarity of matched pairs", loc="left")
            ax.set_xlabel("estimated Jaccard similarity")
            ax.set_ylabel("pairs")
            _count_axis(ax.yaxis)
            _style_axes(ax)

        figs.append(ctx.plot("similarity of matched duplicate pairs", draw_scores, width=4.6, height=2.4))

    def draw_sizes(fig) -> None:
        ax = fig.add_subplot()
        xs = sorted(sizes)
        ax.bar([str(x) for x in xs], [sizes[x] for x in xs], color=_PALETTE[0])
        ax.set_title("cluster sizes", loc="left")
        ax.set_xlabel("examples in the cluster")
        ax.set_ylabel("clusters")
        _count_axis(ax.yaxis)
        _style_axes(ax)

    figs.append(ctx.plot("duplicate cluster sizes", draw_sizes, width=4.6, height=2.4))
    figs = [f for f in figs if f]
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    cap_c, cap_i = ctx.options.max_clusters, ctx.options.max_ids_per_cluster
    rows = []
    for i, c in enumerate(clusters[:cap_c], 1):
        ids = [d[0] for d in c["dropped"]]
        titles = [f"{d[1]}" + (f", similarity {_fmt(d[2])}" if d[2] is not None else "") for d in c["dropped"]]
        sim = (f"{_fmt(min(c['scores']))}\u2013{_fmt(max(c['scores']))}" if len(set(c["scores"])) > 1 else
               _fmt(c["scores"][0])) if c["scores"] else "\u2014"
        reasons = ", ".join(f"{r} {n}" for r, n in c["reasons"].most_common())
        rows.append((i, c["size"], _id_list(c["kept"], cap_i), _id_list(ids, cap_i, titles), reasons, sim))
    parts.append(f"<h3>Largest clusters (top {min(cap_c, len(clusters))} of {len(clusters):,})</h3>")
    parts.append(_table(("#", "size", "kept id", "dropped ids (hover for reason)", "reasons", "similarity"), rows,
                        numeric=(0, 1), cls="clusters"))
    if len(clusters) > cap_c:
        parts.append(_note(f"{len(clusters) - cap_c:,} smaller clusters not listed (max_clusters={cap_c}); "
                           f"dropped.jsonl holds every pair."))
    return _Html("".join(parts))


def _prefixed_counts(ctx: _Ctx, rep: Mapping[str, Any], prefix: str) -> Tuple[Dict[str, float], int]:
    counts = ctx.mapping(rep, "counts")
    out: Dict[str, float] = {}
    bad = 0
    for k, v in counts.items():
        k = str(k)
        if not k.startswith(prefix):
            continue
        n = _num(v)
        if n is None:
            bad += 1
        else:
            out[k[len(prefix):] or k] = n
    return out, bad


def _section_pii(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    found, bad = _prefixed_counts(ctx, rep, "pii/")
    drops = {str(k)[4:]: _num(v) for k, v in ctx.mapping(rep, "dropped_by_reason").items()
             if str(k).startswith("pii/") and _num(v) is not None}
    parts = [_note("Counts by type only: the report holds no detected values, and this page shows none.")]
    if bad:
        parts.append(_note(f"{bad} PII entries were not counts and are not shown."))
    types = sorted(set(found) | set(drops), key=lambda t: (-(found.get(t) or 0), t))
    if not types:
        parts.append(_note("No personal data was counted (no PII stage ran, or it found nothing)."))
        return _Html("".join(parts))
    plotted = [t for t in types if found.get(t)][:30]
    parts.append(_barh(ctx, "PII detections by type", plotted, [found[t] for t in plotted],
                       [_PALETTE[3]] * len(plotted), "detections"))
    parts.append(_table(("type", "detections", "examples dropped"),
                        [(_code(t), found.get(t, 0), drops.get(t, 0)) for t in types[: ctx.options.max_rows]],
                        numeric=(1, 2)))
    return _Html("".join(parts))


def _section_augmentation(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    found, _ = _prefixed_counts(ctx, rep, "augment/")
    if not found:
        return _note("No augmentation was counted (no augmentation stage ran).")
    names = sorted(found, key=lambda t: (-found[t], t))
    colors = _colors_for([_stage_of(n) for n in names])
    plotted = names[:30]
    parts = [_barh(ctx, "augmentation counts", plotted, [found[n] for n in plotted],
                   [colors[_stage_of(n)] for n in plotted], "count")]
    parts.append(_table(("counter", "count"), [(_code(f"augment/{n}"), found[n]) for n in names[: ctx.options.max_rows]],
                        numeric=(1,)))
    return _Html("".join(parts))


def _section_languages(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    """Examples by language (the ``langid/<lang>`` counters of the ``langid`` stage); left out when it did not run."""
    found, _ = _prefixed_counts(ctx, rep, "langid/")
    if not found:
        return None
    drops = ctx.mapping(rep, "dropped_by_reason")
    scores = ctx.mapping(rep, "scores")
    total = sum(found.values())
    rows = []
    for lang in sorted(found, key=lambda t: (-found[t], t))[: ctx.options.max_rows]:
        summary = scores.get(f"langid/{lang}")
        mean = _num(summary.get("mean")) if isinstance(summary, Mapping) else None
        rows.append((_code(f"langid/{lang}"), found[lang], _pct(found[lang], total),
                     _num(drops.get(f"langid/{lang}")) or 0, "\u2014" if mean is None else f"{mean:.3f}"))
    return _Html(_note("Examples by the language the langid stage found (und: undetermined, below its min_score "
                       "or without letters), how many it dropped, and the mean probability of that language.")
                 + _table(("language", "examples", "share", "dropped by langid", "mean score"), rows,
                          numeric=(1, 2, 3, 4)))


def _section_counters(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    counts = ctx.mapping(rep, "counts")
    rest = sorted((str(k), v) for k, v in counts.items()
                  if not str(k).startswith(("pii/", "augment/", "langid/")))
    if not rest:
        return None
    return _table(("counter", "count"), [(_code(k), v) for k, v in rest[: ctx.options.max_rows]], numeric=(1,))


_PRIVACY_ORDER = ("unit", "epsilon_prv", "epsilon_rdp", "epsilon", "delta", "accountant", "noise_multiplier",
                  "max_grad_norm", "sample_rate", "steps")


def _section_privacy(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    priv = ctx.mapping(rep, "privacy")
    if not priv:
        return None
    parts = []
    scalars = [(k, v) for k, v in priv.items() if k != "history" and not isinstance(v, (list, tuple))]
    scalars.sort(key=lambda kv: (_PRIVACY_ORDER.index(kv[0]) if kv[0] in _PRIVACY_ORDER else len(_PRIVACY_ORDER),
                                 str(kv[0])))
    history = priv.get("history")
    rows = [h for h in history if isinstance(h, Mapping)] if isinstance(history, list) else []
    series = [k for k in ("epsilon_prv", "epsilon_rdp", "epsilon") if any(_num(h.get(k)) is not None for h in rows)]
    if rows and series:
        def draw(fig) -> None:
            ax = fig.add_subplot()
            for i, k in enumerate(series):
                pts = [(_num(h.get("step")), _num(h.get(k))) for h in rows]
                pts = sorted((x, y) for x, y in pts if x is not None and y is not None)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) <= 30 else None,
                        markersize=3, color=_PALETTE[i], label=k.replace("epsilon_", "\u03b5 ").replace(
                            "epsilon", "\u03b5"))
            delta = priv.get("delta")
            ax.set_title(_mpl_text(f"privacy spent (\u03b4 = {_fmt(delta)})" if delta is not None else
                                   "privacy spent", 60), loc="left")
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("\u03b5")
            ax.set_ylim(bottom=0)
            ax.legend(frameon=False)
            _style_axes(ax)

        parts.append(ctx.plot("epsilon over training steps", draw, width=6.5, height=2.8))
    parts.append(_kv_table(scalars))
    if rows:
        cap = ctx.options.max_rows
        step = max(1, math.ceil(len(rows) / cap))
        shown = rows[::step]
        cols = ["step"] + series
        parts.append(f"<details><summary>\u03b5 history ({len(rows):,} points"
                     f"{', every ' + str(step) + 'th shown' if step > 1 else ''})</summary>")
        parts.append(_table(cols, [[h.get(c) for c in cols] for h in shown], numeric=range(len(cols))))
        parts.append("</details>")
    return _Html("".join(parts))


def _pairs_table(ctx: _Ctx, pairs: Sequence[Any]) -> _Html:
    cap = ctx.options.max_rows
    shown = list(pairs[:cap])
    if shown and all(isinstance(p, Mapping) for p in shown):
        cols: List[str] = []
        for p in shown:
            for k in p:
                if str(k) not in cols and len(cols) < 8:
                    cols.append(str(k))
        rows = [[_code(_fmt_id(p.get(c))) if "id" in c and not isinstance(p.get(c), (float, bool)) else p.get(c)
                 for c in cols] for p in shown]
        table = _table(cols, rows)
    else:
        width = max((len(p) for p in shown if isinstance(p, (list, tuple))), default=1)
        cols = ["train id", "test id", "similarity"][:width] if width <= 3 else [f"item {i + 1}" for i in range(width)]
        rows = []
        for p in shown:
            p = list(p) if isinstance(p, (list, tuple)) else [p]
            rows.append([_code(_fmt_id(v)) if i < 2 else v for i, v in enumerate(p)] + [""] * (width - len(p)))
        table = _table(cols, rows)
    more = _note(f"{len(pairs) - cap:,} more pairs not listed (max_rows={cap}).") if len(pairs) > cap else ""
    return _Html(table + more)


def _section_leakage(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    leak = rep.get("leakage")
    if leak is None:
        return None
    parts = []
    if isinstance(leak, Mapping):
        pairs: Sequence[Any] = []
        scalars = []
        for k, v in leak.items():
            if isinstance(v, (list, tuple)) and not pairs:
                pairs = v
            elif not isinstance(v, (list, tuple)):
                scalars.append((k, v))
        if scalars:
            parts.append(_kv_table(_flatten(dict(scalars))))
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
        parts.append(_pairs_table(ctx, pairs))
    return _Html("".join(parts))


def _section_stages(ctx: _Ctx, rep: Mapping[str, Any]) -> _Html:
    stages = [s for s in ctx.sequence(rep, "stages") if isinstance(s, Mapping)]
    if not stages:
        return _note("The report lists no stages.")
    rows = []
    for s in stages:
        cfg = s.get("config")
        cfg_txt = _fmt(cfg, 600) if cfg else "\u2014"
        mem = s.get("index_bytes")
        rows.append((s.get("name"), s.get("kind"), s.get("class"), _code(cfg_txt),
                     _bytes(mem) if mem is not None else "\u2014", s.get("indexed_examples"),
                     s.get("index_bytes_per_example")))
    return _table(("stage", "kind", "class", "settings", "index memory", "indexed", "bytes / example"), rows,
                  numeric=(4, 5, 6), cls="stages")


def _section_run(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    parts = []
    tp = dict(ctx.mapping(rep, "throughput"))
    for k in ("busy_seconds", "examples_per_second"):
        if k in rep and f"guard_{k}" not in tp:
            tp[f"guard_{k}"] = rep.get(k)
    for title, block in (("Settings", ctx.mapping(rep, "settings")), ("Input", ctx.mapping(rep, "input")),
                         ("Throughput", tp), ("Machine", ctx.mapping(rep, "machine")),
                         ("Outputs", ctx.mapping(rep, "outputs"))):
        if block:
            parts.append(f"<div><h3>{_e(title)}</h3>{_kv_table(_flatten(block))}</div>")
    if not parts:
        return None
    return _Html('<div class="two-col">' + "".join(parts) + "</div>")


def _section_other(ctx: _Ctx, rep: Mapping[str, Any]) -> Optional[_Html]:
    extra = [k for k in rep if k not in KNOWN_KEYS]
    if not extra:
        return None
    parts = []
    for k in sorted(extra, key=str):
        try:
            text = json.dumps(rep[k], indent=2, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = type(rep[k]).__name__
        parts.append(f"<h3><code>{_e(k)}</code></h3><pre>{_e(_clip(text, 20_000))}</pre>")
    return _Html("".join(parts))


#: (anchor, heading, renderer): renderers return markup, or None to leave an optional section out.
_SECTIONS: Tuple[Tuple[str, str, Callable[[_Ctx, Mapping[str, Any]], Optional[str]]], ...] = (
    ("summary", "Summary", _section_summary),
    ("training", "Training", _section_training),
    ("drops", "Dropped examples", _section_drops),
    ("languages", "Languages", _section_languages),
    ("scores", "Score distributions", _section_scores),
    ("duplicates", "Duplicate clusters", _section_duplicates),
    ("pii", "Personal data (PII)", _section_pii),
    ("augmentation", "Augmentation", _section_augmentation),
    ("counters", "Other counters", _section_counters),
    ("privacy", "Differential privacy", _section_privacy),
    ("leakage", "Train/test leakage", _section_leakage),
    ("stages", "Stages", _section_stages),
    ("run", "Settings and machine", _section_run),
    ("other", "Other report fields", _section_other),
)

_CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--accent:#3b6ea8;--drop:#b8434d;--keep:#4e9a51}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg)}
header{background:#1f2933;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#cbd2d9;font-size:13px}
nav{background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;position:sticky;top:0;z-index:1;
display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{color:var(--accent);text-decoration:none;font-size:13px;white-space:nowrap}
main{max-width:1180px;margin:0 auto;padding:8px 32px 32px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 20px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px;font-weight:600}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted);font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;border-top:4px solid var(--accent)}
.card-kept{border-top-color:var(--keep)}.card-dropped{border-top-color:var(--drop)}
.card-replayed{border-top-color:#7b5ea7}.card-examples{border-top-color:#6f7781}
.card-label{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card-value{font-size:26px;font-weight:600;font-variant-numeric:tabular-nums}
.card-sub{font-size:12px;color:var(--muted)}
.split{display:flex;height:10px;border-radius:5px;overflow:hidden;margin-top:12px;background:var(--line)}
.split-kept{background:var(--keep)}.split-dropped{background:var(--drop)}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
table.kv td:first-child{width:38%}
code{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;background:var(--bg);padding:0 3px;border-radius:3px;
overflow-wrap:anywhere}
table.clusters code{display:inline-block;margin:1px 0}
table.stages td:nth-child(4){max-width:420px}
pre{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;background:var(--bg);padding:8px;border-radius:6px;
overflow:auto;max-height:360px;white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:var(--muted);font-size:13px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.two-col{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(360px,100%),1fr));gap:0 24px}
.tbl{overflow-x:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:8px 16px}
figure{margin:6px 0}
svg.plot{max-width:100%;height:auto;display:block}
svg.plot *{stroke-linejoin:round;stroke-linecap:butt}
.notes{border-left:4px solid #d9822b;background:#fff8f0}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
footer{text-align:center;color:var(--muted);font-size:12px;padding:0 0 24px}
"""

#: Nothing may load from anywhere: no scripts, no network; inline styles and data: images only.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _subtitle(ctx: _Ctx, rep: Mapping[str, Any]) -> str:
    bits = []
    inp = ctx.mapping(rep, "input")
    if inp.get("path"):
        bits.append(f"input {os.path.basename(str(inp['path']))}")
    settings = ctx.mapping(rep, "settings")
    if settings.get("device"):
        bits.append(f"device {settings['device']}")
    stages = [str(s.get("name")) for s in ctx.sequence(rep, "stages") if isinstance(s, Mapping)]
    if stages:
        bits.append("stages " + " \u2192 ".join(stages))
    return " \u00b7 ".join(bits)


def render_html(report: Mapping[str, Any], *, options: Optional[HtmlReportConfig] = None) -> str:
    """Render ``report`` (what :meth:`Guard.report` returns, plus optional sections) as one HTML page.

    Args:
        report: the report dict. Absent or empty sections are left out or say "none"; a field of the wrong
            type is skipped with a note on the page.
        options: :class:`HtmlReportConfig` (caps, plots on/off, strict mode).

    Returns:
        The page as a string: inline CSS and SVG, no scripts, no external references.

    Raises:
        ConfigError: ``report`` is not a mapping.

    Example:
        >>> page = render_html({"seen": 2, "kept": 2, "dropped": 0}, options=HtmlReportConfig(plots=False))
        >>> "<h2>Summary</h2>" in page and "No example was dropped." in page
        True
    """
    from ..version import __version__

    if not isinstance(report, Mapping):
        raise ConfigError.bad("report", type(report).__name__, "a mapping such as guard.report() returns",
                              "Pass the dict from Guard.report() or json.load(open('report.json')).")
    opts = options if options is not None else HtmlReportConfig()
    if not isinstance(opts, HtmlReportConfig):
        raise ConfigError.bad("options", type(opts).__name__, "an HtmlReportConfig or None")
    ctx = _Ctx(opts)
    rendered: List[Tuple[str, str, str]] = []
    for anchor, heading, fn in _SECTIONS:
        try:
            body = fn(ctx, report)
        except Exception as exc:  # noqa: BLE001 - one odd section must not cost the whole report
            if opts.strict:
                raise
            warnings.warn(f"torchdataguard report: section {heading!r} failed ({type(exc).__name__}); the page "
                          f"shows a note instead", RuntimeWarning, stacklevel=2)
            body = _note(f"This section could not be rendered ({type(exc).__name__}); report.json holds the data.")
        if body is not None:
            rendered.append((anchor, heading, body))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(opts.title)}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{_e(opts.title)}</h1><p>{_e(_subtitle(ctx, report))}</p></header>"]
    out.append("<nav>" + " ".join(f'<a href="#{a}">{_e(h)}</a>' for a, h, _ in rendered if a != "summary") + "</nav>")
    out.append("<main>")
    if report.get("complete") is False or report.get("status") == "no_valid_records":  # a scan that did not succeed
        head = "Incomplete: the scan stopped early" if report.get("complete") is False else "No valid record"
        out.append(f'<section class="notes" id="status"><h2>{_e(head)}</h2><p>{_e(str(report.get("error")))}</p>'
                   f'<p>status {_e(str(report.get("status")))}, records read {_e(str(report.get("records_read")))}'
                   f'</p></section>')
    notes = list(ctx.notes)
    if ctx.plots_missing:
        notes.append("plots are left out because matplotlib is not installed: pip install matplotlib")
    if notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes)
        out.append(f'<section class="notes" id="notes"><h2>Notes</h2><ul>{items}</ul></section>')
    for anchor, heading, body in rendered:
        out.append(f'<section id="{anchor}"><h2>{_e(heading)}</h2>{body}</section>')
    out.append(f"</main><footer>torchdataguard {_e(__version__)} \u00b7 a self-contained page: it loads nothing "
               f"from the network</footer></body></html>")
    return "\n".join(out) + "\n"


def _atomic_write(path: str, text: str) -> None:
    """Write ``text`` to a fresh file beside ``path`` (created with the usual umask), then rename it over."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", errors="replace") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_html_report(report: Mapping[str, Any], path: str | os.PathLike, *,
                      options: Optional[HtmlReportConfig] = None) -> str:
    """Render ``report`` with :func:`render_html` and write it to ``path`` (atomically); returns the path.

    Example:
        >>> import tempfile, os
        >>> p = write_html_report({"seen": 1, "kept": 1, "dropped": 0}, os.path.join(tempfile.mkdtemp(), "r.html"),
        ...                       options=HtmlReportConfig(plots=False))
        >>> open(p, encoding="utf-8").read().startswith("<!DOCTYPE html>")
        True
    """
    path = os.fspath(path)
    _atomic_write(path, render_html(report, options=options))
    return path


def save_report(report: Mapping[str, Any], out_dir: str | os.PathLike, *,
                options: Optional[HtmlReportConfig] = None) -> Dict[str, str]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns ``{"json": path, "html": path}``.

    The JSON is strict (non-finite floats become strings, tensors become lists); both files are written
    atomically, so a checkpoint folder never holds half a report.

    Example:
        >>> import tempfile, json
        >>> paths = save_report({"seen": 2, "kept": 1, "dropped": 1}, tempfile.mkdtemp(),
        ...                     options=HtmlReportConfig(plots=False))
        >>> json.load(open(paths["json"]))["dropped"], sorted(paths)
        (1, ['html', 'json'])
    """
    from ..core.ledger import to_jsonable

    if not isinstance(report, Mapping):
        raise ConfigError.bad("report", type(report).__name__, "a mapping such as guard.report() returns")
    out_dir = os.fspath(out_dir)
    clean = to_jsonable(dict(report))
    json_path = os.path.join(out_dir, "report.json")
    _atomic_write(json_path, json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    html_path = write_html_report(clean, os.path.join(out_dir, "report.html"), options=options)
    return {"json": json_path, "html": html_path}
