"""Image augmentation on batched tensors ``(N, C, H, W)`` on the device (:class:`ImageAugment`).

Every operation draws its parameters per sample (``draw``), then applies them to the whole batch at once
(``apply``): flips, crop with resize and rotation fused into one affine warp (one ``grid_sample``), colour
jitter (brightness, contrast, saturation, hue), Gaussian blur with a per-sample sigma (separable grouped
convolution), Gaussian noise and random erasing. The per-sample draws are numpy on the host, the image
work plain torch on the batch's device (:mod:`torchdataguard.augment.kernels`), so it runs wherever torch
runs. Each operation is an :class:`ImageOp` registered by name in :data:`IMAGE_OPS`; the stage runs the
ones named in :attr:`ImageAugment.ops`, in that order. MixUp and CutMix are in :mod:`torchdataguard.augment.mix`.

Why not kornia at run time: kornia's augmentation classes draw their parameters from torch's global RNG,
so a stage cannot checkpoint its own stream, and a batch of 32 is not augmented like 32 batches of one;
the kernels this module needs are a handful of torch calls (``affine_grid``/``grid_sample``, grouped
``conv2d``, a 3x3 colour matrix per sample). kornia is used by the tests as an independent check of those
kernels and by ``benchmarks/augment_overhead.py`` as the speed reference (``pip install torchdataguard[augment]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, GuardInputError
from ..registry import Registry
from .base import AugmentStage, check_images, compute_dtype, restore_dtype, split_images, where_rows
from .config import ImageAugmentConfig
from .kernels import colour_matrix, gaussian_blur, luma_weights, noise_field
from .streams import host_to_device, uniform_np

__all__ = ["IMAGE_OPS", "ImageAugment", "ImageDraws", "ImageOp"]


@dataclass(frozen=True)
class ImageDraws:
    """The host-side draws of a batch that an :class:`ImageOp` turns into its per-sample values.

    ``u`` holds one float64 uniform per sample and key column, ``keys`` the raw uint64 keys (for seeding
    per-pixel noise), ``gates`` every operation's on/off decision per sample.
    """

    u: np.ndarray
    keys: np.ndarray
    gates: Mapping[str, np.ndarray]
    height: int
    width: int

    def between(self, col: int, lo: float, hi: float) -> np.ndarray:
        """Column ``col`` of the uniforms, scaled to ``[lo, hi)``."""
        return lo + (hi - lo) * self.u[:, col]


@dataclass(frozen=True)
class ImageOp:
    """One operation of :class:`ImageAugment`: its gates, its per-sample values and its kernel.

    Attributes:
        gates: ``(setting, column)`` pairs: the :class:`~torchdataguard.augment.config.ImageAugmentConfig`
            field holding a per-sample probability and the key column of its on/off draw. Gate names are
            also the counter names (``augment/image/<gate>``) and keys of :meth:`ImageAugment.draw`.
        values: ``(config, draws) -> {name: (n,) array}``: the per-sample values (float arrays, or integer
            arrays that travel as int64), drawn for every sample whether its gate is on or not.
        apply: ``(stage, x, params, source dtype) -> x``: the kernel on the whole batch in the compute dtype;
            samples whose gate is off come out bit for bit.

    Key columns are fixed once published (24 today): a new operation takes new columns, so that a seed
    keeps its draws.
    """

    gates: Tuple[Tuple[str, int], ...]
    values: Callable[[ImageAugmentConfig, ImageDraws], Dict[str, np.ndarray]]
    apply: Callable[["ImageAugment", torch.Tensor, Mapping[str, torch.Tensor], torch.dtype], torch.Tensor]

    def enabled(self, cfg: ImageAugmentConfig) -> bool:
        """Whether any of the operation's probabilities is above 0 (else it is skipped entirely)."""
        return any(getattr(cfg, g) > 0 for g, _ in self.gates)


