"""DP-SGD on LoRA adapters (peft): only the adapter (and saved head) parameters train, privately."""
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import torchdataguard as tdg

peft = pytest.importorskip("peft", reason="pip install 'torchdataguard[lora]'")


class DS(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(5, 99, (64, 16), generator=g)
        self.y = torch.randint(0, 2, (64,), generator=g)

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "attention_mask": torch.ones(16, dtype=torch.long), "labels": self.y[i]}


@pytest.mark.parametrize("clipping", ["auto", "hooks", "ghost", "bk"])
def test_dp_trains_only_lora_adapters(clipping, tiny_bert):
    warnings.simplefilter("ignore")
    model = peft.get_peft_model(tiny_bert(vocab_size=100, max_positions=16),
                                peft.LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"]))
    model.train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    dp = tdg.make_private(model, opt, DataLoader(DS(), batch_size=8),
                          tdg.DPConfig(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-3, seed=0, clipping=clipping))
    m, o, loader = dp
    for b in loader:
        m(**b)["loss"].backward()
        o.step()
        o.zero_grad()
    named = dict(model.named_parameters())
    assert all(torch.equal(frozen[n], named[n]) for n in frozen)  # the base model is untouched
    assert any(not torch.equal(trainable[n], named[n]) for n in trainable)
    rep = dp.report()
    assert rep["preflight"]["ok"] and rep["steps"] == 8 and rep["epsilon_prv"] > 0
    assert rep["clipping"] == ("bk" if clipping == "auto" else clipping)
    assert rep["preflight"]["checked_parameters"] == len(trainable)
