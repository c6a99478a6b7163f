"""Accounting: published epsilons, the dp-accounting cross-check, the ledger and the budget."""
import json
import math

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.dp.accounting import LEDGER_FILE, PrivacyLedger
from torchdataguard.dp.epsilon import epsilon_prv, epsilon_rdp, noise_for_target
from torchdataguard.errors import ConfigError, StateError

# Opacus examples/mnist_README.md: -sr=0.004 (q = 240/60000), so 250 steps per epoch, delta 1e-5.
OPACUS_MNIST = [  # (sigma, epochs, published epsilon)
    (0.7, 45, 6.86),
    (1.1, 60, 2.91),
    (1.3, 15, 1.16),
]


@pytest.mark.parametrize("sigma,epochs,published", OPACUS_MNIST)
def test_opacus_mnist_readme_values(sigma, epochs, published):
    q = 240 / 60000
    steps = int(epochs / q)
    assert abs(epsilon_rdp([(sigma, q, steps)], 1e-5) - published) <= 0.01


def test_tf_privacy_tutorial_value():
    # TF-Privacy tutorial: N=60000, batch 256, noise 1.1, 60 epochs, delta 1e-5 -> epsilon 3.01 (RDP)
    n, batch, epochs = 60000, 256, 60
    steps = epochs * n // batch
    assert abs(epsilon_rdp([(1.1, batch / n, steps)], 1e-5) - 3.01) <= 0.01


def test_cross_check_with_dp_accounting():
    dpa = pytest.importorskip("dp_accounting")
    import numpy as np
    from dp_accounting.pld import pld_privacy_accountant
    from dp_accounting.rdp import rdp_privacy_accountant

    from torchdataguard.dp.epsilon import DEFAULT_ORDERS

    q, sigma, steps = 0.004, 1.3, 3750
    event = dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps)
    rdp = rdp_privacy_accountant.RdpAccountant(list(DEFAULT_ORDERS))
    rdp.compose(event)
    orders = np.asarray(rdp._orders, dtype=float)
    classic = float(np.min(np.asarray(rdp._rdp) - math.log(1e-5) / (orders - 1)))
    ours_rdp = epsilon_rdp([(sigma, q, steps)], 1e-5)
    assert abs(ours_rdp - classic) < 1e-3
    # their (tighter) conversion is below the classic one
    assert rdp.get_epsilon(1e-5) <= ours_rdp
    pld = pld_privacy_accountant.PLDAccountant()
    pld.compose(event)
    ours_prv = epsilon_prv([(sigma, q, steps)], 1e-5)
    assert abs(ours_prv - pld.get_epsilon(1e-5)) <= 0.02
    assert ours_prv < ours_rdp


def test_prv_equals_opacus_accountant_and_is_tighter_than_rdp():
    from opacus.accountants import PRVAccountant

    acc = PRVAccountant()
    for _ in range(3):
        acc.step(noise_multiplier=1.0, sample_rate=0.01)
    acc.step(noise_multiplier=2.0, sample_rate=0.01)
    hist = [(1.0, 0.01, 3), (2.0, 0.01, 1)]
    assert epsilon_prv(hist, 1e-5) == pytest.approx(acc.get_epsilon(1e-5))
    assert epsilon_prv(hist, 1e-5) < epsilon_rdp(hist, 1e-5)


def test_ledger_merges_runs_and_round_trips(tmp_path):
    led = PrivacyLedger(delta=1e-5, accountant="rdp", unit="user")
    led.step(noise_multiplier=1.0, sample_rate=0.01)
    led.step(noise_multiplier=1.0, sample_rate=0.01)
    led.step(noise_multiplier=0.8, sample_rate=0.01, n=3)
    assert led.history == [[1.0, 0.01, 2], [0.8, 0.01, 3]]
    assert led.steps == 5
    eps = led.epsilon()
    assert eps == pytest.approx(epsilon_rdp([(1.0, 0.01, 2), (0.8, 0.01, 3)], 1e-5))
    path = led.save(tmp_path)
    assert path.endswith(LEDGER_FILE)
    with open(path) as fh:
        assert json.load(fh)["history"] == led.history  # plain JSON
    again = PrivacyLedger(delta=1e-5, accountant="rdp", unit="user")
    again.load(tmp_path, expect_steps=5)
    assert again.history == led.history and again.epsilon() == pytest.approx(eps)
    # continuing the restored ledger gives what an uninterrupted run gives
    again.step(noise_multiplier=0.8, sample_rate=0.01)
    led.step(noise_multiplier=0.8, sample_rate=0.01)
    assert again.epsilon() == pytest.approx(led.epsilon())


def test_ledger_missing_or_mismatched_is_an_error(tmp_path):
    led = PrivacyLedger(delta=1e-5, accountant="rdp")
    with pytest.raises(StateError, match="no privacy ledger"):
        led.load(tmp_path)
    led.step(noise_multiplier=1.0, sample_rate=0.01, n=4)
    led.save(tmp_path)
    with pytest.raises(StateError, match="accounts 4 optimizer steps but the resumed run is at step 6"):
        PrivacyLedger(delta=1e-5, accountant="rdp").load(tmp_path, expect_steps=6)
    with pytest.raises(StateError, match="delta"):
        PrivacyLedger(delta=1e-6, accountant="rdp").load(tmp_path)
    with pytest.raises(StateError, match="accountant"):
        PrivacyLedger(delta=1e-5, accountant="prv").load(tmp_path)
    with pytest.raises(StateError, match="not a torchdataguard privacy ledger"):
        PrivacyLedger(delta=1e-5).load_state_dict({"history": []})


@pytest.mark.parametrize("accountant,target", [("rdp", 2.2), ("prv", 1.3)])
def test_budget_limit_is_exact(accountant, target):
    sigma, q = 1.0, 0.02
    led = PrivacyLedger(delta=1e-5, accountant=accountant, target_epsilon=target)
    led.horizon = 400
    limit = led.max_steps(sigma, q)
    assert 0 < limit < 400
    assert led.epsilon([(sigma, q, limit)]) <= target < led.epsilon([(sigma, q, limit + 1)])
    led.step(noise_multiplier=sigma, sample_rate=q, n=limit - 1)
    assert led.can_step(sigma, q)
    led.step(noise_multiplier=sigma, sample_rate=q)
    assert not led.can_step(sigma, q)


def test_noise_for_target_spends_about_the_target():
    sigma = noise_for_target(target_epsilon=3.0, delta=1e-5, sample_rate=0.01, steps=500, accountant="rdp")
    eps = epsilon_rdp([(sigma, 0.01, 500)], 1e-5)
    assert 2.95 <= eps <= 3.0
    with pytest.raises(ConfigError, match="at least 1 planned optimizer step"):
        noise_for_target(target_epsilon=3.0, delta=1e-5, sample_rate=0.01, steps=0)


def test_ledger_refuses_bad_settings():
    with pytest.raises(ConfigError, match="delta"):
        PrivacyLedger(delta=1.5)
    with pytest.raises(ConfigError, match="accountant"):
        PrivacyLedger(delta=1e-5, accountant="gdp")


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
