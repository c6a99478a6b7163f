"""The data-map scatter of the training-dynamics section draws without warnings (it called tight_layout on a
figure with constrained layout: matplotlib warned on every report, and strict reports failed the plot)."""
import warnings

import pytest

from torchdataguard.report.html.plots import load_matplotlib, render_svg
from torchdataguard.report.html.sections.dynamics import _draw_map


def test_data_map_draws_without_warnings():
    mpl = load_matplotlib()
    if mpl is None:
        pytest.skip("matplotlib is not installed")
    points = [[0.9, 0.05, False], [0.2, 0.3, True], [0.6, 0.0, False]] * 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = render_svg(mpl, "data map", lambda fig: _draw_map(fig, points), width=6.0, height=3.6, strict=True)
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg[:500]
