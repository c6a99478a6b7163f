"""make_private on a plain loop: the private gradient is exactly Opacus's clip-sum-noise, units, budget, refusals."""
import math
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, WeightedRandomSampler

import torchdataguard as tdg
from torchdataguard.dp.accounting import PrivacyBudgetExhausted
from torchdataguard.dp.epsilon import epsilon_rdp
from torchdataguard.dp.preflight import fix_model
from torchdataguard.errors import ConfigError, StateError

C = 0.05  # small clipping bound: every per-example gradient is clipped


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def data(n=32):
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g))


class TinyClassifier(nn.Module):
    """A Hugging Face-style model: keyword inputs, an output with ``loss`` and ``logits``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, input_ids, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.head(self.emb(input_ids).mean(1))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


class TokenData(Dataset):
    def __init__(self, n=24):
        g = torch.Generator().manual_seed(2)
        self.ids = torch.randint(0, 20, (n, 5), generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def clean_copy(model, factory):
    """The same weights in a model without the DP hooks (lr=0, so the weights never change)."""
    ref = factory()
    ref.load_state_dict(model.state_dict())
    return ref


def manual_private_grad(model, loss_of_row, rows, clip, expected, units=None, reduction="mean"):
    """Clip-then-sum of per-example gradients by brute force (one backward per row, on a clean copy)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for r in rows:
        model.zero_grad()
        loss_of_row(r).backward()
        grads.append([p.grad.detach().clone() for p in params])
    model.zero_grad()
    if units is not None:
        groups = {}
        for g, u in zip(grads, units):
            groups.setdefault(u, []).append(g)
        grads = []
        for members in groups.values():
            tot = [sum(t) for t in zip(*members)]
            grads.append([t / len(members) for t in tot] if reduction == "mean" else tot)
    out = [torch.zeros_like(p) for p in params]
    for g in grads:
        norm = torch.sqrt(sum((t ** 2).sum() for t in g))
        f = min(1.0, clip / (norm.item() + 1e-6))
        for o, t in zip(out, g):
            o += f * t
    return [o / expected for o in out]


@pytest.mark.parametrize("mode", ["hooks", "bk"])
def test_plain_loop_gradient_is_clip_sum_over_expected_batch(mode):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    cfg = tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=C, delta=1e-3, clipping=mode, seed=3)
    dp = tdg.make_private(model, opt, DataLoader(data(), batch_size=8), cfg)
    model, opt, loader = dp
    ref = clean_copy(model, mlp)
    checked = 0
    for x, y in loader:
        want = manual_private_grad(ref, lambda i: nn.functional.cross_entropy(ref(x[i:i + 1]), y[i:i + 1]),
                                   range(len(x)), C, 8.0)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        for p, w in zip(model.parameters(), want):
            torch.testing.assert_close(p.grad, w, atol=1e-6, rtol=1e-4)
        checked += 1
    rep = dp.report()
    assert checked == 4 == rep["steps"]
    assert rep["sample_rate"] == pytest.approx(8 / 32)
    assert rep["clipping"] == mode
    assert rep["epsilon_unbounded"] and rep["epsilon_prv"] is None  # sigma ~ 0: no guarantee, said plainly
    dp.close()
    assert not hasattr(next(model.parameters()), "grad_sample")


@pytest.mark.parametrize("mode", ["hooks", "ghost", "bk"])
def test_hf_style_model_hooks_and_ghost_give_the_clipped_gradient(mode):
    model = TinyClassifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    cfg = tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=C, delta=1e-3, clipping=mode, seed=5)
    dp = tdg.make_private(model, opt, DataLoader(TokenData(), batch_size=6), cfg)
    assert dp.report()["clipping"] == mode
    ref = clean_copy(model, TinyClassifier)
    for batch in dp.loader:
        want = manual_private_grad(
            ref, lambda i: nn.functional.cross_entropy(ref(batch["input_ids"][i:i + 1]).logits,
                                                         batch["labels"][i:i + 1]),
            range(len(batch["labels"])), C, 6.0)
        opt.zero_grad()
        out = model(**batch)
        out.loss.backward()
        opt.step()
        for p, w in zip(model.parameters(), want):
            torch.testing.assert_close(p.grad, w, atol=1e-6, rtol=1e-4)
    assert dp.report()["steps"] == 4
    dp.close()


