import json
import os

import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

import torchdataguard as tdg

T = 16
BERT = dict(vocab_size=100, max_positions=T)  # the tiny model of these tests (conftest.make_tiny_bert)


def records(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        if i % 5 == 4:
            rec = dict(out[i - 3])  # an exact duplicate, three positions later
        else:
            ids = torch.randint(5, 99, (T,), generator=g).tolist()
            rec = {"input_ids": ids, "attention_mask": [1] * T, "labels": int(ids[0] % 2)}
        out.append(rec)
    return out


def make_guard():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(shingles="tokens")], device="cpu", chunk_size=32, progress=False)


def args(out, **kw):
    base = dict(output_dir=str(out), per_device_train_batch_size=4, max_steps=8, logging_steps=2, save_steps=4,
                report_to=[], use_cpu=True, seed=0, disable_tqdm=True)
    base.update(kw)
    return TrainingArguments(**base)


class Spy(TrainerCallback):
    """Stands for a reporting integration registered before the user's callbacks."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kw):
        self.logs.append(dict(logs or {}))


class Crash(Exception):
    pass


class CrashAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise Crash()


def test_counters_reach_logs_and_integrations(tmp_path, tiny_bert, list_stream):
    guard = make_guard()
    spy = Spy()
    trainer = Trainer(model=tiny_bert(**BERT), args=args(tmp_path, gradient_accumulation_steps=2),
                      train_dataset=guard.wrap(list_stream(records())), data_collator=default_data_collator,
                      eval_dataset=guard.wrap(records(20, seed=1), source="eval"),
                      callbacks=[spy])
    trainer.add_callback(tdg.GuardCallback(guard))
    trainer.train()
    logged = [entry for entry in spy.logs if "tdg/seen" in entry]
    assert logged, "the reporting callback never saw the guard's counters"
    assert logged[-1]["tdg/kept"] + logged[-1]["tdg/dropped"] == logged[-1]["tdg/seen"]
    assert any("tdg/dropped/duplicate/exact" in e for e in logged)
    hist = [e for e in trainer.state.log_history if "tdg/seen" in e]
    assert hist
    ckpt = tmp_path / "checkpoint-4" / "torchdataguard"
    assert (ckpt / "guard_state.json").exists()  # the commit record, naming its tensor file
    assert (ckpt / json.loads((ckpt / "guard_state.json").read_text())["tensors"]["file"]).exists()
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["seen"] == guard.report()["seen"] and rep["training"]["global_step"] == 8
    metrics = trainer.evaluate()
    assert "eval_loss" in metrics


def test_kill_and_resume_continues_counters_without_double_counting(tmp_path, tiny_bert, list_stream):
    # uninterrupted reference
    ref_guard = make_guard()
    Trainer(model=tiny_bert(**BERT), args=args(tmp_path / "ref"), train_dataset=ref_guard.wrap(list_stream(records())),
            data_collator=default_data_collator, callbacks=[tdg.GuardCallback(ref_guard)]).train()
    ref = ref_guard.report()
    # killed after the checkpoint at step 4
    g1 = make_guard()
    t1 = Trainer(model=tiny_bert(**BERT), args=args(tmp_path / "run"), train_dataset=g1.wrap(list_stream(records())),
                 data_collator=default_data_collator, callbacks=[tdg.GuardCallback(g1), CrashAt(6)])
    with pytest.raises(Crash):
        t1.train()
    # a fresh process: new guard, new wrapped data, resume from the last checkpoint
    g2 = make_guard()
    t2 = Trainer(model=tiny_bert(**BERT), args=args(tmp_path / "run"), train_dataset=g2.wrap(list_stream(records())),
                 data_collator=default_data_collator, callbacks=[tdg.GuardCallback(g2)])
    t2.train(resume_from_checkpoint=True)
    got = g2.report()
    for key in ("seen", "kept", "dropped", "dropped_by_reason"):
        assert got[key] == ref[key], key
    assert got["replayed"] > 0  # the resumed run replayed the examples it had already decided


def test_resume_without_guard_state_is_an_error(tmp_path, tiny_bert, list_stream):
    g1 = make_guard()
    Trainer(model=tiny_bert(**BERT), args=args(tmp_path, max_steps=4), train_dataset=g1.wrap(list_stream(records())),
            data_collator=default_data_collator).train()  # no callback: checkpoints lack the guard state
    g2 = make_guard()
    t2 = Trainer(model=tiny_bert(**BERT), args=args(tmp_path, max_steps=6),
                 train_dataset=g2.wrap(list_stream(records())), data_collator=default_data_collator,
                 callbacks=[tdg.GuardCallback(g2)])
    with pytest.raises(tdg.StateError, match="no guard state"):
        t2.train(resume_from_checkpoint=True)


def test_callback_with_distributed_guard_saves_and_resumes(tmp_path, tiny_bert, list_stream):
    # without a process group DistributedGuard is a world of one: the callback must save its per-rank files
    ref_guard = make_guard()
    Trainer(model=tiny_bert(**BERT), args=args(tmp_path / "ref"), train_dataset=ref_guard.wrap(list_stream(records())),
            data_collator=default_data_collator, callbacks=[tdg.GuardCallback(ref_guard)]).train()
    d1 = tdg.DistributedGuard(make_guard())
    t1 = Trainer(model=tiny_bert(**BERT), args=args(tmp_path / "run"), train_dataset=d1.wrap(list_stream(records())),
                 data_collator=default_data_collator, callbacks=[tdg.GuardCallback(d1), CrashAt(6)])
    with pytest.raises(Crash):
        t1.train()
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoint-4" / "torchdataguard").iterdir())
    assert any(f.startswith("guard_state.rank0") for f in files)
    d2 = tdg.DistributedGuard(make_guard())
    Trainer(model=tiny_bert(**BERT), args=args(tmp_path / "run"), train_dataset=d2.wrap(list_stream(records())),
            data_collator=default_data_collator, callbacks=[tdg.GuardCallback(d2)]).train(resume_from_checkpoint=True)
    got, ref = d2.report(), ref_guard.report()
    assert (got["seen"], got["kept"]) == (ref["seen"], ref["kept"])
    assert json.loads((tmp_path / "run" / "report.json").read_text())["seen"] == ref["seen"]
