"""TokenAugment: special tokens and padding, label alignment, collators, bad input, properties."""
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchdataguard as tdg
from torchdataguard.augment import TokenAugment
from torchdataguard.errors import ConfigError, GuardInputError

PAD, CLS, SEP, MASK, VOCAB = 0, 1, 2, 3, 40
SPECIAL = [PAD, CLS, SEP, MASK]
WORDS = ("the a cat dog sat on mat ran fast slow big small red blue green house tree river sky sun moon star "
         "and of to in is it was he she they we you").split()


def make(**kw):
    opts = dict(mask_token_id=MASK, pad_token_id=PAD, vocab_size=VOCAB, special_ids=SPECIAL, seed=0)
    opts.update(kw)
    return TokenAugment(**opts)


def rows_batch(rows, pad_left=False):
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), PAD)
    am = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(length - len(r), length) if pad_left else slice(0, len(r))
        ids[i, sl] = torch.tensor(r)
        am[i, sl] = 1
    return {"input_ids": ids, "attention_mask": am}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    d = tmp_path_factory.mktemp("tok")
    with open(os.path.join(d, "vocab.txt"), "w") as fh:
        fh.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tok = BertTokenizerFast.from_pretrained(str(d))
    assert len(tok) == 5 + len(WORDS)
    return tok


TEXTS = ["the cat sat on the mat", "a dog ran fast", "big red house and a small blue tree",
         "the sun and the moon", "she ran to the river", "it was a green star in the sky and it ran"]


# -- what is never touched --------------------------------------------------------------------------

def test_special_tokens_and_padding_untouched():
    torch.manual_seed(1)
    rows = [[CLS] + torch.randint(4, VOCAB, (n,)).tolist() + [SEP] for n in (3, 9, 15, 6)]
    batch = rows_batch(rows)
    aug = make(mask_rate=0.4, replace_rate=0.3, span_rate=0.3, seed=2)
    out = aug(batch)
    ids, new = batch["input_ids"], out["input_ids"]
    special = torch.isin(ids, torch.tensor(SPECIAL))
    assert torch.equal(new[special], ids[special])
    assert torch.equal(out["attention_mask"], batch["attention_mask"])
    assert (new[~special] != ids[~special]).any()  # something did change
    c = aug.counters()
    assert c["augment/token/tokens"] == int((~special).sum())
    assert c["augment/token/examples"] == 4


def test_special_tokens_mask_in_batch_is_respected():
    batch = rows_batch([[CLS, 10, 11, 12, 13, SEP]])
    batch["special_tokens_mask"] = torch.tensor([[1, 1, 0, 0, 1, 1]])
    out = make(mask_rate=1.0)(batch)
    assert out["input_ids"].tolist() == [[CLS, 10, MASK, MASK, 13, SEP]]


def test_no_attention_mask_uses_pad_token():
    batch = {"input_ids": torch.tensor([[CLS, 10, 11, SEP, PAD, PAD]])}
    out = make(mask_rate=1.0)(batch)
    assert out["input_ids"].tolist() == [[CLS, MASK, MASK, SEP, PAD, PAD]]


def test_p_zero_changes_nothing_and_p_gates_per_example():
    batch = rows_batch([[CLS] + list(range(4, 30)) + [SEP]] * 64)
    assert torch.equal(make(mask_rate=0.5, p=0.0)(batch)["input_ids"], batch["input_ids"])
    aug = make(mask_rate=0.5, p=0.5)
    out = aug(batch)["input_ids"]
    changed = (out != batch["input_ids"]).any(1)
    assert 10 < int(changed.sum()) < 54  # drawn per example, not once per batch
    assert aug.counters()["augment/token/augmented"] == int(changed.sum())


def test_random_tokens_avoid_special_ids_and_rates_are_close():
    batch = rows_batch([[CLS] + list(range(4, 36)) + [SEP]] * 64)
    aug = make(replace_rate=0.3)
    out = aug(batch)["input_ids"]
    inner = out[:, 1:-1]
    assert not torch.isin(inner, torch.tensor(SPECIAL)).any()
    assert ((inner >= 0) & (inner < VOCAB)).all()
    c = aug.counters()
    assert abs(c["augment/token/replaced"] / c["augment/token/tokens"] - 0.3) < 0.04


