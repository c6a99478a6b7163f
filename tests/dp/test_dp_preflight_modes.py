"""The preflight and the clipping modes it leaves: models whose rows mix are refused, auto never picks a mode that
crashes, ghost clips padding rows as autograd does, in-place ops do not break the preflight, and the dry run sees
the same augmentation draws in its passes."""
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

import torchdataguard as tdg
from torchdataguard.dp.preflight import PreflightError

C = 0.05  # every per-example gradient is clipped
MODES = ["auto", "bk", "ghost", "hooks"]


def hf_output(logits, labels):
    from transformers.modeling_outputs import SequenceClassifierOutput

    return SequenceClassifierOutput(loss=nn.functional.cross_entropy(logits, labels), logits=logits)


class Vectors(Dataset):
    def __init__(self, n=32):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 4, generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class Tokens(Dataset):
    """Rows of 8 token ids, most of them padding (id 0)."""

    def __init__(self, n=24):
        g = torch.Generator().manual_seed(2)
        self.ids = torch.randint(1, 20, (n, 8), generator=g)
        lengths = torch.randint(1, 4, (n,), generator=g)
        for i, ln in enumerate(lengths):
            self.ids[i, ln:] = 0
        self.y = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.y[i]}


class Centred(nn.Module):
    """Centres the batch between two Linear layers: no parameter mixes the rows, yet every row depends on all."""

    def __init__(self, tuple_output=False):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)
        self.tuple_output = tuple_output

    def forward(self, x, labels=None):
        h = self.a(x)
        logits = self.b(h - h.mean(0, keepdim=True))
        out = hf_output(logits, labels)
        return (out.loss, out.logits) if self.tuple_output else out


class Twice(nn.Module):
    """One layer called twice in a forward pass."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.mid, self.b = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x, labels=None):
        h = torch.tanh(self.mid(torch.tanh(self.mid(torch.tanh(self.a(x))))))
        return hf_output(self.b(h), labels)


class InplaceRelu(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.act, self.b = nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 3)

    def forward(self, x, labels=None):
        return hf_output(self.b(self.act(self.a(x))), labels)


class PaddedEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.head = nn.Linear(8, 3)

    def forward(self, input_ids, labels=None):
        return hf_output(self.head(self.emb(input_ids).sum(1)), labels)


def brute_force(ref, batch, key, expected):
    """sum_i min(1, C/||g_i||) g_i / expected, one backward per row on a model without hooks."""
    params = [p for p in ref.parameters() if p.requires_grad]
    out = [torch.zeros_like(p) for p in params]
    for i in range(len(batch["labels"])):
        ref.zero_grad()
        ref(**{key: batch[key][i:i + 1], "labels": batch["labels"][i:i + 1]}).loss.backward()
        g = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        f = min(1.0, C / (float(torch.sqrt(sum((t ** 2).sum() for t in g))) + 1e-6))
        for o, t in zip(out, g):
            o += f * t
    return [o / expected for o in out]


def assert_equals_brute_force(factory, dataset, key, mode, batch_size=6, expect_mode=None):
    model = factory()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dp = tdg.make_private(model, opt, DataLoader(dataset, batch_size=batch_size),
                          tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=C, delta=1e-3, clipping=mode, seed=4))
    picked = dp.report()["clipping"]
    if expect_mode is not None:
        assert picked == expect_mode, dp.report()["preflight"]
    ref = factory()
    ref.load_state_dict(model.state_dict())
    steps = 0
    for batch in dp.loader:
        want = brute_force(ref, batch, key, float(batch_size))
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
        for p, w in zip(model.parameters(), want):
            torch.testing.assert_close(p.grad, w, atol=1e-6, rtol=1e-4)
        steps += 1
    assert steps == dp.report()["steps"] > 0
    dp.close()
    return picked


# -- item 10: rows mixed without parameters ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tuple_output", [False, True])
def test_rows_mixed_without_parameters_are_refused(mode, tuple_output):
    model = Centred(tuple_output)
    kw = {"loss_fn": lambda out, b: out[0]} if tuple_output else {}
    with pytest.raises(PreflightError, match="rows of a batch influence each other") as e:
        tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(Vectors(), batch_size=8),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping=mode), **kw)
    assert "input of b" in str(e.value) and "per example" in str(e.value)
    assert "forward" not in model.a.__dict__ and not model._forward_pre_hooks  # the model is left as it was


class Pixels(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"pixel_values": torch.rand(3, 4, 4, generator=g), "labels": torch.tensor(i % 3)}


class PixelHead(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(48, 3)

    def forward(self, pixel_values, labels=None):
        logits = self.fc(pixel_values.flatten(1))
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


@pytest.mark.parametrize("mode", ["auto", "hooks"])
def test_mixup_before_the_model_is_refused(mode):
    """MixUp blends each row with its neighbour: one example shapes two rows' gradients (as GuardCallback applies
    batch stages in a forward pre-hook registered before the DP engine's)."""
    from torchdataguard.augment import MixUp

    guard = tdg.Guard([MixUp(alpha=0.4, num_classes=3, seed=0)], device="cpu", progress=False)
    model = PixelHead()  # without guard=, the passes draw other weights: the check says it could not decide
    model.register_forward_pre_hook(lambda m, a, kw: (a, {**kw, **guard.apply_batch(dict(kw))}), with_kwargs=True)
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(Pixels(), batch_size=4),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping=mode))
    pre = dp.report()["preflight"]
    assert pre["rows_independent"] is None and any("guard=guard" in n for n in pre["notes"])
    dp.close()
    model = PixelHead()
    model.register_forward_pre_hook(lambda m, a, kw: (a, {**kw, **guard.apply_batch(dict(kw))}), with_kwargs=True)
    guard.stage("mixup").reset()
    with pytest.raises(PreflightError, match="influence each other.*MixUp"):
        tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(Pixels(), batch_size=4),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping=mode), guard=guard)
    assert guard.stage("mixup").state_dict()["offset"].item() == 0  # the preflight left the stream untouched


