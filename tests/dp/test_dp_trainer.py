"""DPCallback with the Hugging Face Trainer on a tiny random BERT (built from a config, offline)."""
import os
import shutil
import warnings

import pytest
import torch

pytest.importorskip("accelerate")
from conftest import make_tiny_bert  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

import torchdataguard as tdg  # noqa: E402
from torchdataguard.dp.accounting import LEDGER_FILE  # noqa: E402
from torchdataguard.dp.epsilon import epsilon_rdp  # noqa: E402
from torchdataguard.errors import ConfigError, StateError  # noqa: E402

N = 40
#: the tiny model of these tests (conftest.make_tiny_bert), dropout off
BERT = dict(vocab_size=50, max_positions=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class Rows(torch.utils.data.Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"input_ids": torch.randint(1, 50, (8,), generator=g), "labels": torch.tensor(i % 2)}


def train(tmp, cb, *, batch=4, accum=2, steps=4, resume=None, save=True, optim="adamw_torch", lr=5e-5, model=None):
    args = TrainingArguments(output_dir=str(tmp), per_device_train_batch_size=batch, gradient_accumulation_steps=accum,
                             max_steps=steps, logging_steps=2, save_strategy="steps" if save else "no", save_steps=2,
                             report_to=[], use_cpu=True, disable_tqdm=True, seed=0, optim=optim, learning_rate=lr)
    model = model or make_tiny_bert(**BERT)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=resume)
    return trainer, model


