"""Reports a person wants to read: ``report.json`` and a self-contained ``report.html``.

Modules: :mod:`.json` (strict JSON), :mod:`.save` (atomic writes of both files), :mod:`.html` (the page:
shell, sections, plots).

Example:
    >>> import tempfile
    >>> from torchdataguard.report import save_report
    >>> sorted(save_report({"seen": 1, "kept": 1, "dropped": 0}, tempfile.mkdtemp()))
    ['html', 'json']
"""
from ..core.hooks import HOOKS
from .html import HtmlReportConfig, render_html
from .save import save_report, write_html_report

HOOKS.register("save_report")(save_report)  # behind Guard.save_report

__all__ = ["HtmlReportConfig", "render_html", "save_report", "write_html_report"]
