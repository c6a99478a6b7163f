"""Small non-private training runs that memorise their canaries: the audit sees it (CPU, random init, seconds).
The same with DP-SGD at epsilon 1 never shows a bound above 1."""
import warnings

import pytest
from conftest import token_rows
import torch
from torch import nn

import torchdataguard as tdg
from torchdataguard.errors import ConfigError


pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 16, generator=g) * 2
    return [(centers[i % 4] + torch.randn(16, generator=g), i % 4) for i in range(n)]


def train_classifier(data, epochs, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 4))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.stack([d[0] for d in data])
    y = torch.tensor([int(d[1]) for d in data])
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model


def test_a_classifier_that_memorises_random_labels_shows_a_positive_lower_bound():
    audit = tdg.PrivacyAudit(num_canaries=100, seed=0)
    data = audit.wrap(blobs())
    assert audit.kind == "label"
    res = audit.run(train_classifier(data, epochs=150))
    assert set(tdg.audit.audit.RESULT_KEYS) <= set(res)
    assert res["auc"] > 0.85
    assert res["epsilon_lower_bound"] > 0.5
    assert res["correct"] <= res["guesses"] and res["num_canaries"] == 100 and res["included"] == sum(audit.coins)
    assert res["exposure_mean"] is None  # no secrets to rank for classifier canaries
    assert audit.result() == res


def test_an_untrained_model_shows_nothing():
    audit = tdg.PrivacyAudit(num_canaries=100, seed=0)
    audit.wrap(blobs())
    torch.manual_seed(1)
    res = audit.run(nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 4)))
    assert res["epsilon_lower_bound"] == 0.0
    assert 0.3 < res["auc"] < 0.7


def test_a_language_model_that_memorises_secrets_shows_exposure_and_a_positive_bound():
    transformers = pytest.importorskip("transformers")
    audit = tdg.PrivacyAudit(num_canaries=100, seed=0)
    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(shingles="tokens")], device="cpu", progress=False)
    data = guard.wrap(audit.wrap(token_rows()))
    assert audit.kind == "tokens" and guard.report()["counts"]["audit/canary"] == audit.included
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=64, n_layer=2, n_head=2, bos_token_id=0,
                                  eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.tensor([d["input_ids"] for d in data])
    for _ in range(40):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            model(input_ids=x[idx], labels=x[idx]).loss.backward()
            opt.step()
    res = audit.run(model)
    assert res["exposure_mean"] > res["exposure_chance"] + 3  # chance is about log2(e) = 1.44 bits
    assert res["exposure_chance"] < 2.5
    assert res["exposure_max"] == pytest.approx(res["exposure_ceiling"])
    assert res["epsilon_lower_bound"] > 1.0 and res["auc"] > 0.95


class CharTokenizer:
    """A character tokenizer (ids 1..), enough to score text canaries."""

    def __call__(self, text):
        return {"input_ids": [1 + (ord(ch) % 60) for ch in text]}


class Unigram(nn.Module):
    """A causal 'model' whose next-token logits ignore the context: favours the tokens it is told about."""

    def __init__(self, favoured=()):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(64))
        with torch.no_grad():
            for t in favoured:
                self.bias[t] += 5.0

    def forward(self, input_ids, attention_mask=None):
        return self.bias.expand(*input_ids.shape, 64)


def test_text_canaries_are_scored_on_their_secret_with_the_tokenizer():
    train = [f"some ordinary sentence number {i} about nothing" for i in range(300)]
    audit = tdg.PrivacyAudit(num_canaries=20, seed=0, tokenizer=CharTokenizer(), num_candidates=50)
    audit.wrap(train)
    assert audit.kind == "text" and all(c.startswith("my account number is ") for c in audit.canaries)
    res = audit.run(Unigram())
    assert res["exposure_mean"] is not None and res["num_candidates"] == 50
    assert res["epsilon_lower_bound"] == 0.0  # the prefix is the same for all and a flat model ranks nothing
    no_tokenizer = tdg.PrivacyAudit(num_canaries=20)
    no_tokenizer.wrap(train)
    with pytest.raises(ConfigError, match="tokenizer"):
        no_tokenizer.run(Unigram())


def test_a_custom_score_fn_and_its_mistakes():
    audit = tdg.PrivacyAudit(num_canaries=40, seed=0)
    audit.wrap(blobs())
    coins = list(audit.coins)
    lookup = {id(c): coin for c, coin in zip(audit.canaries, coins)}
    oracle = lambda model, recs: [0.0 if lookup.get(id(r)) else 1.0 for r in recs]  # noqa: E731
    res = audit.run(None, score_fn=oracle)
    assert res["auc"] == 1.0 and res["correct"] == res["guesses"] > 0
    with pytest.raises(ConfigError, match="returned 3 losses for 40"):
        audit.run(None, score_fn=lambda m, recs: [0.0, 1.0, 2.0])
    with pytest.raises(ConfigError, match="non-finite"):
        audit.run(None, score_fn=lambda m, recs: [float("nan")] * len(recs))


@pytest.mark.parametrize("seed", [0, 1])
def test_dp_sgd_at_epsilon_1_never_shows_a_bound_above_1(seed):
    """Soundness: the same memorising setup, trained with DP-SGD at epsilon 1, gives a lower bound of at most 1."""
    from torch.utils.data import DataLoader, TensorDataset

    audit = tdg.PrivacyAudit(num_canaries=100, seed=seed, delta=1e-5)
    data = audit.wrap(blobs(seed=seed))
    x = torch.stack([d[0] for d in data])
    y = torch.tensor([int(d[1]) for d in data])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 4))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    cfg = tdg.DPConfig(target_epsilon=1.0, delta=1e-5, epochs=20, max_grad_norm=1.0, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp = tdg.make_private(model, opt, DataLoader(TensorDataset(x, y), batch_size=64), cfg)
        model, opt, loader = dp
        for _ in range(20):
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
        eps = dp.epsilon()
        dp.close()
    res = audit.run(model)
    assert eps <= 1.0 + 1e-6
    assert res["epsilon_lower_bound"] <= 1.0
