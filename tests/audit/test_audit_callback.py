"""GuardCallback(audit=...): the audit runs after the last step, reaches the Trainer's logs and the report, next to
the accountant's epsilon, and a lower bound above that epsilon is reported loudly."""
import json
import logging
import warnings

import pytest
import torch
from conftest import ListStream

pytest.importorskip("accelerate")
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments  # noqa: E402

import torchdataguard as tdg  # noqa: E402
from torchdataguard.audit.compare import compare_with_accountant  # noqa: E402
from torchdataguard.report.html import HtmlReportConfig, render_html  # noqa: E402

T = 8


def rows(n=160):
    g = torch.Generator().manual_seed(0)
    return [{"input_ids": torch.randint(1, 50, (T,), generator=g).tolist(), "attention_mask": [1] * T,
             "labels": i % 2} for i in range(n)]


def bert():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16, num_labels=2, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(cfg)


def run_trainer(tmp_path, cb, data, steps=12):
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=steps, logging_steps=5,
                             save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
                             learning_rate=1e-3)
    trainer = Trainer(model=bert(), args=args, train_dataset=data, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    return trainer


@pytest.mark.parametrize("private", [False, True])
def test_the_audit_reaches_the_logs_and_the_report_next_to_the_accountant(tmp_path, private):
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    audit = tdg.PrivacyAudit(num_canaries=40, seed=0)
    privacy = tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, accountant="rdp", seed=1) if private else None
    cb = tdg.GuardCallback(guard, privacy=privacy, audit=audit)
    trainer = run_trainer(tmp_path, cb, guard.wrap(audit.wrap(rows())))
    logged = [h for h in trainer.state.log_history if "audit/epsilon_lower_bound" in h]
    assert len(logged) == 1 and logged[0]["step"] == 12
    assert {"audit/auc", "audit/guesses", "audit/correct", "audit/exceeds_accountant"} <= set(logged[0])
    rep = json.loads((tmp_path / "report.json").read_text())
    res = rep["audit"]
    assert res["num_canaries"] == 40 and res["included"] == audit.included
    assert rep["counts"]["audit/canary"] == audit.included and "note" not in res
    if private:
        assert res["delta"] == 1e-3  # the bound tests the accountant's delta
        assert res["accountant_epsilon"] == pytest.approx(rep["privacy"]["epsilon"])
        assert res["exceeds_accountant"] is False and "warning" not in res
    else:
        assert res["accountant_epsilon"] == "inf" and res["delta"] == 0.0
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Privacy audit</h2>" in page and "canary losses by coin" in page


def test_a_bound_above_the_accountant_is_reported_loudly(tmp_path, caplog):
    res = compare_with_accountant({"epsilon_lower_bound": 3.2, "confidence": 0.95}, {"epsilon": 1.0, "delta": 1e-5})
    assert res["exceeds_accountant"] is True and "BROKEN PRIVACY GUARANTEE" in res["warning"]
    assert compare_with_accountant({"epsilon_lower_bound": 0.4}, {"epsilon": 1.0})["exceeds_accountant"] is False

    class StubDP:  # stands for DPCallback: an accountant that claims far less than the audit finds
        def report(self):
            return {"epsilon_rdp": 0.05, "epsilon": 0.05, "accountant": "rdp", "delta": 1e-5}

    guard = tdg.Guard([], device="cpu", progress=False)
    audit = tdg.PrivacyAudit(num_canaries=40, seed=0)
    guard.wrap(audit.wrap(rows()))
    coin_of = {id(c): coin for c, coin in zip(audit.canaries, audit.coins)}
    real_run = audit.run
    audit.run = lambda model, score_fn=None, delta=None: real_run(  # a model that memorised every canary
        model, score_fn=lambda m, recs: [0.0 if coin_of.get(id(r)) else 5.0 for r in recs], delta=delta)
    cb = tdg.GuardCallback(guard, audit=audit)
    cb.dp = StubDP()
    with caplog.at_level(logging.WARNING), pytest.warns(RuntimeWarning, match="BROKEN PRIVACY GUARANTEE"):
        out = cb.run_audit(bert())
    assert out["exceeds_accountant"] is True and out["delta"] == 1e-5
    assert any("BROKEN PRIVACY GUARANTEE" in r.getMessage() for r in caplog.records)
    assert cb.audit_logs()["audit/exceeds_accountant"] == 1
    page = render_html({**guard.report(), "audit": cb.report()["audit"]}, options=HtmlReportConfig(plots=False))
    assert "Broken privacy guarantee" in page and 'role="alert"' in page


def test_canaries_the_guard_did_not_see_are_noted(tmp_path):
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    audit = tdg.PrivacyAudit(num_canaries=40, seed=0)
    data = audit.wrap(rows())
    cb = tdg.GuardCallback(guard, audit=audit)
    # trained on the canaries without the guard seeing them: a stream (map-style data the guard never wrapped is
    # refused when training begins, tests/integrations/test_integrations_training_data.py)
    run_trainer(tmp_path, cb, ListStream(list(data)), steps=3)
    assert "the guard counted 0 canaries" in json.loads((tmp_path / "report.json").read_text())["audit"]["note"]
    with pytest.raises(tdg.ConfigError, match="has not wrapped any data"):
        run_trainer(tmp_path, tdg.GuardCallback(guard, audit=audit), list(data), steps=3)


def test_audit_must_be_a_privacy_audit():
    with pytest.raises(tdg.ConfigError, match="PrivacyAudit"):
        tdg.GuardCallback(tdg.Guard([], device="cpu", progress=False), audit=object())
