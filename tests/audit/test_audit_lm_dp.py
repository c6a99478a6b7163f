"""Soundness on a language model: a small GPT-2 (random init, CPU) trained on token rows with token canaries.

With DP-SGD at epsilon 1 through ``tdg.make_private`` the audit's lower bound stays at or below the accountant's
epsilon on every seed; the very same run without ``make_private`` memorises the canaries and the audit proves
an epsilon well above 1, so the DP half could fail if the DP path leaked (or if the audit could not see).
"""
import warnings

import pytest
from conftest import token_rows
import torch
from torch.utils.data import DataLoader, Dataset

import torchdataguard as tdg

transformers = pytest.importorskip("transformers")

EPOCHS = 15
DELTA = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


class Rows(Dataset):
    """The audited rows (canaries included) as tensors, the batch shape a Hugging Face causal LM takes."""

    def __init__(self, rows):
        self.ids = torch.tensor([r["input_ids"] for r in rows])

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def train_gpt2(rows, *, seed, private):
    """Adam, batch 32, EPOCHS epochs; under ``private`` the loader and the gradients go through make_private.
    Returns the model and the accountant's epsilon (infinite without DP)."""
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=64, n_layer=2, n_head=2, bos_token_id=0,
                                  eos_token_id=0, tie_word_embeddings=False)
    model = transformers.GPT2LMHeadModel(cfg)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    if not private:
        for _ in range(EPOCHS):
            for batch in DataLoader(Rows(rows), batch_size=32, shuffle=True):
                opt.zero_grad()
                model(**batch).loss.backward()
                opt.step()
        return model, float("inf")
    cfg = tdg.DPConfig(target_epsilon=1.0, delta=DELTA, epochs=EPOCHS, max_grad_norm=1.0, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp = tdg.make_private(model, opt, DataLoader(Rows(rows), batch_size=32), cfg)
        model, opt, loader = dp
        for _ in range(EPOCHS):
            for batch in loader:
                opt.zero_grad()
                model(**batch).loss.backward()
                opt.step()
        eps = dp.epsilon()
        dp.close()
    return model, eps


@pytest.mark.parametrize("seed", [0, 1])
def test_gpt2_under_dp_sgd_at_epsilon_1_never_shows_a_bound_above_the_accountant(seed):
    rows = token_rows(seed=seed)
    private = tdg.PrivacyAudit(num_canaries=100, seed=seed, delta=DELTA)
    model, eps = train_gpt2(private.wrap(rows), seed=seed, private=True)
    res = private.run(model)
    assert private.kind == "tokens" and res["num_canaries"] == 100
    assert eps <= 1.0 + 1e-6
    assert res["epsilon_lower_bound"] <= eps
    assert res["delta"] == DELTA

    # the same data, canaries, coins, model and optimizer without make_private: memorised, and the audit says so
    plain = tdg.PrivacyAudit(num_canaries=100, seed=seed)
    model, _ = train_gpt2(plain.wrap(rows), seed=seed, private=False)
    assert plain.coins == private.coins
    res = plain.run(model)
    assert res["epsilon_lower_bound"] > 1.5
    assert res["exposure_mean"] > res["exposure_chance"] + 3 and res["auc"] > 0.95
