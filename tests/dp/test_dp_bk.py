"""Book-keeping clipping (one backward pass) against an oracle: each example's gradient by its own backward."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from torchdataguard.dp.clipping.bookkeeper import BookKeeper
from torchdataguard.dp.clipping.layers.linear import linear_sq_norms
from torchdataguard.errors import ConfigError


def oracle(model, params, loss_of_row, rows, clip):
    """sum_i min(1, C/||g_i||) g_i and the norms, from one ordinary backward per example."""
    total = [torch.zeros_like(p) for p in params]
    norms = []
    for i in range(rows):
        model.zero_grad(set_to_none=True)
        loss_of_row(i).backward()
        g = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        n = torch.sqrt(sum(x.pow(2).sum() for x in g))
        norms.append(n)
        c = min(1.0, clip / (float(n) + 1e-6))
        for t, x in zip(total, g):
            t += c * x
    model.zero_grad(set_to_none=True)
    return total, torch.stack(norms)


def run_bk(model, params, per_example_fn, rows, clip, padding=None):
    bk = BookKeeper(model, params, padding=padding)
    assert bk.problems() == []
    bk.attach()
    try:
        bk.begin(rows)
        per = per_example_fn()
        norms = bk.backward(per)
        grads = bk.clipped_sum((clip / (norms + 1e-6)).clamp(max=1.0))
        assert all(p.grad is None for p in params), "autograd must not compute parameter gradients"
    finally:
        bk.detach()
    return grads, norms


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 16)
        self.act = nn.ReLU(inplace=True)  # in place on a tapped output
        self.out = nn.Linear(16, 3)

    def forward(self, ids):
        h = self.emb(ids)                                   # B T 8
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)   # Opacus's conv sampler
        h = self.norm(h)
        h = self.act(self.fc(h))
        return self.out(h.mean(1))


@pytest.mark.parametrize("clip", [1e6, 0.05])
def test_mixed_layers_match_per_example_backward(clip):
    torch.manual_seed(0)
    model = Mixed().train()
    ids = torch.randint(0, 20, (5, 7))
    ids[:, -2:] = 0  # padding tokens: their embedding row gets no gradient
    y = torch.randint(0, 3, (5,))
    params = list(model.parameters())
    crit = nn.CrossEntropyLoss(reduction="none")
    want, want_norms = oracle(model, params, lambda i: crit(model(ids[i:i + 1]), y[i:i + 1]).sum(), 5, clip)
    got, norms = run_bk(model, params, lambda: crit(model(ids), y), 5, clip)
    torch.testing.assert_close(norms, want_norms, rtol=1e-4, atol=1e-6)
    for p, w in zip(params, want):
        torch.testing.assert_close(got[p], w, rtol=1e-4, atol=1e-6)
    assert got[model.emb.weight][0].abs().sum() == 0  # the padding row


def test_bert_matches_per_example_backward(tiny_bert):
    model = tiny_bert(vocab_size=50, max_positions=16, layers=2, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0).train()
    ids = torch.randint(1, 50, (4, 9))
    pos = torch.arange(9).expand(4, 9).contiguous()
    y = torch.tensor([0, 1, 1, 0])
    params = [p for p in model.parameters() if p.requires_grad]
    crit = nn.CrossEntropyLoss(reduction="none")

    def per(i=None):
        sl = slice(None) if i is None else slice(i, i + 1)
        return crit(model(input_ids=ids[sl], position_ids=pos[sl]).logits, y[sl])

    want, want_norms = oracle(model, params, lambda i: per(i).sum(), 4, 0.5)
    got, norms = run_bk(model, params, per, 4, 0.5)
    torch.testing.assert_close(norms, want_norms, rtol=1e-4, atol=1e-6)
    for p, w in zip(params, want):
        torch.testing.assert_close(got[p], w, rtol=1e-3, atol=1e-6)


def test_gram_and_materialised_norms_agree():
    torch.manual_seed(1)
    a = torch.randn(3, 40, 6)
    g = torch.randn(3, 40, 5)
    want = torch.stack([(g[i].t() @ a[i]).pow(2).sum() for i in range(3)])
    torch.testing.assert_close(linear_sq_norms(a, g), want, rtol=1e-4, atol=1e-5)      # materialised
    a2, g2 = torch.randn(3, 2, 30), torch.randn(3, 2, 30)
    want2 = torch.stack([(g2[i].t() @ a2[i]).pow(2).sum() for i in range(3)])
    torch.testing.assert_close(linear_sq_norms(a2, g2), want2, rtol=1e-4, atol=1e-5)  # Gram


def test_refuses_tied_weights_and_shared_layers():
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    tied = nn.ModuleDict({"emb": emb, "head": head})
    probs = BookKeeper(tied, list(tied.parameters())).problems()
    assert probs and "tied" in probs[0]
    with pytest.raises(ConfigError, match="tied"):
        BookKeeper(tied, list(tied.parameters())).attach()

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x))

    m = Twice()
    bk = BookKeeper(m, list(m.parameters()))
    bk.attach()
    bk.begin(2)
    with pytest.raises(ConfigError, match="called 2 times"):
        m(torch.randn(2, 4))
    bk.detach()


def test_unsupported_and_uncovered_parameters_are_named():
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * self.scale

    m = Raw()
    probs = BookKeeper(m, list(m.parameters())).problems()
    assert any("Raw" in p for p in probs)


def test_inactive_forward_is_the_ordinary_one():
    torch.manual_seed(0)
    m = nn.Linear(3, 2)
    bk = BookKeeper(m, list(m.parameters()))
    bk.attach()
    m(torch.randn(4, 3)).sum().backward()  # no begin(): ordinary autograd, gradients as usual
    assert m.weight.grad is not None
    bk.detach()
    assert "forward" not in m.__dict__


# -- through the engine ---------------------------------------------------------------------------------------------
class TokenLM(nn.Module):
    """Token-level loss (mean over the batch's label tokens, -100 ignored), rows of different lengths."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(30, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 30)

    def forward(self, input_ids, labels=None):
        from transformers.modeling_outputs import TokenClassifierOutput

        logits = self.head(self.norm(self.emb(input_ids)))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.reshape(-1, 30), labels.reshape(-1), ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits)


