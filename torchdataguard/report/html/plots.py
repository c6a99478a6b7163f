"""Plots of training (privacy, audit, data map) as inline SVG, drawn with matplotlib's SVG backend on a private
Figure (pyplot is never touched); the bar charts and histograms of a scan are drawn without it (:mod:`.svg`).

matplotlib is imported inside the functions that draw, so the report (and the package) imports without it;
without it the page shows its tables only. Text stays text in the SVG (the browser picks the font), so labels
are kept short enough to fit: long titles are wrapped at ``/`` and ``_`` (never inside a word), and axes get
at most a handful of ticks whose labels come from :func:`~torchdataguard.report.html.numbers.format_number`.

Example:
    >>> wrap_label("quality/gopher_repetition/dup_para_char_ratio", 30)
    'quality/gopher_repetition/\\ndup_para_char_ratio'
"""
from __future__ import annotations

import io
import math
import re
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .numbers import format_number
from .page import clip, escape, visible

__all__ = ["DROP_COLOR", "PALETTE", "colors_for", "inline_svg", "load_matplotlib",
           "mpl_text", "people_ticks", "render_svg", "style_axes", "wrap_label"]

PALETTE = ("#3b6ea8", "#d9822b", "#4e9a51", "#b8434d", "#7b5ea7", "#8c6d4f", "#c76bab", "#6f7781", "#a7a33a",
           "#3aa3a7")
DROP_COLOR = "#b8434d"
#: characters per line of a histogram title (10 pt text over the axes of a 4.6 in wide figure, with room for a
#: browser font wider than matplotlib's)
TITLE_CHARS = 34

_TAG = re.compile(r"<[^<>]+>")
_ID_ATTR = re.compile(r'(\sid=")([^"]*)(")')
_HREF = re.compile(r'(\s(?:xlink:)?href="#)([^"]*)(")')
_URL_REF = re.compile(r"(url\(#)([^)]*)(\))")
_SLASH = re.compile(r"(?<=/)")
_BREAKS = re.compile(r"(?<=[_\s.-])")


def load_matplotlib() -> Any:
    """The matplotlib module (its Figure class imported, so a broken install shows now), or ``None``."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        return None
    return matplotlib


def wrap_label(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters, after a ``/`` where possible, else after
    ``_``, ``-``, ``.`` or a space.

    A piece longer than ``width`` with no such break is cut into ``width``-long pieces (the only case that
    breaks inside a word).
    """
    lines: List[str] = []
    for level in _SLASH.split(text):
        pieces = [level] if len(level) <= width else _BREAKS.split(level)
        for piece in pieces:
            while len(piece) > width:
                lines.append(piece[:width])
                piece = piece[width:]
            if not piece:
                continue
            if lines and len(lines[-1]) + len(piece) <= width:
                lines[-1] += piece
            else:
                lines.append(piece)
    return "\n".join(line.rstrip() for line in lines)


def mpl_text(text: Any, limit: int = 48, *, wrap: Optional[int] = None) -> str:
    """Text safe for a matplotlib label: controls made visible, clipped to ``limit``, wrapped to lines of ``wrap``
    characters when given, and ``$`` escaped so mathtext never parses it."""
    out = clip(visible(str(text)), limit)
    if wrap:
        out = wrap_label(out, wrap)
    return out.replace("$", r"\$")


def people_ticks(axis: Any, *, integer: bool = False, nbins: int = 5) -> None:
    """At most ``nbins`` + 1 ticks on ``axis``, labelled with :func:`format_number` (``1,350``, ``0.05``)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=nbins, integer=integer, min_n_ticks=2))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_number(0.0 if abs(v) < 1e-12 else v)))


def style_axes(ax: Any) -> None:
    """No top/right spines, a light vertical grid behind the data."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def colors_for(groups: Sequence[str]) -> Dict[str, str]:
    """A palette colour per distinct group, in order of first appearance."""
    out: Dict[str, str] = {}
    for g in groups:
        if g not in out:
            out[g] = PALETTE[len(out) % len(PALETTE)]
    return out


def render_svg(mpl: Any, label: str, draw: Callable[[Any], None], *, width: float, height: float,
               strict: bool) -> str:
    """``draw(figure)`` on a fresh ``width`` x ``height`` inch Figure, saved as SVG text ('' on failure, with a
    warning; re-raised when ``strict``)."""
    from matplotlib.figure import Figure

    try:
        buf = io.StringIO()
        with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "torchdataguard", "font.size": 9.0,
                             "axes.titlesize": 10.0}), warnings.catch_warnings():
            # text stays text in the SVG (the browser picks the font), so matplotlib's missing-glyph warnings
            # for ids in other scripts are noise
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
            fig = Figure(figsize=(width, height), dpi=96, layout="constrained")
            fig.patch.set_alpha(0.0)
            draw(fig)
            fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    except Exception as exc:  # noqa: BLE001 - a plot must never cost the report
        if strict:
            raise
        warnings.warn(f"torchdataguard report: the plot {label!r} failed ({type(exc).__name__}); the page "
                      f"shows its table only", RuntimeWarning, stacklevel=3)
        return ""
    return buf.getvalue()


def inline_svg(svg: str, prefix: str, label: str) -> str:
    """matplotlib's SVG document as a ``<figure>`` for the page: no XML prolog or namespaces, no global style
    block, every element id prefixed with ``prefix`` (unique across the page's plots)."""
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
    svg = svg.replace("<svg ", f'<svg class="plot" role="img" aria-label="{escape(label)}" ', 1)
    return f"<figure>{svg.strip()}</figure>"
