"""The one-run lower bound, AUC and exposure on score distributions whose answer is known."""
import math
import random
from fractions import Fraction

import pytest
import torch

from torchdataguard.audit.bound import (default_guess_counts, epsilon_lower_bound, guess_counts_grid, one_run_bound,
                                        p_value)
from torchdataguard.audit.stats import auc, exposure
from torchdataguard.errors import ConfigError


def closed_form_all_correct(r, beta):
    """All r guesses right, delta 0: P = q^r, so the bound solves q^r = beta."""
    q = beta ** (1 / r)
    return math.log(q / (1 - q))


def p_value_by_hand(m, r, v, eps, delta):
    """The theorem's right-hand side with exact binomials and an explicit loop (independent of the module)."""
    q = Fraction(math.exp(eps)) / (1 + Fraction(math.exp(eps)))
    pmf = [math.comb(r, k) * q ** k * (1 - q) ** (r - k) for k in range(r + 1)]
    f = lambda x: sum(pmf[max(x, 0):])  # noqa: E731
    alpha = max((f(v - i) - f(v)) / i for i in range(1, v + 1))
    return min(1.0, float(f(v) + 2 * m * Fraction(delta) * alpha))


@pytest.mark.parametrize("r", [10, 100, 1000])
def test_all_correct_guesses_give_the_closed_form(r):
    assert epsilon_lower_bound(m=r, r=r, v=r, delta=0.0, beta=0.05) == pytest.approx(closed_form_all_correct(r, 0.05),
                                                                                     abs=1e-6)


@pytest.mark.parametrize("m,r,v,eps,delta", [(50, 20, 15, 0.7, 0.0), (50, 20, 15, 0.7, 1e-3), (200, 40, 33, 1.3, 1e-4),
                                             (30, 30, 30, 2.0, 1e-2), (100, 10, 0, 1.0, 1e-3)])
def test_p_value_matches_an_exact_computation(m, r, v, eps, delta):
    if v == 0:
        assert p_value(m=m, r=r, v=v, eps=eps, delta=delta) == 1.0
        return
    assert p_value(m=m, r=r, v=v, eps=eps, delta=delta) == pytest.approx(p_value_by_hand(m, r, v, eps, delta), rel=1e-9)