def test_span_masking_masks_contiguous_runs_about_the_rate():
    batch = rows_batch([[CLS] + list(range(4, 36)) + [SEP]] * 128)
    aug = make(span_rate=0.2, span_mean=3.0)
    out = aug(batch)["input_ids"]
    masked = out == MASK
    c = aug.counters()
    assert c["augment/token/span_masked"] == int(masked.sum())
    rate = c["augment/token/span_masked"] / c["augment/token/tokens"]
    assert 0.12 < rate < 0.25, rate  # about span_rate (overlaps make it a little lower)
    runs = masked[:, 1:].int() - masked[:, :-1].int()
    starts = int((runs == 1).sum())
    assert int(masked.sum()) / max(starts, 1) > 1.8  # spans, not isolated tokens


# -- deletion and labels ----------------------------------------------------------------------------

@pytest.mark.parametrize("pad_left", [False, True])
def test_deletion_keeps_token_labels_aligned(pad_left):
    torch.manual_seed(0)
    rows = [[CLS] + torch.randint(4, VOCAB, (n,)).tolist() + [SEP] for n in (5, 12, 20)]
    batch = rows_batch(rows, pad_left=pad_left)
    tags = torch.where(batch["attention_mask"].bool(), batch["input_ids"] % 7, torch.full_like(batch["input_ids"], -100))
    batch["labels"] = tags  # token classification: the tag is a function of the token
    aug = make(delete_rate=0.4)
    out = aug(batch)
    am = out["attention_mask"].bool()
    assert torch.equal(out["labels"][am], out["input_ids"][am] % 7)
    assert (out["labels"][~am] == -100).all() and (out["input_ids"][~am] == PAD).all()
    deleted = int(batch["attention_mask"].sum() - out["attention_mask"].sum())
    assert deleted == aug.counters()["augment/token/deleted"] > 0
    for i, r in enumerate(rows):  # the kept tokens are the original ones, in order; [CLS]/[SEP] stay
        kept = out["input_ids"][i][am[i]].tolist()
        it = iter(r)
        assert all(t in it for t in kept)
        assert kept[0] == CLS and kept[-1] == SEP
        if pad_left:
            assert am[i, -1] and (am[i].int().diff() >= 0).all()  # padding stays on the left
        else:
            assert am[i, 0] and (am[i].int().diff() <= 0).all()


def test_causal_lm_labels_follow_deletions_and_masks():
    torch.manual_seed(3)
    rows = [torch.randint(4, VOCAB, (n,)).tolist() for n in (8, 16)]
    batch = rows_batch(rows)
    batch["labels"] = torch.where(batch["attention_mask"].bool(), batch["input_ids"], torch.full_like(batch["input_ids"], -100))
    out = make(delete_rate=0.3, mask_rate=0.3, special_ids=[PAD, MASK])(batch)
    am = out["attention_mask"].bool()
    for i, r in enumerate(rows):
        lab = out["labels"][i][am[i]].tolist()
        it = iter(r)
        assert all(t in it for t in lab)  # labels: the surviving original tokens, in order
        ids = out["input_ids"][i][am[i]].tolist()
        assert all(a == b or a == MASK for a, b in zip(ids, lab))  # input = label unless masked


