"""report.html reads well on a demo-like run: titles and tick labels fit, names never break inside a word, the
preflight's reason is shown in full, numbers are written for people, and epsilon is the accountant in force."""
from __future__ import annotations

import functools
import json
import random
import re
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Tuple

import pytest

from torchdataguard.errors import ConfigError
from torchdataguard.report import HtmlReportConfig, render_html

STRICT = HtmlReportConfig(strict=True)
GOPHER = "quality/gopher_repetition/"
#: what the demo's preflight says about the clipping mode, made longer than any cell limit
CLIPPING_REASON = ("bk (auto: one backward pass; matched autograd's gradient on the preflight batch; ghost clipping "
                   "was not needed because every layer has a book-keeping rule, and the two rows of the preflight "
                   "batch were checked independent: each row's gradient did not change when the other row changed, "
                   "so per-example clipping bounds each example's influence as DP-SGD requires; the largest "
                   "relative difference to autograd was 4.7e-07, within the 1e-4 tolerance)")
PREFLIGHT_NOTE = ("position_embeddings is broadcast over the batch: its per-example gradient is the sum over the "
                  "positions of each example, computed by the book-keeping rule for broadcast inputs, end of note")


def demo_like_report() -> Dict[str, Any]:
    """The shape of what ``torchdataguard demo --private`` writes, with its long names and its numbers."""
    rng = random.Random(3)
    reasons = {f"{GOPHER}dup_5gram_char_ratio": 122, "normalize/replacement_chars": 69,
               f"{GOPHER}dup_line_ratio": 50, "duplicate/near": 27, f"{GOPHER}dup_line_char_ratio": 15,
               f"{GOPHER}dup_10gram_char_ratio": 2, f"{GOPHER}top_4gram_char_ratio": 8}
    para = [0.0] * 1400 + [rng.uniform(0.0, 0.197) for _ in range(30)]  # mostly zeros, threshold at 0.2
    gram = [rng.betavariate(0.3, 6) for _ in range(1500)] + [0.93]
    thresholds = {f"{GOPHER}dup_para_char_ratio": {"max": 0.2}, f"{GOPHER}dup_10gram_char_ratio": {"max": 0.1}}
    return {
        "seen": 1600, "kept": 1290, "dropped": 310, "replayed": 0, "dropped_by_reason": reasons,
        "counts": {"pii/email": 5270, "augment/token/tokens": 6372, "normalize/whitespace": 1422},
        "scores": {f"{GOPHER}dup_para_char_ratio": {"count": 1430, "min": 0.0, "max": 0.1968, "mean": 0.001647}},
        "score_values": {f"{GOPHER}dup_para_char_ratio": para, f"{GOPHER}dup_10gram_char_ratio": gram},
        "busy_seconds": 0.122, "examples_per_second": 13110.4,
        "stages": [{"name": "quality", "kind": "record", "class": "QualityFilter",
                    "config": {"thresholds": thresholds}}],
        "training": {"accuracy_before": 0.52, "accuracy_after": 0.9417, "train_seconds": 134.5},
        "privacy": {
            "unit": "example", "delta": 7.751937984496124e-05, "accountant": "prv", "noise_multiplier": 0.347747802734375,
            "max_grad_norm": 1.0, "sample_rate": 0.012403100775193798, "steps": 5, "epsilon_prv": 7.992254,
            "epsilon_rdp": 11.41, "epsilon": 7.992254, "target_epsilon": 8.0, "budget_stopped": True,
            "clipping": "bk", "history": [{"step": s, "epsilon_prv": 3.574 * s ** 0.5,
                                           "epsilon_rdp": 5.1 * s ** 0.5} for s in range(1, 6)],
            "preflight": {"batch_rows": 2, "broadcast_inputs": ["bert.embeddings.position_embeddings"],
                          "mismatched": {}, "clipping": CLIPPING_REASON, "notes": [PREFLIGHT_NOTE], "ok": True},
            "notes": ["noise multiplier calibrated to epsilon 8.0 over 5 steps",
                      "the Trainer's max_grad_norm=1.0 was turned off: DP-SGD clips each example at 1.0"],
        },
    }


def svg_of(page: str, label: str) -> str:
    m = re.search(r'<svg class="plot" role="img" aria-label="' + re.escape(label) + r'".*?</svg>', page, re.S)
    assert m, f"no plot {label!r} in the page"
    return m.group(0)