@pytest.mark.parametrize("m", [20, 100, 1000])
def test_perfectly_separated_scores_give_the_maximal_bound_for_m(m):
    coins = [1, 0] * (m // 2)
    random.Random(m).shuffle(coins)
    scores = [c + 1e-3 * random.Random(i).random() for i, c in enumerate(coins)]
    res = one_run_bound(scores, coins)
    counts = default_guess_counts(m)
    assert res.guesses == res.correct == m  # the best uses every canary, all right
    assert res.epsilon_lower_bound == pytest.approx(closed_form_all_correct(m, 0.05 / len(counts)), abs=1e-6)
    # and nothing can do better with m canaries at this confidence
    assert res.epsilon_lower_bound >= max(epsilon_lower_bound(m=m, r=2 * k, v=2 * k, delta=0.0, beta=0.05 / len(counts))
                                          for k in counts)


def test_random_scores_give_a_bound_near_zero():
    bounds = []
    for seed in range(30):
        rng = random.Random(seed)
        coins = [rng.randint(0, 1) for _ in range(1000)]
        bounds.append(one_run_bound([rng.random() for _ in coins], coins, delta=1e-5).epsilon_lower_bound)
    assert max(bounds) < 0.5
    assert sum(b == 0.0 for b in bounds) >= 27  # a false positive at most 5% of the time, fewer after the correction


@pytest.mark.parametrize("eps", [0.5, 2.0])
def test_sound_and_useful_on_randomised_response(eps):
    """Scores from eps-DP randomised response (each canary's guessable bit flipped with prob 1/(1+e^eps)): the
    bound exceeds eps in at most ~5% of runs, and is well above 0 on average (the test has power)."""
    gen = torch.Generator().manual_seed(int(eps * 10))
    over, total = 0, 0.0
    runs = 60
    for _ in range(runs):
        coins = torch.randint(0, 2, (400,), generator=gen)
        flip = torch.rand(400, generator=gen) < 1 / (1 + math.exp(eps))
        bit = torch.where(flip, 1 - coins, coins)
        scores = bit + 0.01 * torch.rand(400, generator=gen)  # ties broken independently of the coins
        b = one_run_bound(scores.tolist(), coins.tolist()).epsilon_lower_bound
        over += b > eps
        total += b
    assert over <= 0.05 * runs + 1
    assert total / runs > 0.4 * eps


@pytest.mark.parametrize("m,r,v,delta", [(100, 40, 30, 0.0), (1000, 200, 170, 1e-5), (500, 100, 100, 1e-4),
                                         (64, 64, 50, 0.0)])
def test_the_bound_is_the_edge_of_rejection(m, r, v, delta):
    """Never above the epsilon at which the observed guesses stop being unlikely, and not below it either."""
    beta = 0.05
    eps = epsilon_lower_bound(m=m, r=r, v=v, delta=delta, beta=beta)
    assert eps > 0
    assert p_value(m=m, r=r, v=v, eps=eps + 1e-4, delta=delta) >= beta
    assert p_value(m=m, r=r, v=v, eps=max(0.0, eps - 1e-4), delta=delta) < beta


def test_the_bound_falls_with_delta_and_confidence_and_rises_with_correct_guesses():
    a = epsilon_lower_bound(m=1000, r=200, v=180, delta=0.0, beta=0.05)
    b = epsilon_lower_bound(m=1000, r=200, v=180, delta=1e-5, beta=0.05)
    c = epsilon_lower_bound(m=1000, r=200, v=180, delta=1e-5, beta=0.01)
    d = epsilon_lower_bound(m=1000, r=200, v=190, delta=1e-5, beta=0.05)
    assert a > b > c > 0 and d > b
    assert epsilon_lower_bound(m=1000, r=200, v=100, delta=0.0, beta=0.05) == 0.0


def test_guess_counts():
    assert guess_counts_grid(1000) == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert default_guess_counts(1000) == [5, 10, 20, 50, 100, 200, 500]
    assert default_guess_counts(6) == [3]
    assert guess_counts_grid(1) == []
    assert one_run_bound([0.3], [1]).guesses == 0


def test_bad_inputs_are_refused_with_every_problem():
    with pytest.raises(ConfigError) as e:
        one_run_bound([0.1, float("nan")], [1, 2, 0], confidence=1.5)
    msg = str(e.value)
    assert "coins has 3" in msg and "0 (left out) or 1" in msg and "finite" in msg and "confidence=1.5" in msg
    with pytest.raises(ConfigError, match="v <= guesses r"):
        epsilon_lower_bound(m=10, r=5, v=6, delta=0.0, beta=0.05)


def test_auc_against_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = random.Random(3)
    coins = [rng.randint(0, 1) for _ in range(300)]
    scores = [round(c * 0.3 + rng.random(), 1) for c in coins]  # rounding makes ties
    assert auc(scores, coins) == pytest.approx(sk.roc_auc_score(coins, scores), abs=1e-12)
    assert auc([1.0, 2.0], [1, 1]) is None


def test_exposure():
    assert exposure(0.5, [1.0, 2.0, 3.0]) == pytest.approx(2.0)      # best of 4: log2(4) - log2(1)
    assert exposure(5.0, [1.0, 2.0, 3.0]) == pytest.approx(0.0)      # worst of 4
    assert exposure(2.0, [1.0, 2.0, 3.0]) == pytest.approx(2 - math.log2(2.5))
    # a secret drawn like the candidates has about log2(e) bits on average
    rng = random.Random(0)
    mean = sum(exposure(rng.random(), [rng.random() for _ in range(255)]) for _ in range(2000)) / 2000
    assert mean == pytest.approx(1 / math.log(2), abs=0.15)
    with pytest.raises(ConfigError):
        exposure(1.0, [])
