"""The HTML report: minimal, full and hostile reports render; the page is self-contained; a real browser opens it."""
from __future__ import annotations

import functools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import torchdataguard as tdg
from torchdataguard.scan import scan
from torchdataguard.core.stage import Example, Filter
from torchdataguard.errors import ConfigError
from torchdataguard.report import HtmlReportConfig, render_html, save_report, write_html_report
from torchdataguard.report.html.context import SECTIONS

STRICT = HtmlReportConfig(strict=True)
EMAILS = ["alice.smith@example.org", "bob.jones@example.net", "carol+news@example.com"]

#: Every tag the page may contain: its own layout tags and what matplotlib's SVG backend writes.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "nav", "main", "section", "footer", "h1", "h2",
    "h3", "p", "a", "div", "span", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code", "pre",
    "details", "summary", "figure",
    "svg", "g", "path", "defs", "clippath", "clipPath", "rect", "text", "use", "polyline", "line", "circle",
    "metadata",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: List[str] = []
        self.attrs: List[tuple] = []
        self.h2: List[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data.strip())


def _parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    p.close()
    return p


def _assert_self_contained(page: str) -> None:
    low = page.lower()
    assert "http://" not in low and "https://" not in low and "//cdn" not in low
    assert "<script" not in low and "<iframe" not in low and "<link" not in low and "<img" not in low
    assert "Content-Security-Policy" in page and "default-src &#x27;none&#x27;" in page
    for name, value in _parse(page).attrs:
        assert not (name or "").lower().startswith("on"), f"event handler attribute {name!r} in the page"
        if name in ("href", "src", "xlink:href"):
            assert value.startswith("#"), f"{name}={value!r} points outside the page"


# -- report builders -----------------------------------------------------------------------------------
class _ToyQuality(Filter):
    """A scored filter for the tests: length score with a threshold, PII and augmentation counters."""

    stage_name = "toyq"
    needs_text = True

    def config(self) -> Dict[str, Any]:
        return {"thresholds": {"toyq/words": {"min": 12}, "toyq/digit_ratio": {"max": 0.2, "exclusive": True}}}

    def judge(self, ex: Example) -> Optional[str]:
        words = ex.text.split()
        ex.scores["toyq/words"] = float(len(words))
        ex.scores["toyq/digit_ratio"] = sum(c.isdigit() for c in ex.text) / max(1, len(ex.text))
        n_mail = ex.text.count("@")
        if n_mail:
            ex.count("pii/email", n_mail)
        ex.count("augment/token_mask", 2)
        ex.count("normalize/whitespace")
        if len(words) < 12:
            return "too_short"
        if ex.scores["toyq/digit_ratio"] > 0.2:
            return "too_many_digits"
        return None


