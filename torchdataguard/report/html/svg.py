"""Bar charts and histograms written as SVG by hand: what a scan's report plots, drawn in milliseconds.

A scan's page plots its drops by reason, the similarity of matched pairs, the duplicate cluster sizes, and
the histograms of its scores. These are drawn here from rectangles, lines and text, with no plotting library
(importing and running matplotlib for them cost a scan about a second and a half); the plots of training
(privacy, audit, data map) still use matplotlib (:mod:`.plots`). Text stays text (the browser picks the font);
its width is estimated at :data:`EM` ems a character, an upper bound for DejaVu Sans, so labels are placed to
neither touch nor leave the plot. Ticks are "nice" numbers labelled by
:func:`~torchdataguard.report.html.numbers.format_number`.

Example:
    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> svg = histogram("f1-", "demo", [0.1, 0.5, 0.5, 0.9], title="score")
    >>> svg.startswith("<figure><svg") and svg.count('id="f1-xtick_') >= 2
    True
"""
from __future__ import annotations

import math
import unicodedata
from typing import List, Optional, Sequence, Tuple

from .numbers import format_number
from .page import clip, escape, visible
from .plots import DROP_COLOR, PALETTE, TITLE_CHARS, wrap_label

__all__ = ["EM", "bars", "columns", "histogram", "nice_ticks", "text_width"]

#: width of a character, in ems, used to place text (DejaVu Sans: digits 0.636, most letters less)
EM = 0.64
FONT = "font-family: 'DejaVu Sans', 'Bitstream Vera Sans', Verdana, Arial, Helvetica, sans-serif"
GRID = "#e4e7eb"
INK = "#333333"
TICK = 9.0  # font size of tick labels and axis labels
DPI = 72.0  # SVG units per inch (the figure sizes of the sections are in inches)


def text_width(text: str, size: float) -> float:
    """Estimated width of ``text`` at font ``size`` (wide East Asian characters count one em)."""
    return size * sum(1.0 if unicodedata.east_asian_width(c) in "WF" else EM for c in text)


