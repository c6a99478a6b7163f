"""Preflight audit: broadcast position ids, padding_idx, unsupported modules, tied weights, row-mixing layers."""
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

import torchdataguard as tdg
from torchdataguard.dp.preflight import (PreflightError, UnsupportedModulesError, audit_modules,
                                         check_per_sample_gradients, fix_model, tied_parameters)


class PosModel(nn.Module):
    """Adds position embeddings from a [1, T] buffer, broadcast over the batch (as Hugging Face encoders do)."""

    def __init__(self, padding_idx=None):
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(12, 4, padding_idx=padding_idx)
        self.pos = nn.Embedding(6, 4)
        self.register_buffer("position_ids", torch.arange(6)[None], persistent=False)
        self.head = nn.Linear(4, 2)

    def forward(self, input_ids, labels=None):
        t = input_ids.shape[1]
        h = self.tok(input_ids) + self.pos(self.position_ids[:, :t])
        logits = self.head(h.mean(1))
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


class Rows(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        ids = torch.randint(0, 12, (5,), generator=g)
        ids[-1] = 0  # a padding token
        return {"input_ids": ids, "labels": torch.tensor(i % 2)}


def batch():
    return torch.utils.data.default_collate([Rows()[i] for i in range(4)])


def test_broadcast_position_ids_are_caught_then_fixed():
    m = PosModel()
    b = batch()
    rep = check_per_sample_gradients(m, lambda: m(**b)["loss"], batch_rows=4)
    assert "pos.weight" in rep.mismatched and "1 rows for a batch of 4" in rep.mismatched["pos.weight"]
    dp = tdg.make_private(m, torch.optim.SGD(m.parameters(), lr=0.1), DataLoader(Rows(), batch_size=4),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping="hooks"))
    pre = dp.report()["preflight"]
    assert pre["ok"] and pre["broadcast_inputs"] == ["pos"]
    for b in dp.loader:  # trains with per-sample position gradients
        m(**b)["loss"].backward()
        dp.optimizer.step()
        dp.optimizer.zero_grad()
    assert dp.report()["steps"] == 4
    dp.close()


def test_padding_idx_embedding_is_flagged_and_fixed():
    m = PosModel(padding_idx=0)
    m.pos.weight.requires_grad_(False)  # isolate the padding row
    b = batch()
    raw = check_per_sample_gradients(m, lambda: m(**b)["loss"], batch_rows=4, fix_padding=False)
    assert "tok.weight" in raw.mismatched
    fixed = check_per_sample_gradients(m, lambda: m(**b)["loss"], batch_rows=4)
    assert fixed.ok and fixed.padding_idx == ["tok"]


def test_unsupported_modules_listed_all_at_once_with_the_fix():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.LSTM(4, 4), nn.MultiheadAttention(4, 2))
    problems = audit_modules(model)
    assert [p.kind for p in problems] == ["BatchNorm1d", "LSTM", "MultiheadAttention"]
    msg = str(UnsupportedModulesError(problems))
    assert "3 module(s)" in msg and "GroupNorm" in msg and "DPLSTM" in msg and "DPMultiheadAttention" in msg
    bn = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with pytest.raises(UnsupportedModulesError, match="batch statistics"):
        tdg.make_private(bn, torch.optim.SGD(bn.parameters(), lr=0.1),
                         DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=4),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    assert audit_modules(fix_model(bn)) == []