def test_independent_rows_pass_with_dropout_on(tiny_bert):
    """A real model with dropout: all preflight passes draw the same masks, so dropout is not taken for mixing."""
    model = tiny_bert(vocab_size=20, max_positions=16, num_labels=3, hidden_dropout_prob=0.3,
                      attention_probs_dropout_prob=0.3).train()
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(Tokens(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    pre = dp.report()["preflight"]
    assert pre["ok"] and pre["rows_independent"] is True and pre["rows_checked"] > 10
    assert dp.report()["clipping"] == "bk"
    dp.close()


# -- item 14: a layer called twice ---------------------------------------------------------------------------------
def test_auto_with_a_layer_called_twice_uses_hooks_and_is_exact():
    picked = assert_equals_brute_force(Twice, Vectors(), "x", "auto", expect_mode="hooks")
    assert picked == "hooks"


def test_ghost_with_a_layer_called_twice_falls_back_per_layer_and_is_exact():
    assert_equals_brute_force(Twice, Vectors(), "x", "ghost", expect_mode="ghost")


# -- item 15: ghost and padding_idx --------------------------------------------------------------------------------
def test_ghost_norms_leave_out_the_padding_row_as_autograd_does():
    assert_equals_brute_force(PaddedEmbedding, Tokens(), "input_ids", "ghost", expect_mode="ghost")


# -- item 16: an in-place ReLU after a Linear ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_inplace_relu_after_a_linear_trains_exactly_in_every_mode(mode):
    picked = assert_equals_brute_force(InplaceRelu, Vectors(), "x", mode)
    assert picked == ("bk" if mode == "auto" else mode)
    assert InplaceRelu().act.inplace  # the module's own setting is back after close()


class FunctionalInplace(InplaceRelu):
    def forward(self, x, labels=None):
        return hf_output(self.b(self.a(x).relu_()), labels)


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_functional_inplace_op_is_refused_with_the_fix_under_opacus_hooks(mode):
    model = FunctionalInplace()
    with pytest.raises(tdg.ConfigError, match="in-place operation.*out of place"):
        tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(Vectors(), batch_size=8),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping=mode))


def test_functional_inplace_op_uses_book_keeping_checked_on_its_own():
    assert assert_equals_brute_force(FunctionalInplace, Vectors(), "x", "auto") == "bk"


# -- issue 19 item 4: TokenAugment through the Trainer -------------------------------------------------------------
def test_token_augment_keeps_book_keeping_and_the_preflight_draws_nothing(tmp_path, tiny_bert, list_dataset):
    from conftest import padded_sentences
    from transformers import Trainer, TrainingArguments, default_data_collator

    from torchdataguard.augment import TokenAugment

    guard = tdg.Guard([TokenAugment(mask_rate=0.15, delete_rate=0.1, mask_token_id=3, pad_token_id=0, vocab_size=60,
                                    special_ids=[0, 1, 2, 3], seed=7)], device="cpu", progress=False)
    model = tiny_bert(vocab_size=60, max_positions=12)
    cb = tdg.GuardCallback(guard, privacy=tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, seed=0))
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=3, report_to=[],
                             use_cpu=True, seed=0, disable_tqdm=True, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=list_dataset(padded_sentences()),
                      data_collator=default_data_collator,
                      callbacks=[cb])
    rows_trained = []
    orig = trainer.callback_handler.on_train_begin

    def on_train_begin(*a, **k):  # counts the rows of training forwards (registered after the preflight)
        out = orig(*a, **k)
        model.register_forward_pre_hook(lambda m, a_, kw: rows_trained.append(len(kw["input_ids"])), with_kwargs=True)
        return out

    trainer.callback_handler.on_train_begin = on_train_begin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    rep = cb.dp.report()
    assert rep["clipping"] == "bk", rep["preflight"]
    state = guard.stage("token_augment").state_dict()
    # the augmentation stream moved by the rows trained on, not by the preflight's passes too
    assert len(rows_trained) == 3
    assert int(state["offset"]) == sum(rows_trained) == state["counters"]["augment/token/examples"]
