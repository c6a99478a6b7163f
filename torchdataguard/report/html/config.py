"""The settings of the HTML report (:class:`HtmlReportConfig`).

Example:
    >>> HtmlReportConfig(plots=False).max_rows
    200
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["HtmlReportConfig"]


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
