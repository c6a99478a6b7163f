"""Multiplicity: K views per example, the tdg_unit_ids contract, pop_unit_ids, DP safety."""
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.augment import UNIT_IDS_KEY, ImageAugment, MixUp, Multiplicity, TokenAugment, pop_unit_ids
from torchdataguard.errors import ConfigError, GuardInputError


def text_batch(n=4, length=10):
    ids = torch.randint(5, 60, (n, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 1, 2
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.arange(n),
            "position_ids": torch.arange(length).view(1, length), "return_dict": True, "texts": ["a", "b", "c", "d"]}


def test_views_are_adjacent_and_share_a_unit():
    batch = text_batch()
    mult = Multiplicity(3)
    out = mult(batch)
    assert out["input_ids"].shape == (12, 10)
    assert torch.equal(out["input_ids"], batch["input_ids"].repeat_interleave(3, 0))
    assert out["labels"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert out["position_ids"] is batch["position_ids"]  # broadcast tensors pass through
    assert out["return_dict"] is True and out["texts"][:4] == ["a", "a", "a", "b"]
    ids = out[UNIT_IDS_KEY]
    assert ids.dtype == torch.int64 and ids.shape == (12,) and ids.device == batch["input_ids"].device
    assert ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert mult(batch)[UNIT_IDS_KEY].tolist()[::3] == [4, 5, 6, 7]  # unique across batches
    assert mult.counters() == {"augment/multiplicity/examples": 8, "augment/multiplicity/views": 24}


def test_views_are_augmented_differently_in_a_guard():
    guard = tdg.Guard([Multiplicity(4), TokenAugment(mask_rate=0.3, mask_token_id=3, pad_token_id=0, vocab_size=60,
                                                     special_ids=[0, 1, 2, 3], seed=0)], device="cpu", progress=False)
    out = guard.apply_batch(text_batch())
    views = out["input_ids"].view(4, 4, 10)
    for i in range(4):
        assert len({tuple(v.tolist()) for v in views[i]}) > 1
    rest, ids = pop_unit_ids(out)
    assert UNIT_IDS_KEY not in rest and UNIT_IDS_KEY in out and ids.shape == (16,)
    counts = guard.report()["counts"]
    assert counts["augment/multiplicity/views"] == 16 and counts["augment/token/examples"] == 16


def test_existing_unit_ids_and_unit_key_are_repeated():
    batch = {"pixel_values": torch.rand(3, 1, 4, 4), UNIT_IDS_KEY: torch.tensor([7, 7, 9])}
    out = Multiplicity(2)(batch)
    assert out[UNIT_IDS_KEY].tolist() == [7, 7, 7, 7, 9, 9]
    batch = {"pixel_values": torch.rand(3, 1, 4, 4), "user": torch.tensor([5, 6, 5], dtype=torch.int32)}
    out = Multiplicity(2, unit_key="user")(batch)
    assert out[UNIT_IDS_KEY].tolist() == [5, 5, 6, 6, 5, 5] and out[UNIT_IDS_KEY].dtype == torch.int64


def test_mixup_after_multiplicity_is_refused_but_before_is_fine():
    batch = {"pixel_values": torch.rand(4, 3, 8, 8), "labels": torch.arange(4)}
    with pytest.raises(GuardInputError, match="tdg_unit_ids"):
        tdg.Guard([Multiplicity(2), MixUp(num_classes=4, seed=0)], device="cpu", progress=False).apply_batch(batch)
    out = tdg.Guard([MixUp(num_classes=4, seed=0), Multiplicity(2), ImageAugment(seed=0)], device="cpu",
                    progress=False).apply_batch(batch)
    assert out["pixel_values"].shape == (8, 3, 8, 8) and out["labels"].shape == (8, 4)


def test_forward_hook_pops_unit_ids_before_the_model():
    model = torch.nn.Linear(6, 2)
    seen = {}

    def hook(mod, args, kwargs):
        batch, seen["ids"] = pop_unit_ids(guard.apply_batch(kwargs))
        return args, batch

    guard = tdg.Guard([Multiplicity(2)], device="cpu", progress=False)

    def fwd(input=None):
        return model(input)

    model.register_forward_pre_hook(hook, with_kwargs=True)
    out = model(input=torch.rand(3, 6))
    assert out.shape == (6, 2) and seen["ids"].tolist() == [0, 0, 1, 1, 2, 2]


def test_pop_unit_ids_without_the_key():
    b = {"x": torch.ones(2)}
    assert pop_unit_ids(b) == (b, None)


@pytest.mark.parametrize("batch, words", [
    ((torch.rand(2, 3),), ["mapping", "tuple"]),
    ({"input_ids": torch.ones(0, 3, dtype=torch.long)}, ["'input_ids'", "(0, 3)", "empty"]),
    ({"foo": "bar"}, ["no tensor", "['foo']"]),
    ({"pixel_values": torch.rand(3, 1, 2, 2), UNIT_IDS_KEY: torch.tensor([1, 2])}, ["'tdg_unit_ids'", "(2,)", "(3,)"]),
])
def test_bad_input(batch, words):
    with pytest.raises(GuardInputError) as e:
        Multiplicity(2)(batch)
    for w in words:
        assert w in str(e.value)


def test_bad_settings():
    with pytest.raises(ConfigError, match="k=0"):
        Multiplicity(0)
    with pytest.raises(ConfigError, match="unit_key=''"):
        Multiplicity(2, unit_key="")


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # Opacus' hooks on an embedding-first model
def test_multiplicity_views_feed_the_dp_engine():
    """End to end with the DP layer: K augmented views per example, the engine takes tdg_unit_ids off the
    batch before the forward and averages each unit's views before clipping."""
    from torch.utils.data import DataLoader, default_collate

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.emb = torch.nn.Embedding(60, 8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, input_ids, attention_mask=None, labels=None):
            from transformers.modeling_outputs import SequenceClassifierOutput

            logits = self.head(self.emb(input_ids).mean(1))
            return SequenceClassifierOutput(loss=torch.nn.functional.cross_entropy(logits, labels), logits=logits)

    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(5, 60, (6,), generator=g), "attention_mask": torch.ones(6, dtype=torch.long),
             "labels": torch.tensor(i % 2)} for i in range(24)]
    guard = tdg.Guard([Multiplicity(3), TokenAugment(mask_rate=0.3, mask_token_id=3, pad_token_id=0, vocab_size=60,
                                                     special_ids=[0, 1, 2, 3], seed=0)], device="cpu", progress=False)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dp = tdg.make_private(model, opt, DataLoader(rows, batch_size=4, collate_fn=guard.collator(default_collate)),
                          tdg.DPConfig(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-3, seed=0))
    try:
        steps = 0
        for batch in dp.loader:
            assert batch[UNIT_IDS_KEY].shape[0] == batch["input_ids"].shape[0]
            opt.zero_grad()
            model(**batch).loss.backward()  # would raise if the unit ids reached forward()
            opt.step()
            steps += 1
            if steps == 2:
                break
        assert steps == 2 and all(p.grad is not None for p in model.parameters())
    finally:
        dp.close()
