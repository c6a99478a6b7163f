"""Writing reports: ``report.json`` and ``report.html``, each atomically (a fresh file renamed over the old one).

Example:
    >>> import tempfile, json
    >>> paths = save_report({"seen": 2, "kept": 1, "dropped": 1}, tempfile.mkdtemp(),
    ...                     options=HtmlReportConfig(plots=False))
    >>> json.load(open(paths["json"]))["dropped"], sorted(paths)
    (1, ['html', 'json'])
"""
from __future__ import annotations

import os
import uuid
from typing import Any, Dict, Mapping, Optional

from .html import HtmlReportConfig, render_html
from .json import jsonable_json, jsonable_report

__all__ = ["atomic_write", "save_report", "write_html_report"]


def atomic_write(path: str, text: str) -> None:
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
    atomic_write(path, render_html(report, options=options))
    return path


def save_report(report: Mapping[str, Any], out_dir: str | os.PathLike, *,
                options: Optional[HtmlReportConfig] = None) -> Dict[str, str]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns ``{"json": path, "html": path}``.

    The JSON is strict (non-finite floats become strings, tensors become lists); both files are written
    atomically, so a checkpoint folder never holds half a report.

    Raises:
        ConfigError: ``report`` is not a mapping.
    """
    out_dir = os.fspath(out_dir)
    clean = jsonable_report(report)
    json_path = os.path.join(out_dir, "report.json")
    atomic_write(json_path, jsonable_json(clean))  # converted once, for both files
    html_path = write_html_report(clean, os.path.join(out_dir, "report.html"), options=options)
    return {"json": json_path, "html": html_path}
