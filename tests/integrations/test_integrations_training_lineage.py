"""GuardCallback tells training data made from what guard.wrap was given from data made from what it returned, also
when lengths cannot (a guard that rewrites records and drops none, e.g. Guard([PIIScrubber()])): the slip of a wrap
not assigned back is refused for datasets.Dataset (through map / remove_columns / with_format, the README's
tokenising map included) and for a torch map-style Dataset (the very object, or a Subset of it). Before, the Trainer
trained on the unscrubbed text. The README's flows still train."""
import datasets
import pytest
import torch
from conftest import ListDataset as Rows
from test_integrations_trainer import BERT, args
from test_integrations_training_data import TOKENS
from torch.utils.data import Subset
from transformers import Trainer, default_data_collator

import torchdataguard as tdg
from torchdataguard.errors import ConfigError

pytest.importorskip("accelerate")

N = 40


def raw_rows():
    """Rows with an e-mail address each and no duplicate: a PII-only guard drops nothing, the lengths match."""
    return [{"body": f"mail user{i}@example.org about item {i}", "row": i, "label": i % 2} for i in range(N)]


def tokenise(ds):
    """The README's tokenising map: tokens in, the text column out (the tokens stand for the row's text)."""
    return ds.map(lambda b: {"input_ids": [TOKENS[r]["input_ids"] for r in b["row"]],
                             "attention_mask": [TOKENS[r]["attention_mask"] for r in b["row"]],
                             "labels": [TOKENS[r]["labels"] for r in b["row"]]},
                  batched=True, remove_columns=["body", "row", "label"])


def pii_guard():
    return tdg.Guard([tdg.PIIScrubber()], text_field="body", device="cpu", progress=False)


def train(tmp_path, model, train_dataset, g):
    trainer = Trainer(model=model, args=args(tmp_path, save_strategy="no", max_steps=2), train_dataset=train_dataset,
                      data_collator=default_data_collator, callbacks=[tdg.GuardCallback(g)])
    trainer.train()
    return trainer


@pytest.mark.parametrize("after", ["map", "with_format", "select"])
def test_data_made_from_the_unwrapped_dataset_is_refused_when_nothing_was_dropped(tmp_path, tiny_bert, after):
    raw = datasets.Dataset.from_list(raw_rows())
    g = pii_guard()
    g.wrap(raw)  # the slip: the wrapped dataset not assigned back (it holds 40 rows, as raw does)
    train_dataset = tokenise(raw)
    if after == "with_format":
        train_dataset = train_dataset.with_format("torch")
    elif after == "select":
        train_dataset = train_dataset.shuffle(seed=0).select(range(30))
    with pytest.raises(ConfigError, match=r"made from the datasets.Dataset given to guard.wrap, not from the one it "
                                          r"returned.*\['pii'\]"):
        train(tmp_path, tiny_bert(**BERT), train_dataset, g)


def test_the_readme_flows_train(tmp_path, tiny_bert):
    raw = datasets.Dataset.from_list(raw_rows())
    g = pii_guard()
    train = tokenise(g.wrap(raw))  # README: train = guard.wrap(raw_train).map(tokenize, ..., remove_columns=[...])
    assert train_ok(tmp_path / "a", tiny_bert, train, g)
    raw_datasets = datasets.DatasetDict({"train": datasets.Dataset.from_list(raw_rows()),
                                         "validation": datasets.Dataset.from_list(raw_rows()[:8])})
    g = pii_guard()
    raw_datasets["train"] = g.wrap(raw_datasets["train"])  # first hour: BEFORE the tokenising .map(...)
    tokenised = raw_datasets.map(lambda b: {"input_ids": [TOKENS[r]["input_ids"] for r in b["row"]],
                                            "attention_mask": [TOKENS[r]["attention_mask"] for r in b["row"]]},
                                 batched=True)
    assert train_ok(tmp_path / "b", tiny_bert, tokenised["train"].rename_column("label", "labels"), g)


def train_ok(out, tiny_bert, data, g):
    return train(out, tiny_bert(**BERT), data, g).state.global_step == 2


def test_a_torch_dataset_given_to_the_guard_is_refused(tmp_path, tiny_bert):
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    unique = [i for i in range(N) if i % 5 != 4]  # TOKENS repeats every fifth row: left out, nothing is dropped
    rows = Rows([{k: torch.tensor(v) for k, v in TOKENS[i].items()} for i in unique])
    wrapped = g.wrap(rows)
    assert len(wrapped) == len(rows)  # lengths cannot tell them apart
    with pytest.raises(ConfigError, match="is the very dataset given to guard.wrap"):
        train(tmp_path / "a", tiny_bert(**BERT), rows, g)
    with pytest.raises(ConfigError, match="made from the dataset given to guard.wrap"):
        train(tmp_path / "b", tiny_bert(**BERT), Subset(rows, range(20)), g)
    assert train_ok(tmp_path / "c", tiny_bert, wrapped, g)
    assert train_ok(tmp_path / "d", tiny_bert, Subset(wrapped, range(10)), g)