def _records(n: int = 40) -> List[Dict[str, Any]]:
    rng = random.Random(7)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(300)]
    base = [" ".join(rng.choice(vocab) for _ in range(60)) for _ in range(n // 4)]
    out = []
    for i in range(n):
        if i % 4 == 0:
            text = base[i // 4] + f" contact {EMAILS[i % 3]}"
        elif i % 4 == 1:  # exact duplicate of the one before (case and spacing differ)
            text = out[-1]["text"].upper().replace(" ", "  ", 3)
        elif i % 4 == 2:  # near duplicate: one word changed at the end
            text = base[i // 4].rsplit(" ", 1)[0] + " changed"
        elif i % 12 == 3:
            text = "short text"
        elif i % 12 == 7:
            text = "12345 67890 " * 8
        else:  # a second near duplicate: clusters of four
            text = base[i // 4].rsplit(" ", 2)[0] + " altered twice"
        out.append({"text": text})
    return out


def _full_report() -> Dict[str, Any]:
    guard = tdg.Guard([_ToyQuality(), tdg.ExactDedup(), tdg.NearDedup(threshold=0.7)], device="cpu", progress=False)
    kept = guard.wrap(_records())
    rep = guard.report()
    assert rep["dropped"] > 0 and len(kept) == rep["kept"]
    rep["throughput"] = {"wall_seconds": 0.5, "examples_per_second": 80.0}
    rep["machine"] = {"python": "3.11", "cpu_count": 2, "device": "cpu"}
    rep["privacy"] = {"unit": "example", "delta": 1e-5, "accountant": "prv", "epsilon_prv": 2.9, "epsilon_rdp": 3.1,
                      "noise_multiplier": 1.1,
                      "history": [{"step": s, "epsilon_prv": 0.3 * s ** 0.5, "epsilon_rdp": 0.32 * s ** 0.5}
                                  for s in range(0, 101, 10)]}
    rep["leakage"] = {"threshold": 0.8, "pairs": [{"train_id": 3, "test_id": "t-17", "score": 0.91},
                                                   {"train_id": 8, "test_id": "t-2", "score": 0.86}]}
    rep["training"] = {"accuracy": {"before": 0.52, "after": 0.96}, "epochs": 1}
    return rep


# -- tests ---------------------------------------------------------------------------------------------
def test_minimal_reports_render_every_section_or_leave_it_out():
    for rep in ({}, {"seen": 0, "kept": 0, "dropped": 0}, {"seen": 3, "kept": 3, "dropped": 0, "counts": {},
                                                            "scores": {}, "matches": [], "stages": []}):
        page = render_html(rep, options=STRICT)
        _assert_self_contained(page)
        heads = _parse(page).h2
        assert heads[:1] == ["Summary"]
        for always in ("Dropped examples", "Score distributions", "Duplicate clusters", "Personal data (PII)",
                       "Augmentation"):
            assert always in heads
        for optional in ("Differential privacy", "Train/test leakage", "Training", "Other report fields"):
            assert optional not in heads
        assert "No example was dropped." in page and "No duplicate was found." in page
        assert "<svg" not in page  # nothing to plot


def test_wrong_shapes_are_noted_not_fatal():
    rep = {"seen": 2, "kept": 1, "dropped": 1, "counts": [1, 2], "matches": "oops", "stages": 5,
           "dropped_by_reason": {"x/y": "many"}, "leakage": 3}
    page = render_html(rep, options=STRICT)
    notes = page[page.index('id="notes"'):]
    assert "&#x27;counts&#x27; has type list, expected an object" in notes
    assert "&#x27;matches&#x27; has type str, expected a list" in notes
    assert "&#x27;leakage&#x27; has type int" in notes and "&#x27;stages&#x27; has type int" in notes
    assert "x/y" not in page  # a non-numeric drop count is not a drop reason to show


def test_full_report_from_a_real_guard(tmp_path):
    rep = _full_report()
    page = render_html(rep, options=STRICT)
    _assert_self_contained(page)
    parsed = _parse(page)
    assert set(parsed.tags) <= ALLOWED_TAGS, set(parsed.tags) - ALLOWED_TAGS
    for heading in ("Summary", "Training", "Dropped examples", "Score distributions", "Duplicate clusters",
                    "Personal data (PII)", "Augmentation", "Other counters", "Differential privacy",
                    "Train/test leakage", "Stages", "Settings and machine"):
        assert heading in parsed.h2
    # one plot each: drops, two score histograms, two duplicate plots, PII, augmentation, epsilon
    assert page.count("<svg") == 8
    assert "keep \u2265 12 (toyq)" in page and "keep &lt; 0.2 (toyq)" in page
    # thresholds drawn on the histograms: the annotation text is in the SVG
    assert page.count(">min 12<") == 1 and page.count(">max 0.2<") == 1
    # every drop reason and every counter appear
    for reason in rep["dropped_by_reason"]:
        assert f"<code>{reason}</code>" in page
    assert "<code>augment/token_mask</code>" in page and "<code>normalize/whitespace</code>" in page
    # duplicate clusters list the kept id next to the ids that matched it
    groups: Dict[Any, List[Any]] = {}
    for m in rep["matches"]:
        groups.setdefault(m["matched"], []).append(m["id"])
    kept_id, dropped_ids = max(groups.items(), key=lambda kv: (len(kv[1]), -kv[0]))
    assert len(dropped_ids) == 3
    row = re.search(r"<tr><td class=num>1</td>.*?</tr>", page, re.S).group(0)
    assert f"<td class=num>4</td><td><code>{kept_id}</code></td>" in row
    for i in dropped_ids:
        assert re.search(rf'<code title="duplicate/(exact|near), similarity [0-9.]+">{i}</code>', row)
    assert "\u03b5 prv" in page and "1e-05" in page
    assert "t-17" in page and "0.91" in page
    # PII: counts by type only, never the values
    assert re.search(r"<code>email</code></td><td class=num>\d+</td>", page)
    for email in EMAILS:
        assert email not in page and email.split("@")[0] not in page
    # element ids are unique across the inline SVGs, and the output is deterministic
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert render_html(rep, options=STRICT) == page


def test_scan_writes_the_html_report(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _records(24)), encoding="utf-8")
    rep = scan(str(src), str(tmp_path / "out"), device="cpu", progress=False, threshold=0.7)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert rep["dropped_by_reason"].get("duplicate/exact") and rep["dropped_by_reason"].get("duplicate/near")
    assert "Duplicate clusters" in _parse(page).h2 and "in.jsonl" in page
    m = rep["matches"][0]
    assert f"<code>{m['matched']}</code>" in page and re.search(rf"<code title=[^>]*>{m['id']}</code>", page)
    for email in EMAILS:
        assert email not in page


def test_hostile_strings_are_escaped():
    evil = '<script>alert("x")</script>'
    img = '"><img src=x onerror=alert(1)>'
    rep = {
        "seen": 4, "kept": 2, "dropped": 2,
        "dropped_by_reason": {f"duplicate/{evil}": 1, "cost $5 $x^$": 1},
        "counts": {f"pii/{img}": 3, "augment/<b>bold</b>": 1, f"{evil}": 2},
        "scores": {f"q/{evil}": {"count": 2, "min": 0.0, "max": 1.0}},
        "score_values": {f"q/{evil}": [0.0, 1.0], "q/$\\frac{a}{b}$": [1.0, 2.0, 3.0]},
        "matches": [{"id": evil, "matched": img, "reason": "duplicate/exact", "score": None},
                    {"id": ["<a href='//x'>", 1], "matched": img, "reason": evil, "score": 0.9}],
        "stages": [{"name": evil, "kind": "index", "class": img, "config": {"thresholds": {f"q/{evil}": {"min": 0.5}}}}],
        "settings": {"device": "<iframe src=//evil>"}, "input": {"path": f"/data/{evil}.jsonl"},
        "leakage": [[evil, img, 0.9]], "training": {evil: img},
        "privacy": {"unit": evil, "history": [{"step": 1, "epsilon_prv": 0.1}]},
        evil: {"x": img},
    }
    page = render_html(rep, options=HtmlReportConfig(strict=True, title=f"run {evil}"))
    _assert_self_contained(page)
    assert set(_parse(page).tags) <= ALLOWED_TAGS
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # inside the SVG text too (matplotlib escapes its text nodes)
    svg_text = "".join(re.findall(r"<svg.*?</svg>", page, re.S))
    assert "&lt;script&gt;" in svg_text and "<script" not in svg_text


def test_any_text_in_ids_and_labels_is_safe(tmp_path):
    odd = "quality/\u65e5\u672c\u8a9e \U0001F600 \x00\x07 \u202e \ud800 tail"
    rep = {"seen": 3, "kept": 1, "dropped": 2, "dropped_by_reason": {odd: 1, "x/$": 1},
           "score_values": {odd: [1.0, 2.0, 3.0]}, "matches": [{"id": odd, "matched": 0, "reason": odd}]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no glyph or encoding warnings leak out
        path = write_html_report(rep, tmp_path / "odd.html", options=STRICT)
    page = open(path, encoding="utf-8").read()
    assert "\x00" not in page and "\x07" not in page and "\u65e5\u672c\u8a9e" in page and "\ufffd" in page
    assert page.count("<svg") == 3


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6),
       reason=st.text(max_size=30), key=st.text(max_size=30))
def test_property_arbitrary_strings_never_become_markup(ids, reason, key):
    rep = {"seen": len(ids) + 1, "kept": 1, "dropped": len(ids), "dropped_by_reason": {reason: len(ids)},
           "counts": {f"pii/{key}": 1, key: 2}, "scores": {key: {"count": 1, "min": 0.0}},
           "matches": [{"id": i, "matched": key, "reason": reason, "score": 0.9} for i in ids],
           "leakage": [[i, key] for i in ids], "settings": {key: reason}, key: ids}
    page = render_html(rep, options=HtmlReportConfig(plots=False, strict=True))
    parsed = _parse(page)
    assert set(parsed.tags) <= ALLOWED_TAGS
    assert parsed.tags.count("section") == len([h for h in parsed.h2 if h])
    assert all(not (name or "").lower().startswith("on") for name, _ in parsed.attrs)


def test_without_matplotlib_tables_still_render(monkeypatch):
    rep = _full_report()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    page = render_html(rep, options=STRICT)
    # the bar charts and histograms are drawn without matplotlib (drops, two scores, two duplicate plots, PII,
    # augmentation); only the epsilon plot of training needs it, and the page says so
    assert page.count("<svg") == 7 and 'aria-label="epsilon over training steps"' not in page
    assert "matplotlib is not installed" in page
    assert "<code>duplicate/exact</code>" in page and "<h2>Differential privacy</h2>" in page
    plain = render_html(rep, options=HtmlReportConfig(plots=False, strict=True))
    assert "<svg" not in plain and "matplotlib is not installed" not in plain


def test_caps_limit_long_lists():
    matches = [{"id": 1000 + i, "matched": i % 30, "reason": "duplicate/near", "score": 0.9} for i in range(300)]
    rep = {"seen": 330, "kept": 30, "dropped": 300, "dropped_by_reason": {"duplicate/near": 300},
           "matches": matches, "matches_truncated": 7}
    page = render_html(rep, options=HtmlReportConfig(max_clusters=3, max_ids_per_cluster=4, strict=True,
                                                      plots=False))
    assert "27 smaller clusters not listed" in page and "\u2026 and 6 more" in page
    assert "7 further pairs were counted" in page
    assert "30 clusters" in page and "top 3 of 30" in page


def test_a_failing_section_becomes_a_note(monkeypatch):
    def boom(ctx, rep):
        raise KeyError("secret value")

    monkeypatch.setattr(SECTIONS.get("pii"), "render", boom)
    with pytest.warns(RuntimeWarning, match="Personal data"):
        page = render_html({"seen": 1, "kept": 1, "dropped": 0}, options=HtmlReportConfig(plots=False))
    assert "could not be rendered (KeyError)" in page and "secret value" not in page
    with pytest.raises(KeyError):
        render_html({"seen": 1}, options=HtmlReportConfig(strict=True, plots=False))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ConfigError, match=r"report='list' is invalid"):
        render_html([1, 2])
    with pytest.raises(ConfigError) as err:
        HtmlReportConfig(max_clusters=0, plots="yes", title="")
    msg = str(err.value)
    assert "3 problem(s)" in msg and "max_clusters=0" in msg and "plots='yes'" in msg


def test_save_report_writes_json_and_html(tmp_path):
    rep = {"seen": 2, "kept": 1, "dropped": 1, "scores": {"q": {"count": 1, "mean": float("nan")}}}
    paths = save_report(rep, tmp_path / "nested", options=HtmlReportConfig(plots=False))
    assert sorted(os.listdir(tmp_path / "nested")) == ["report.html", "report.json"]
    data = json.loads(open(paths["json"], encoding="utf-8").read())  # strict JSON: NaN became text
    assert data["scores"]["q"]["mean"] == "nan" and data["dropped"] == 1
    assert open(paths["html"], encoding="utf-8").read().startswith("<!DOCTYPE html>")
    out = write_html_report(rep, tmp_path / "x.html", options=HtmlReportConfig(plots=False))
    assert out == str(tmp_path / "x.html")


# -- a real browser ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _browser() -> Optional[str]:
    """The first Chromium/Chrome that starts (``--version`` exits 0); a snap stub without its snap does not."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if not path:
            continue
        try:
            if subprocess.run([path, "--version"], capture_output=True, timeout=60).returncode == 0:
                return path
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


def _run_browser(browser: str, tmp_path, page_path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
           *extra, f"file://{page_path}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _page_errors(stderr: str) -> List[str]:
    """Console messages, uncaught errors and blocked loads in Chromium's log (its D-Bus noise is ignored)."""
    keys = ("Uncaught", "CONSOLE", "Refused to", "Content Security Policy", "net::ERR")
    return [line for line in stderr.splitlines() if any(k in line for k in keys)]


@pytest.mark.skipif(_browser() is None, reason="no Chromium/Chrome installed (apt-get install chromium)")
def test_report_renders_in_a_headless_browser(tmp_path):
    browser = _browser()
    path = tmp_path / "report.html"
    write_html_report(_full_report(), path, options=STRICT)
    res = _run_browser(browser, tmp_path, path, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert _page_errors(res.stderr) == []
    parsed = _parse(dom)
    for heading in ("Summary", "Dropped examples", "Score distributions", "Duplicate clusters",
                    "Personal data (PII)", "Augmentation", "Differential privacy", "Train/test leakage"):
        assert heading in parsed.h2
    assert parsed.tags.count("svg") == 8 and parsed.tags.count("text") > 50
    assert "script" not in parsed.tags

    shot = tmp_path / "shot.png"
    res = _run_browser(browser, tmp_path, path, "--window-size=1280,2000", f"--screenshot={shot}")
    assert res.returncode == 0 and _page_errors(res.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.skipif(_browser() is None, reason="no Chromium/Chrome installed (apt-get install chromium)")
def test_browser_check_catches_errors_and_hostile_ids_stay_text(tmp_path):
    browser = _browser()
    evil = '<script>console.error("pwned")</script><img src=x onerror=alert(1)>'
    rep = {"seen": 2, "kept": 1, "dropped": 1, "dropped_by_reason": {"duplicate/exact": 1},
           "matches": [{"id": evil, "matched": 0, "reason": "duplicate/exact", "score": None}]}
    path = tmp_path / "hostile.html"
    write_html_report(rep, path, options=STRICT)
    res = _run_browser(browser, tmp_path, path, "--dump-dom")
    assert res.returncode == 0 and _page_errors(res.stderr) == []
    tags = _parse(res.stdout).tags
    assert "script" not in tags and "img" not in tags
    assert "pwned" in res.stdout  # shown as text

    # negative control: a script smuggled into the page does not run (the page's policy blocks it), and the
    # console check reports the violation
    bad = tmp_path / "bad.html"
    smuggled = '<script>document.title = "RAN"; console.error("x")</script></main>'
    bad.write_text(path.read_text(encoding="utf-8").replace("</main>", smuggled), encoding="utf-8")
    res = _run_browser(browser, tmp_path, bad, "--dump-dom")
    assert "<title>torchdataguard report</title>" in res.stdout and "RAN" not in res.stdout.split("</title>")[0]
    assert any("Content Security Policy" in line for line in _page_errors(res.stderr))


def test_duplicate_clusters_keep_ids_of_different_types_apart():
    from torchdataguard.report.html.sections.duplicates import clusters

    matches = [{"id": 2, "matched": 1, "reason": "duplicate/exact"},
               {"id": "2", "matched": "1", "reason": "duplicate/exact"},
               {"id": 3, "matched": 2, "reason": "duplicate/near", "score": 0.9},
               {"id": {"doc": 5}, "matched": [1, "1"], "reason": "duplicate/exact"},
               {"id": True, "matched": 1.0, "reason": "duplicate/exact"}]
    found = clusters(matches)
    # 1 <- 2 <- 3 (ints), "1" <- "2" (strings), [1, "1"] <- {"doc": 5}, 1.0 <- True: four clusters
    assert [(c["kept"], [d[0] for d in c["dropped"]]) for c in found] == [
        ([1], [2, 3]), (["1"], ["2"]), ([[1, "1"]], [{"doc": 5}]), ([1.0], [True])]
