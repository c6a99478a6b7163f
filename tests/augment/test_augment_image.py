"""ImageAugment, MixUp and CutMix: what each operation does, kernels against kornia, labels, bad input."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchdataguard as tdg
from torchdataguard.augment import CutMix, ImageAugment, MixUp
from torchdataguard.augment.kernels import colour_matrix, gaussian_blur
from torchdataguard.errors import ConfigError, GuardInputError

OFF = dict(hflip=0.0, vflip=0.0, crop=0.0, rotate=0.0, jitter=0.0, blur=0.0, noise=0.0, erase=0.0)


def only(**kw):
    opts = dict(OFF, seed=0)
    opts.update(kw)
    return ImageAugment(**opts)


def imgs(n=4, c=3, h=10, w=12, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_flips_are_exact_and_per_sample():
    x = imgs(64)
    aug = only(hflip=0.5, vflip=0.5)
    out = aug(x)
    flipped_h = flipped_v = 0
    for i in range(64):
        cands = {(a, b): x[i].flip(-1) if a else x[i] for a in (0, 1) for b in (0, 1)}
        cands = {k: (v.flip(-2) if k[1] else v) for k, v in cands.items()}
        match = [k for k, v in cands.items() if torch.equal(v, out[i])]
        assert len(match) == 1
        flipped_h += match[0][0]
        flipped_v += match[0][1]
    c = aug.counters()
    assert (c["augment/image/hflip"], c["augment/image/vflip"]) == (flipped_h, flipped_v)
    assert 16 < flipped_h < 48 and 16 < flipped_v < 48  # drawn per sample


def test_untouched_samples_pass_bit_for_bit():
    x = imgs(32)
    aug = ImageAugment(hflip=0.0, crop=0.3, rotate=0.3, jitter=0.3, blur=0.3, blur_sigma=(0.8, 1.5), noise=0.3,
                       erase=0.3, seed=1)
    state = aug.state_dict()
    out = aug(x)
    aug.load_state_dict(state)
    p = aug.draw(32, 10, 12)
    picked = p["crop"] | p["rotate"] | p["jitter"] | p["blur"] | p["noise"] | p["erase"]
    assert 0 < int(picked.sum()) < 32
    assert torch.equal(out[~picked], x[~picked])
    assert all(not torch.equal(out[i], x[i]) for i in torch.nonzero(picked).flatten().tolist())


def test_rotation_by_quarter_turn_is_rot90_and_matches_kornia():
    x = imgs(2, h=9, w=9)
    aug = only(rotate=1.0, degrees=90)
    p = aug.draw(2, 9, 9)
    p["angle"] = torch.full((2,), math.pi / 2)
    p["rotate"] = torch.ones(2, dtype=torch.bool)
    out = aug.apply(x, p)
    assert torch.allclose(out, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5) or \
        torch.allclose(out, torch.rot90(x, -1, dims=(-2, -1)), atol=1e-5)
    kornia = pytest.importorskip("kornia")
    x = imgs(3, h=9, w=13)
    aug = only(rotate=1.0, degrees=40)
    p = aug.draw(3, 9, 13)
    ref = kornia.geometry.transform.rotate(x, p["angle"] * 180 / math.pi, center=torch.tensor([[6.0, 4.0]] * 3),
                                           align_corners=False)
    torch.testing.assert_close(aug.apply(x, p), ref, atol=1e-5, rtol=1e-5)


def test_crop_resize_stays_in_the_image_and_resizes():
    aug = only(crop=1.0, crop_scale=(0.25, 0.5), crop_ratio=(1.0, 1.0))
    p = aug.draw(16, 16, 16)
    assert ((p["crop_w"] * p["crop_h"] >= 0.25 - 1e-6) & (p["crop_w"] * p["crop_h"] <= 0.5 + 1e-6)).all()
    assert ((p["crop_cx"] - p["crop_w"] / 2 >= -1e-6) & (p["crop_cx"] + p["crop_w"] / 2 <= 1 + 1e-6)).all()
    # a crop of a horizontal ramp is still a ramp, stretched: values stay inside the cropped interval
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(16, 3, 16, 16).contiguous()
    out = aug.apply(ramp, p)
    lo = p["crop_cx"] - p["crop_w"] / 2
    hi = p["crop_cx"] + p["crop_w"] / 2
    assert (out.amin(dim=(1, 2, 3)) >= lo - 0.07).all() and (out.amax(dim=(1, 2, 3)) <= hi + 0.07).all()
    assert (out[:, :, :, 1:] >= out[:, :, :, :-1] - 1e-6).all()  # still increasing left to right


def test_colour_matrix_identity_luma_and_grey():
    n = 5
    one = torch.ones(n)
    hue = torch.linspace(-0.5, 0.5, n)
    A, b = colour_matrix(one, one, one, hue, torch.zeros(n))
    grey = torch.full((n, 3, 1), 0.4)
    torch.testing.assert_close(A @ grey + b[..., None], grey)  # hue keeps greys
    w = torch.tensor([0.299, 0.587, 0.114])
    col = torch.rand(n, 3, 1)
    torch.testing.assert_close(w @ (A @ col), w @ col)  # and luma
    # saturation 0 gives the grey level; brightness scales; contrast 0 gives the mean grey level
    A0, b0 = colour_matrix(one, one, torch.zeros(n), torch.zeros(n), torch.zeros(n))
    torch.testing.assert_close(A0 @ col, (w @ col).unsqueeze(1).expand(n, 3, 1))
    A1, b1 = colour_matrix(torch.full((n,), 0.5), torch.zeros(n), one, torch.zeros(n), torch.full((n,), 0.6))
    torch.testing.assert_close(A1 @ col + b1[..., None], torch.full((n, 3, 1), 0.3))


def test_jitter_on_normalised_pixels_stays_in_range():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    raw = imgs(8)
    x = (raw - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    aug = only(jitter=1.0, brightness=0.9, contrast=0.9, saturation=0.9, hue=0.3, mean=mean, std=std)
    out = aug({"pixel_values": x})["pixel_values"]
    back = out * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    assert back.min() >= -1e-5 and back.max() <= 1 + 1e-5
    assert not torch.allclose(out, x)
    grey = only(jitter=1.0)(torch.rand(4, 1, 6, 6))  # one channel: brightness and contrast only
    assert grey.shape == (4, 1, 6, 6)


def test_blur_matches_kornia_and_keeps_flat_images():
    x = imgs(3, h=15, w=17)
    sigma = torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(gaussian_blur(torch.full_like(x, 0.3), sigma, 9), torch.full_like(x, 0.3))
    ours = gaussian_blur(x, sigma, 9)
    assert ours.std() < x.std()
    kornia = pytest.importorskip("kornia")
    ref = kornia.filters.gaussian_blur2d(x, (9, 9), torch.stack([sigma, sigma], 1), border_type="reflect")
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_noise_level_and_clamp():
    x = torch.full((16, 3, 32, 32), 0.5)
    aug = only(noise=1.0, noise_std=(0.05, 0.05))
    out = aug(x)
    assert abs(float((out - x).std()) - 0.05) < 0.005
    assert out.min() >= 0 and out.max() <= 1
    u8 = only(noise=1.0, noise_std=(0.2, 0.2))(torch.full((2, 3, 8, 8), 250, dtype=torch.uint8))
    assert u8.dtype == torch.uint8 and int(u8.max()) == 255  # clamped to the uint8 range, not wrapped


def test_erase_box():
    x = torch.ones(8, 3, 20, 20)
    aug = only(erase=1.0, erase_scale=(0.1, 0.1), erase_ratio=(1.0, 1.0), erase_value=0.0)
    p_state = aug.state_dict()
    out = aug(x)
    aug.load_state_dict(p_state)
    p = aug.draw(8, 20, 20)
    zeros = (out == 0).all(1)  # (N, H, W)
    assert torch.equal(zeros.sum((1, 2)).float(), p["erase_h"] * p["erase_w"])
    assert (p["erase_h"] == 6).all() and (p["erase_top"] + p["erase_h"] <= 20).all()


def test_tuple_batches_and_report_counts():
    x, y = imgs(6), torch.arange(6)
    guard = tdg.Guard([only(hflip=1.0)], device="cpu", progress=False)
    out = guard.apply_batch((x, y))
    assert isinstance(out, tuple) and torch.equal(out[0], x.flip(-1)) and out[1] is y
    out = guard.apply_batch([x, y])
    assert isinstance(out, list)
    rep = guard.report()
    assert rep["counts"]["augment/image/hflip"] == 12 and rep["counts"]["augment/image/examples"] == 12
    assert rep["stages"][0]["config"]["hflip"] == 1.0


@pytest.mark.parametrize("batch, words", [
    ({"pixel_values": torch.rand(3, 8, 8)}, ["'pixel_values'", "(3, 8, 8)", "4 dimensions"]),
    ({"pixel_values": torch.ones(2, 3, 8, 8, dtype=torch.int32)}, ["'pixel_values'", "(2, 3, 8, 8)", "int32"]),
    ({"pixel_values": torch.rand(0, 3, 8, 8)}, ["'pixel_values'", "(0, 3, 8, 8)", "empty"]),
    ({"pixel_values": torch.rand(2, 5, 8, 8)}, ["'pixel_values'", "(2, 5, 8, 8)", "channels"]),
    ({"image": torch.rand(2, 3, 8, 8)}, ["'pixel_values'", "['image']"]),
])
def test_bad_images_name_the_tensor_and_shape(batch, words):
    with pytest.raises(GuardInputError) as e:
        ImageAugment(jitter=0.5, seed=0)(batch)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("kw, word", [(dict(hflip=2.0), "hflip=2.0"), (dict(crop_scale=(0.9, 0.2)), "crop_scale"),
                                      (dict(hue=0.7), "hue=0.7"), (dict(mean=(0.5,)), "mean and std"),
                                      (dict(value_range=(1, 0)), "value_range"), (dict(flip=1), "unknown option")])
def test_bad_image_settings(kw, word):
    with pytest.raises(ConfigError, match=word.replace("(", r"\(")):
        ImageAugment(**kw)


# -- MixUp / CutMix ---------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_beta_quantiles_have_the_right_moments(alpha):
    mix = MixUp(alpha=alpha, seed=0)
    lam = mix.beta(torch.rand(200_000, generator=torch.Generator().manual_seed(1)))
    var = 1.0 / (4 * (2 * alpha + 1))
    assert abs(float(lam.mean()) - 0.5) < 0.005
    assert abs(float(lam.var()) - var) < 0.02 * var + 1e-3
    assert lam.min() >= 0 and lam.max() <= 1


def test_mixup_rows_and_soft_labels():
    x, y = imgs(6), torch.tensor([0, 1, 2, 3, 0, -100])
    mix = MixUp(alpha=0.5, num_classes=4, seed=3)
    state = mix.state_dict()
    out = mix({"pixel_values": x, "labels": y})
    assert mix.counters()["augment/mixup/ignored_labels"] == 1
    mix.load_state_dict(state)
    lam = mix.draw(6)["lam"]
    l4 = lam.view(-1, 1, 1, 1)
    torch.testing.assert_close(out["pixel_values"], l4 * x + (1 - l4) * x.roll(1, 0))
    onehot = torch.nn.functional.one_hot(y.clamp(min=0), 4).float() * (y >= 0).float()[:, None]
    torch.testing.assert_close(out["labels"], lam[:, None] * onehot + (1 - lam[:, None]) * onehot.roll(1, 0))
    sums = out["labels"].sum(1)
    torch.testing.assert_close(sums[1:5], torch.ones(4))  # rows not touching the ignored label sum to 1


def test_mixup_soft_labels_in_and_features():
    x, y = torch.randn(5, 7), torch.softmax(torch.randn(5, 3), 1)
    out = MixUp(alpha=1.0, seed=0)((x, y))
    assert out[0].shape == (5, 7) and torch.allclose(out[1].sum(1), torch.ones(5))


def test_cutmix_label_weight_is_the_pasted_area():
    x = torch.stack([torch.full((3, 16, 16), float(i)) for i in range(6)])
    y = torch.arange(6) % 3
    cut = CutMix(alpha=1.0, num_classes=3, seed=5)
    out_x, out_y = cut((x, y))
    for i in range(6):
        own = float((out_x[i, 0] == float(i)).float().mean())
        partner = (i - 1) % 6
        expect = torch.zeros(3)
        expect[y[i]] += own
        expect[y[partner]] += 1 - own
        torch.testing.assert_close(out_y[i], expect)
    assert cut.counters()["augment/cutmix/mixed"] == 6


@pytest.mark.parametrize("stage", [MixUp(num_classes=3, seed=0), CutMix(num_classes=3, seed=0)], ids=["mixup", "cutmix"])
@pytest.mark.parametrize("batch, words", [
    ({"pixel_values": torch.rand(4, 3, 8, 8), "labels": torch.tensor([0, 1, 2])}, ["'labels'", "(3,)", "(4, 3, 8, 8)"]),
    ({"pixel_values": torch.rand(4, 3, 8, 8), "labels": torch.rand(4, 5)}, ["'labels'", "(4, 5)"]),
    ({"pixel_values": torch.rand(4, 3, 8, 8)}, ["no 'labels'"]),
    ({"pixel_values": torch.rand(4, 3, 8, 8), "labels": torch.arange(4), "tdg_unit_ids": torch.arange(4)},
     ["tdg_unit_ids", "DP"]),
])
def test_mix_bad_input(stage, batch, words):
    with pytest.raises(GuardInputError) as e:
        stage(batch)
    for w in words:
        assert w in str(e.value)


def test_mix_needs_num_classes_for_class_ids():
    with pytest.raises(GuardInputError, match="num_classes"):
        MixUp(seed=0)({"pixel_values": torch.rand(2, 3), "labels": torch.tensor([0, 1])})
    with pytest.raises(GuardInputError, match=r"\(2, 3\).*4 dimensions"):
        CutMix(num_classes=2, seed=0)({"pixel_values": torch.rand(2, 3), "labels": torch.tensor([0, 1])})
    with pytest.raises(ConfigError, match="alpha=0"):
        MixUp(alpha=0)


@pytest.mark.parametrize("method", ["generator", "hash"])
def test_noise_fields_are_standard_normal_and_keyed_per_sample(method):
    from torchdataguard.augment.kernels import noise_field

    keys = torch.tensor([11, 12, 13, 2**31 + 5], dtype=torch.int64)
    z = noise_field(keys, (3, 40, 40), method)
    assert z.shape == (4, 3, 40, 40) and z.dtype == torch.float32
    assert abs(float(z.mean())) < 0.03 and abs(float(z.std()) - 1.0) < 0.03
    assert abs(float((z[0] * z[1]).mean())) < 0.05  # samples are independent
    alone = torch.cat([noise_field(keys[i:i + 1], (3, 40, 40), method) for i in range(4)])
    assert torch.equal(alone, z)  # each sample's field depends on its key only


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 4), c=st.sampled_from([1, 3]), h=st.integers(2, 17), w=st.integers(2, 17),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.uint8]), seed=st.integers(0, 2**40),
       probs=st.lists(st.floats(0, 1), min_size=8, max_size=8))
def test_image_properties(n, c, h, w, dtype, seed, probs):
    names = ["hflip", "vflip", "crop", "rotate", "jitter", "blur", "noise", "erase"]
    aug = ImageAugment(seed=seed, **dict(zip(names, probs)))
    g = torch.Generator().manual_seed(seed % 2**31)
    x = torch.rand(n, c, h, w, generator=g)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    state = aug.state_dict()
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    top = 255 if dtype == torch.uint8 else 1.0
    assert out.min() >= 0 and out.max() <= top and not torch.isnan(out.double()).any()
    aug.load_state_dict(state)
    alone = torch.cat([aug(x[i:i + 1]) for i in range(n)])
    if dtype == torch.uint8:
        assert (alone.int() - out.int()).abs().max() <= 1
    else:
        torch.testing.assert_close(alone, out)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_beta_on_host_and_device_agree(alpha):
    mix = MixUp(alpha=alpha, seed=0)
    u = torch.rand(1000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(torch.from_numpy(mix.beta_np(u.numpy())).float(), mix.beta(u.float()), atol=2e-5,
                               rtol=1e-4)


def test_operations_are_registered_by_name_and_a_subclass_picks_its_own():
    from torchdataguard.augment.image import IMAGE_OPS

    assert set(ImageAugment.ops) == set(IMAGE_OPS.names())
    assert ImageAugment.counter_names == tuple(f"augment/image/{g}" for g in
                                               ("hflip", "vflip", "crop", "rotate", "jitter", "blur", "noise", "erase"))

    class FlipsOnly(ImageAugment):
        ops = ("hflip", "vflip")

    x = torch.rand(3, 3, 5, 6)
    aug = FlipsOnly(hflip=1.0, noise=1.0, erase=1.0, seed=0)  # noise and erase are not among its ops
    assert torch.equal(aug(x), x.flip(-1))
    assert aug.counters() == {"augment/image/hflip": 3, "augment/image/vflip": 0, "augment/image/examples": 3}
