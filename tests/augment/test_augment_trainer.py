"""Augmentation through the Trainer: GuardCallback's forward pre-hook applies the batch stages on the
device during training, counts reach the logs, and a resumed run continues the random stream."""
import torch
from conftest import ListDataset, make_tiny_bert, padded_sentences
from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

import torchdataguard as tdg
from torchdataguard.augment import TokenAugment

T, VOCAB = 12, 60


def make_guard():
    aug = TokenAugment(mask_rate=0.15, delete_rate=0.1, mask_token_id=3, pad_token_id=0, vocab_size=VOCAB,
                       special_ids=[0, 1, 2, 3], seed=7)
    return tdg.Guard([aug], device="cpu", progress=False)


def args(out, **kw):
    base = dict(output_dir=str(out), per_device_train_batch_size=4, max_steps=6, logging_steps=2, save_steps=3,
                report_to=[], use_cpu=True, seed=0, disable_tqdm=True)
    base.update(kw)
    return TrainingArguments(**base)


class Crash(Exception):
    pass


class CrashAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise Crash()


def run(tmp, guard, *, crash=None, resume=None):
    model = make_tiny_bert(vocab_size=VOCAB, max_positions=T)
    seen = []
    trainer = Trainer(model=model, args=args(tmp), train_dataset=ListDataset(padded_sentences(48, T, VOCAB)),
                      data_collator=default_data_collator,
                      callbacks=[CrashAt(crash)] if crash else [])
    trainer.add_callback(tdg.GuardCallback(guard))
    # registered after the callback's hook exists (on_train_begin), so it sees the augmented kwargs
    orig = trainer.callback_handler.on_train_begin

    def on_train_begin(*a, **k):
        out = orig(*a, **k)
        model.register_forward_pre_hook(lambda m, args_, kw: seen.append(kw["input_ids"].clone()), with_kwargs=True)
        return out

    trainer.callback_handler.on_train_begin = on_train_begin
    try:
        trainer.train(resume_from_checkpoint=resume)
    except Crash:
        pass
    return trainer, seen


def test_trainer_hook_augments_counts_and_resumes_the_stream(tmp_path):
    ref_guard = make_guard()
    trainer, ref_seen = run(tmp_path / "ref", ref_guard)
    logs = [e for e in trainer.state.log_history if "tdg/augment/token/examples" in e]
    assert logs and logs[-1]["tdg/augment/token/examples"] == 6 * 4
    assert logs[-1]["tdg/augment/token/masked"] > 0
    assert len(ref_seen) == 6
    data = torch.tensor([r["input_ids"] for r in padded_sentences(48, T, VOCAB)])
    assert not all(any(torch.equal(row, d) for d in data) for b in ref_seen for row in b)  # augmented
    ref_state = ref_guard.stage("token_augment").state_dict()
    assert int(ref_state["offset"]) == 24

    g1 = make_guard()
    run(tmp_path / "run", g1, crash=4)  # killed after the checkpoint of step 3
    g2 = make_guard()
    _, seen2 = run(tmp_path / "run", g2, resume=str(tmp_path / "run" / "checkpoint-3"))
    st = g2.stage("token_augment").state_dict()
    assert int(st["offset"]) == 24 and st["counters"] == ref_state["counters"]
    assert len(seen2) == 3
    for a, b in zip(seen2, ref_seen[3:]):  # the resumed steps see exactly the augmentation of the straight run
        assert torch.equal(a, b)
