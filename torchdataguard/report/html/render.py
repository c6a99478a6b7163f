"""Render a report dict as one page: every registered section in order, inside the page shell.

Example:
    >>> page = render_html({"seen": 3, "kept": 2, "dropped": 1, "dropped_by_reason": {"duplicate/exact": 1},
    ...                     "matches": [{"id": 2, "matched": 0, "reason": "duplicate/exact", "score": None}]},
    ...                    options=HtmlReportConfig(plots=False))
    >>> page.startswith("<!DOCTYPE html>") and "Duplicate clusters</h2>" in page
    True
"""
from __future__ import annotations

import os
import warnings
from typing import Any, List, Mapping, Optional, Tuple

from ...errors import ConfigError
from ...version import __version__
from . import sections  # noqa: F401  (registers the sections)
from .config import HtmlReportConfig
from .context import RenderContext, ordered_sections
from .page import document
from .tables import note

__all__ = ["render_html"]


def subtitle(ctx: RenderContext, rep: Mapping[str, Any]) -> str:
    """``input <file> · device <d> · stages a → b`` from what the report holds."""
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


def status_banner(report: Mapping[str, Any]) -> Optional[Tuple[str, str, str]]:
    """``(heading, error, details)`` for a scan that stopped early or read no valid record, else ``None``."""
    if report.get("complete") is False or report.get("status") == "no_valid_records":
        head = "Incomplete: the scan stopped early" if report.get("complete") is False else "No valid record"
        return (head, str(report.get("error")),
                f"status {report.get('status')}, records read {report.get('records_read')}")
    return None


def render_html(report: Mapping[str, Any], *, options: Optional[HtmlReportConfig] = None) -> str:
    """Render ``report`` (what :meth:`Guard.report` returns, plus optional sections) as one HTML page.

    Args:
        report: the report dict. Absent or empty sections are left out or say "none"; a field of the wrong
            type is skipped with a note on the page.
        options: :class:`HtmlReportConfig` (caps, plots on/off, strict mode).

    Returns:
        The page as a string: inline CSS and SVG, no scripts, no external references.

    Raises:
        ConfigError: ``report`` is not a mapping, or ``options`` is not an :class:`HtmlReportConfig`.

    Example:
        >>> page = render_html({"seen": 2, "kept": 2, "dropped": 0}, options=HtmlReportConfig(plots=False))
        >>> "<h2>Summary</h2>" in page and "No example was dropped." in page
        True
    """
    if not isinstance(report, Mapping):
        raise ConfigError.bad("report", type(report).__name__, "a mapping such as guard.report() returns",
                              "Pass the dict from Guard.report() or json.load(open('report.json')).")
    opts = options if options is not None else HtmlReportConfig()
    if not isinstance(opts, HtmlReportConfig):
        raise ConfigError.bad("options", type(opts).__name__, "an HtmlReportConfig or None")
    ctx = RenderContext(opts)
    rendered: List[Tuple[str, str, str]] = []
    for sec in ordered_sections():
        try:
            body = sec.render(ctx, report)
        except Exception as exc:  # noqa: BLE001 - one odd section must not cost the whole report
            if opts.strict:
                raise
            warnings.warn(f"torchdataguard report: section {sec.heading!r} failed ({type(exc).__name__}); the "
                          f"page shows a note instead", RuntimeWarning, stacklevel=2)
            body = note(f"This section could not be rendered ({type(exc).__name__}); report.json holds the data.")
        if body is not None:
            rendered.append((sec.anchor, sec.heading, body))
    notes = list(ctx.notes)
    if ctx.plots_missing:
        notes.append("some plots are left out because matplotlib is not installed: pip install matplotlib")
    return document(title=opts.title, subtitle=subtitle(ctx, report), sections=rendered, notes=notes,
                    status=status_banner(report), version=__version__)
