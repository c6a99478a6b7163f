"""Issue 19 item 5: the Trainer's log lines carry few tdg/* keys, DP logs the epsilon in force as dp/epsilon,
Opacus's "Optimal order" warning does not reach users, and the report is updated after evaluate()."""
import json
import warnings

import pytest
from conftest import ListStream as Stream
from conftest import make_tiny_bert
from test_integrations_trainer import BERT, Spy, args, records


def tiny_model():
    return make_tiny_bert(**BERT)
from transformers import Trainer, default_data_collator

import torchdataguard as tdg
from torchdataguard.dp.epsilon import epsilon_prv, noise_for_target
from torchdataguard.errors import ConfigError

pytest.importorskip("accelerate")


def guard():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(shingles="tokens")], device="cpu", chunk_size=32,
                     progress=False)


def run(tmp_path, log=None, data="map", **kw):
    g = guard()
    spy = Spy()
    train = g.wrap(records()) if data == "map" else g.wrap(Stream(records()))
    cb = tdg.GuardCallback(g) if log is None else tdg.GuardCallback(g, log=log)
    trainer = Trainer(model=tiny_model(), args=args(tmp_path, save_strategy="no", **kw), train_dataset=train,
                      data_collator=default_data_collator, eval_dataset=records(12, seed=3), callbacks=[spy, cb])
    trainer.train()
    return trainer, spy, cb


def tdg_keys(entry):
    return sorted(k for k in entry if k.startswith("tdg/"))


def test_a_log_line_carries_the_summary_and_the_rest_only_first_on_change_and_at_the_end(tmp_path):
    trainer, spy, _ = run(tmp_path)
    lines = [e for e in spy.logs if any(k.startswith("tdg/") for k in e)]
    steps = [e for e in lines if "loss" in e]
    final = [e for e in lines if "train_runtime" in e]
    assert len(steps) == 4 and len(final) == 1
    every = tdg_keys(final[0])
    assert {"tdg/seen", "tdg/kept", "tdg/dropped", "tdg/dropped/duplicate/exact",
            "tdg/guard_examples_per_second"} <= set(every)
    assert "tdg/examples_per_second" not in every  # named for what it is: the guard's scan speed
    assert tdg_keys(steps[0]) == every  # the first line has everything
    for e in steps[1:]:  # a map-style dataset is decided when wrapped: nothing else changes
        assert tdg_keys(e) == ["tdg/dropped", "tdg/kept", "tdg/seen"]
    assert final[0]["tdg/kept"] + final[0]["tdg/dropped"] == final[0]["tdg/seen"] == 120
    hist = [e for e in trainer.state.log_history if "train_runtime" in e]
    assert tdg_keys(hist[-1]) == every  # the Trainer's own history gets the same keys


def test_streamed_counters_are_logged_when_they_change(tmp_path):
    _, spy, _ = run(tmp_path, data="stream")
    steps = [e for e in spy.logs if "loss" in e]
    seen = [e["tdg/seen"] for e in steps]
    assert seen == sorted(seen) and seen[0] < seen[-1]  # the stream is decided as it is read
    changed = [e for e in steps[1:] if "tdg/dropped/duplicate/exact" in e]
    assert changed  # more duplicates met later: logged again
    assert all("tdg/guard_examples_per_second" not in e for e in steps[1:])


def test_log_all_logs_every_counter_every_line_and_a_bad_mode_is_refused(tmp_path):
    _, spy, _ = run(tmp_path, log="all")
    steps = [e for e in spy.logs if "loss" in e]
    assert len({tuple(tdg_keys(e)) for e in steps}) == 1 and len(tdg_keys(steps[-1])) > 3
    with pytest.raises(ConfigError, match="log='everything'"):
        tdg.GuardCallback(guard(), log="everything")


def test_the_report_is_updated_after_evaluate(tmp_path):
    trainer, _, _ = run(tmp_path)
    rep = json.loads((tmp_path / "report.json").read_text())
    assert "evaluation" not in rep["training"]  # written at the end of training, before evaluate()
    metrics = trainer.evaluate()
    rep = json.loads((tmp_path / "report.json").read_text())
    ev = rep["training"]["evaluation"]
    assert ev["eval_loss"] == pytest.approx(metrics["eval_loss"]) and ev["step"] == 8
    assert rep["training"]["global_step"] == 8  # the training section is kept
    assert not [k for k in ev if k.startswith(("tdg/", "dp/"))]  # metrics only, not the logged counters
    assert "eval_loss" in (tmp_path / "report.html").read_text()


def test_an_evaluation_during_training_reaches_the_final_report_without_rewriting_it_early(tmp_path):
    run(tmp_path, eval_strategy="steps", eval_steps=4)
    rep = json.loads((tmp_path / "report.json").read_text())
    ev = rep["training"]["evaluation"]
    assert ev["step"] == 8 and "eval_loss" in ev and not [k for k in ev if k.startswith("tdg/")]


def test_opacus_optimal_order_warning_is_not_shown_on_a_normal_run():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epsilon_prv([(1.0, 0.01, 100)], 1e-5)
        noise_for_target(target_epsilon=8.0, delta=1e-5, sample_rate=0.012, steps=80)
    assert not [w for w in caught if "Optimal order" in str(w.message)]
    # still shown for Opacus used directly (only the PRV computations inside torchdataguard are quiet)
    from opacus.accountants.analysis.rdp import get_privacy_spent

    with pytest.warns(UserWarning, match="Optimal order"):
        get_privacy_spent(orders=[2.0, 3.0], rdp=[1e-9, 1e-9], delta=1e-5)


def test_dp_run_logs_dp_epsilon_of_the_accountant_in_force(tmp_path):
    g = guard()
    cb = tdg.GuardCallback(g, privacy=tdg.DPConfig(target_epsilon=8.0, delta=1e-3, max_grad_norm=1.0, seed=1))
    spy = Spy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(model=tiny_model(), args=args(tmp_path, save_strategy="no", max_steps=4),
                          train_dataset=g.wrap(records()), data_collator=default_data_collator, callbacks=[spy, cb])
        trainer.train()
    assert not [w for w in caught if "Optimal order" in str(w.message)]
    steps = [e for e in spy.logs if "loss" in e]
    rep = cb.report()["privacy"]
    assert steps and all("dp/epsilon" in e and "dp/secondary/epsilon_rdp" in e for e in steps)
    assert steps[-1]["dp/epsilon"] == rep["epsilon_prv"] <= 8.0
