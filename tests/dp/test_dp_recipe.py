"""tdg.DPConfig.recommend: settings that learn, with the accountant's epsilon within the target."""
import math

import pytest

import torchdataguard as tdg
from torchdataguard.dp.epsilon import epsilon_prv, epsilon_rdp
from torchdataguard.errors import ConfigError


@pytest.mark.parametrize("trainable", ["head", "lora", "full"])
@pytest.mark.parametrize("eps", [1.0, 3.0, 8.0])
def test_recipe_plan_spends_at_most_the_target_by_the_accountant(trainable, eps):
    r = tdg.DPConfig.recommend(1292, target_epsilon=eps, trainable=trainable)
    cfg = r.config
    assert isinstance(cfg, tdg.DPConfig) and cfg.noise_multiplier == r.noise_multiplier and cfg.target_epsilon == eps
    assert r.micro_batch * r.accumulation == r.logical_batch <= 1292
    assert r.sample_rate == pytest.approx(r.logical_batch / 1292)
    assert r.steps == r.epochs * math.ceil(1292 / r.logical_batch)
    spent = epsilon_prv([(r.noise_multiplier, r.sample_rate, r.steps)], cfg.delta)  # independent recomputation
    assert spent <= eps and spent == pytest.approx(r.epsilon) and spent > 0.9 * eps  # calibrated, not wasteful
    assert r.learning_rate[0] <= r.learning_rate[1]


def test_recipe_with_rdp_and_an_explicit_plan():
    r = tdg.DPConfig.recommend(5000, 10, 3.0, accountant="rdp", logical_batch=512, micro_batch=64, delta=1e-6)
    assert (r.logical_batch, r.accumulation, r.steps) == (512, 8, 10 * math.ceil(5000 / 512))
    assert epsilon_rdp([(r.noise_multiplier, 512 / 5000, r.steps)], 1e-6) <= 3.0


def test_recipe_config_trains_within_its_epsilon_through_make_private():
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset

    r = tdg.DPConfig.recommend(200, 3, 2.0, seed=0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=r.learning_rate[0])
    data = TensorDataset(torch.randn(200, 4), torch.randint(0, 2, (200,)))
    dp = tdg.make_private(model, opt, DataLoader(data, batch_size=r.logical_batch), r.config)
    for _ in range(r.epochs):
        for x, y in dp.loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    rep = dp.report()
    assert rep["steps"] == r.steps and rep["sample_rate"] == pytest.approx(r.sample_rate)
    assert rep["epsilon_prv"] <= 2.0 and rep["epsilon_prv"] == pytest.approx(r.epsilon, rel=1e-3)
    dp.close()


def test_recipe_refuses_bad_input_with_the_fix():
    with pytest.raises(ConfigError, match="num_examples"):
        tdg.DPConfig.recommend(1, target_epsilon=8.0)
    with pytest.raises(ConfigError, match="trainable"):
        tdg.DPConfig.recommend(100, trainable="everything")
    with pytest.raises(ConfigError, match="larger than"):
        tdg.DPConfig.recommend(100, logical_batch=500)
    with pytest.raises(ConfigError, match="target_epsilon"):
        tdg.DPConfig.recommend(100, target_epsilon=0.0)


def test_lora_recipe_is_the_setting_measured_in_the_utility_table():
    """benchmarks/dp_utility.py's LoRA rows: logical batch 128 on the demo's 1,295 emails, AdamW 1e-3 on the
    adapters and 5e-2 on the new head, the epochs chosen on validation at epsilon 8."""
    r = tdg.DPConfig.recommend(1295, target_epsilon=8.0, trainable="lora")
    assert (r.logical_batch, r.micro_batch, r.accumulation, r.epochs) == (128, 16, 8, 4)
    assert r.steps == 4 * math.ceil(1295 / 128) and r.epsilon <= 8.0
    assert r.learning_rate == (1e-3, 1e-3) and r.head_learning_rate == 5e-2 and r.optimizer == "AdamW"
    assert r.to_dict()["head_learning_rate"] == 5e-2
    assert tdg.DPConfig.recommend(1295, trainable="head").head_learning_rate is None