def test_sequence_labels_untouched():
    batch = rows_batch([[CLS, 5, 6, 7, SEP], [CLS, 8, 9, SEP]])
    batch["labels"] = torch.tensor([1, 0])
    out = make(delete_rate=0.5, mask_rate=0.3)(batch)
    assert out["labels"] is batch["labels"]
    multi = dict(batch, labels=torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    assert make(delete_rate=0.5)(multi)["labels"] is multi["labels"]


def test_never_deletes_every_eligible_token():
    batch = rows_batch([[CLS, 5, SEP], [7], [CLS, 8, 9, 10, SEP]])
    aug = make(delete_rate=1.0)
    out = aug(batch)
    am = out["attention_mask"].bool()
    assert out["input_ids"][0][am[0]].tolist() == [CLS, 5, SEP]
    assert out["input_ids"][1][am[1]].tolist() == [7]
    assert out["input_ids"][2][am[2]].tolist() == [CLS, 8, SEP]


def test_label_mode_token_and_extra_per_token_tensors():
    batch = rows_batch([[CLS, 5, 6, 7, 8, SEP]])
    batch["labels"] = torch.tensor([[-100, 50, 60, 70, 80, -100]])
    batch["features"] = torch.arange(12.0).view(1, 6, 2)
    out = make(delete_rate=0.5, label_mode="token", pad_values={"features": -1.0}, seed=4)(batch)
    am = out["attention_mask"][0].bool()
    kept = out["input_ids"][0][am]
    assert torch.equal(out["labels"][0][am][1:-1], kept[1:-1] * 10)
    assert torch.equal(out["features"][0][am][:, 0], batch["features"][0][torch.isin(batch["input_ids"][0], kept), 0])
    assert (out["features"][0][~am] == -1.0).all()


# -- collators, guard and a model's forward hook ----------------------------------------------------

def _check_collated(out, batch, tok):
    special = torch.tensor(tok.all_special_ids)
    am = out["attention_mask"].bool()
    assert out["input_ids"].shape == batch["input_ids"].shape
    assert not torch.isin(out["input_ids"][am], torch.tensor([tok.pad_token_id])).any()
    assert (out["input_ids"][~am] == tok.pad_token_id).all()
    n_special_in = int(torch.isin(batch["input_ids"], special)[batch["attention_mask"].bool()].sum())
    n_special_out = int((torch.isin(out["input_ids"], special) & am).sum())
    assert n_special_out >= n_special_in  # masks may add [MASK]; nothing special was removed


def test_data_collator_with_padding(tokenizer):
    from transformers import DataCollatorWithPadding

    feats = [dict(tokenizer(t), label=i % 2) for i, t in enumerate(TEXTS)]
    collate = DataCollatorWithPadding(tokenizer)
    batch = collate(feats)
    aug = TokenAugment.from_tokenizer(tokenizer, mask_rate=0.2, delete_rate=0.2, replace_rate=0.1, seed=0)
    out = aug(batch)
    assert type(out) is type(batch)  # a BatchEncoding stays a BatchEncoding
    _check_collated(out, batch, tokenizer)
    assert torch.equal(out["labels"], batch["labels"])
    # the same through the guard's collator in a DataLoader
    guard = tdg.Guard([TokenAugment.from_tokenizer(tokenizer, mask_rate=0.2, delete_rate=0.2, seed=0)],
                      device="cpu", progress=False)
    loader = torch.utils.data.DataLoader(feats, batch_size=3, collate_fn=guard.collator(collate))
    got = list(loader)
    assert len(got) == 2 and all(b["input_ids"].shape[0] == 3 for b in got)
    assert guard.report()["counts"]["augment/token/examples"] == 6


def test_data_collator_for_language_modeling(tokenizer):
    from transformers import DataCollatorForLanguageModeling

    torch.manual_seed(0)
    feats = [tokenizer(t) for t in TEXTS]
    batch = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)(feats)
    aug = TokenAugment.from_tokenizer(tokenizer, delete_rate=0.2, replace_rate=0.1, seed=1)
    out = aug(batch)
    _check_collated(out, batch, tokenizer)
    am = out["attention_mask"].bool()
    assert (out["labels"][~am] == -100).all()
    # MLM targets survive aligned: where a label is set the input is [MASK], a random or the same token
    assert int((out["labels"] != -100).sum()) <= int((batch["labels"] != -100).sum())
    assert aug.counters()["augment/token/deleted"] > 0


