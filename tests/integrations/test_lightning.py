"""tdg.LightningGuardCallback with lightning's Trainer on CPU and a tiny random-init model."""
import csv
import json
import math
import types
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.errors import ConfigError, StateError

L = pytest.importorskip("lightning", reason="pip install 'torchdataguard[lightning]'")
pytestmark = pytest.mark.filterwarnings("ignore")


def records(n=48, distinct=40):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(distinct, 4, generator=g)
    return [{"id": i, "text": f"row number {i % distinct}", "x": xs[i % distinct].tolist(), "label": int(xs[i % distinct, 0] > 0)}
            for i in range(n)]


def collate(rows):
    return {"x": torch.tensor([r["x"] for r in rows]), "labels": torch.tensor([r["label"] for r in rows])}


class Tiny(L.LightningModule):
    def __init__(self, lr=0.5):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self(batch["x"]), batch["labels"])
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def guard():
    return tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, id_field="id")


def trainer(tmp_path, callbacks, **kw):
    opts = dict(default_root_dir=str(tmp_path), accelerator="cpu", devices=1, enable_progress_bar=False,
                enable_model_summary=False, log_every_n_steps=1, logger=L.pytorch.loggers.CSVLogger(str(tmp_path)),
                enable_checkpointing=False, max_epochs=1)
    opts.update(kw)
    return L.Trainer(callbacks=callbacks, **opts)


def fit(tmp_path, *, privacy=None, epochs=1, batch=8, ckpt_path=None, callbacks=(), **kw):
    g = guard()
    data = g.wrap(records(), source="train")
    cb = tdg.LightningGuardCallback(g, privacy=privacy)
    module = Tiny()
    t = trainer(tmp_path, [cb, *callbacks], max_epochs=epochs, **kw)
    t.fit(module, DataLoader(data, batch_size=batch, collate_fn=collate), ckpt_path=ckpt_path)
    return cb, module, t


def test_lazy_export_does_not_import_lightning_with_the_package():
    import subprocess
    import sys

    code = "import sys, torchdataguard; print('lightning' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    from torchdataguard.integrations.lightning import GuardCallback
    assert tdg.LightningGuardCallback is GuardCallback


def test_counters_reach_the_logger_and_the_report_is_written(tmp_path):
    cb, _, t = fit(tmp_path)
    rows = list(csv.DictReader(open(t.logger.experiment.metrics_file_path)))
    logged = [r for r in rows if r.get("tdg/kept")]
    assert logged, "no tdg/ counters in the CSV logger"
    last = logged[-1]
    assert float(last["tdg/seen"]) == 48 and float(last["tdg/kept"]) == 40 and float(last["tdg/dropped"]) == 8
    assert float(last["tdg/dropped/duplicate/exact"]) == 8
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["kept"] == 40 and rep["training"]["global_step"] == 5
    assert (tmp_path / "report.html").exists()


def weights(module):
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("private", [False, True])
def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, private):
    def cfg():
        return tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, max_grad_norm=1.0, seed=7) if private else None

    torch.manual_seed(1)
    full_cb, full, _ = fit(tmp_path / "full", privacy=cfg(), epochs=2)
    ck = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ck"), save_last=True)
    torch.manual_seed(1)
    fit(tmp_path / "part", privacy=cfg(), epochs=1, callbacks=[ck], enable_checkpointing=True)  # "killed" here
    torch.manual_seed(123)  # the resumed process starts from another random state
    res_cb, resumed, _ = fit(tmp_path / "resumed", privacy=cfg(), epochs=2, ckpt_path=str(tmp_path / "ck" / "last.ckpt"))
    for a, b in zip(weights(full), weights(resumed)):
        torch.testing.assert_close(a, b)
    assert res_cb.report()["seen"] == full_cb.report()["seen"] == 48
    if private:
        assert res_cb.report()["privacy"]["steps"] == full_cb.report()["privacy"]["steps"] == 10
        assert res_cb.report()["privacy"]["epsilon_prv"] == full_cb.report()["privacy"]["epsilon_prv"]


def test_resuming_dp_without_the_ledger_is_refused(tmp_path):
    ck = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ck"), save_last=True)
    fit(tmp_path / "a", epochs=1, callbacks=[ck], enable_checkpointing=True)  # saved without DP
    with pytest.raises(StateError, match="no privacy ledger"):
        fit(tmp_path / "b", privacy=tdg.DPConfig(noise_multiplier=1.0, delta=1e-3), epochs=2,
            ckpt_path=str(tmp_path / "ck" / "last.ckpt"))