def cfg(**kw):
    base = dict(noise_multiplier=1.0, delta=1e-3, accountant="rdp", seed=11)
    base.update(kw)
    return tdg.DPConfig(**base)


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """One 4-step DP run with checkpoints at steps 2 and 4 (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("dp_trainer")
    cb = tdg.DPCallback(cfg())
    trainer, model = train(tmp, cb)
    return tmp, cb, trainer, model


def test_trainer_logs_epsilon_hides_grad_norm_and_checkpoints_the_ledger(four_steps):
    tmp_path, cb, trainer, model = four_steps
    logs = [h for h in trainer.state.log_history if "loss" in h]
    # issue 19: the accountant in force (rdp here) is dp/epsilon, the other a secondary key
    assert logs and all("dp/epsilon" in h and "dp/secondary/epsilon_prv" in h for h in logs)
    assert not any("dp/epsilon_rdp" in h or "dp/epsilon_prv" in h for h in trainer.state.log_history)
    assert not any("grad_norm" in h for h in trainer.state.log_history)
    q = 4 * 2 / N
    rep = cb.report()
    assert rep["steps"] == 4 and rep["sample_rate"] == pytest.approx(q)
    assert rep["epsilon_rdp"] == pytest.approx(epsilon_rdp([(1.0, q, 4)], 1e-3), rel=1e-5)
    assert logs[-1]["dp/epsilon"] == rep["epsilon_rdp"] and logs[-1]["dp/secondary/epsilon_prv"] == rep["epsilon_prv"]
    assert [p["step"] for p in rep["history"]] == [2, 4]
    assert rep["approximate"] is False and rep["sampling"] == "poisson"
    assert os.path.exists(tmp_path / "checkpoint-2" / LEDGER_FILE)
    assert os.path.exists(tmp_path / "checkpoint-4" / LEDGER_FILE)
    assert trainer.args.max_grad_norm == 1.0  # restored after training
    assert not hasattr(next(model.parameters()), "grad_sample")  # hooks removed: the model is plain again


def test_resume_continues_epsilon_and_refuses_a_missing_ledger(four_steps, tmp_path):
    shutil.copytree(four_steps[0] / "checkpoint-4", tmp_path / "checkpoint-4")
    cb = tdg.DPCallback(cfg())
    train(tmp_path, cb, steps=6, resume=str(tmp_path / "checkpoint-4"), save=False)
    q = 8 / N
    assert cb.report()["steps"] == 6
    assert cb.report()["epsilon_rdp"] == pytest.approx(epsilon_rdp([(1.0, q, 6)], 1e-3), rel=1e-5)
    shutil.copytree(tmp_path / "checkpoint-4", tmp_path / "copy" / "checkpoint-4")
    os.remove(tmp_path / "copy" / "checkpoint-4" / LEDGER_FILE)
    with pytest.raises(StateError, match="no privacy ledger"):
        train(tmp_path / "copy", tdg.DPCallback(cfg()), steps=6, resume=str(tmp_path / "copy" / "checkpoint-4"))


def test_budget_stops_training(tmp_path):
    cb = tdg.DPCallback(cfg(target_epsilon=3.5))
    trainer, _ = train(tmp_path, cb, steps=30, save=False)
    rep = cb.report()
    assert rep["budget_stopped"] and 0 < trainer.state.global_step == rep["steps"] < 30
    assert rep["epsilon_rdp"] <= 3.5 < epsilon_rdp([(1.0, 8 / N, rep["steps"] + 1)], 1e-3)


def test_accumulation_and_clipping_modes_give_the_same_update(tmp_path):
    """Same Poisson draws (seeded), same noise: B=4 x 2 accumulation (hooks, ghost, bk) == B=8 (hooks, bk)."""
    results = []
    runs = [(4, 2, "hooks"), (8, 1, "hooks"), (4, 2, "ghost"), (4, 2, "bk"), (8, 1, "bk")]
    for i, (batch, accum, mode) in enumerate(runs):
        torch.manual_seed(123)
        cb = tdg.DPCallback(cfg(max_grad_norm=0.1, clipping=mode))
        _, model = train(tmp_path / str(i), cb, batch=batch, accum=accum, steps=2, save=False, optim="sgd", lr=1.0)
        assert cb.report()["clipping"] == mode
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    start = torch.cat([p.detach().flatten() for p in make_tiny_bert(**BERT).parameters()])
    assert (results[0] - start).abs().max() > 1e-3  # it trained
    for other in results[1:]:
        torch.testing.assert_close(results[0], other, atol=2e-5, rtol=1e-4)


def test_trainer_refusals(tmp_path):
    with pytest.raises(ConfigError, match="drop_last"):
        args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1, report_to=[],
                                 use_cpu=True, disable_tqdm=True, dataloader_drop_last=True, save_strategy="no")
        Trainer(model=make_tiny_bert(**BERT), args=args, train_dataset=Rows(),
                callbacks=[tdg.DPCallback(cfg())]).train()
    with pytest.raises(ConfigError, match="delta=0.5 >= 1/N"):
        train(tmp_path, tdg.DPCallback(cfg(delta=0.5)), steps=1, save=False)


def test_fp16_loss_scaling_is_refused():
    """A GradScaler would scale each example's gradient before clipping and skip steps on overflow."""
    from types import SimpleNamespace

    cb = tdg.DPCallback(cfg())
    args = SimpleNamespace(fp16=True, world_size=1, n_gpu=1, max_grad_norm=1.0)
    model = make_tiny_bert(**BERT)
    with pytest.raises(ConfigError, match="refuses fp16=True.*bf16=True"):
        cb.on_train_begin(args, SimpleNamespace(global_step=0, max_steps=4), SimpleNamespace(), model=model,
                          optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train_dataloader=object())


