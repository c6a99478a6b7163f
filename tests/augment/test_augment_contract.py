"""The shared stage contract, run for every augmentation stage of torchdataguard.augment.

device and dtype preserved, input not mutated, batched == one-by-one with the same stream state,
picklable, state round trip through Guard.save/load (safetensors + JSON) resumes the same stream,
no warnings.
"""
import copy
import pickle
import warnings

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.augment import CutMix, ImageAugment, MixUp, Multiplicity, TokenAugment

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]
PAD, CLS, SEP, MASK, VOCAB = 0, 1, 2, 3, 50


def token_batch(device, n=6, length=14, seed=0, dtype=torch.int64, labels="token", left=False):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(3, length + 1, (n,), generator=g)
    lens[0] = length
    ids = torch.full((n, length), PAD, dtype=torch.int64)
    am = torch.zeros(n, length, dtype=torch.int64)
    for i, ln in enumerate(lens.tolist()):
        row = torch.randint(4, VOCAB, (ln,), generator=g)
        row[0], row[-1] = CLS, SEP
        sl = slice(length - ln, length) if left else slice(0, ln)
        ids[i, sl] = row
        am[i, sl] = 1
    batch = {"input_ids": ids.to(dtype), "attention_mask": am, "token_type_ids": torch.zeros_like(ids)}
    if labels == "token":
        batch["labels"] = torch.where(am.bool(), ids, torch.full_like(ids, -100))
    elif labels == "sequence":
        batch["labels"] = torch.randint(0, 3, (n,), generator=g)
    return {k: v.to(device) for k, v in batch.items()}, lens


def image_batch(device, n=5, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 12, 10, generator=g)
    if dtype == torch.uint8:
        x = (x * 255).round().to(torch.uint8)
    else:
        x = x.to(dtype)
    return {"pixel_values": x.to(device), "labels": torch.randint(0, 4, (n,), generator=g).to(device)}


def make_token():
    return TokenAugment(mask_rate=0.2, replace_rate=0.1, delete_rate=0.15, span_rate=0.15, p=0.9,
                        mask_token_id=MASK, pad_token_id=PAD, vocab_size=VOCAB, special_ids=[PAD, CLS, SEP, MASK],
                        seed=11)


def make_token_random_mask():
    return TokenAugment(mask_rate=0.3, span_rate=0.2, mask_with="random", pad_token_id=PAD, vocab_size=VOCAB,
                        special_ids=[PAD, CLS, SEP], seed=5)


def make_image():
    return ImageAugment(hflip=0.5, vflip=0.3, crop=0.5, rotate=0.5, jitter=0.6, blur=0.4, noise=0.4, erase=0.4,
                        seed=3)


TOKEN_STAGES = {"token": make_token, "token_random_mask": make_token_random_mask}
IMAGE_STAGES = {"image": make_image}
MIX_STAGES = {"mixup": lambda: MixUp(alpha=0.4, num_classes=4, p=0.8, seed=1),
              "cutmix": lambda: CutMix(alpha=1.0, num_classes=4, p=0.8, seed=2)}


def clone(batch):
    return {k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in batch.items()}


def assert_same(a, b, exact=True):
    assert set(a) == set(b)
    for k in a:
        if isinstance(a[k], torch.Tensor):
            if exact:
                assert torch.equal(a[k], b[k]), k
            else:
                torch.testing.assert_close(a[k], b[k])
        else:
            assert a[k] == b[k], k


def all_cases(device):
    cases = []
    for name, f in TOKEN_STAGES.items():
        for dt in (torch.int64, torch.int32):
            cases.append((f"{name}-{dt}", f, token_batch(device, dtype=dt)[0]))
    for name, f in IMAGE_STAGES.items():
        for dt in (torch.float32, torch.float16, torch.float64, torch.uint8):
            cases.append((f"{name}-{dt}", f, image_batch(device, dtype=dt)))
    for name, f in MIX_STAGES.items():
        cases.append((name, f, image_batch(device)))
    cases.append(("multiplicity", lambda: Multiplicity(3), token_batch(device)[0]))
    return cases


CASE_IDS = [c[0] for c in all_cases("cpu")]


def _case(device, i):
    return all_cases(device)[i]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(CASE_IDS)), ids=CASE_IDS)