class TokenRows(torch.utils.data.Dataset):
    def __init__(self, n=24):
        g = torch.Generator().manual_seed(4)
        self.ids = torch.randint(0, 30, (n, 6), generator=g)
        self.labels = self.ids.clone()
        for i in range(n):
            self.labels[i, 1 + i % 5:] = -100  # 1 to 5 label tokens per row

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _private_grads(mode, seed=7):
    import torchdataguard as tdg
    from torch.utils.data import DataLoader

    model = TokenLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dp = tdg.make_private(model, opt, DataLoader(TokenRows(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=0.05, delta=1e-3, clipping=mode, seed=seed))
    out = []
    for batch in dp.loader:
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
        out.append([p.grad.detach().clone() for p in model.parameters()])
    rep = dp.report()
    dp.close()
    return out, rep


def test_engine_bk_equals_hooks_on_a_token_level_loss():
    """Rows weigh by their label-token counts in the model's loss; both modes must clip each row's own loss."""
    want, rep_h = _private_grads("hooks")
    got, rep_b = _private_grads("bk")
    assert rep_b["clipping"] == "bk" and rep_h["clipping"] == "hooks" and len(got) == len(want) == 4
    for gs, ws in zip(got, want):
        for g, w in zip(gs, ws):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
    auto, rep_a = _private_grads("auto")
    assert rep_a["clipping"] == "bk"


def test_engine_bk_refuses_a_parameter_used_outside_its_layer():
    import torchdataguard as tdg
    from torch.utils.data import DataLoader

    class Leaky(TokenLM):
        def forward(self, input_ids, labels=None):
            out = super().forward(input_ids, labels)
            out.loss = out.loss + 0.01 * self.head.weight.pow(2).sum()  # a penalty autograd differentiates directly
            return out

    model = Leaky()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dp = tdg.make_private(model, opt, DataLoader(TokenRows(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping="bk", preflight=False, seed=0))
    batch = next(iter(dp.loader))
    model(**batch).loss.backward()
    with pytest.raises(ConfigError, match="outside their layers"):
        opt.step()
    dp.close()


@pytest.mark.parametrize("mode", ["hooks", "ghost", "bk"])
def test_plain_loop_accumulation_clips_every_micro_batch(mode):
    """make_private(accumulation=2): two micro-batches per step give the clipped sum over both, in every mode."""
    import torchdataguard as tdg
    from torch.utils.data import DataLoader

    model = TokenLM()
    ref = TokenLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    dp = tdg.make_private(model, opt, DataLoader(TokenRows(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=0.05, delta=1e-3, clipping=mode, seed=1),
                          accumulation=2)
    params = list(ref.parameters())
    crit = nn.CrossEntropyLoss(ignore_index=-100)
    pending, steps = [], 0
    for batch in dp.loader:
        model(**batch).loss.backward()
        pending.append(batch)
        if len(pending) == 2:
            opt.step()
            rows = [(b, i) for b in pending for i in range(len(b["labels"]))]
            want, _ = oracle(ref, params, lambda k: crit(ref(rows[k][0]["input_ids"][rows[k][1]:rows[k][1] + 1]).logits
                                                         .reshape(-1, 30),
                                                         rows[k][0]["labels"][rows[k][1]:rows[k][1] + 1].reshape(-1)),
                             len(rows), 0.05)
            for p, w in zip(model.parameters(), want):
                torch.testing.assert_close(p.grad, w / 6, rtol=1e-4, atol=1e-7)
            opt.zero_grad()
            pending, steps = [], steps + 1
    assert steps == dp.report()["steps"] == 4
    dp.close()


@pytest.mark.parametrize("mode", ["hooks", "bk"])
def test_plain_loop_refuses_a_step_over_two_logical_batches(mode):
    import torchdataguard as tdg
    from torch.utils.data import DataLoader

    from torchdataguard.errors import StateError

    model = TokenLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dp = tdg.make_private(model, opt, DataLoader(TokenRows(), batch_size=6),
                          tdg.DPConfig(noise_multiplier=1.0, delta=1e-3, clipping=mode, seed=1))
    it = iter(dp.loader)
    for _ in range(2):  # accumulating two logical batches by hand: the accountant would count one draw
        model(**next(it)).loss.backward()
    with pytest.raises(StateError, match="merges several Poisson draws"):
        opt.step()
    assert dp.report()["steps"] == 0
    dp.close()


def _views(rows):
    """Two views of each example (the second with shifted ids), one privacy unit, as Multiplicity does."""
    ids = torch.stack([r["input_ids"] for r in rows])
    labels = torch.stack([r["labels"] for r in rows])
    units = torch.arange(len(rows))
    return {"input_ids": torch.cat([ids, (ids + 3) % 30]), "labels": torch.cat([labels, labels]),
            "tdg_unit_ids": torch.cat([units, units])}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_engine_bk_equals_hooks_with_units_of_several_rows(reduction):
    """Embedding, LayerNorm and Linear with bias; a token-level loss; rows grouped into units before clipping."""
    import torchdataguard as tdg
    from torch.utils.data import DataLoader

    grads = {}
    for mode in ("hooks", "bk"):
        model = TokenLM()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        dp = tdg.make_private(model, opt, DataLoader(TokenRows(), batch_size=6, collate_fn=_views),
                              tdg.DPConfig(noise_multiplier=1e-9, max_grad_norm=0.05, delta=1e-3, clipping=mode,
                                           unit_reduction=reduction, seed=3))
        assert dp.report()["clipping"] == mode
        grads[mode] = []
        for batch in dp.loader:
            opt.zero_grad()
            model(**batch).loss.backward()
            opt.step()
            grads[mode].append([p.grad.detach().clone() for p in model.parameters()])
        dp.close()
    assert len(grads["bk"]) == len(grads["hooks"]) == 4
    for gs, ws in zip(grads["bk"], grads["hooks"]):
        for g, w in zip(gs, ws):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