def test_plain_collate_and_causal_labels(tokenizer):
    from torch.utils.data import default_collate

    feats = []
    for t in TEXTS:
        enc = tokenizer(t, padding="max_length", max_length=16, return_tensors="pt")
        row = {k: v[0] for k, v in enc.items()}
        row["labels"] = torch.where(row["attention_mask"].bool(), row["input_ids"], torch.full_like(row["input_ids"], -100))
        feats.append(row)
    batch = default_collate(feats)
    aug = TokenAugment.from_tokenizer(tokenizer, mask_rate=0.15, delete_rate=0.2, seed=2)
    out = aug(batch)
    _check_collated(out, batch, tokenizer)
    am = out["attention_mask"].bool()
    assert torch.equal(out["labels"][am] == out["input_ids"][am], out["input_ids"][am] != tokenizer.mask_token_id)


def test_dataloader_workers_draw_different_streams(tokenizer):
    from transformers import DataCollatorWithPadding

    feats = [tokenizer(TEXTS[5])] * 8
    guard = tdg.Guard([TokenAugment.from_tokenizer(tokenizer, mask_rate=0.5, seed=0)], device="cpu", progress=False)
    loader = torch.utils.data.DataLoader(feats, batch_size=4, num_workers=2,
                                         collate_fn=guard.collator(DataCollatorWithPadding(tokenizer)))
    a, b = list(loader)
    assert not torch.equal(a["input_ids"], b["input_ids"])  # two workers, same data, different draws


def test_model_forward_pre_hook_kwargs(tiny_bert):
    model = tiny_bert(vocab_size=VOCAB, max_positions=32)
    guard = tdg.Guard([make(mask_rate=0.2, delete_rate=0.2)], device="cpu", progress=False)
    model.register_forward_pre_hook(lambda mod, args, kwargs: (args, guard.apply_batch(kwargs)), with_kwargs=True)
    batch = rows_batch([[CLS, 5, 6, 7, 8, SEP], [CLS, 9, 10, SEP]])
    batch["labels"] = torch.tensor([1, 0])
    loss = model(**batch, return_dict=True, output_attentions=None).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert guard.report()["counts"]["augment/token/examples"] == 2


# -- bad input and bad settings ---------------------------------------------------------------------

@pytest.mark.parametrize("batch, words", [
    ({"input_ids": torch.tensor([1, 2, 3])}, ["'input_ids'", "(3,)"]),
    ({"input_ids": torch.rand(2, 3)}, ["'input_ids'", "(2, 3)", "float32"]),
    ({"input_ids": torch.zeros(0, 5, dtype=torch.long)}, ["'input_ids'", "(0, 5)", "empty"]),
    ({"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 3, dtype=torch.long)},
     ["'attention_mask'", "(2, 3)", "(2, 4)"]),
    ({"input_ids": torch.ones(2, 4, dtype=torch.long), "labels": torch.ones(3, dtype=torch.long)},
     ["'labels'", "(3,)"]),
    ({"input_ids": torch.ones(2, 4, dtype=torch.long), "labels": torch.ones(2, 5, 2)}, ["'labels'", "(2, 5, 2)"]),
    ({"text": ["a"]}, ["'input_ids'", "missing", "['text']"]),
])
def test_bad_batches_name_the_tensor_and_shape(batch, words):
    with pytest.raises(GuardInputError) as e:
        make(mask_rate=0.1)(batch)
    for w in words:
        assert w in str(e.value)


def test_bad_label_shape_with_token_mode():
    batch = rows_batch([[CLS, 5, SEP]])
    batch["labels"] = torch.tensor([1])
    with pytest.raises(GuardInputError, match=r"labels.*\(1,\).*label_mode='token'"):
        make(mask_rate=0.1, label_mode="token")(batch)


def test_not_a_mapping():
    with pytest.raises(GuardInputError, match="mapping"):
        make(mask_rate=0.1)(torch.ones(2, 3, dtype=torch.long))


@pytest.mark.parametrize("kw, words", [
    (dict(mask_rate=1.5), ["mask_rate=1.5"]),
    (dict(mask_rate=0.6, delete_rate=0.6), ["at most 1"]),
    (dict(mask_rate=0.1, mask_token_id=None), ["mask_token_id", "mask_with='random'"]),
    (dict(replace_rate=0.1, vocab_size=None), ["vocab_size"]),
    (dict(delete_rate=0.1, pad_token_id=None), ["pad_token_id"]),
    (dict(span_mean=20.0), ["span_mean=20.0"]),
    (dict(label_mode="words"), ["label_mode='words'"]),
    (dict(seed=-1), ["seed=-1"]),
    (dict(colour=1), ["unknown option", "colour"]),
])
def test_bad_settings_are_named(kw, words):
    with pytest.raises(ConfigError) as e:
        make(**kw)
    for w in words:
        assert w in str(e.value)


# -- properties -------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lens=st.lists(st.integers(1, 20), min_size=1, max_size=6), seed=st.integers(0, 2**40),
       rates=st.tuples(st.floats(0, 0.4), st.floats(0, 0.3), st.floats(0, 0.3), st.floats(0, 0.3)),
       left=st.booleans())