def nice_ticks(lo: float, hi: float, *, nbins: int = 5, integer: bool = False) -> List[float]:
    """At most ``nbins`` + 1 ticks at multiples of 1, 2, 2.5 or 5 times a power of ten, within ``[lo, hi]``."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, nbins)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in ((1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)) if m * mag >= raw * (1 - 1e-9))
    if integer:
        step = float(max(1, math.ceil(step)))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12) + 0.0)
        k += 1
    return ticks


def _fit_ticks(lo: float, hi: float, length: float, *, integer: bool, nbins: int) -> List[float]:
    """Nice ticks over ``length`` units whose centred labels leave at least 4 units between them."""
    for n in range(nbins, 0, -1):
        ticks = nice_ticks(lo, hi, nbins=n, integer=integer)
        gap = length / (hi - lo) * (ticks[1] - ticks[0]) if len(ticks) > 1 and hi > lo else length
        labels = [format_number(t) for t in ticks]
        if all(gap >= (text_width(a, TICK) + text_width(b, TICK)) / 2 + 4 for a, b in zip(labels, labels[1:])):
            return ticks
    return nice_ticks(lo, hi, nbins=1, integer=integer)[:1]


class Canvas:
    """SVG elements in a ``width`` x ``height`` inch figure; :meth:`figure` wraps them for the page."""

    def __init__(self, prefix: str, width: float, height: float) -> None:
        self.prefix = prefix
        self.w, self.h = width * DPI, height * DPI
        self.parts: List[str] = []

    def text(self, x: float, y: float, s: str, *, size: float = TICK, anchor: str = "start", color: str = "",
             rotate: bool = False) -> None:
        fill = f"; fill: {color}" if color else ""
        turn = f' transform="rotate(-90 {x:.2f} {y:.2f})"' if rotate else ""
        self.parts.append(f'<text style="font-size: {size:g}px; {FONT}; text-anchor: {anchor}{fill}" x="{x:.2f}" '
                          f'y="{y:.2f}"{turn}>{escape(s)}</text>')

    def rect(self, x: float, y: float, w: float, h: float, fill: str, opacity: float = 1.0) -> None:
        op = f"; opacity: {opacity:g}" if opacity < 1 else ""
        self.parts.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(0.0, w):.2f}" height="{max(0.0, h):.2f}" '
                          f'style="fill: {fill}{op}"/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, *, color: str = "#000000", width: float = 0.8,
             dash: str = "") -> None:
        d = f"; stroke-dasharray: {dash}" if dash else ""
        self.parts.append(f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" '
                          f'style="stroke: {color}; stroke-width: {width:g}{d}"/>')

    def open(self, name: str) -> None:
        self.parts.append(f'<g id="{self.prefix}{name}">')

    def close(self) -> None:
        self.parts.append("</g>")

    def figure(self, label: str) -> str:
        return (f'<figure><svg class="plot" role="img" aria-label="{escape(label)}" width="{self.w:g}pt" '
                f'height="{self.h:g}pt" viewBox="0 0 {self.w:g} {self.h:g}" version="1.1">'
                + "".join(self.parts) + "</svg></figure>")


class _Axes:
    """The plotting area of a canvas and the data ranges it shows."""

    def __init__(self, left: float, top: float, right: float, bottom: float, x: Tuple[float, float],
                 y: Tuple[float, float]) -> None:
        self.left, self.top, self.right, self.bottom = left, top, right, bottom
        self.x0, self.x1 = x
        self.y0, self.y1 = y

    def px(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, v: float) -> float:
        return self.bottom - (v - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def spines(self, c: Canvas) -> None:
        c.line(self.left, self.top, self.left, self.bottom)
        c.line(self.left, self.bottom, self.right, self.bottom)

    def xticks(self, c: Canvas, ticks: Sequence[float], *, grid: bool = True) -> None:
        for i, t in enumerate(ticks, 1):
            x = self.px(t)
            c.open(f"xtick_{i}")
            if grid:
                c.line(x, self.top, x, self.bottom, color=GRID)
            c.line(x, self.bottom, x, self.bottom + 3.5)
            c.text(x, self.bottom + 13, format_number(0.0 if abs(t) < 1e-12 else t), anchor="middle")
            c.close()

    def yticks(self, c: Canvas, ticks: Sequence[float]) -> None:
        for i, t in enumerate(ticks, 1):
            y = self.py(t)
            c.open(f"ytick_{i}")
            c.line(self.left - 3.5, y, self.left, y)
            c.text(self.left - 5.5, y + 3.2, format_number(t), anchor="end")
            c.close()


def _title(c: Canvas, title: str, x: float, limit: int = 120) -> float:
    """Draw ``title`` wrapped to :data:`TITLE_CHARS` from ``x``; the y below it."""
    y = 4.0
    for line in wrap_label(clip(visible(title), limit), TITLE_CHARS).split("\n") if title else []:
        y += 12.0
        c.text(x, y, line, size=10.0)
    return y + 6.0


def _count_ticks(top: float) -> List[float]:
    return nice_ticks(0.0, top, nbins=5, integer=True)


def histogram(prefix: str, label: str, values: Sequence[float], *, title: str,
              lines: Sequence[Tuple[str, float, str]] = (), color: str = PALETTE[0], ylabel: str = "examples",
              xlabel: str = "", xlim: Optional[Tuple[float, float]] = None, width: float = 4.6,
              height: float = 2.5) -> str:
    """A histogram of ``values`` with dashed threshold ``lines`` (``(side, value, label)``) as a ``<figure>``.

    ``side`` ``"min"`` shades everything below the line (what a minimum drops), ``"max"`` everything above,
    ``""`` nothing. The bins (between 5 and 40, about the square root of the count) span the values.
    """
    c = Canvas(prefix, width, height)
    vmin, vmax = min(values), max(values)
    lo, hi = vmin, vmax
    for _, v, _l in lines:
        lo, hi = min(lo, v), max(hi, v)
    if xlim is not None:
        lo, hi = xlim
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.04
    nb = max(5, min(40, int(math.sqrt(len(values))) + 1))
    a, b = (vmin, vmax) if vmax > vmin else (vmin - 0.5, vmax + 0.5)
    counts = [0] * nb
    for v in values:
        counts[min(nb - 1, max(0, int((v - a) / (b - a) * nb)))] += 1
    yt = _count_ticks(max(counts) * 1.05)
    ytop = max(yt[-1], max(counts) * 1.05)
    left = 4 + 11 + 6 + max(text_width(format_number(t), TICK) for t in yt) + 5.5
    top = _title(c, title, left)
    bottom = c.h - 4 - 16 - (13 if xlabel else 0)
    ax = _Axes(left, top, c.w - 8, bottom, (lo - pad, hi + pad), (0.0, ytop))
    xt = _fit_ticks(lo - pad, hi + pad, ax.right - ax.left, integer=False, nbins=5)
    if xt:  # room for the last tick label's right half
        ax.right = min(ax.right, c.w - 2 - text_width(format_number(xt[-1]), TICK) / 2)
        xt = _fit_ticks(lo - pad, hi + pad, ax.right - ax.left, integer=False, nbins=5)
    ax.xticks(c, xt)
    for side, v, _l in lines:
        if side == "min":
            c.rect(ax.left, ax.top, ax.px(v) - ax.left, ax.bottom - ax.top, DROP_COLOR, 0.08)
        elif side == "max":
            c.rect(ax.px(v), ax.top, ax.right - ax.px(v), ax.bottom - ax.top, DROP_COLOR, 0.08)
    c.open("patches")
    for i, n in enumerate(counts):
        if n:
            x0, x1 = ax.px(a + (b - a) * i / nb), ax.px(a + (b - a) * (i + 1) / nb)
            x0, x1 = max(x0, ax.left), min(x1, ax.right)
            c.rect(x0, ax.py(n), x1 - x0, ax.bottom - ax.py(n), color, 0.85)
    c.close()
    ax.yticks(c, yt)
    ax.spines(c)
    for k, (side, v, text) in enumerate(lines):
        x = ax.px(v)
        c.line(x, ax.top, x, ax.bottom, color=DROP_COLOR, width=1.4, dash="5.2,2.2")
        text = clip(visible(str(text)), 30)
        w = text_width(text, 8.0)
        right = (v - lo) > 0.6 * (hi - lo)
        tx = max(ax.left + 1, x - 3 - w) if right else min(x + 3, c.w - 2 - w)
        ty = ax.top + 10 + 11 * k
        c.rect(tx - 1, ty - 8, w + 2, 10, "#ffffff", 0.8)
        c.text(tx, ty, text, size=8.0, color=DROP_COLOR)
    c.text(10.0, (ax.top + ax.bottom) / 2, ylabel, anchor="middle", rotate=True)
    if xlabel:
        c.text((ax.left + ax.right) / 2, ax.bottom + 27, xlabel, anchor="middle")
    return c.figure(label)


def bars(prefix: str, label: str, names: Sequence[str], values: Sequence[float], colors: Sequence[str],
         xlabel: str, *, width: float = 6.5) -> str:
    """Horizontal bars, the first name at the top, each labelled with its value, as a ``<figure>``."""
    height = max(1.2, 0.26 * len(names) + 0.7)
    c = Canvas(prefix, width, height)
    names = [clip(visible(str(n)), 48) for n in names]
    top_v = max(values) if values else 1.0
    xmax = top_v * 1.12 if top_v > 0 else 1.0
    left = 6 + max(text_width(n, TICK) for n in names) + 6
    bottom = c.h - 4 - 16 - 13
    labels = [format_number(v) for v in values]
    right = c.w - 8
    for _ in range(200):  # narrow the axes until every value label fits right of its bar
        if all(left + max(0.0, v) / xmax * (right - left) + 3 + text_width(s, 8.0) <= c.w - 2
               for v, s in zip(values, labels)) or right - left < 40:
            break
        right -= 4
    ax = _Axes(left, 8, right, bottom, (0.0, xmax), (0.0, float(len(names))))
    ax.xticks(c, _fit_ticks(0.0, xmax, right - left, integer=True, nbins=6))
    band = (ax.bottom - ax.top) / max(1, len(names))
    c.open("patches")
    for i, (v, col) in enumerate(zip(values, colors)):
        y = ax.top + band * (i + 0.2)
        c.rect(ax.left, y, ax.px(max(0.0, v)) - ax.left, band * 0.6, col)
    c.close()
    for i, (n, v, s) in enumerate(zip(names, values, labels), 1):
        y = ax.top + band * (i - 0.5)
        c.open(f"ytick_{i}")
        c.line(ax.left - 3.5, y, ax.left, y)
        c.text(ax.left - 5.5, y + 3.2, n, anchor="end")
        c.close()
        c.text(ax.px(max(0.0, v)) + 3, y + 2.9, s, size=8.0, color=INK)
    ax.spines(c)
    c.text((ax.left + ax.right) / 2, ax.bottom + 27, xlabel, anchor="middle")
    return c.figure(label)


def columns(prefix: str, label: str, categories: Sequence[str], values: Sequence[float], *, title: str,
            xlabel: str, ylabel: str, color: str = PALETTE[0], width: float = 4.6, height: float = 2.5) -> str:
    """Vertical bars, one per category in order, as a ``<figure>`` (category labels thinned so none touch)."""
    c = Canvas(prefix, width, height)
    categories = [clip(visible(str(k)), 12) for k in categories]
    yt = _count_ticks(max(values) * 1.05 if values else 1.0)
    ytop = max(yt[-1], (max(values) if values else 1.0) * 1.05)
    left = 4 + 11 + 6 + max(text_width(format_number(t), TICK) for t in yt) + 5.5
    top = _title(c, title, left)
    n = max(1, len(categories))
    half = text_width(categories[-1], TICK) / 2 if categories else 0.0
    ax = _Axes(left, top, c.w - 8, c.h - 4 - 16 - 13, (-0.6, n - 0.4), (0.0, ytop))
    ax.right = min(ax.right, c.w - 2 - half)
    band = (ax.right - ax.left) / (n + 0.2)
    widest = max((text_width(k, TICK) for k in categories), default=0.0)
    every = max(1, math.ceil((widest + 4) / band))
    c.open("patches")
    for i, v in enumerate(values):
        x = ax.px(i)
        c.rect(x - 0.4 * band, ax.py(v), 0.8 * band, ax.bottom - ax.py(v), color)
    c.close()
    for i, k in enumerate(categories):
        if i % every == 0:
            x = ax.px(i)
            c.open(f"xtick_{i // every + 1}")
            c.line(x, ax.bottom, x, ax.bottom + 3.5)
            c.text(x, ax.bottom + 13, k, anchor="middle")
            c.close()
    ax.yticks(c, yt)
    ax.spines(c)
    c.text(10.0, (ax.top + ax.bottom) / 2, ylabel, anchor="middle", rotate=True)
    c.text((ax.left + ax.right) / 2, ax.bottom + 27, xlabel, anchor="middle")
    return c.figure(label)
