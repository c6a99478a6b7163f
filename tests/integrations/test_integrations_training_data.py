"""GuardCallback refuses a Trainer whose training set did not come out of the guard (the wrap not assigned back,
or left out): before, the Trainer trained on the unguarded data while the logs and the report counted what the
guard dropped and scrubbed."""
import datasets
import pytest
from test_integrations_trainer import BERT, args, records
from transformers import Trainer, default_data_collator

import torchdataguard as tdg
from torchdataguard.errors import ConfigError

pytest.importorskip("accelerate")


TOKENS = records(40)  # every fifth repeats the one three places before it


def text_rows(n=40):
    """Raw rows: a text with an e-mail address, and the row whose tokens stand for the text's (see tokenise)."""
    src = [i if i % 5 != 4 else i - 3 for i in range(n)]
    return [{"text": f"mail user{j}@example.org about item {j}", "row": j} for j in src]


def tokenise(ds):
    """What a tokenising map does: tokens in, text out."""
    return ds.map(lambda r: TOKENS[r["row"]], remove_columns=["text", "row"])


def guard():
    return tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], device="cpu", progress=False)


def train(tmp_path, model, train_dataset, g):
    trainer = Trainer(model=model, args=args(tmp_path, save_strategy="no", max_steps=2), train_dataset=train_dataset,
                      data_collator=default_data_collator, callbacks=[tdg.GuardCallback(g)])
    trainer.train()
    return trainer


def test_the_wrapped_dataset_not_assigned_back_is_refused(tmp_path, tiny_bert):
    raw = datasets.Dataset.from_list(text_rows())
    g = guard()
    g.wrap(raw)  # the slip: raw_datasets["train"] = guard.wrap(...) written without the assignment
    with pytest.raises(ConfigError, match=r"holds 40 examples, as many as the data given to guard.wrap, not the 32"):
        train(tmp_path, tiny_bert(**BERT), tokenise(raw), g)


def test_a_guard_that_wrapped_nothing_is_refused(tmp_path, tiny_bert):
    raw = datasets.Dataset.from_list(text_rows())
    with pytest.raises(ConfigError, match=r"has not wrapped any data.*40 examples"):
        train(tmp_path, tiny_bert(**BERT), tokenise(raw), guard())


@pytest.mark.parametrize("after", ["as_is", "shuffle", "filter", "list"])
def test_the_wrapped_dataset_and_what_is_made_of_it_train(tmp_path, tiny_bert, after):
    raw = datasets.Dataset.from_list(text_rows())
    g = guard()
    kept = tokenise(g.wrap(raw))
    if after == "shuffle":
        kept = kept.shuffle(seed=0)
    elif after == "filter":  # another length than any the guard saw: not refused
        kept = kept.filter(lambda r: r["labels"] == 1)
    elif after == "list":
        kept = list(kept)
    trainer = train(tmp_path, tiny_bert(**BERT), kept, g)
    assert trainer.state.global_step == 2


def test_streams_and_guards_without_record_stages_are_not_checked(tmp_path, tiny_bert, list_stream):
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    assert train(tmp_path, tiny_bert(**BERT), g.wrap(list_stream(records(40))), g).state.global_step == 2
    only_batch = tdg.Guard([tdg.TokenAugment(vocab_size=100, mask_token_id=3, mask_rate=0.1, seed=0)], device="cpu",
                           progress=False)
    assert train(tmp_path, tiny_bert(**BERT), records(40), only_batch).state.global_step == 2
