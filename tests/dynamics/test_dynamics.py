"""TrainingDynamics: statistics keyed by ledger id, label issues, actions, state, and the Trainer path."""
import json

import pytest
import torch
from torch.utils.data import Dataset, IterableDataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments, default_data_collator

import torchdataguard as tdg
from torchdataguard.dynamics import data_map_measures
from torchdataguard.errors import ConfigError, StateError


def blobs(n=300, noise=0.1, seed=0, d=8, classes=3):
    """Gaussian blobs (separable) with a share of labels flipped at random; returns x, noisy y, flipped mask."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, d, generator=g) * 4
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    flip = torch.rand(n, generator=g) < noise
    shift = torch.randint(1, classes, (n,), generator=g)
    noisy = torch.where(flip, (y + shift) % classes, y)
    return x, noisy, flip


def train_plain(dyn, x, y, epochs=6, batch=32, seed=0, ids=None):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, int(y.max()) + 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ids = list(range(len(x))) if ids is None else ids
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for s in range(0, len(x), batch):
            b = perm[s:s + batch]
            logits = model(x[b])
            dyn.update([ids[i] for i in b.tolist()], logits, y[b])
            loss = dyn.weighted_loss([ids[i] for i in b.tolist()], logits, y[b])
            loss = torch.nn.functional.cross_entropy(logits, y[b]) if loss is None else loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        dyn.end_epoch()
    return model


def test_flipped_labels_are_found_with_their_true_class():
    x, y, flip = blobs()
    dyn = tdg.TrainingDynamics()
    train_plain(dyn, x, y)
    issues = dyn.label_issues()
    found = {i["id"] for i in issues}
    truth = set(flip.nonzero().flatten().tolist())
    assert len(found & truth) / len(truth) >= 0.9  # recall
    assert len(found & truth) / max(1, len(found)) >= 0.9  # precision
    _, clean_y, _ = blobs(noise=0.0)  # the same draws without flips: the suggested class is the true one
    right = [i for i in issues if i["id"] in truth]
    assert sum(i["suggested"] == int(clean_y[i["id"]]) for i in right) / len(right) >= 0.9
    assert all(i["given"] == int(y[i["id"]]) for i in issues)
    scores = [i["score"] for i in issues]
    assert scores == sorted(scores, reverse=True)


def test_order_and_repeats_do_not_matter_stats_are_keyed_by_id():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    # a handful of examples is too few for the auto detector to tell two groups apart: use the aum detector
    a, b = tdg.TrainingDynamics(detector="aum"), tdg.TrainingDynamics(detector="aum")
    a.update(["x", "y", "z"], logits, labels)
    b.update(["z", "x"], logits[[2, 0]], labels[[2, 0]])
    b.update(["y", "z"], logits[[1, 2]], labels[[1, 2]])  # z seen twice in the epoch: its mean is the same
    a.end_epoch(), b.end_epoch()
    assert a.data_map() == b.data_map()
    assert [i["id"] for i in a.label_issues()] == ["z"]


def test_data_map_regions_and_measures():
    view = torch.tensor([[[0.9, 1, 2.0, 0.1], [0.95, 1, 2.5, 0.05]],
                         [[0.1, 0, -1.0, 2.3], [0.9, 1, 1.0, 0.1]],
                         [[0.1, 0, -2.0, 2.3], [0.05, 0, -3.0, 3.0]]])
    m = data_map_measures(view)
    assert torch.allclose(m["confidence"], torch.tensor([0.925, 0.5, 0.075]))
    assert torch.allclose(m["variability"], torch.tensor([0.025, 0.4, 0.025]))
    dyn = tdg.TrainingDynamics()
    for e in range(2):
        dyn.update([0, 1, 2], torch.log(torch.tensor([[0.9, 0.1], [0.1 if e == 0 else 0.9, 0.9 if e == 0 else 0.1],
                                                      [0.1, 0.9]])), torch.tensor([0, 0, 0]))
        dyn.end_epoch()
    assert [dyn.data_map()[i]["region"] for i in range(3)] == ["easy", "ambiguous", "hard"]


def test_token_level_losses_for_language_models():
    logits = torch.zeros(2, 4, 5)
    logits[:, :, 1] = 5.0  # both rows predict token 1 everywhere; row 1's labels say 3
    labels = torch.tensor([[-100, 1, 1, 1], [-100, 3, 3, -100]])
    dyn = tdg.TrainingDynamics(detector="aum")  # task auto: 3-D logits are a causal LM, labels shifted by one
    dyn.update([0, 1], logits, labels)
    dm = dyn.data_map()
    assert dm[0]["confidence"] > 0.9 and dm[1]["confidence"] < 0.3
    assert dyn.label_issues()[0]["id"] == 1 and dyn.label_issues()[0]["given"] is None
    with pytest.raises(ConfigError, match="classification"):
        tdg.TrainingDynamics(task="classification").update([0, 1], logits, labels)


def test_bad_settings_and_inputs_are_refused_with_the_fix():
    with pytest.raises(ConfigError) as e:
        tdg.TrainingDynamics(action="delete", detector="magic", from_epoch=0, downweight=2)
    msg = str(e.value)
    assert "action='delete'" in msg and "detector='magic'" in msg and "from_epoch=0" in msg and "downweight=2" in msg
    dyn = tdg.TrainingDynamics()
    with pytest.raises(ConfigError, match="no example ids"):
        dyn.update(None, torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="3 ids for a batch of 2"):
        dyn.update([0, 1, 2], torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="int or str"):
        dyn.update([0.5, 1], torch.zeros(2, 2), torch.tensor([0, 1]))


def test_drop_reaches_the_ledger_and_a_stream_replays_it():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter([{"text": f"doc {i}", "x": i} for i in range(6)])

    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    dyn = tdg.TrainingDynamics(action="drop", from_epoch=1, detector="aum").attach(guard)  # 6 examples: too few for auto
    wrapped = guard.wrap(Stream())
    seen = list(wrapped)
    assert [r["tdg_id"] for r in seen] == list(range(6))
    logits = torch.tensor([[3.0, 0.0]] * 6)
    labels = torch.tensor([0, 0, 1, 0, 0, 0])  # id 2 disagrees with the model
    dyn.update([r["tdg_id"] for r in seen], logits, labels)
    dyn.end_epoch()
    assert dyn.flagged == {2}
    rep = guard.report()
    assert rep["dropped_by_reason"]["quality/label_issue"] == 1 and rep["kept"] + rep["dropped"] == rep["seen"] == 6
    second = [r["tdg_id"] for r in wrapped]  # the next epoch replays the ledger's decision
    assert second == [0, 1, 3, 4, 5]
    w = dyn.loss_weights([1, 2])
    assert w.tolist() == [1.0, 0.0]


def test_downweight_scales_the_flagged_rows_loss():
    dyn = tdg.TrainingDynamics(action="downweight", downweight=0.25, detector="aum")
    logits = torch.tensor([[3.0, 0.0], [3.0, 0.0]])
    dyn.update([0, 1], logits, torch.tensor([0, 1]))
    dyn.end_epoch()
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]), reduction="none")
    got = dyn.weighted_loss([0, 1], logits, torch.tensor([0, 1]))
    assert torch.allclose(got, (ce[0] + 0.25 * ce[1]) / 1.25)


def test_state_round_trip_and_refusals(tmp_path):
    x, y, _ = blobs(n=60)
    dyn = tdg.TrainingDynamics()
    train_plain(dyn, x, y, epochs=2)
    dyn.save(tmp_path)
    other = tdg.TrainingDynamics()
    other.load(tmp_path)
    assert other.data_map() == dyn.data_map() and other.label_issues() == dyn.label_issues()
    assert other.epochs == 2
    with pytest.raises(StateError, match="task"):
        tdg.TrainingDynamics(task="token").load(tmp_path)
    files = [p for p in tmp_path.iterdir() if p.suffix == ".safetensors"]
    data = bytearray(files[0].read_bytes())
    data[-1] ^= 1
    files[0].write_bytes(bytes(data))
    with pytest.raises(StateError):
        tdg.TrainingDynamics().load(tmp_path)
    with pytest.raises(StateError, match="missing"):
        tdg.TrainingDynamics().load(tmp_path / "nowhere")


def test_records_that_are_not_mappings_are_refused_with_the_fix():
    guard = tdg.Guard([], device="cpu", progress=False)
    tdg.TrainingDynamics().attach(guard)
    with pytest.raises(ConfigError, match="mapping record"):
        guard.wrap(["a", "b"])


# -- the Trainer -------------------------------------------------------------------------------------------
T = 8


class Rows(Dataset):
    def __init__(self, n=64, seed=0, flip_every=8):
        g = torch.Generator().manual_seed(seed)
        self.rows = []
        for i in range(n):
            ids = torch.randint(5, 99, (T,), generator=g).tolist()
            label = int(ids[0] >= 52)
            if flip_every and i % flip_every == 3:
                label = 1 - label
            self.rows.append({"input_ids": ids, "attention_mask": [1] * T, "labels": label})

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def tiny():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32,
                                                    max_position_embeddings=T, num_labels=2))


def targs(out, **kw):
    base = dict(output_dir=str(out), per_device_train_batch_size=8, num_train_epochs=3, logging_steps=4,
                save_steps=8, report_to=[], use_cpu=True, seed=0, disable_tqdm=True)
    base.update(kw)
    return TrainingArguments(**base)


def test_trainer_records_dynamics_logs_counters_checkpoints_and_reports(tmp_path):
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    dyn = tdg.TrainingDynamics(action="drop", from_epoch=2)
    cb = tdg.GuardCallback(guard, dynamics=dyn)
    trainer = Trainer(model=tiny(), args=targs(tmp_path), train_dataset=guard.wrap(Rows()),
                      data_collator=default_data_collator, callbacks=[cb])
    trainer.train()
    assert dyn.epochs == 3 and len(dyn.store) == 64  # every example tracked under its dataset index
    assert set(dyn.data_map()) == set(range(64))
    logged = [e for e in trainer.state.log_history if "tdg/dynamics/tracked" in e]
    assert logged and logged[-1]["tdg/dynamics/tracked"] == 64
    assert (tmp_path / "checkpoint-8" / "torchdataguard_dynamics" / "dynamics.json").exists()
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["dynamics"]["tracked"] == 64 and rep["dynamics"]["config"]["action"] == "drop"
    assert rep["dropped_by_reason"].get("quality/label_issue", 0) == dyn.revoked == len(dyn.flagged)
    assert rep["kept"] + rep["dropped"] == rep["seen"]
    assert "Training dynamics" in (tmp_path / "report.html").read_text()


def test_trainer_with_dp_refuses_dynamics_unless_allowed():
    guard = tdg.Guard([], device="cpu", progress=False)
    with pytest.raises(ConfigError, match="allow_with_dp=True"):
        tdg.GuardCallback(guard, privacy=tdg.DPConfig(target_epsilon=8.0), dynamics=tdg.TrainingDynamics())
    dyn = tdg.TrainingDynamics(allow_with_dp=True)
    tdg.GuardCallback(guard, privacy=tdg.DPConfig(target_epsilon=8.0), dynamics=dyn)
    dyn.update([0, 1], torch.zeros(2, 2), torch.tensor([0, 1]))
    assert "NOT covered by the DP guarantee" in dyn.report()["dp_note"]


def test_trainer_batch_without_ids_fails_fast_with_the_fix(tmp_path):
    guard = tdg.Guard([], device="cpu", progress=False)
    dyn = tdg.TrainingDynamics()
    train = Rows(16)  # not wrapped by the guard: no ids travel
    trainer = Trainer(model=tiny(), args=targs(tmp_path, max_steps=1), train_dataset=train,
                      data_collator=default_data_collator, callbacks=[tdg.GuardCallback(guard, dynamics=dyn)])
    with pytest.raises(ConfigError, match="without example ids"):
        trainer.train()
