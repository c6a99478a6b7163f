"""Regressions for privacy defects found in review: ghost clipping must never pass an unclipped gradient,
and batch-level unit ids must not override user-level units."""
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.augment.multiplicity import Multiplicity
from torchdataguard.privacy.dp import DPConfig, make_private


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


def test_loaded_ledger_stops_the_loader_at_the_budget(tmp_path):
    """After dp.load(...), the Poisson loader itself stops before a step that would exceed the budget (it used
    to hand out a batch whose optimizer step then raised PrivacyBudgetExhausted)."""
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))

    def private():
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        dp = tdg.make_private(model, opt, DataLoader(data, batch_size=16),
                              tdg.DPConfig(target_epsilon=3.0, noise_multiplier=1.0, delta=1e-3, seed=0))
        return model, opt, dp

    model, opt, dp = private()
    first = 0
    for x, y in dp.loader:
        opt.zero_grad(); nn.functional.cross_entropy(model(x), y).backward(); opt.step()
        first += 1
        if first == 4:
            break
    dp.save(tmp_path)
    dp.close()
    model, opt, dp = private()
    dp.load(tmp_path)
    more = 0
    for _ in range(20):  # epochs: the loader must run dry by itself, never raising
        for x, y in dp.loader:
            opt.zero_grad(); nn.functional.cross_entropy(model(x), y).backward(); opt.step()
            more += 1
    rep = dp.report()
    assert rep["steps"] == 4 + more and rep["epsilon_prv"] <= 3.0
    assert not dp.engine.can_step()  # it stopped because the next step would not fit
    dp.close()
