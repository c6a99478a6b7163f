"""Bidirectional and C1 control characters never reach report.html raw: they would reorder the text around them."""
from __future__ import annotations

import pytest

import torchdataguard as tdg
from torchdataguard import report as _report
from torchdataguard.report import render_html

# main renamed HtmlReportOptions to HtmlReportConfig (c7233d1) while fix-ids was open: either name works here
Options = getattr(_report, "HtmlReportConfig", None) or getattr(_report, "HtmlReportOptions")

CONTROLS = "\u202e\u202d\u202a\u202b\u202c\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x85\x9b"


@pytest.mark.filterwarnings("ignore:constrained_layout not applied")  # long hostile labels squeeze the axes
def test_bidi_controls_in_every_rendered_string_are_neutralised():
    evil = f"txt.exe{CONTROLS}gpj"
    rep = {
        "seen": 4, "kept": 2, "dropped": 2,
        "dropped_by_reason": {f"duplicate/{evil}": 1, evil: 1},
        "counts": {f"pii/{evil}": 3, f"augment/{evil}": 1, evil: 2},
        "scores": {f"q/{evil}": {"count": 3, "min": 0.0, "max": 2.0}},
        "score_values": {f"q/{evil}": [0.0, 1.0, 2.0]},
        "matches": [{"id": evil, "matched": evil, "reason": "duplicate/exact", "score": None},
                    {"id": [evil, 1], "matched": evil, "reason": evil, "score": 0.9}],
        "stages": [{"name": evil, "kind": "index", "class": evil, "config": {"thresholds": {f"q/{evil}": {"min": 0.5}}}}],
        "settings": {"device": evil}, "input": {"path": f"/data/{evil}.jsonl"},
        "leakage": [[evil, evil, 0.9]], "training": {evil: evil},
        "privacy": {"unit": evil, "history": [{"step": 1, "epsilon_prv": 0.1}]},
        evil: {"x": evil},
    }
    for plots in (True, False):
        page = render_html(rep, options=Options(strict=True, plots=plots, title=f"run {evil}"))
        assert not any(c in page for c in CONTROLS), sorted({hex(ord(c)) for c in page if c in CONTROLS})
        assert "txt.exe\\u202e\\u202d" in page  # shown as visible escapes, in order


def test_an_id_with_a_right_to_left_override_from_a_real_guard(tmp_path):
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")
    g.filter([{"id": "invoice\u202efdp.exe", "text": "same words"}, {"id": "b\u2067x", "text": "same words"}])
    page = (tmp_path / "r" / "report.html")
    g.save_report(tmp_path / "r")
    html = page.read_text(encoding="utf-8")
    assert "\u202e" not in html and "\u2067" not in html and "invoice\\u202efdp.exe" in html
