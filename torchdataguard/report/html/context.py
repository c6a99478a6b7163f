"""What the sections share while a page renders, and the registry the sections join.

A section is a function ``render(ctx, report) -> markup | None`` registered with :func:`section` under its
anchor, with its heading, its place on the page (``order``, smaller first) and the top-level report keys it
shows (keys no section claims land in "Other report fields"). A new feature adds a module under
``report/html/sections/`` and imports it from that package's ``__init__``; nothing else changes.

Example:
    >>> [s.anchor for s in ordered_sections()][:1]  # doctest: +SKIP
    ['summary']
    >>> ctx = RenderContext(HtmlReportConfig(plots=False))
    >>> ctx.mapping({"counts": [1]}, "counts"), ctx.notes
    ({}, ["report field 'counts' has type list, expected an object; skipped"])
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from ...registry import Registry
from .config import HtmlReportConfig
from .numbers import as_number
from . import svg
from .plots import inline_svg, load_matplotlib, render_svg

__all__ = ["RenderContext", "SECTIONS", "Section", "known_keys", "ordered_sections", "section"]

Renderer = Callable[["RenderContext", Mapping[str, Any]], Optional[str]]


@dataclass
class Section:
    """One section of the page: anchor, heading, place (``order``), renderer and the report keys it shows."""

    anchor: str
    heading: str
    order: int
    render: Renderer
    keys: Tuple[str, ...] = ()


#: every section of the page, by anchor
SECTIONS: "Registry[Section]" = Registry("report section")


def section(anchor: str, heading: str, *, order: int, keys: Sequence[str] = ()) -> Callable[[Renderer], Renderer]:
    """Register the decorated renderer as the section ``anchor`` (refused if the anchor is taken)."""

    def deco(fn: Renderer) -> Renderer:
        SECTIONS.register(anchor)(Section(anchor, heading, order, fn, tuple(keys)))
        return fn

    return deco


def ordered_sections() -> List[Section]:
    """The registered sections in page order."""
    return sorted((SECTIONS.get(name) for name in SECTIONS), key=lambda s: (s.order, s.anchor))


def known_keys() -> FrozenSet[str]:
    """Top-level report keys some section shows."""
    return frozenset(k for name in SECTIONS for k in SECTIONS.get(name).keys)


class RenderContext:
    """Options, the plot switch and notes about the report's shape, shared by the sections of one page."""

    def __init__(self, options: HtmlReportConfig) -> None:
        self.options = options
        self.mpl: Any = None  # matplotlib, imported by the first plot that needs it (see :meth:`plot`)
        self.mpl_tried = False
        self.plots_missing = False  # a plot needed matplotlib, which is not installed
        self.notes: List[str] = []
        self.figures = 0

    # shape checks ------------------------------------------------------------------------------------
    def mapping(self, report: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        """``report[key]`` when it is a mapping; ``{}`` when absent; ``{}`` and a note for another type."""
        value = report.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.notes.append(f"report field {key!r} has type {type(value).__name__}, expected an object; skipped")
            return {}
        return value

    def sequence(self, report: Mapping[str, Any], key: str) -> Sequence[Any]:
        """``report[key]`` when it is a list; ``[]`` when absent; ``[]`` and a note for another type."""
        value = report.get(key)
        if value is None:
            return []
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            self.notes.append(f"report field {key!r} has type {type(value).__name__}, expected a list; skipped")
            return []
        return value

    def counts_under(self, report: Mapping[str, Any], prefix: str) -> Tuple[Dict[str, float], int]:
        """``({name after prefix: count}, number of non-numeric entries)`` of the ``counts`` under ``prefix``."""
        out: Dict[str, float] = {}
        bad = 0
        for k, v in self.mapping(report, "counts").items():
            k = str(k)
            if not k.startswith(prefix):
                continue
            n = as_number(v)
            if n is None:
                bad += 1
            else:
                out[k[len(prefix):] or k] = n
        return out, bad

    # plots -------------------------------------------------------------------------------------------
    def plot(self, label: str, draw: Callable[[Any], None], *, width: float = 7.0, height: float = 3.0) -> str:
        """``draw(figure)`` on a matplotlib Figure as inline SVG markup; '' without plots or matplotlib, or (with a
        warning) when drawing fails. matplotlib is imported by the first call."""
        if not self.options.plots:
            return ""
        if not self.mpl_tried:
            self.mpl, self.mpl_tried = load_matplotlib(), True
        if self.mpl is None:
            self.plots_missing = True
            return ""
        out = render_svg(self.mpl, label, draw, width=width, height=height, strict=self.options.strict)
        if not out:
            return ""
        self.figures += 1
        return inline_svg(out, f"f{self.figures}-", label)

    def drawn(self, label: str, draw: Callable[[str], str]) -> str:
        """``draw(id_prefix)``, a plot of :mod:`.svg` (no matplotlib); '' without plots, or (with a warning) when
        drawing fails."""
        if not self.options.plots:
            return ""
        try:
            out = draw(f"f{self.figures + 1}-")
        except Exception as exc:  # noqa: BLE001 - a plot must never cost the report
            if self.options.strict:
                raise
            warnings.warn(f"torchdataguard report: the plot {label!r} failed ({type(exc).__name__}); the page "
                          f"shows its table only", RuntimeWarning, stacklevel=3)
            return ""
        self.figures += 1
        return out

    def bars(self, label: str, names: Sequence[str], values: Sequence[float], colors: Sequence[str],
             xlabel: str) -> str:
        """Horizontal bars (one per name, with its value) as inline SVG; '' for no bars or without plots."""
        if not names:
            return ""
        return self.drawn(label, lambda prefix: svg.bars(prefix, label, names, values, colors, xlabel))

    def histogram(self, label: str, values: Sequence[float], **kw: Any) -> str:
        """A histogram of ``values`` as inline SVG (options of :func:`.svg.histogram`); '' for no values."""
        if not values:
            return ""
        return self.drawn(label, lambda prefix: svg.histogram(prefix, label, values, **kw))

    def columns(self, label: str, categories: Sequence[str], values: Sequence[float], **kw: Any) -> str:
        """Vertical bars, one per category, as inline SVG (options of :func:`.svg.columns`); '' for none."""
        if not categories:
            return ""
        return self.drawn(label, lambda prefix: svg.columns(prefix, label, categories, values, **kw))
