"""benchmarks/dp_utility.py's LoRA / full rows: the epochs chosen on the validation split (the noise of that run
calibrated for the most epochs tried), then a run on the whole training split calibrated for the chosen epochs."""
import importlib.util
import math
import os

import pytest
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "benchmarks")


@pytest.fixture(scope="module")
def enc():
    spec = importlib.util.spec_from_file_location("dp_encoder_benchmark", os.path.join(BENCH, "_dp_encoder.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Toy(nn.Module):
    """An embedding bag and a ``head``, called as the benchmark calls the MiniLM classifier."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(12, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, input_ids, attention_mask, labels=None):
        m = attention_mask.unsqueeze(-1).float()
        logits = self.head((self.emb(input_ids) * m).sum(1) / m.sum(1))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def collate(rows):
    return {"input_ids": torch.tensor([r["input_ids"] for r in rows]),
            "attention_mask": torch.ones(len(rows), 4, dtype=torch.long),
            "labels": torch.tensor([r["labels"] for r in rows])}


def split(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    # the label picks the token range: learnable
    ids = torch.randint(0, 6, (n, 4), generator=g) + 6 * y.unsqueeze(1)
    return [{"input_ids": ids[i].tolist(), "labels": int(y[i])} for i in range(n)]


def test_choose_takes_the_best_then_fewer_epochs_then_the_earlier_candidate(enc):
    assert enc.choose([[0.7, 0.9, 0.9]]) == (0, 2)
    assert enc.choose([[0.7, 0.8, 0.9], [0.9, 0.6, 0.5]]) == (1, 1)  # fewer epochs win the tie
    assert enc.choose([[0.5, 0.9], [0.6, 0.9]]) == (0, 2)  # same epochs: the earlier candidate
    assert enc.choose([[0.5, 0.6], [0.7, 0.95]]) == (1, 2)


def test_private_row_chooses_epochs_on_validation_with_the_noise_of_each_plan(enc):
    data = {"fit": split(48, 1), "val": split(24, 2), "train": split(72, 3), "test": split(24, 4)}
    row = enc.select_and_test(Toy, data, collate, epsilon=4.0, batch=16, micro=8, max_epochs=3,
                              lrs=[(1e-2, 1e-1), (1e-2, 1e-2)], delta=1e-5, seed=0)
    runs = row["validation_runs"]
    assert [len(r["val_curve"]) for r in runs] == [3, 3]
    # the validation runs: 3 epochs planned and accounted on the fit split
    assert all(r["steps"] == 3 * math.ceil(48 / 16) and r["epsilon"] <= 4.0 for r in runs)
    c, e = enc.choose([r["val_curve"] for r in runs])
    assert (row["epochs"], row["lr"], row["head_lr"]) == (e, runs[c]["lr"], runs[c]["head_lr"])
    assert row["val_accuracy"] == max(max(r["val_curve"]) for r in runs)
    # the final run: the chosen epochs on the whole training split, its noise calibrated for exactly them
    assert row["steps"] == e * math.ceil(72 / 16) and 0.9 * 4.0 < row["epsilon"] <= 4.0
    assert row["sample_rate"] == pytest.approx(16 / 72, abs=1e-5)  # rounded to 5 places
    assert 0.0 <= row["test_accuracy"] <= 1.0


def test_the_test_split_never_changes_the_choice(enc):
    data = {"fit": split(48, 1), "val": split(24, 2), "train": split(72, 3), "test": split(24, 4)}
    kw = dict(epsilon=None, batch=16, micro=8, max_epochs=3, lrs=[(1e-2, 1e-1)], delta=1e-5, seed=0)
    a = enc.select_and_test(Toy, data, collate, **kw)
    flipped = [{**r, "labels": 1 - r["labels"]} for r in data["test"]]
    b = enc.select_and_test(Toy, {**data, "test": flipped}, collate, **kw)
    assert (a["epochs"], a["validation_runs"][0]["val_curve"]) == (b["epochs"], b["validation_runs"][0]["val_curve"])
    assert a["test_accuracy"] + b["test_accuracy"] == pytest.approx(1.0)  # it was scored, on the test split only
    probe = enc.select_and_test(Toy, {k: v for k, v in data.items() if k != "test"}, collate, test=False, **kw)
    assert probe["test_accuracy"] is None and probe["epochs"] == a["epochs"]


def test_the_head_learns_at_its_own_rate(enc):
    model = Toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    info = enc.train_encoder(model, split(32, 1), collate, epsilon=None, batch=16, micro=8, epochs=1, lr=0.0,
                             head_lr=0.1, delta=1e-5, seed=0, val=split(16, 2))
    after = model.state_dict()
    assert torch.equal(after["emb.weight"], before["emb.weight"])  # lr 0 for the encoder's group
    assert not torch.equal(after["head.weight"], before["head.weight"])
    assert info["trainable_parameters"] == 12 * 6 + 6 * 2 + 2 and len(info["val_curve"]) == 1
    assert model.training


def test_benchmark_cli_refuses_a_probe_over_the_table(monkeypatch):
    spec = importlib.util.spec_from_file_location("dp_utility_benchmark", os.path.join(BENCH, "dp_utility.py"))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(BENCH)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as err:
        module.main(["--methods", "lora", "--validate-only"])
    assert err.value.code == 2  # argparse's usage error, before any data is loaded
