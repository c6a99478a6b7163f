"""The HTML report: one self-contained page (inline CSS, plots as inline SVG, no scripts, no network).

The input is the dict that :meth:`torchdataguard.Guard.report` returns, plus the optional sections the
command line, the demo and the Trainer callback add (``input``, ``throughput``, ``machine``, ``privacy``,
``leakage``, ``training``, ``distributed`` ...). Every section copes with being absent or empty, and every
string taken from the report is HTML-escaped with bidi and control characters made visible (:mod:`.page`).

Modules: :mod:`.page` (shell, CSS, escaping), :mod:`.numbers` (the one number formatter), :mod:`.tables`,
:mod:`.plots` (matplotlib, imported lazily), :mod:`.context` (the section registry), :mod:`.sections` (one
module per section), :mod:`.render` (:func:`render_html`).

Example:
    >>> from torchdataguard.report.html import HtmlReportConfig, render_html
    >>> render_html({"seen": 1, "kept": 1, "dropped": 0}, options=HtmlReportConfig(plots=False))[:15]
    '<!DOCTYPE html>'
"""
from .config import HtmlReportConfig
from .render import render_html

__all__ = ["HtmlReportConfig", "render_html"]