class TiedClassifier(TinyClassifier):
    """Output layer tied to the embedding (as in language models): book-keeping refuses shared parameters."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.emb.weight


def test_auto_mode_picks_bk_then_ghost_when_losses_are_readable_else_hooks():
    model = TinyClassifier()
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(TokenData(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    assert dp.report()["clipping"] == "bk"
    assert "matched autograd" in dp.report()["preflight"]["clipping"]
    dp.close()
    assert "forward" not in model.head.__dict__  # the layers' own forward is back
    model = TiedClassifier()
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1),
                          DataLoader(TokenData(), batch_size=6), tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    rep = dp.report()
    assert rep["clipping"] == "ghost", rep["preflight"]
    assert any("book-keeping clipping not used" in n and "tied" in n for n in rep["preflight"]["notes"])
    dp.close()
    model = TiedClassifier()
    with pytest.raises(ConfigError, match="clipping='bk' cannot clip this model"):
        tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(TokenData(), batch_size=6),
                         tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping="bk"))
    model = mlp()  # a plain loop whose loss the engine cannot read: book-keeping works on the loop's own loss
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=8),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
    assert dp.report()["clipping"] == "bk"
    dp.close()
    model = TiedClassifier()  # tied weights and a loss the engine cannot read: per-sample gradients
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(TokenData(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3),
                          forward=lambda m, b: m(b["input_ids"]).logits,
                          loss_fn=lambda out, b: nn.functional.cross_entropy(out, b["labels"]))
    assert dp.report()["clipping"] == "hooks", dp.report()["preflight"]
    assert "cannot be read" in dp.report()["preflight"]["clipping"]
    dp.close()


def _views_collate(rows):
    """Two augmented views of each example, one privacy unit (as the augmentation stages do)."""
    ids = torch.stack([r["input_ids"] for r in rows])
    labels = torch.stack([r["labels"] for r in rows])
    views = torch.cat([ids, (ids + 1) % 20])
    order = torch.arange(2 * len(rows)).view(2, -1).t().flatten()  # views of a unit are adjacent
    return {"input_ids": views[order], "labels": torch.cat([labels, labels])[order],
            "tdg_unit_ids": torch.arange(len(rows)).repeat_interleave(2)}


@pytest.mark.parametrize("mode", ["auto", "hooks", "bk"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_unit_ids_combine_rows_before_clipping(reduction, mode):
    model = TinyClassifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    cfg = tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=C, delta=1e-3, unit_reduction=reduction, seed=7,
                       clipping=mode)
    dp = tdg.make_private(model, opt, DataLoader(TokenData(), batch_size=6, collate_fn=_views_collate), cfg)
    # a unit holds several rows: no ghost clipping; book-keeping sums each unit's rows before the norm
    assert dp.report()["clipping"] == ("bk" if mode == "auto" else mode)
    ref = clean_copy(model, TinyClassifier)
    for batch in dp.loader:
        units = batch["tdg_unit_ids"].tolist()
        want = manual_private_grad(
            ref, lambda i: nn.functional.cross_entropy(ref(batch["input_ids"][i:i + 1]).logits,
                                                         batch["labels"][i:i + 1]),
            range(len(units)), C, 6.0, units=units, reduction=reduction)
        opt.zero_grad()
        model(**batch).loss.backward()  # the unit ids are popped before the forward
        opt.step()
        for p, w in zip(model.parameters(), want):
            torch.testing.assert_close(p.grad, w, atol=1e-6, rtol=1e-4)
    dp.close()


def test_sampling_by_user_unit_ids():
    model = mlp()
    users = [i // 4 for i in range(32)]  # 8 users with 4 rows each
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=2),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, unit="user", unit_reduction="sum", seed=1),
                          unit_ids=users)
    rep = dp.report()
    assert rep["dataset_units"] == 8 and rep["sample_rate"] == pytest.approx(2 / 8)
    assert "user" in rep["unit"]
    sampler = dp.loader.batch_sampler
    for m, (x, y) in enumerate(dp.loader):
        plan = sampler.plans[m]
        assert len(x) == plan.rows and (plan.pad or (len(x) % 4 == 0 and len(set(plan.units)) == len(x) // 4))
    dp.close()


def test_budget_stops_the_loader_and_the_optimizer():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    cfg = tdg.DPConfig(noise_multiplier=1.0, target_epsilon=2.1, delta=1e-5, accountant="rdp", seed=0)
    dp = tdg.make_private(model, opt, DataLoader(data(64), batch_size=2), cfg)
    steps = 0
    for _ in range(10):
        for x, y in dp.loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            steps += 1
    rep = dp.report()
    assert steps == rep["steps"] and 0 < steps < 320
    assert rep["epsilon_rdp"] <= 2.1 < epsilon_rdp([(1.0, 2 / 64, steps + 1)], 1e-5)
    with pytest.raises(PrivacyBudgetExhausted, match="target_epsilon=2.1"):
        opt.step()
    dp.close()


def test_target_epsilon_calibrates_noise_over_planned_epochs():
    model = mlp()
    cfg = tdg.DPConfig(target_epsilon=3.0, delta=1e-5, epochs=2, accountant="rdp")
    dp = tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=8), cfg)
    sigma = dp.report()["noise_multiplier"]
    assert 2.9 <= epsilon_rdp([(sigma, 0.25, 8)], 1e-5) <= 3.0
    dp.close()


def test_ledger_checkpoint_resume_continues_epsilon(tmp_path):
    cfg = tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, accountant="rdp", seed=0)

    def run(steps, resume=None):
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        dp = tdg.make_private(model, opt, DataLoader(data(), batch_size=8), cfg)
        if resume is not None:
            dp.load(resume, expect_steps=3)
        done = 0
        while done < steps:
            for x, y in dp.loader:
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                done += 1
                if done == steps:
                    break
        return dp

    first = run(3)
    first.save(tmp_path)
    resumed = run(2, resume=tmp_path)
    assert resumed.report()["steps"] == 5
    assert resumed.epsilon() == pytest.approx(epsilon_rdp([(1.0, 0.25, 5)], 1e-3))
    with pytest.raises(StateError, match="no privacy ledger"):
        run(0).load(tmp_path / "elsewhere")
    with pytest.raises(StateError, match="resumed run is at step 4"):
        run(0).load(tmp_path, expect_steps=4)


# -- refusals ---------------------------------------------------------------------------------------------------------
def _setup(loader=None, cfg=None, model=None):
    model = model or mlp()
    return tdg.make_private(model, torch.optim.SGD(model.parameters(), lr=0.1),
                            loader or DataLoader(data(), batch_size=8),
                            cfg or tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))


@pytest.mark.parametrize("loader,needle", [
    (lambda: DataLoader(data(), batch_size=8, shuffle=True), "shuffle=False"),
    (lambda: DataLoader(data(), batch_size=8, drop_last=True), "drop_last=False"),
    (lambda: DataLoader(data(), batch_size=8, sampler=WeightedRandomSampler([1.0] * 32, 32)), "WeightedRandomSampler"),
])
def test_non_poisson_loaders_are_refused_with_the_fix(loader, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        _setup(loader())
    assert "accept_approximate=True" in str(e.value)


def test_approximate_guarantee_is_written_in_the_report():
    cfg = tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, accept_approximate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp = _setup(DataLoader(data(), batch_size=8, shuffle=True), cfg)
    rep = dp.report()
    assert rep["approximate"] is True and "shuffle" in rep["approximate_reason"]
    assert rep["sampling"].startswith("the loader's own")
    dp.close()


def test_bad_privacy_settings_are_refused():
    with pytest.raises(ConfigError, match="delta=0.1 >= 1/N"):
        _setup(cfg=tdg.DPConfig(noise_multiplier=1.0, delta=0.1))
    with pytest.raises(ConfigError, match="epsilon <= 0"):
        tdg.DPConfig(target_epsilon=-1.0)
    with pytest.raises(ConfigError, match="neither target_epsilon nor noise_multiplier"):
        tdg.DPConfig(delta=1e-5)
    with pytest.raises(ConfigError, match="no sampling plan"):
        _setup(cfg=tdg.DPConfig(target_epsilon=3.0, delta=1e-3))
    with pytest.raises(ConfigError, match="give one of them"):
        tdg.DPConfig(noise_multiplier=1.0, epochs=1, steps=3)


def test_model_in_eval_mode_is_refused():
    with pytest.raises(ConfigError, match="call model.train"):
        _setup(model=mlp().eval())


def test_optimizer_created_before_the_model_was_fixed_is_refused():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fixed = fix_model(model)
    with pytest.raises(ConfigError, match="created before the model was changed"):
        tdg.make_private(fixed, opt, DataLoader(data(), batch_size=8), tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))


def test_optimizer_that_already_stepped_is_refused():
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = data(4).tensors
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    with pytest.raises(ConfigError, match="already taken steps"):
        tdg.make_private(model, opt, DataLoader(data(), batch_size=8), tdg.DPConfig(noise_multiplier=1.0, delta=1e-3))