class MixRows(nn.Module):
    """A custom layer that mixes the rows of the batch: no per-example gradient exists."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return ((x - x.mean(0, keepdim=True)) * self.w).sum(1, keepdim=True)


def test_row_mixing_layer_fails_the_gradient_check():
    m = MixRows()
    with pytest.raises(PreflightError, match="do not add up"):
        tdg.make_private(m, torch.optim.SGD(m.parameters(), lr=0.1),
                         DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=4),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(12, 4)
        self.head = nn.Linear(4, 12, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, input_ids, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.head(self.emb(input_ids).mean(1))
        return SequenceClassifierOutput(loss=nn.functional.cross_entropy(logits, labels), logits=logits)


def test_tied_weights_fall_back_under_ghost_clipping():
    m = Tied()
    assert tied_parameters(m) == {"emb.weight": ["emb", "head"]}
    dp = tdg.make_private(m, torch.optim.SGD(m.parameters(), lr=0.1), DataLoader(Rows(), batch_size=4),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping="ghost"))
    assert any("tied weights" in n for n in dp.report()["preflight"]["notes"])
    for b in dp.loader:
        m(**b).loss.backward()
        dp.optimizer.step()
        dp.optimizer.zero_grad()
    assert dp.report()["steps"] == 4 and torch.isfinite(m.emb.weight).all()
    dp.close()


def test_a_bf16_model_passes_the_summed_gradient_check_within_its_rounding():
    """Rounding in 16 bits is allowed for (four times bf16's epsilon, noted); float32 keeps the tight tolerance."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 2))
    x = torch.randn(6, 32)
    rep = check_per_sample_gradients(model, lambda: model(x).pow(2).mean(), batch_rows=6)
    assert rep.ok and not rep.notes
    model = model.to(torch.bfloat16)
    rep = check_per_sample_gradients(model, lambda: model(x.bfloat16()).float().pow(2).mean(), batch_rows=6)
    assert rep.ok and any("bfloat16" in n and "0.031" in n for n in rep.notes), rep.mismatched


class MaxNormEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(10, 4, max_norm=0.5)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.emb.weight.mul_(3)  # every row longer than max_norm

    def forward(self, x):
        return self.head(self.emb(x).mean(1))


def _train_private(m, opt, data):
    """A plain DP-SGD loop over ``data`` (batches of 8) with ``tdg.make_private``: the refusals below come from it."""
    dp = tdg.make_private(m, opt, DataLoader(data, batch_size=8), tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    for x, y in dp.loader:
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()


@pytest.mark.parametrize("frozen", [False, True])
def test_an_embedding_with_max_norm_is_refused_before_it_changes_a_row(frozen):
    """nn.Embedding(max_norm=...) rescales the rows it looks up, in place, at each forward pass: DP-SGD trained it
    and afterwards exactly the rows of the tokens in the data (3 and 7) had norm 0.5, every other row as before."""
    m = MaxNormEmbedding()
    m.emb.weight.requires_grad_(not frozen)
    before = m.emb.weight.detach().clone()
    ids = torch.full((32, 3), 3)
    ids[:, 1] = 7
    data = torch.utils.data.TensorDataset(ids, torch.randint(0, 2, (32,)))
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-6)
    with pytest.raises(UnsupportedModulesError, match=r"emb \(Embedding\): max_norm=0.5 .*set emb.max_norm = None"):
        _train_private(m, opt, data)
    assert torch.equal(m.emb.weight.detach(), before)


class RunningMean(nn.Module):
    """No parameters (nothing to clip), but a running mean of its input kept in a buffer while training."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(4))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.mean.mul_(0.9).add_(0.1 * x.mean(0))
        return x - self.mean


def test_a_buffer_updated_from_the_data_is_refused_and_put_back():
    """The running mean trained to the data's mean (about 5) without clipping or noise, released with the model."""
    torch.manual_seed(0)
    m = nn.Sequential(RunningMean(), nn.Linear(4, 2))
    data = torch.utils.data.TensorDataset(torch.randn(32, 4) + 5, torch.randint(0, 2, (32,)))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(PreflightError, match=r"changed 1 buffer\(s\): \['0.mean'\]"):
        _train_private(m, opt, data)
    assert torch.equal(m[0].mean, torch.zeros(4))


def test_a_trainable_sparse_embedding_is_refused_with_the_fix():
    """Before: NotImplementedError "Could not run 'aten::max' with arguments from the 'SparseCPU' backend"."""
    m = nn.Sequential(nn.Embedding(10, 4, sparse=True), nn.Flatten(), nn.Linear(12, 2))
    data = torch.utils.data.TensorDataset(torch.randint(0, 10, (16, 3)), torch.randint(0, 2, (16,)))
    with pytest.raises(UnsupportedModulesError, match=r"0 \(Embedding\): sparse=True .* Fix: set sparse=False"):
        tdg.make_private(m, torch.optim.SGD(m.parameters(), lr=0.1), DataLoader(data, batch_size=4),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    m[0].weight.requires_grad_(False)  # frozen: no gradient, nothing to refuse
    tdg.make_private(m, torch.optim.SGD(m[2].parameters(), lr=0.1), DataLoader(data, batch_size=4),
                     tdg.DPConfig(noise_multiplier=1.0, delta=1e-3)).close()



class CheckpointedMLP(nn.Module):
    """A custom model that recomputes its middle layer in the backward pass (torch.utils.checkpoint), on hidden
    states that need gradients, as checkpointed transformer blocks do."""

    def __init__(self, reentrant):
        super().__init__()
        torch.manual_seed(0)
        self.reentrant = reentrant
        self.inp = nn.Linear(4, 16)
        self.mid = nn.Linear(16, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        from torch.utils.checkpoint import checkpoint

        h = self.inp(x).relu()
        return self.out(checkpoint(lambda z: self.mid(z).relu(), h, use_reentrant=self.reentrant))


def _mlp_setup(reentrant):
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    model = CheckpointedMLP(reentrant)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    cfg = tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, max_grad_norm=1.0)
    return model, opt, DataLoader(data, batch_size=16), cfg


def test_non_reentrant_checkpointing_in_a_custom_forward_is_refused_with_the_cause():
    """Opacus's hooks never see the layer that non-reentrant checkpointing recomputes, so it has no per-sample
    gradient to clip: the preflight refuses the model, and its message now names checkpointing as a cause."""
    model, opt, loader, cfg = _mlp_setup(reentrant=False)
    with pytest.raises(PreflightError) as err:
        tdg.make_private(model, opt, loader, cfg)
    msg = str(err.value)
    assert "mid.weight: no per-sample gradient" in msg and "mid.bias" in msg
    assert "inp.weight" not in msg and "out.weight" not in msg
    assert "use_reentrant=False" in msg and "checkpoint" in msg


def test_reentrant_checkpointing_passes_the_per_sample_check():
    """The reentrant form recomputes the layer with autograd on, where the hooks record it: the per-sample
    gradients of every layer add up to the batch gradient (the preflight's check), so the model is accepted."""
    model, opt, loader, cfg = _mlp_setup(reentrant=True)
    model, opt, loader = tdg.make_private(model, opt, loader, cfg)
    before = model.mid.weight.detach().clone()
    xb, yb = next(iter(loader))
    opt.zero_grad()
    nn.functional.cross_entropy(model(xb), yb).backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters())  # every layer got its clipped, noised gradient
    assert not torch.equal(before, model.mid.weight.detach())
