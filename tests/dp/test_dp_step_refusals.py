"""Every step is the one accounted, or it is refused: every trained parameter is clipped and noised (ghost clipping
refuses parameters it cannot clip), epsilon never restarts silently, a step taken in eval mode is refused, and
batch-level unit ids cannot override user-level units."""
import json
import os
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.augment.multiplicity import Multiplicity
from torchdataguard.dp import DPConfig, make_private
from torchdataguard.dp.accounting import LEDGER_FILE, PrivacyLedger
from torchdataguard.dp.epsilon import epsilon_rdp
from torchdataguard.errors import ConfigError, StateError
from test_dp_preflight_modes import MODES, Vectors, brute_force, hf_output  # noqa: E402 (sibling test module)

C = 0.05


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x, labels=None):
        return hf_output(self.b(torch.tanh(self.a(x))), labels)


def private(model, opt, mode="auto", batch_size=8, **cfg):
    base = dict(noise_multiplier=1.0, delta=1e-3, clipping=mode, seed=3, max_grad_norm=C)
    base.update(cfg)
    return tdg.make_private(model, opt, DataLoader(Vectors(), batch_size=batch_size), tdg.DPConfig(**base))


def one_step(dp, batch):
    dp.optimizer.zero_grad()
    dp.model(**batch).loss.backward()
    dp.optimizer.step()


# -- item 11: parameters the DP optimizer does not clip ------------------------------------------------------------
def test_a_second_optimizer_over_other_parameters_is_refused():
    model = TwoLayers()
    opt = torch.optim.SGD(model.b.parameters(), lr=0.1)
    torch.optim.SGD(model.a.parameters(), lr=0.1)  # would train layer a on the raw gradient
    with pytest.raises(ConfigError, match=r"not in the optimizer given to DP-SGD: \['a.weight', 'a.bias'\]"):
        private(model, opt)


@pytest.mark.parametrize("mode", MODES)
def test_a_layer_unfrozen_after_make_private_is_refused(mode):
    model = TwoLayers()
    model.a.requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    dp = private(model, opt, mode)
    batches = iter(dp.loader)
    one_step(dp, next(batches))
    model.a.requires_grad_(True)  # gradual unfreezing, without telling the engine
    before = model.a.weight.detach().clone()
    with pytest.raises(StateError, match=r"not clipped by the DP engine: \['a.weight', 'a.bias'\].*reattach"):
        one_step(dp, next(batches))
    assert torch.equal(model.a.weight, before) and model.a.weight.grad is None
    assert dp.report()["steps"] == 1
    dp.close()


@pytest.mark.parametrize("mode", MODES)
def test_reattach_after_unfreezing_clips_the_new_layer_exactly(mode):
    model = TwoLayers()
    model.a.requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dp = private(model, opt, mode, noise_multiplier=1e-9)
    batches = iter(dp.loader)
    one_step(dp, next(batches))
    model.a.requires_grad_(True)
    dp.reattach()
    ref = TwoLayers()
    ref.load_state_dict(model.state_dict())
    for batch in batches:
        want = brute_force(ref, batch, "x", 8.0)
        one_step(dp, batch)
        for p, w in zip(model.parameters(), want):
            torch.testing.assert_close(p.grad, w, atol=1e-6, rtol=1e-4)
    assert dp.report()["steps"] == 4 and any("re-attached at step 1" in n for n in dp.report()["notes"])
    dp.close()


# -- item 12: epsilon never restarts silently ----------------------------------------------------------------------
def test_a_second_train_call_continues_the_ledger(tmp_path, tiny_bert):
    from transformers import Trainer, TrainingArguments

    from test_dp_trainer import BERT, N, Rows, cfg

    cb = tdg.DPCallback(cfg())
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2,
                             max_steps=3, report_to=[], use_cpu=True, disable_tqdm=True, seed=0, optim="sgd",
                             save_strategy="no")
    trainer = Trainer(model=tiny_bert(**BERT), args=args, train_dataset=Rows(), callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
        first_seed = cb.engine.sampler.seed
        trainer.train()
    rep = cb.report()
    assert rep["steps"] == 6
    assert rep["epsilon_rdp"] == pytest.approx(epsilon_rdp([(1.0, 8 / N, 6)], 1e-3), rel=1e-5)
    assert cb.engine.sampler.seed != first_seed  # new Poisson draws, not the first call's again


def _adam_run(steps, tmp_path=None, load=False, opt_state=None):
    model = TwoLayers()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    dp = private(model, opt, noise_multiplier=1.0, accountant="rdp")
    if load:
        dp.load(tmp_path)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    done = 0
    for batch in dp.loader:
        if done == steps:
            break
        one_step(dp, batch)
        done += 1
    return dp, opt


def test_plain_loop_resume_without_its_ledger_is_refused(tmp_path):
    first, opt = _adam_run(3)
    first.save(tmp_path)
    state = opt.state_dict()
    with pytest.raises(StateError, match=r"optimizer's state shows 3 step\(s\) but the privacy ledger accounts 0"):
        _adam_run(2, opt_state=state)
    resumed, _ = _adam_run(2, tmp_path, load=True, opt_state=state)
    assert resumed.report()["steps"] == 5
    assert resumed.epsilon() == pytest.approx(epsilon_rdp([(1.0, 0.25, 5)], 1e-3))


def test_a_model_loaded_next_to_a_ledger_must_load_it_or_declare_a_new_one(tmp_path, tiny_bert):
    from transformers import BertForSequenceClassification

    tiny_bert(vocab_size=20, max_positions=16, num_labels=3).save_pretrained(tmp_path)
    led = PrivacyLedger(delta=1e-3)
    led.step(noise_multiplier=1.0, sample_rate=0.25, n=3)
    led.save(tmp_path)
    from test_dp_preflight_modes import Tokens

    def run(fix=None):
        model = BertForSequenceClassification.from_pretrained(tmp_path).train()
        dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(Tokens(), batch_size=6),
                              tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, seed=0))
        if fix:
            fix(dp)
        batch = next(iter(dp.loader))
        model(**batch).loss.backward()
        dp.optimizer.step()
        return dp

    with pytest.raises(StateError, match="holds a privacy ledger.*start_new_ledger"):
        run()
    assert run(lambda dp: dp.start_new_ledger()).report()["steps"] == 1