def texts(svg: str) -> List[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def xtick_labels(svg: str) -> List[Tuple[float, float, str]]:
    """``(x, font size px, label)`` of each x tick label of a plot."""
    out = []
    for m in re.finditer(r'<g id="f\d+-xtick_\d+">', svg):  # the first text after a tick's group is its label
        t = re.compile(r'<text style="font-size: ([0-9.]+)px[^"]*" x="([-0-9.]+)"[^>]*>([^<]*)</text>').search(
            svg, m.end())
        out.append((float(t.group(2)), float(t.group(1)), t.group(3)))
    return out


# -- plots ---------------------------------------------------------------------------------------------
def test_histogram_titles_are_wrapped_at_slashes_not_cut():
    page = render_html(demo_like_report(), options=STRICT)
    for rule in ("dup_para_char_ratio", "dup_10gram_char_ratio"):
        lines = texts(svg_of(page, f"distribution of {GOPHER}{rule}"))
        # the title comes as two lines, each short enough for the plot's width: the set, then the rule
        assert GOPHER in lines and rule in lines, lines
        assert all(len(t) <= 34 for t in lines), [t for t in lines if len(t) > 34]


def test_x_tick_labels_leave_room_between_them():
    page = render_html(demo_like_report(), options=STRICT)
    for rule in ("dup_para_char_ratio", "dup_10gram_char_ratio"):
        ticks = xtick_labels(svg_of(page, f"distribution of {GOPHER}{rule}"))
        assert 2 <= len(ticks) <= 7, ticks
        for (x1, size, a), (x2, _, b) in zip(ticks, ticks[1:]):
            # centred labels; a DejaVu Sans character is at most 0.64 em wide: half of each label plus 4 px
            room = 0.64 * size * (len(a) + len(b)) / 2 + 4
            assert x2 - x1 >= room, (rule, a, b, x2 - x1, room)
        assert all(len(label) <= 5 for _, _, label in ticks), ticks  # 0.05, not 0.0500


# -- tables and notes ----------------------------------------------------------------------------------
def test_reason_and_score_names_never_break_inside_a_word():
    page = render_html(demo_like_report(), options=HtmlReportConfig(plots=False, strict=True))
    css = page[page.index("<style>"):page.index("</style>")]
    code_rule = re.search(r"(?:^|\n|\})code\{([^}]*)\}", css).group(1)
    assert "anywhere" not in code_rule and "break-all" not in code_rule, code_rule
    assert "break-all" not in css
    assert "table.names code{white-space:nowrap}" in css
    for anchor in ("drops", "scores"):
        sec = page[page.index(f'<section id="{anchor}">'):]
        sec = sec[:sec.index("</section>")]
        assert '<table class="names">' in sec
    assert f"<code>{GOPHER}dup_10gram_char_ratio</code>" in page


def test_preflight_reason_and_notes_are_shown_in_full():
    page = render_html(demo_like_report(), options=STRICT)
    dp = page[page.index('<section id="privacy">'):]
    dp = dp[:dp.index("</section>")]
    assert len(CLIPPING_REASON) > 300
    assert CLIPPING_REASON.replace("'", "&#x27;") in dp
    assert PREFLIGHT_NOTE in dp
    assert "noise multiplier calibrated to epsilon 8.0 over 5 steps" in dp
    assert "\u2026" not in dp  # nothing in the DP section is cut


# -- numbers -------------------------------------------------------------------------------------------
def test_the_speed_card_names_the_guard_scan_speed_and_reads_13_110():
    page = render_html(demo_like_report(), options=HtmlReportConfig(plots=False, strict=True))
    cards = page[page.index('<div class="cards">'):page.index('<div class="split"')]
    assert "guard scan speed" in cards and "not training speed" in cards
    assert '<div class="card-value">13,110</div>' in cards
    assert "1.311e+04" not in page and "examples / s" not in page
    # a scan's wall-clock speed, when the report has it, is named as such
    scan = dict(demo_like_report(), throughput={"examples_per_second": 2048.7, "wall_seconds": 0.8})
    page = render_html(scan, options=HtmlReportConfig(plots=False, strict=True))
    assert "scan speed" in page and '<div class="card-value">2,049</div>' in page


def test_numbers_in_tables_are_written_for_people():
    page = render_html(demo_like_report(), options=HtmlReportConfig(plots=False, strict=True))
    assert "<td>0.942</td>" in page and "0.9417" not in page  # accuracy
    assert "<td>7.99</td>" in page and "7.992" not in page  # epsilon
    assert "<td>0.0124</td>" in page and "<td>7.75e-05</td>" in page  # sample rate, delta
    assert "<td class=num>1,430</td>" in page  # a count


@pytest.mark.parametrize("value, text", [
    (13110.4, "13,110"), (1600, "1,600"), (1600.0, "1,600"), (0.9417, "0.942"), (7.992254, "7.99"),
    (11.815561, "11.8"), (654.9, "655"), (999.7, "1,000"), (0.0124031, "0.0124"), (7.751937984496124e-05, "7.75e-05"),
    (1e-05, "1e-05"), (0, "0"), (-0.5, "-0.5"), (-1234.4, "-1,234"), (2.5e15, "2.5e+15"), (float("nan"), "nan"),
    (float("inf"), "inf"),
])
def test_format_number_is_the_one_formatter(value, text):
    from torchdataguard.report.html.numbers import format_number

    assert format_number(value) == text


# -- differential privacy ------------------------------------------------------------------------------
def test_epsilon_is_the_accountant_in_force_and_the_other_is_explained():
    page = render_html(demo_like_report(), options=STRICT)
    dp = page[page.index('<section id="privacy">'):]
    lead = re.search(r'<p class="lead">(.*?)</p>', dp).group(1)
    assert lead.startswith("\u03b5 = 7.99 at \u03b4 = 7.75e-05, from the PRV accountant (the one in force; target "
                           "\u03b5 8).")
    second = re.search(r'<p class="muted">Secondary: (.*?)</p>', dp).group(1)
    assert "RDP accountant bounds the same training at \u03b5 = 11.4" in second and "looser upper bound" in second
    assert "\u03b5 prv (in force)" in dp and "\u03b5 rdp (secondary)" in dp  # the plot's legend

    rdp = demo_like_report()
    rdp["privacy"].update(accountant="rdp", epsilon=11.41)
    dp = render_html(rdp, options=HtmlReportConfig(plots=False, strict=True))
    assert "\u03b5 = 11.4 at \u03b4 = 7.75e-05, from the RDP accountant (the one in force" in dp
    assert "Secondary: the PRV accountant estimates the same training at \u03b5 = 7.99" in dp


# -- sections ------------------------------------------------------------------------------------------
def test_a_new_section_joins_through_the_registry_in_its_place(monkeypatch):
    from torchdataguard.registry import Registry
    from torchdataguard.report.html import context

    fresh = Registry("report section")
    for name in context.SECTIONS:
        fresh.register(name)(context.SECTIONS.get(name))
    monkeypatch.setattr(context, "SECTIONS", fresh)

    @context.section("decontamination", "Decontamination", order=105, keys=("decontamination",))
    def render(ctx, rep):
        return f"<p>{len(rep.get('decontamination', []))} benchmark overlaps</p>"

    page = render_html(dict(demo_like_report(), decontamination=[1, 2]),
                       options=HtmlReportConfig(plots=False, strict=True))
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads.index("Differential privacy") < heads.index("Decontamination") < heads.index("Stages")
    assert "2 benchmark overlaps" in page and "Other report fields" not in heads  # its key is claimed
    with pytest.raises(ConfigError, match="'decontamination' is already registered"):
        context.section("decontamination", "Again", order=1)(render)


def test_a_distributed_report_gets_its_own_section():
    rep = {"seen": 8, "kept": 6, "dropped": 2,
           "distributed": {"world_size": 2, "backend": "gloo",
                           "per_rank": [{"seen": 4, "kept": 3, "dropped": 1, "replayed": 0, "rounds": 2,
                                         "comm": {"calls": 6, "bytes_sent": 3072, "seconds": 0.01}},
                                        {"seen": 4, "kept": 3, "dropped": 1, "replayed": 0, "rounds": 2,
                                         "comm": {"calls": 6, "bytes_sent": 2048, "seconds": 0.02}}]}}
    page = render_html(rep, options=HtmlReportConfig(plots=False, strict=True))
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert "Distributed" in heads and "Other report fields" not in heads
    assert "2 ranks, backend gloo" in page and "<td class=num>3.0 KiB</td>" in page


# -- what a browser shows ------------------------------------------------------------------------------
#: collects, in the browser, text that a reader would see broken: table names wrapped onto two lines, plot text
#: outside its plot, and plot texts that touch (closer than 2 px on the same line)
PROBE = """
window.addEventListener("load", function () {
  var out = [];
  document.querySelectorAll("#drops td code, #scores td code").forEach(function (c) {
    if (c.getClientRects().length > 1) out.push("wrapped: " + c.textContent);
  });
  document.querySelectorAll("svg.plot").forEach(function (s, i) {
    var r = s.getBoundingClientRect(), ts = Array.prototype.slice.call(s.querySelectorAll("text"));
    var bs = ts.map(function (t) { return t.getBoundingClientRect(); });
    ts.forEach(function (t, j) {
      var b = bs[j];
      if (b.left < r.left - 0.5 || b.right > r.right + 0.5 || b.top < r.top - 0.5 || b.bottom > r.bottom + 0.5)
        out.push("cut: " + s.getAttribute("aria-label") + ": " + t.textContent);
      for (var k = j + 1; k < ts.length; k++) {
        var c = bs[k], ox = Math.min(b.right, c.right) - Math.max(b.left, c.left);
        var oy = Math.min(b.bottom, c.bottom) - Math.max(b.top, c.top);
        if (ox > -2 && oy > 1) out.push("touch: " + s.getAttribute("aria-label") + ": " + t.textContent + " | " +
                                        ts[k].textContent);
      }
    });
  });
  var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""


@functools.lru_cache(maxsize=1)
def browser() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        try:
            if path and subprocess.run([path, "--version"], capture_output=True, timeout=60).returncode == 0:
                return path
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@pytest.mark.skipif(browser() is None, reason="no Chromium/Chrome installed (apt-get install chromium)")
def test_a_browser_shows_no_cut_touching_or_broken_text(tmp_path):
    page = render_html(demo_like_report(), options=STRICT)
    # the test, not the page, runs a script: the page's policy (which forbids scripts) is taken out here only
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    path = tmp_path / "probe.html"
    path.write_text(page.replace("</body>", f"<script>{PROBE}</script></body>"), encoding="utf-8")
    res = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,4000", "--dump-dom",
                          f"file://{path}"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, "the probe did not run"
    problems = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                          .replace("&gt;", ">"))
    assert problems == [], problems