def test_properties(lens, seed, rates, left):
    m, r, d, s = rates
    g = torch.Generator().manual_seed(seed % 2**31)
    rows = [[CLS] + torch.randint(4, VOCAB, (n,), generator=g).tolist() + [SEP] for n in lens]
    batch = rows_batch(rows, pad_left=left)
    batch["labels"] = torch.where(batch["attention_mask"].bool(), batch["input_ids"], torch.full_like(batch["input_ids"], -100))
    aug = make(mask_rate=m, replace_rate=r, delete_rate=d, span_rate=s, seed=seed)
    out = aug(batch)
    c = aug.counters()
    am_in, am = batch["attention_mask"].bool(), out["attention_mask"].bool()
    # deleted tokens are exactly the drop in attended tokens; nothing else changes length
    assert int(am_in.sum() - am.sum()) == c["augment/token/deleted"]
    assert c["augment/token/tokens"] == sum(lens)
    for i, row in enumerate(rows):
        ids = out["input_ids"][i][am[i]].tolist()
        lab = out["labels"][i][am[i]].tolist()
        assert ids[0] == CLS and ids[-1] == SEP and lab[0] == CLS and lab[-1] == SEP
        it = iter(row)
        assert all(t in it for t in lab)  # labels are the surviving originals, in order
        assert all(0 <= t < VOCAB and t != PAD for t in ids)
        assert (out["input_ids"][i][~am[i]] == PAD).all() and (out["labels"][i][~am[i]] == -100).all()


def test_stream_hash_is_the_same_function_on_host_and_device():
    import numpy as np

    from torchdataguard.augment.streams import AugmentStream, fmix, fmix_int, fmix_np

    x = np.random.default_rng(0).integers(0, 2**32, size=1000, dtype=np.uint64)
    on_host = fmix_np(x)
    assert torch.equal(fmix(torch.from_numpy(x.astype(np.int64))), torch.from_numpy(on_host.astype(np.int64)))
    assert [fmix_int(int(v)) for v in x[:20]] == on_host[:20].tolist()
    assert int(on_host.max()) < 2**32 and len(set(on_host.tolist())) == 1000  # a bijection on 32 bits
    s = AugmentStream(seed=3)
    u = AugmentStream.uniform(s.keys(2000, 1, "cpu"))
    assert abs(float(u.mean()) - 0.5) < 0.02 and float(u.min()) >= 0 and float(u.max()) < 1


def test_label_modes_and_padding_sides_are_registered_for_every_allowed_setting():
    import typing

    from torchdataguard.augment.config import TokenAugmentConfig
    from torchdataguard.augment.token import LABEL_MODES, PADDING_SIDES

    hints = typing.get_type_hints(TokenAugmentConfig)
    assert LABEL_MODES.names() == sorted(typing.get_args(hints["label_mode"]))
    assert PADDING_SIDES.names() == sorted(typing.get_args(hints["padding_side"]))