def test_dp_epsilon_equals_an_independent_opacus_prv_computation(tmp_path):
    from opacus.accountants import PRVAccountant

    cb, _, _ = fit(tmp_path, privacy=tdg.DPConfig(noise_multiplier=0.9, delta=1e-3, seed=0), epochs=2, batch=4,
                   accumulate_grad_batches=2)
    rep = cb.report()["privacy"]
    assert rep["steps"] == 10 and rep["sample_rate"] == pytest.approx(8 / 40)
    acc = PRVAccountant()
    acc.history = [(0.9, 8 / 40, 10)]
    assert rep["epsilon_prv"] == pytest.approx(acc.get_epsilon(delta=1e-3, eps_error=0.01), rel=1e-3)
    rows = list(csv.DictReader(open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv")))
    eps = [float(r["dp/epsilon_prv"]) for r in rows if r.get("dp/epsilon_prv")]
    assert eps and eps[-1] == pytest.approx(rep["epsilon_prv"], rel=1e-3)


class Capture(L.pytorch.callbacks.Callback):
    """Batches as the module sees them, and the gradient the optimizer is about to apply."""

    def __init__(self):
        self.batches, self.grads = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append({k: v.clone() for k, v in batch.items()})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.grads.append((len(self.batches), [p.grad.detach().clone() for p in pl_module.parameters()]))


def test_private_gradient_equals_brute_force_clip_and_sum(tmp_path):
    cap = Capture()
    g = guard()
    data = g.wrap(records(), source="train")
    cb = tdg.LightningGuardCallback(g, privacy=tdg.DPConfig(noise_multiplier=1e-9, delta=1e-3, max_grad_norm=0.05,
                                                            seed=3, clipping="hooks"))
    module = Tiny(lr=0.0)
    ref = Tiny(lr=0.0)
    t = trainer(tmp_path, [cb, cap], accumulate_grad_batches=2)
    t.fit(module, DataLoader(data, batch_size=4, collate_fn=collate))
    assert cap.grads and len(cap.grads) == 5
    done = 0
    for upto, got in cap.grads:
        rows = [(b["x"][i], b["labels"][i]) for b in cap.batches[done:upto] for i in range(len(b["labels"]))]
        want = [torch.zeros_like(p) for p in ref.parameters()]
        for x, y in rows:
            ref.zero_grad()
            nn.functional.cross_entropy(ref(x[None]), y[None]).backward()
            gs = [p.grad for p in ref.parameters()]
            norm = math.sqrt(sum(float((t ** 2).sum()) for t in gs))
            for w, t in zip(want, gs):
                w += min(1.0, 0.05 / (norm + 1e-6)) * t
        for a, w in zip(got, want):
            torch.testing.assert_close(a, w / 8.0, atol=1e-6, rtol=1e-4)
        done = upto
    assert done == len(cap.batches)


def test_refusals_name_the_fix(tmp_path):
    priv = tdg.DPConfig(noise_multiplier=1.0, delta=1e-3)
    with pytest.raises(ConfigError, match="gradient_clip_val"):
        fit(tmp_path / "a", privacy=priv, gradient_clip_val=1.0)
    g = guard()
    cb = tdg.LightningGuardCallback(g, privacy=priv)
    fake = types.SimpleNamespace(gradient_clip_val=None, precision="16-mixed", world_size=1)
    with pytest.raises(ConfigError, match="bf16-mixed"):
        cb.setup(fake, None, "fit")
    data = g.wrap(records(), source="train")
    with pytest.raises(ConfigError, match="shuffle"):
        trainer(tmp_path / "b", [cb]).fit(Tiny(), DataLoader(data, batch_size=8, shuffle=True, collate_fn=collate))
    with pytest.raises(ConfigError, match="Guard"):
        tdg.LightningGuardCallback(object())


def test_training_data_that_did_not_come_out_of_the_guard_is_refused(tmp_path):
    g = guard()
    rows = records()
    g.wrap(rows, source="train")  # the slip: the result (40 of 48 rows) not used
    t = trainer(tmp_path, [tdg.LightningGuardCallback(g)])
    with pytest.raises(ConfigError, match="holds 48 examples, as many as the data given to guard.wrap, not the 40"):
        t.fit(Tiny(), DataLoader(rows, batch_size=8, collate_fn=collate))
    t = trainer(tmp_path, [tdg.LightningGuardCallback(guard())])
    with pytest.raises(ConfigError, match="has not wrapped any data"):
        t.fit(Tiny(), DataLoader(rows, batch_size=8, collate_fn=collate))
