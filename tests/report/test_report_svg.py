"""The hand-written SVG plots (torchdataguard/report/html/svg.py): nice ticks, escaped text, bars that fit."""
from __future__ import annotations

import re

from torchdataguard.report.html import svg


def test_nice_ticks_are_round_numbers_within_the_range():
    assert svg.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg.nice_ticks(0.0, 2314.0, integer=True) == [0.0, 500.0, 1000.0, 1500.0, 2000.0]
    assert svg.nice_ticks(0.76, 1.01) == [0.8, 0.85, 0.9, 0.95, 1.0]
    assert svg.nice_ticks(0.0, 2.2, integer=True) == [0.0, 1.0, 2.0]  # never a fractional count
    assert svg.nice_ticks(5.0, 5.0) == [5.0, 5.2, 5.4, 5.6, 5.8, 6.0]  # an empty range is widened


def test_text_is_escaped_and_made_visible():
    page = svg.bars("f1-", "x<y", ["<script>alert(1)</script>", "a\x00b"], [3, 1], ["#000", "#111"], "n")
    assert "<script" not in page and "&lt;script&gt;" in page and "\x00" not in page
    assert 'aria-label="x&lt;y"' in page


def test_value_labels_stay_inside_the_figure():
    names = ["duplicate/exact", "duplicate/near"]
    page = svg.bars("f1-", "drops", names, [1_234_567, 3], ["#000", "#111"], "examples dropped")
    width = float(re.search(r'viewBox="0 0 ([0-9.]+) ', page).group(1))
    labels = re.findall(r'<text style="font-size: 8px[^"]*" x="([0-9.]+)"[^>]*>([^<]*)</text>', page)
    assert [t for _, t in labels] == ["1,234,567", "3"]
    for x, t in labels:
        assert float(x) + svg.text_width(t, 8.0) <= width - 2


def test_histogram_counts_every_value_once():
    values = [0.1] * 7 + [0.5] * 3 + [0.9] * 2
    page = svg.histogram("f2-", "h", values, title="t")
    bars = re.search(r'<g id="f2-patches">(.*?)</g>', page).group(1)
    heights = [float(h) for h in re.findall(r'height="([0-9.]+)"', bars)]
    assert len(heights) == 3 and heights[0] > heights[1] > heights[2] > 0
    # bar heights are proportional to the counts 7, 3, 2
    assert abs(heights[0] / heights[2] - 3.5) < 0.01 and abs(heights[1] / heights[2] - 1.5) < 0.01