def test_a_ledger_of_other_settings_or_edited_is_refused(tmp_path):
    dp, _ = _adam_run(3)
    dp.save(tmp_path)
    path = tmp_path / LEDGER_FILE
    state = json.loads(path.read_text())
    assert state["history"] == [[1.0, 0.25, 3]] and state["checksum"].startswith("sha256:")
    state["history"][0][0] = 100.0  # an edit that would lower the reported epsilon
    path.write_text(json.dumps(state))
    with pytest.raises(StateError, match="checksum does not match"):
        _adam_run(0, tmp_path, load=True)
    for noise, rate, needle in [(100.0, 0.25, "noise multiplier 100.0, but this run's is 1.0"),
                                (1.0, 0.5, "sampling rate 0.5, but this run's is 0.25")]:
        other = PrivacyLedger(delta=1e-3, accountant="rdp")  # a well-formed ledger of another run
        other.step(noise_multiplier=noise, sample_rate=rate, n=3)
        other.save(tmp_path)
        with pytest.raises(StateError, match=needle):
            _adam_run(0, tmp_path, load=True)
    os.remove(path)


# -- item 13: a step in eval mode ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_a_step_in_eval_mode_is_refused(mode):
    model = TwoLayers()
    dp = private(model, torch.optim.SGD(model.parameters(), lr=0.5), mode)
    batches = iter(dp.loader)
    one_step(dp, next(batches))
    model.eval()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(StateError, match=r"eval mode.*model.train\(\)"):
        one_step(dp, next(batches))
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert dp.report()["steps"] == 1
    model.train()
    with pytest.raises(StateError, match="out of step"):  # the rest of this pass cannot be matched to its draws
        one_step(dp, next(batches))
    for batch in dp.loader:  # a new pass is fine
        one_step(dp, batch)
    assert dp.report()["steps"] == 5
    dp.close()


def test_trainer_on_a_model_loaded_next_to_a_ledger_continues_it_or_refuses(tmp_path, tiny_bert):
    from transformers import BertForSequenceClassification, Trainer, TrainingArguments

    from test_dp_trainer import BERT, N, Rows, cfg

    def run(cb, model):
        args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=2,
                                 report_to=[], use_cpu=True, disable_tqdm=True, seed=0, save_strategy="no")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Trainer(model=model, args=args, train_dataset=Rows(), callbacks=[cb]).train()
        return cb.report()

    ckpt = tmp_path / "dp_model"
    tiny_bert(**BERT).save_pretrained(ckpt)
    led = PrivacyLedger(delta=1e-3, accountant="rdp")
    led.step(noise_multiplier=1.0, sample_rate=4 / N, n=3)
    led.save(ckpt)
    with pytest.raises(StateError, match="holds a privacy ledger"):
        run(tdg.DPCallback(cfg()), BertForSequenceClassification.from_pretrained(ckpt))
    rep = run(tdg.DPCallback(cfg(), resume_from=str(ckpt)), BertForSequenceClassification.from_pretrained(ckpt))
    assert rep["steps"] == 5
    assert rep["epsilon_rdp"] == pytest.approx(epsilon_rdp([(1.0, 4 / N, 5)], 1e-3), rel=1e-5)
    assert run(tdg.DPCallback(cfg(), new_ledger=True), BertForSequenceClassification.from_pretrained(ckpt))["steps"] == 2


# -- parameters ghost clipping cannot clip, and two kinds of privacy unit at once -----------------------------------
class Functional(nn.Module):
    """``emb.weight`` is also used through F.linear, where Opacus' hooks cannot see it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.emb = nn.Linear(4, 2)

    def forward(self, input_ids=None, labels=None):
        logits = self.lin(input_ids * 1e-4) + nn.functional.linear(input_ids, self.emb.weight)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, input_ids=None, labels=None):
        logits = self.lin(input_ids)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


class DS(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g) * 1000
        self.y = torch.randint(0, 2, (64,), generator=g)

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


def test_ghost_without_preflight_refuses_parameters_it_cannot_clip():
    torch.manual_seed(0)
    m = Functional().train()
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    model, o, loader = make_private(m, opt, DataLoader(DS(), batch_size=8),
                                    DPConfig(noise_multiplier=1e-6, max_grad_norm=1.0, clipping="ghost",
                                             preflight=False, delta=1e-3, seed=0))
    b = next(iter(loader))
    with pytest.raises(tdg.ConfigError, match="no per-sample norm"):
        model(**b)["loss"].backward()
        o.step()


def test_batch_unit_ids_cannot_override_user_level_units():
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    m = Plain().train()
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    units = [0] * 32 + [1] * 32
    model, o, loader = make_private(m, opt, DataLoader(DS(), batch_size=1),
                                    DPConfig(noise_multiplier=1e-6, max_grad_norm=1.0, clipping="hooks",
                                             unit_reduction="sum", delta=1e-3, seed=3), unit_ids=units)
    with pytest.raises(tdg.ConfigError, match="one kind of unit"):
        for b in loader:
            b = Multiplicity(1)(b)
            model(**b)["loss"].backward()
            o.step()