def test_device_dtype_kept_input_untouched_no_warnings(device, i):
    name, factory, batch = _case(device, i)
    stage = factory()
    before = clone(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = stage(batch)
    assert_same(batch, before)  # not mutated
    assert out is not batch
    for k, v in batch.items():
        if not isinstance(v, torch.Tensor):
            continue
        assert out[k].device == v.device, k
        if k == "labels" and name in MIX_STAGES:
            assert out[k].dtype == torch.float32  # soft labels by design
            continue
        assert out[k].dtype == v.dtype, k
        if name != "multiplicity":
            assert out[k].shape[0] == v.shape[0]
    counts = stage.counters()
    assert counts and all(isinstance(v, int) and v >= 0 for v in counts.values())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(CASE_IDS)), ids=CASE_IDS)
def test_pickle_and_state_round_trip_resume_the_stream(device, i, tmp_path):
    name, factory, batch = _case(device, i)
    stage = factory()
    stage(batch)  # advance the stream
    twin = pickle.loads(pickle.dumps(stage))
    assert twin.counters() == stage.counters()
    guard = tdg.Guard([stage], device="cpu", progress=False)
    guard.save(tmp_path)
    expected = stage(batch)
    assert_same(twin(batch), expected)  # the pickled copy continues the same stream
    fresh = factory()
    if hasattr(fresh, "stream"):
        fresh.stream.seed += 12345  # a different seed: the loaded state must override it
    g2 = tdg.Guard([fresh], device="cpu", progress=False)
    g2.load(tmp_path)
    assert_same(fresh(batch), expected)
    assert fresh.counters() == stage.counters()


def _strip(row_ids, row_am):
    return row_ids[row_am.bool()]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(TOKEN_STAGES))
@pytest.mark.parametrize("left", [False, True], ids=["right_pad", "left_pad"])
def test_token_batched_equals_one_by_one(device, name, left):
    batch, lens = token_batch(device, left=left)
    stage = TOKEN_STAGES[name]()
    state = stage.state_dict()
    out = stage(batch)
    stage.load_state_dict(state)
    length = batch["input_ids"].shape[1]
    for i, ln in enumerate(lens.tolist()):
        sl = slice(length - ln, length) if left else slice(0, ln)
        single = stage({k: v[i:i + 1, sl] for k, v in batch.items()})
        am_b, am_s = out["attention_mask"][i], single["attention_mask"][0]
        for k in ("input_ids", "labels", "token_type_ids"):
            assert torch.equal(_strip(out[k][i], am_b), _strip(single[k][0], am_s)), (i, k)
        # the part of the row outside the example's own length is padding, unchanged
        outside = slice(0, length - ln) if left else slice(ln, length)
        assert (out["attention_mask"][i, outside] == 0).all()
        assert (out["input_ids"][i, outside] == PAD).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.float64])
def test_image_batched_equals_one_by_one(device, dtype):
    batch = image_batch(device, dtype=dtype)
    stage = make_image()
    state = stage.state_dict()
    out = stage(batch)
    stage.load_state_dict(state)
    singles = [stage({k: v[i:i + 1] for k, v in batch.items()}) for i in range(batch["pixel_values"].shape[0])]
    got = torch.cat([s["pixel_values"] for s in singles])
    if dtype == torch.uint8:
        assert (got.int() - out["pixel_values"].int()).abs().max() <= 1
    else:
        torch.testing.assert_close(got, out["pixel_values"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(MIX_STAGES))
def test_mix_parameters_batched_equal_one_by_one(device, name):
    """MixUp/CutMix mix two rows, so outputs cannot match one-by-one; each row's parameters do."""
    stage = MIX_STAGES[name]()
    args = (6, 12, 10) if name == "cutmix" else (6,)
    state = stage.state_dict()
    batched = stage.draw(*args, device=device)
    stage.load_state_dict(state)
    rows = [stage.draw(1, *args[1:], device=device) for _ in range(6)]
    for k, v in batched.items():
        torch.testing.assert_close(torch.cat([r[k] for r in rows]), v)


def test_multiplicity_batched_equals_one_by_one():
    batch, _ = token_batch("cpu", labels="sequence")
    stage = Multiplicity(2)
    state = stage.state_dict()
    out = stage(batch)
    stage.load_state_dict(state)
    singles = [stage({k: v[i:i + 1] for k, v in batch.items()}) for i in range(batch["input_ids"].shape[0])]
    for k in out:
        assert torch.equal(torch.cat([s[k] for s in singles]), out[k]), k