def test_bf16_trains_under_dp_and_the_preflight_allows_for_its_rounding(tmp_path):
    """bf16=True, the setting the fp16 refusal recommends: autocast rounds the gradients to 16 bits, which the
    summed-per-sample-gradient check took for a missing per-sample gradient (PreflightError before the first step)."""
    cb = tdg.DPCallback(cfg())
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, report_to=[],
                             use_cpu=True, disable_tqdm=True, seed=0, bf16=True, save_strategy="no")
    trainer = Trainer(model=make_tiny_bert(**BERT, layers=2), args=args, train_dataset=Rows(), callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    rep = cb.report()
    assert rep["steps"] == 2 and trainer.state.global_step == 2
    assert any("compute in ['torch.bfloat16']" in n for n in rep["preflight"]["notes"])


def test_label_smoothing_gives_each_example_its_own_gradient(tmp_path, monkeypatch):
    """label_smoothing_factor: the Trainer computes the loss outside the model (labels taken out of its inputs),
    divided by num_items_in_batch over the 2 accumulated micro-batches. Each example's gradient was rescaled as if
    the loss were its micro-batch's mean, so every one came out about half its size (silently, before clipping).
    Without noise and with a clipping bound never reached, the update is the summed gradient over the expected batch."""
    import copy

    import torchdataguard.dp.engine as engine_module

    release = engine_module.release_noisy_mean
    monkeypatch.setattr(engine_module, "release_noisy_mean",
                        lambda opt, params, **kw: release(opt, params, **{**kw, "noise_multiplier": 0.0}))
    model = make_tiny_bert(**BERT)
    start = copy.deepcopy(model)
    seen = []

    def collate(rows):
        seen.append(torch.utils.data.default_collate(rows))
        return seen[-1]

    cb = tdg.DPCallback(cfg(max_grad_norm=1e4, clipping="hooks"))
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2,
                             max_steps=1, report_to=[], use_cpu=True, disable_tqdm=True, seed=0, optim="sgd",
                             learning_rate=1.0, lr_scheduler_type="constant", label_smoothing_factor=0.1,
                             save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=collate, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    plans = cb.engine.sampler.plans
    drawn = [b for i, b in enumerate(seen[1:3]) if not plans[i].pad]  # seen[0]: the preflight batch
    loss = sum(torch.nn.functional.cross_entropy(start(input_ids=b["input_ids"]).logits, b["labels"],
                                                 label_smoothing=0.1, reduction="sum") for b in drawn)
    loss.backward()
    for (name, p), q in zip(model.named_parameters(), start.parameters()):
        torch.testing.assert_close(p.detach(), q.detach() - q.grad / 8, atol=1e-6, rtol=1e-4, msg=name)


def test_label_smoothing_of_token_labels_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    class Tokens(Rows):
        def __getitem__(self, i):
            ids = super().__getitem__(i)["input_ids"]
            return {"input_ids": ids, "labels": ids}

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1, report_to=[],
                             use_cpu=True, disable_tqdm=True, label_smoothing_factor=0.1, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[tdg.DPCallback(cfg())])
    with pytest.raises(ConfigError, match="label_smoothing_factor > 0 on token-level labels"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_gradient_checkpointing_is_refused_with_the_fix(tmp_path):
    """Checkpointing re-runs the layers inside the backward pass; the preflight blamed custom layers "invisible to
    Opacus's hooks" and offered preflight=False, with which clipping='hooks' trained on wrong per-example gradients."""
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1, report_to=[],
                             use_cpu=True, disable_tqdm=True, gradient_checkpointing=True, save_strategy="no")
    for preflight in (True, False):
        trainer = Trainer(model=make_tiny_bert(**BERT), args=args, train_dataset=Rows(),
                          callbacks=[tdg.DPCallback(cfg(clipping="hooks", preflight=preflight))])
        with pytest.raises(ConfigError, match="gradient checkpointing is on"):
            trainer.train()
        assert trainer.state.global_step == 0
    model = make_tiny_bert(**BERT)
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    model.train()
    with pytest.raises(ConfigError, match="gradient checkpointing is on"):
        tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1),
                         torch.utils.data.DataLoader(Rows(), batch_size=4), cfg())


@pytest.mark.parametrize("mode", ["bk", "hooks"])
def test_a_compute_loss_calling_the_model_twice_is_refused_with_the_reason(tmp_path, mode):
    """R-drop style: two training-mode passes on one batch before its backward pass. Book-keeping crashed with
    AttributeError ('NoneType' object has no attribute 'reshape'); hooks said the loader was out of step."""

    class TwoPasses(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            first, second = model(**inputs), model(**inputs)
            return (first.loss + second.loss) / 2

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=2, report_to=[],
                             use_cpu=True, disable_tqdm=True, save_strategy="no")
    trainer = TwoPasses(model=make_tiny_bert(**BERT), args=args, train_dataset=Rows(),
                        callbacks=[tdg.DPCallback(cfg(clipping=mode))])
    with pytest.raises(StateError, match="calls the model twice"):
        trainer.train()
    assert cb_steps(trainer) == 0


def cb_steps(trainer):
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, tdg.DPCallback)).report()["steps"]