#: Image operations by name (see :class:`ImageOp`); :attr:`ImageAugment.ops` lists the ones the stage runs.
IMAGE_OPS: Registry[ImageOp] = Registry("image augmentation op")


def _no_values(cfg: ImageAugmentConfig, d: ImageDraws) -> Dict[str, np.ndarray]:
    return {}


def _flip(gate: str, dim: int) -> Callable[..., torch.Tensor]:
    def apply(aug: "ImageAugment", x: torch.Tensor, p: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        return where_rows(p[gate], x.flip(dim), x)

    return apply


IMAGE_OPS.register("hflip")(ImageOp((("hflip", 0),), _no_values, _flip("hflip", -1)))
IMAGE_OPS.register("vflip")(ImageOp((("vflip", 1),), _no_values, _flip("vflip", -2)))


def _warp_values(s: ImageAugmentConfig, d: ImageDraws) -> Dict[str, np.ndarray]:
    height, width = d.height, d.width
    area = d.between(3, *s.crop_scale)
    ratio = np.exp(d.between(4, math.log(s.crop_ratio[0]), math.log(s.crop_ratio[1])))
    cw = np.minimum(np.sqrt(area * ratio * height / width), 1.0)
    ch = np.minimum(np.sqrt(area / ratio * width / height), 1.0)
    crop = d.gates["crop"]
    return {"crop_w": np.where(crop, cw, 1.0), "crop_h": np.where(crop, ch, 1.0),
            "crop_cx": np.where(crop, cw / 2 + d.u[:, 5] * (1 - cw), 0.5),
            "crop_cy": np.where(crop, ch / 2 + d.u[:, 6] * (1 - ch), 0.5),
            "angle": np.where(d.gates["rotate"], d.between(8, -s.degrees, s.degrees) * (math.pi / 180), 0.0)}


def _warp(aug: "ImageAugment", x: torch.Tensor, p: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    n, c, h, w = x.shape
    cos, sin = torch.cos(p["angle"]), torch.sin(p["angle"])
    cw, ch = p["crop_w"], p["crop_h"]
    theta = torch.stack([
        torch.stack([cw * cos, -cw * sin * (h / w), 2 * p["crop_cx"] - 1], -1),
        torch.stack([ch * sin * (w / h), ch * cos, 2 * p["crop_cy"] - 1], -1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return where_rows(p["crop"] | p["rotate"], warped, x)


IMAGE_OPS.register("warp")(ImageOp((("crop", 2), ("rotate", 7)), _warp_values, _warp))


def _jitter_values(s: ImageAugmentConfig, d: ImageDraws) -> Dict[str, np.ndarray]:
    return {"brightness": d.between(10, max(0.0, 1 - s.brightness), 1 + s.brightness),
            "contrast": d.between(11, max(0.0, 1 - s.contrast), 1 + s.contrast),
            "saturation": d.between(12, max(0.0, 1 - s.saturation), 1 + s.saturation),
            "hue": d.between(13, -s.hue, s.hue)}


def _jitter(aug: "ImageAugment", x: torch.Tensor, p: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    s = aug.settings
    n, c, h, w = x.shape
    lo, sc, trivial = aug.pixel_bounds(c, x.dtype, x.device, dtype == torch.uint8)
    y = x if trivial else (x - lo) / sc
    one = torch.ones(n, dtype=x.dtype, device=x.device)
    bright = p["brightness"].to(x.dtype) if s.brightness > 0 else one
    contr = p["contrast"].to(x.dtype) if s.contrast > 0 else one
    if c == 3:
        mean_gray = y.mean(dim=(-2, -1)) @ luma_weights(x.dtype, x.device)
        sat = p["saturation"].to(x.dtype) if s.saturation > 0 else one
        hue = p["hue"].to(x.dtype) if s.hue > 0 else torch.zeros_like(one)
        A, b = colour_matrix(bright, contr, sat, hue, mean_gray)
        y = torch.baddbmm(b.unsqueeze(-1), A, y.reshape(n, 3, h * w)).view(n, 3, h, w)
    else:
        mean_gray = y.mean(dim=(-3, -2, -1))
        y = (contr * bright).view(-1, 1, 1, 1) * y + ((1 - contr) * bright * mean_gray).view(-1, 1, 1, 1)
    y = y.clamp(0, 1)
    return where_rows(p["jitter"], y if trivial else y * sc + lo, x)


IMAGE_OPS.register("jitter")(ImageOp((("jitter", 9),), _jitter_values, _jitter))


def _blur(aug: "ImageAugment", x: torch.Tensor, p: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    h, w = x.shape[-2:]
    k = 2 * math.ceil(3 * aug.settings.blur_sigma[1]) + 1
    k = max(1, min(k, 2 * ((min(h, w) - 1) // 2) + 1))
    return where_rows(p["blur"], gaussian_blur(x, p["sigma"], k), x) if k > 1 else x


def _blur_values(s: ImageAugmentConfig, d: ImageDraws) -> Dict[str, np.ndarray]:
    return {"sigma": d.between(15, *s.blur_sigma)}


IMAGE_OPS.register("blur")(ImageOp((("blur", 14),), _blur_values, _blur))


def _noise(aug: "ImageAugment", x: torch.Tensor, p: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    n, c, h, w = x.shape
    lo, sc, _ = aug.pixel_bounds(c, x.dtype, x.device, dtype == torch.uint8)
    z = noise_field(p["noise_key"], (c, h, w)).to(x.dtype)
    noisy = x + z * p["noise_std"].to(x.dtype).view(-1, 1, 1, 1) * sc
    noisy = torch.maximum(torch.minimum(noisy, lo + sc), lo)
    return where_rows(p["noise"], noisy, x)


def _noise_values(s: ImageAugmentConfig, d: ImageDraws) -> Dict[str, np.ndarray]:
    return {"noise_std": d.between(17, *s.noise_std), "noise_key": d.keys[:, 18]}  # the key seeds the pixels


IMAGE_OPS.register("noise")(ImageOp((("noise", 16),), _noise_values, _noise))


def _erase_values(s: ImageAugmentConfig, d: ImageDraws) -> Dict[str, np.ndarray]:
    height, width = d.height, d.width
    e_area = d.between(20, *s.erase_scale) * (height * width)
    e_ratio = np.exp(d.between(21, math.log(s.erase_ratio[0]), math.log(s.erase_ratio[1])))
    eh = np.clip(np.round(np.sqrt(e_area * e_ratio)), 1, height)
    ew = np.clip(np.round(np.sqrt(e_area / e_ratio)), 1, width)
    return {"erase_h": eh, "erase_w": ew,
            "erase_top": np.minimum(np.floor(d.u[:, 22] * (height - eh + 1)), height - eh),
            "erase_left": np.minimum(np.floor(d.u[:, 23] * (width - ew + 1)), width - ew)}


def _erase(aug: "ImageAugment", x: torch.Tensor, p: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    top, left = p["erase_top"].view(-1, 1, 1), p["erase_left"].view(-1, 1, 1)
    box = ((rows >= top) & (rows < top + p["erase_h"].view(-1, 1, 1))
           & (cols >= left) & (cols < left + p["erase_w"].view(-1, 1, 1)))
    box = box & p["erase"].view(-1, 1, 1)
    return x.masked_fill(box.unsqueeze(1), float(aug.settings.erase_value))


IMAGE_OPS.register("erase")(ImageOp((("erase", 19),), _erase_values, _erase))

_DEFAULT_OPS = ("hflip", "vflip", "warp", "jitter", "blur", "noise", "erase")


def _gate_counters(ops: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(f"augment/image/{g}" for name in ops for g, _ in IMAGE_OPS.get(name).gates)


class ImageAugment(AugmentStage):
    """Per-sample image augmentation of a batch ``(N, C, H, W)`` on its device.

    Operations, in this order: horizontal/vertical flip (exact), random resized crop and rotation (one
    bilinear affine warp, zeros outside the image), colour jitter (brightness, contrast, saturation, hue),
    Gaussian blur, Gaussian noise, random erasing. Each has a probability and ranges (see
    :class:`~torchdataguard.augment.config.ImageAugmentConfig`); parameters are drawn per sample from the
    stage's stream, so a sample is augmented the same way alone or in a batch, and a restored
    :meth:`state_dict` continues the stream. Samples an operation does not pick are passed through bit for
    bit. Float (16/32/64-bit) and uint8 tensors are accepted and returned in their own dtype.

    The batch may be a mapping (``key``, default ``pixel_values``), a tensor, or an ``(images, labels)``
    pair from torch's ``default_collate``. Counters: ``augment/image/examples`` and one per operation
    (samples it changed).

    Example:
        >>> aug = ImageAugment(hflip=1.0, seed=0)
        >>> x = torch.arange(6.0).view(1, 1, 2, 3)
        >>> aug({"pixel_values": x})["pixel_values"][0, 0].tolist()
        [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    """

    #: the operations of :data:`IMAGE_OPS` the stage runs, in this order (a subclass may set its own)
    ops: ClassVar[Tuple[str, ...]] = _DEFAULT_OPS
    counter_names: ClassVar[Tuple[str, ...]] = _gate_counters(_DEFAULT_OPS)  # one per gate, in ``ops`` order
    stage_name: ClassVar[str] = "image_augment"
    #: number of per-sample draws (columns of the key matrix)
    _DRAWS: ClassVar[int] = 24

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.counter_names = _gate_counters(cls.ops)

    def __init__(self, *, seed: Optional[int] = None, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(ImageAugmentConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"ImageAugment got unknown option(s) {unknown}; allowed: "
                              f"{sorted(ImageAugmentConfig.__dataclass_fields__)} and seed")
        super().__init__(seed=seed)
        self.settings = ImageAugmentConfig(**settings)
        self._cache: Dict[Any, Any] = {}

    def config(self) -> Dict[str, Any]:
        s = self.settings
        cfg = {k: getattr(s, k) for k in ImageAugmentConfig.__dataclass_fields__}
        cfg["seed"] = self.seed
        return cfg

    def counters(self) -> Dict[str, int]:
        out = super().counters()
        out.setdefault("augment/image/examples", 0)
        return out

    # -- draw --------------------------------------------------------------------------------------------
    def draw(self, n: int, height: int, width: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """Per-sample parameters for the next ``n`` samples (advances the stream by ``n``).

        Returns tensors of shape ``(n,)``: the gates ``hflip, vflip, crop, rotate, jitter, blur, noise, erase``
        (bool) and the values ``crop_w, crop_h, crop_cx, crop_cy`` (fractions), ``angle`` (radians),
        ``brightness, contrast, saturation, hue``, ``sigma``, ``noise_std``, ``erase_top, erase_left,
        erase_h, erase_w`` (pixels), and ``noise_key`` (int64, seeds the per-pixel noise).
        """
        s = self.settings
        keys = self.next_keys(n, self._DRAWS)
        u = uniform_np(keys)  # (n, 24) float64, computed on the host: no device kernels
        ops = [IMAGE_OPS.get(name) for name in self.ops]
        gates = {g: u[:, col] < getattr(s, g) for op in ops for g, col in op.gates}
        draws = ImageDraws(u=u, keys=keys, gates=gates, height=height, width=width)
        values: Dict[str, np.ndarray] = {}
        for op in ops:
            values.update(op.values(s, draws))
        floats = {k: v for k, v in values.items() if v.dtype.kind == "f"}
        ints = {k: v for k, v in values.items() if v.dtype.kind != "f"}
        # three host-to-device copies in all: the gates, the float values, the integer values
        g = host_to_device(np.stack(list(gates.values()), 1), device)
        p: Dict[str, torch.Tensor] = {k: g[:, i] for i, k in enumerate(gates)}
        if floats:
            f = host_to_device(np.stack(list(floats.values()), 1).astype(np.float32), device)
            p.update({k: f[:, i] for i, k in enumerate(floats)})
        if ints:
            t = host_to_device(np.stack(list(ints.values()), 1).astype(np.int64), device)
            p.update({k: t[:, i] for i, k in enumerate(ints)})
        return p

    # -- apply -------------------------------------------------------------------------------------------
    def pixel_bounds(self, c: int, dtype: torch.dtype, device: torch.device,
                     is_uint8: bool) -> Tuple[torch.Tensor, torch.Tensor, bool]:
        """Per-channel ``(low, scale)`` tensors ``(1, c, 1, 1)`` with value = low + scale * v, v in [0, 1], and
        whether that is the identity (decided on the host: no device sync). Cached per (channels, dtype,
        device); raises :class:`~torchdataguard.errors.GuardInputError` when ``mean``/``std`` do not fit ``c``."""
        ck = ("bounds", c, dtype, str(device), is_uint8)
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._cache[ck] = self._make_bounds(c, dtype, device, is_uint8)
        return hit

    def _make_bounds(self, c: int, dtype: torch.dtype, device: torch.device,
                     is_uint8: bool) -> Tuple[torch.Tensor, torch.Tensor, bool]:
        s = self.settings
        if is_uint8:
            lo, sc = [0.0] * c, [255.0] * c
        elif s.mean is not None:
            if len(s.mean) not in (1, c):
                raise GuardInputError(f"ImageAugment: batch[{s.key!r}] has {c} channels but mean/std have "
                                      f"{len(s.mean)} values; give one value per channel")
            mean = list(s.mean) * (c if len(s.mean) == 1 else 1)
            std = list(s.std) * (c if len(s.std) == 1 else 1)  # type: ignore[arg-type]
            lo = [-m / d for m, d in zip(mean, std)]
            sc = [1.0 / d for d in std]
        else:
            lo, sc = [s.value_range[0]] * c, [s.value_range[1] - s.value_range[0]] * c
        lo_t = torch.tensor(lo, dtype=dtype, device=device).view(1, c, 1, 1)
        sc_t = torch.tensor(sc, dtype=dtype, device=device).view(1, c, 1, 1)
        return lo_t, sc_t, all(v == 0.0 for v in lo) and all(v == 1.0 for v in sc)

    def apply(self, images: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Apply drawn ``params`` to ``images`` (N, C, H, W); returns a new tensor of the same dtype."""
        dtype = images.dtype
        x = images.to(compute_dtype(dtype))
        for name in self.ops:
            op = IMAGE_OPS.get(name)
            if op.enabled(self.settings):
                x = op.apply(self, x, params, dtype)
        return restore_dtype(x, dtype)

    def forward(self, batch: Any) -> Any:
        s = self.settings
        images, rebuild, _ = split_images(batch, s.key, "ImageAugment")
        name = f"batch[{s.key!r}]" if isinstance(batch, Mapping) else "the images"
        check_images(images, "ImageAugment", name)
        n, c, h, w = images.shape
        if s.jitter > 0 and c not in (1, 3):
            raise GuardInputError(f"ImageAugment: {name} has shape {tuple(images.shape)}; colour jitter needs 1 or 3 "
                                  f"channels (set jitter=0 for other images)")
        params = self.draw(n, h, w, images.device)
        out = self.apply(images, params)
        self.add_count("augment/image/examples", n)
        # a gate whose probability is 0 is never on, so these count exactly the samples each operation changed
        self.add_device_counts([params[k[len("augment/image/"):]].sum() for k in self.counter_names])
        return rebuild(out, {}) if not isinstance(batch, torch.Tensor) else out
