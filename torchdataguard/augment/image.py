"""Image augmentation on batched tensors ``(N, C, H, W)`` on the device, plus MixUp and CutMix.

Every operation draws its parameters per sample (``draw``), then applies them to the whole batch at once
(``apply``): flips, crop with resize and rotation fused into one affine warp (one ``grid_sample``), colour
jitter (brightness, contrast, saturation, hue), Gaussian blur with a per-sample sigma (separable grouped
convolution), Gaussian noise and random erasing. The per-sample draws are numpy on the host, the image
work plain torch on the batch's device, so it runs wherever torch runs.

Why not kornia at run time: kornia's augmentation classes draw their parameters from torch's global RNG,
so a stage cannot checkpoint its own stream, and a batch of 32 is not augmented like 32 batches of one;
the kernels this module needs are a handful of torch calls (``affine_grid``/``grid_sample``, grouped
``conv2d``, a 3x3 colour matrix per sample). kornia is used by the tests as an independent check of those
kernels and by ``benchmarks/augment_overhead.py`` as the speed reference (``pip install torchdataguard[augment]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, GuardInputError
from .multiplicity import UNIT_IDS_KEY
from .token import AugmentStage, AugmentStream, _fmix_np, _rebuild, _shape, _ship, _unit_np

__all__ = ["CutMix", "ImageAugment", "ImageAugmentSettings", "MixUp", "colour_matrix", "gaussian_blur"]

_GRAY = (0.299, 0.587, 0.114)


def _unit(name: str, v: Any, problems: List[str]) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        problems.append(f"{name}={v!r}: expected a probability in [0, 1]")


def _range(name: str, v: Any, lo: float, hi: float, problems: List[str], *, positive: bool = False) -> None:
    ok = (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                            for x in v))
    if not ok or not (lo <= float(v[0]) <= float(v[1]) <= hi) or (positive and float(v[0]) <= 0):
        problems.append(f"{name}={v!r}: expected a pair (low, high) with {lo:g} {'<' if positive else '<='} low <= high <= {hi:g}")


@dataclass
class ImageAugmentSettings:
    """Settings of :class:`ImageAugment`. Each operation has a probability (per sample) and its ranges.

    Attributes:
        hflip, vflip: probability of a horizontal / vertical flip.
        crop: probability of a random resized crop; ``crop_scale`` is the area fraction kept and
            ``crop_ratio`` the aspect ratio range (the box is clamped to the image rather than re-drawn).
        rotate: probability of a rotation by an angle uniform in ``[-degrees, degrees]`` (zeros outside).
        jitter: probability of colour jitter; ``brightness``/``contrast``/``saturation`` ``b`` draw a factor
            in ``[1 - b, 1 + b]``; ``hue`` ``h`` (at most 0.5) rotates the chroma about the grey axis (YIQ) by
            up to ``h`` of a turn. The four are composed into one 3x3 colour matrix per sample and clamped
            once (torchvision clamps after each, and shifts hue in HSV: results differ slightly).
            Saturation and hue need 3 channels (they are skipped on 1-channel images).
        blur: probability of a Gaussian blur with sigma uniform in ``blur_sigma`` (pixels).
        noise: probability of additive Gaussian noise, std uniform in ``noise_std`` (fraction of the range).
        erase: probability of erasing a rectangle (area fraction ``erase_scale``, aspect ``erase_ratio``)
            with ``erase_value`` (in the tensor's own units).
        value_range: the range of pixel values (for clamping and colour maths); uint8 tensors always use
            (0, 255). ``mean``/``std`` (per channel) say the tensor is normalised as ``(x - mean) / std`` of a
            [0, 1] image, as Hugging Face image processors do; then ``value_range`` is ignored.
        key: the batch key holding the images (``pixel_values``).
    """

    hflip: float = 0.5
    vflip: float = 0.0
    crop: float = 0.0
    crop_scale: Tuple[float, float] = (0.5, 1.0)
    crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3)
    rotate: float = 0.0
    degrees: float = 15.0
    jitter: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    blur: float = 0.0
    blur_sigma: Tuple[float, float] = (0.1, 1.5)
    noise: float = 0.0
    noise_std: Tuple[float, float] = (0.01, 0.05)
    erase: float = 0.0
    erase_scale: Tuple[float, float] = (0.02, 0.2)
    erase_ratio: Tuple[float, float] = (0.3, 3.3)
    erase_value: float = 0.0
    value_range: Tuple[float, float] = (0.0, 1.0)
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    key: str = "pixel_values"

    def __post_init__(self) -> None:
        problems: List[str] = []
        for name in ("hflip", "vflip", "crop", "rotate", "jitter", "blur", "noise", "erase"):
            _unit(name, getattr(self, name), problems)
        _range("crop_scale", self.crop_scale, 0.0, 1.0, problems, positive=True)
        _range("crop_ratio", self.crop_ratio, 0.0, math.inf, problems, positive=True)
        if isinstance(self.degrees, bool) or not isinstance(self.degrees, (int, float)) or not 0 <= self.degrees <= 180:
            problems.append(f"degrees={self.degrees!r}: expected a number of degrees in [0, 180]")
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                problems.append(f"{name}={v!r}: expected a number in [0, 1] (factor drawn in [1 - {name}, 1 + {name}])")
        if isinstance(self.hue, bool) or not isinstance(self.hue, (int, float)) or not 0 <= self.hue <= 0.5:
            problems.append(f"hue={self.hue!r}: expected a number in [0, 0.5] (fraction of a turn)")
        _range("blur_sigma", self.blur_sigma, 0.0, 32.0, problems, positive=True)
        _range("noise_std", self.noise_std, 0.0, 1.0, problems)
        _range("erase_scale", self.erase_scale, 0.0, 1.0, problems, positive=True)
        _range("erase_ratio", self.erase_ratio, 0.0, math.inf, problems, positive=True)
        if isinstance(self.erase_value, bool) or not isinstance(self.erase_value, (int, float)):
            problems.append(f"erase_value={self.erase_value!r}: expected a number")
        vr = self.value_range
        if not (isinstance(vr, (tuple, list)) and len(vr) == 2 and all(isinstance(x, (int, float)) for x in vr)
                and float(vr[0]) < float(vr[1])):
            problems.append(f"value_range={vr!r}: expected a pair (low, high) with low < high, e.g. (0, 1)")
        if (self.mean is None) != (self.std is None):
            problems.append("mean and std go together: pass both (per-channel normalisation) or neither")
        elif self.mean is not None:
            try:
                self.mean = tuple(float(x) for x in self.mean)
                self.std = tuple(float(x) for x in self.std)  # type: ignore[union-attr]
            except (TypeError, ValueError):
                problems.append(f"mean={self.mean!r}, std={self.std!r}: expected sequences of numbers")
            else:
                if len(self.mean) != len(self.std) or not self.mean or any(s <= 0 for s in self.std):
                    problems.append(f"mean={self.mean}, std={self.std}: expected equal lengths (one per channel) "
                                    f"and positive std")
        if not isinstance(self.key, str) or not self.key:
            problems.append(f"key={self.key!r}: expected a non-empty string such as 'pixel_values'")
        if problems:
            raise ConfigError.collect(problems, "ImageAugment settings")
        self.crop_scale = tuple(float(x) for x in self.crop_scale)  # type: ignore[assignment]
        self.crop_ratio = tuple(float(x) for x in self.crop_ratio)  # type: ignore[assignment]
        self.blur_sigma = tuple(float(x) for x in self.blur_sigma)  # type: ignore[assignment]
        self.noise_std = tuple(float(x) for x in self.noise_std)  # type: ignore[assignment]
        self.erase_scale = tuple(float(x) for x in self.erase_scale)  # type: ignore[assignment]
        self.erase_ratio = tuple(float(x) for x in self.erase_ratio)  # type: ignore[assignment]
        self.value_range = tuple(float(x) for x in self.value_range)  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------------
# batch plumbing shared by the image stages
# ---------------------------------------------------------------------------------------------------

def _split(batch: Any, key: str, who: str) -> Tuple[torch.Tensor, Callable[[torch.Tensor, Dict[str, Any]], Any], Dict[str, Any]]:
    """Find the image tensor; return it, a function that rebuilds the batch, and the other entries."""
    if isinstance(batch, torch.Tensor):
        return batch, lambda x, extra: x if not extra else (x, extra.get("labels")), {}
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        rest = list(batch[1:])
        extra = {"labels": rest[0]} if rest else {}

        def rebuild_seq(x: torch.Tensor, new: Dict[str, Any]) -> Any:
            items = [x] + rest
            if "labels" in new and len(items) > 1:
                items[1] = new["labels"]
            return items if isinstance(batch, list) else tuple(items)

        return batch[0], rebuild_seq, extra
    if isinstance(batch, Mapping):
        if key not in batch:
            raise GuardInputError(f"{who}: the batch has no {key!r} (keys: {sorted(map(str, batch))}); set key= to "
                                  f"the entry that holds the (N, C, H, W) images")

        def rebuild_map(x: torch.Tensor, new: Dict[str, Any]) -> Any:
            out = dict(batch.items())
            out[key] = x
            out.update(new)
            return _rebuild(batch, out)

        return batch[key], rebuild_map, dict(batch.items())
    raise GuardInputError(f"{who} expects a mapping of tensors, an (N, C, H, W) tensor, or an (images, labels) "
                          f"pair; got {type(batch).__name__}")


def _check_images(x: Any, who: str, name: str, *, rank4: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise GuardInputError(f"{who}: {name} is {_shape(x)}; expected a tensor of images (N, C, H, W)")
    if rank4 and x.dim() != 4:
        raise GuardInputError(f"{who}: {name} has shape {tuple(x.shape)}; expected 4 dimensions (N, C, H, W); "
                              f"add a channel dimension with .unsqueeze(1) for (N, H, W) grey images")
    if not rank4 and x.dim() < 2:
        raise GuardInputError(f"{who}: {name} has shape {tuple(x.shape)}; expected at least (N, features)")
    if not (x.dtype.is_floating_point or x.dtype == torch.uint8):
        raise GuardInputError(f"{who}: {name} has shape {tuple(x.shape)} and dtype {x.dtype}; expected a floating "
                              f"point or uint8 tensor")
    if x.shape[0] == 0 or any(d == 0 for d in x.shape[1:]):
        raise GuardInputError(f"{who}: {name} has shape {tuple(x.shape)}: the batch is empty")
    return x


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _restore(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return y.round().clamp(0, 255).to(torch.uint8)
    return y.to(dtype)


# ---------------------------------------------------------------------------------------------------
# kernels (pure torch, batched, per-sample parameters)
# ---------------------------------------------------------------------------------------------------

# RGB <-> YIQ: a hue change is a rotation of (I, Q) about the grey axis (Y, the luma, is kept).
_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))


def _hue_basis() -> Tuple[Tuple[Tuple[float, ...], ...], ...]:
    """P0, Pc, Ps (float64) with hue_matrix(angle) = P0 + cos(angle) Pc + sin(angle) Ps, i.e. YIQ^-1 R YIQ."""
    yiq = torch.tensor(_YIQ, dtype=torch.float64)
    inv = torch.linalg.inv(yiq)
    p0 = torch.outer(inv[:, 0], yiq[0])
    pc = torch.eye(3, dtype=torch.float64) - p0  # = outer(inv1, y1) + outer(inv2, y2), exact at angle 0
    ps = torch.outer(inv[:, 2], yiq[1]) - torch.outer(inv[:, 1], yiq[2])
    return tuple(tuple(tuple(r) for r in m.tolist()) for m in (p0, pc, ps))


_HUE_BASIS = _hue_basis()
_CONSTANTS: Dict[Tuple[str, torch.dtype], Dict[str, torch.Tensor]] = {}


def _constants(dtype: torch.dtype, device: torch.device) -> Dict[str, torch.Tensor]:
    """Small constant tensors of the colour maths, made once per (device, dtype)."""
    key = (str(device), dtype)
    c = _CONSTANTS.get(key)
    if c is None:
        p0, pc, ps = (torch.tensor(m, dtype=dtype, device=device) for m in _HUE_BASIS)
        w = torch.tensor(_GRAY, dtype=dtype, device=device)
        c = {"p0": p0, "pc": pc, "ps": ps, "gray": w, "eye": torch.eye(3, dtype=dtype, device=device),
             "to_gray": torch.ones(3, 1, dtype=dtype, device=device) @ w.view(1, 3)}
        _CONSTANTS[key] = c
    return c


def colour_matrix(brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor,
                  mean_gray: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-sample colour jitter of RGB images in [0, 1] as one affine map ``y -> A @ y + b``.

    Brightness scales, contrast pulls towards the image's mean grey level ``mean_gray``, saturation pulls
    each pixel towards its own grey level, and hue rotates the chroma about the grey axis by ``hue`` of a
    turn (YIQ rotation: luma kept). Composed without intermediate clamping, so the four make one 3x3
    matrix and one offset per sample (one batched matmul, one clamp) instead of dozens of full-image
    passes. All arguments have shape ``(N,)``; returns ``A`` (N, 3, 3) and ``b`` (N, 3).

    Example:
        >>> one = torch.ones(1)
        >>> A, b = colour_matrix(one, one, one, torch.zeros(1), torch.zeros(1))
        >>> torch.allclose(A, torch.eye(3), atol=1e-6), b.abs().max().item() == 0.0
        (True, True)
    """
    n = brightness.shape[0]
    c = _constants(brightness.dtype, brightness.device)
    s = saturation.view(-1, 1, 1)
    sat = s * c["eye"] + (1 - s) * c["to_gray"]
    ang = (2 * math.pi) * hue.view(-1, 1, 1)
    hue_m = c["p0"] + torch.cos(ang) * c["pc"] + torch.sin(ang) * c["ps"]
    A = (contrast * brightness).view(-1, 1, 1) * (hue_m @ sat)
    b = ((1 - contrast) * brightness * mean_gray).view(-1, 1).expand(n, 3)
    return A, b


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Blur each sample of ``x`` (N, C, H, W) with its own Gaussian ``sigma`` (N,), reflect padding.

    Example:
        >>> x = torch.ones(2, 3, 9, 9)
        >>> torch.allclose(gaussian_blur(x, torch.tensor([0.5, 2.0]), 7), x)   # a flat image stays flat
        True
    """
    n, c, h, w = x.shape
    k = int(kernel_size)
    half = k // 2
    t = torch.arange(k, device=x.device, dtype=x.dtype) - half
    wts = torch.exp(-(t[None, :] ** 2) / (2.0 * sigma.to(x.dtype)[:, None] ** 2))
    wts = wts / wts.sum(1, keepdim=True)
    wts = wts.repeat_interleave(c, 0)  # (N*C, K)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (half, half, 0, 0), mode="reflect"), wts.view(n * c, 1, 1, k), groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, half, half), mode="reflect"), wts.view(n * c, 1, k, 1), groups=n * c)
    return y.view(n, c, h, w)


def _noise_field(keys: torch.Tensor, shape: Tuple[int, int, int], method: str = "auto") -> torch.Tensor:
    """Standard normal noise ``(N, *shape)``, sample ``i`` a function of ``keys[i]`` only.

    On the CPU one seeded ``torch.Generator`` per sample (torch's vectorised ``randn``; integer hashing is
    slow there); elsewhere counter-based hashing, a few elementwise kernels for the whole batch with no
    host sync. The two give different (equally distributed) noise for the same key.
    """
    n = keys.shape[0]
    if method == "generator" or (method == "auto" and keys.device.type == "cpu"):
        gen = torch.Generator(device="cpu")
        out = torch.empty((n, *shape), dtype=torch.float32)
        for i, k in enumerate(keys.tolist()):
            gen.manual_seed(int(k))
            out[i] = torch.randn(shape, generator=gen)
        return out.to(keys.device)
    return AugmentStream.normal_pairs(keys.view(n, 1), math.prod(shape)).view(n, *shape)


def _sel(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


class ImageAugment(AugmentStage):
    """Per-sample image augmentation of a batch ``(N, C, H, W)`` on its device.

    Operations, in this order: horizontal/vertical flip (exact), random resized crop and rotation (one
    bilinear affine warp, zeros outside the image), colour jitter (brightness, contrast, saturation, hue),
    Gaussian blur, Gaussian noise, random erasing. Each has a probability and ranges (see
    :class:`ImageAugmentSettings`); parameters are drawn per sample from the stage's stream, so a sample is
    augmented the same way alone or in a batch, and a restored :meth:`state_dict` continues the stream.
    Samples an operation does not pick are passed through bit for bit. Float (16/32/64-bit) and uint8
    tensors are accepted and returned in their own dtype.

    The batch may be a mapping (``key``, default ``pixel_values``), a tensor, or an ``(images, labels)``
    pair from torch's ``default_collate``. Counters: ``augment/image/examples`` and one per operation
    (samples it changed).

    Example:
        >>> aug = ImageAugment(hflip=1.0, seed=0)
        >>> x = torch.arange(6.0).view(1, 1, 2, 3)
        >>> aug({"pixel_values": x})["pixel_values"][0, 0].tolist()
        [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    """

    counter_names: ClassVar[Tuple[str, ...]] = (
        "augment/image/hflip", "augment/image/vflip", "augment/image/crop", "augment/image/rotate",
        "augment/image/jitter", "augment/image/blur", "augment/image/noise", "augment/image/erase")
    stage_name: ClassVar[str] = "image_augment"
    #: number of per-sample draws (columns of the key matrix)
    _DRAWS: ClassVar[int] = 24

    def __init__(self, *, seed: Optional[int] = None, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(ImageAugmentSettings.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"ImageAugment got unknown option(s) {unknown}; allowed: "
                              f"{sorted(ImageAugmentSettings.__dataclass_fields__)} and seed")
        super().__init__(seed=seed)
        self.settings = ImageAugmentSettings(**settings)
        self._cache: Dict[Any, torch.Tensor] = {}

    def config(self) -> Dict[str, Any]:
        s = self.settings
        cfg = {k: getattr(s, k) for k in ImageAugmentSettings.__dataclass_fields__}
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
        keys = self._keys_np(n, self._DRAWS)
        u = _unit_np(_fmix_np(keys))  # (n, 24) float64, computed on the host: no device kernels

        def between(col: int, lo: float, hi: float) -> np.ndarray:
            return lo + (hi - lo) * u[:, col]

        gates = {"hflip": u[:, 0] < s.hflip, "vflip": u[:, 1] < s.vflip, "crop": u[:, 2] < s.crop,
                 "rotate": u[:, 7] < s.rotate, "jitter": u[:, 9] < s.jitter, "blur": u[:, 14] < s.blur,
                 "noise": u[:, 16] < s.noise, "erase": u[:, 19] < s.erase}
        area = between(3, *s.crop_scale)
        ratio = np.exp(between(4, math.log(s.crop_ratio[0]), math.log(s.crop_ratio[1])))
        cw = np.minimum(np.sqrt(area * ratio * height / width), 1.0)
        ch = np.minimum(np.sqrt(area / ratio * width / height), 1.0)
        crop = gates["crop"]
        v: Dict[str, np.ndarray] = {
            "crop_w": np.where(crop, cw, 1.0), "crop_h": np.where(crop, ch, 1.0),
            "crop_cx": np.where(crop, cw / 2 + u[:, 5] * (1 - cw), 0.5),
            "crop_cy": np.where(crop, ch / 2 + u[:, 6] * (1 - ch), 0.5),
            "angle": np.where(gates["rotate"], between(8, -s.degrees, s.degrees) * (math.pi / 180), 0.0),
            "brightness": between(10, max(0.0, 1 - s.brightness), 1 + s.brightness),
            "contrast": between(11, max(0.0, 1 - s.contrast), 1 + s.contrast),
            "saturation": between(12, max(0.0, 1 - s.saturation), 1 + s.saturation),
            "hue": between(13, -s.hue, s.hue),
            "sigma": between(15, *s.blur_sigma),
            "noise_std": between(17, *s.noise_std),
        }
        e_area = between(20, *s.erase_scale) * (height * width)
        e_ratio = np.exp(between(21, math.log(s.erase_ratio[0]), math.log(s.erase_ratio[1])))
        eh = np.clip(np.round(np.sqrt(e_area * e_ratio)), 1, height)
        ew = np.clip(np.round(np.sqrt(e_area / e_ratio)), 1, width)
        v["erase_h"], v["erase_w"] = eh, ew
        v["erase_top"] = np.minimum(np.floor(u[:, 22] * (height - eh + 1)), height - eh)
        v["erase_left"] = np.minimum(np.floor(u[:, 23] * (width - ew + 1)), width - ew)
        # three host-to-device copies in all: the gates, the values, the noise keys
        g = _ship(np.stack(list(gates.values()), 1), device)
        f = _ship(np.stack(list(v.values()), 1).astype(np.float32), device)
        p: Dict[str, torch.Tensor] = {k: g[:, i] for i, k in enumerate(gates)}
        p.update({k: f[:, i] for i, k in enumerate(v)})
        p["noise_key"] = _ship(keys[:, 18].astype(np.int64), device)
        return p

    # -- apply -------------------------------------------------------------------------------------------
    def _bounds(self, c: int, dtype: torch.dtype, device: torch.device, is_uint8: bool):
        """Per-channel (low, scale) so that value = low + scale * v01, v01 in [0, 1], and whether that is
        the identity (decided on the host: no device sync). Cached per (channels, dtype, device)."""
        ck = ("bounds", c, dtype, str(device), is_uint8)
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._cache[ck] = self._make_bounds(c, dtype, device, is_uint8)
        return hit

    def _make_bounds(self, c: int, dtype: torch.dtype, device: torch.device, is_uint8: bool):
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

    def _jitter(self, x: torch.Tensor, params: Mapping[str, torch.Tensor], is_uint8: bool) -> torch.Tensor:
        s = self.settings
        n, c, h, w = x.shape
        lo, sc, trivial = self._bounds(c, x.dtype, x.device, is_uint8)
        y = x if trivial else (x - lo) / sc
        one = torch.ones(n, dtype=x.dtype, device=x.device)
        bright = params["brightness"].to(x.dtype) if s.brightness > 0 else one
        contr = params["contrast"].to(x.dtype) if s.contrast > 0 else one
        if c == 3:
            mean_gray = y.mean(dim=(-2, -1)) @ _constants(x.dtype, x.device)["gray"]
            sat = params["saturation"].to(x.dtype) if s.saturation > 0 else one
            hue = params["hue"].to(x.dtype) if s.hue > 0 else torch.zeros_like(one)
            A, b = colour_matrix(bright, contr, sat, hue, mean_gray)
            y = torch.baddbmm(b.unsqueeze(-1), A, y.reshape(n, 3, h * w)).view(n, 3, h, w)
        else:
            mean_gray = y.mean(dim=(-3, -2, -1))
            y = (contr * bright).view(-1, 1, 1, 1) * y + ((1 - contr) * bright * mean_gray).view(-1, 1, 1, 1)
        y = y.clamp(0, 1)
        return y if trivial else y * sc + lo

    def apply(self, images: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Apply drawn ``params`` to ``images`` (N, C, H, W); returns a new tensor of the same dtype."""
        s = self.settings
        dtype = images.dtype
        n, c, h, w = images.shape
        x = images.to(_compute_dtype(dtype))
        if s.hflip > 0:
            x = _sel(params["hflip"], x.flip(-1), x)
        if s.vflip > 0:
            x = _sel(params["vflip"], x.flip(-2), x)
        if s.crop > 0 or s.rotate > 0:
            cos, sin = torch.cos(params["angle"]), torch.sin(params["angle"])
            cw, ch = params["crop_w"], params["crop_h"]
            theta = torch.stack([
                torch.stack([cw * cos, -cw * sin * (h / w), 2 * params["crop_cx"] - 1], -1),
                torch.stack([ch * sin * (w / h), ch * cos, 2 * params["crop_cy"] - 1], -1)], 1).to(x.dtype)
            grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
            warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            x = _sel(params["crop"] | params["rotate"], warped, x)
        if s.jitter > 0:
            x = _sel(params["jitter"], self._jitter(x, params, dtype == torch.uint8), x)
        if s.blur > 0:
            k = 2 * math.ceil(3 * s.blur_sigma[1]) + 1
            k = max(1, min(k, 2 * ((min(h, w) - 1) // 2) + 1))
            if k > 1:
                x = _sel(params["blur"], gaussian_blur(x, params["sigma"], k), x)
        if s.noise > 0:
            lo, sc, _ = self._bounds(c, x.dtype, x.device, dtype == torch.uint8)
            z = _noise_field(params["noise_key"], (c, h, w)).to(x.dtype)
            noisy = x + z * params["noise_std"].to(x.dtype).view(-1, 1, 1, 1) * sc
            noisy = torch.maximum(torch.minimum(noisy, lo + sc), lo)
            x = _sel(params["noise"], noisy, x)
        if s.erase > 0:
            rows = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
            cols = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
            top, left = params["erase_top"].view(-1, 1, 1), params["erase_left"].view(-1, 1, 1)
            box = ((rows >= top) & (rows < top + params["erase_h"].view(-1, 1, 1))
                   & (cols >= left) & (cols < left + params["erase_w"].view(-1, 1, 1)))
            box = box & params["erase"].view(-1, 1, 1)
            x = x.masked_fill(box.unsqueeze(1), float(s.erase_value))
        return _restore(x, dtype)

    def forward(self, batch: Any) -> Any:
        s = self.settings
        images, rebuild, _ = _split(batch, s.key, "ImageAugment")
        name = f"batch[{s.key!r}]" if isinstance(batch, Mapping) else "the images"
        _check_images(images, "ImageAugment", name)
        n, c, h, w = images.shape
        if s.jitter > 0 and c not in (1, 3):
            raise GuardInputError(f"ImageAugment: {name} has shape {tuple(images.shape)}; colour jitter needs 1 or 3 "
                                  f"channels (set jitter=0 for other images)")
        params = self.draw(n, h, w, images.device)
        out = self.apply(images, params)
        self._add_host("augment/image/examples", n)
        # a gate whose probability is 0 is never on, so these count exactly the samples each operation changed
        self._add_counts([params[k].sum() for k in ("hflip", "vflip", "crop", "rotate", "jitter", "blur", "noise", "erase")])
        return rebuild(out, {}) if not isinstance(batch, torch.Tensor) else out


# ---------------------------------------------------------------------------------------------------
# MixUp and CutMix
# ---------------------------------------------------------------------------------------------------

def _beta_table(alpha: float, points: int = 2049) -> Tuple[List[float], List[float]]:
    """(CDF, s) pairs of a symmetric Beta(alpha, alpha) on [0, 1/2], with x = s ** (1 / alpha).

    The substitution x = s^(1/alpha) removes the density's singularity at 0, so a trapezoid rule on a
    uniform grid of s is accurate; the CDF is normalised so that F(1/2) = 1/2 (symmetry).
    """
    a = float(alpha)
    s_max = 0.5 ** a
    s = torch.linspace(0.0, s_max, points, dtype=torch.float64)
    g = (1.0 - s.pow(1.0 / a)).clamp(min=0.0).pow(a - 1.0)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(g, s)])
    cdf = cdf * (0.5 / cdf[-1])
    return cdf.tolist(), s.tolist()


class _MixBase(AugmentStage):
    """Shared parts of :class:`MixUp` and :class:`CutMix`: Beta draws, labels to soft labels, checks."""

    _who: ClassVar[str] = "MixUp"

    def __init__(self, *, alpha: float, p: float, num_classes: Optional[int], key: str, label_key: str,
                 seed: Optional[int]) -> None:
        problems: List[str] = []
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.01 <= alpha <= 100:
            problems.append(f"alpha={alpha!r}: expected a number in [0.01, 100] (Beta(alpha, alpha))")
        _unit("p", p, problems)
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 2):
            problems.append(f"num_classes={num_classes!r}: expected an integer >= 2 or None (labels already soft)")
        for nm, v in (("key", key), ("label_key", label_key)):
            if not isinstance(v, str) or not v:
                problems.append(f"{nm}={v!r}: expected a non-empty string")
        if problems:
            raise ConfigError.collect(problems, f"{self._who} settings")
        super().__init__(seed=seed)
        self.alpha, self.p, self.num_classes = float(alpha), float(p), num_classes
        self.key, self.label_key = key, label_key
        self._cdf, self._s = _beta_table(self.alpha)
        self._cache: Dict[Any, torch.Tensor] = {}

    def config(self) -> Dict[str, Any]:
        return {"alpha": self.alpha, "p": self.p, "num_classes": self.num_classes, "key": self.key,
                "label_key": self.label_key, "seed": self.seed}

    def _table(self, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        k = ("beta", str(device))
        if k not in self._cache:
            self._cache[k] = torch.stack([torch.tensor(self._cdf, dtype=torch.float32),
                                          torch.tensor(self._s, dtype=torch.float32)]).to(device)
        t = self._cache[k]
        return t[0], t[1]

    def _beta_np(self, u: np.ndarray) -> np.ndarray:
        """:meth:`beta` on the host (numpy float64), used by ``draw``."""
        low = u <= 0.5
        q = np.where(low, u, 1.0 - u)
        x = np.interp(q, np.asarray(self._cdf), np.asarray(self._s)) ** (1.0 / self.alpha)
        return np.where(low, x, 1.0 - x)

    def beta(self, u: torch.Tensor) -> torch.Tensor:
        """Beta(alpha, alpha) quantiles of uniforms ``u`` (inverse CDF from a precomputed table)."""
        cdf, s = self._table(u.device)
        low = u <= 0.5
        q = torch.where(low, u, 1.0 - u)
        i = torch.searchsorted(cdf, q).clamp(1, cdf.numel() - 1)
        c0, c1, s0, s1 = cdf[i - 1], cdf[i], s[i - 1], s[i]
        t = ((q - c0) / (c1 - c0).clamp(min=1e-12)).clamp(0, 1)
        x = (s0 + t * (s1 - s0)).clamp(min=0).pow(1.0 / self.alpha)
        return torch.where(low, x, 1.0 - x)

    def _inputs(self, batch: Any, *, rank4: bool):
        x, rebuild, entries = _split(batch, self.key, self._who)
        if isinstance(batch, Mapping) and UNIT_IDS_KEY in batch:
            raise GuardInputError(
                f"{self._who}: the batch carries {UNIT_IDS_KEY!r} (privacy units from Multiplicity); mixing rows of "
                f"different units would make one row depend on two units and break the DP guarantee. Put "
                f"{self._who} before Multiplicity, or drop it from a DP run")
        name = f"batch[{self.key!r}]" if isinstance(batch, Mapping) else "the images"
        _check_images(x, self._who, name, rank4=rank4)
        if isinstance(batch, Mapping):
            if self.label_key not in batch:
                raise GuardInputError(f"{self._who}: the batch has no {self.label_key!r} to mix (keys: "
                                      f"{sorted(map(str, batch))}); set label_key=")
            y = batch[self.label_key]
            lname = f"batch[{self.label_key!r}]"
        else:
            y = entries.get("labels")
            lname = "the labels"
            if y is None:
                raise GuardInputError(f"{self._who}: got images without labels; pass (images, labels) or a mapping")
        n = x.shape[0]
        if not isinstance(y, torch.Tensor):
            raise GuardInputError(f"{self._who}: {lname} is {_shape(y)}; expected a tensor of shape ({n},) or ({n}, classes)")
        if y.device != x.device:
            raise GuardInputError(f"{self._who}: {lname} is on {y.device} but {name} is on {x.device}")
        if y.dim() == 1 and y.shape[0] == n and not y.dtype.is_floating_point:
            if self.num_classes is None:
                raise GuardInputError(f"{self._who}: {lname} has shape {tuple(y.shape)} and dtype {y.dtype} (class "
                                      f"indices); pass num_classes= so they can become soft labels")
            classes = torch.arange(self.num_classes, device=y.device)
            soft = (y[:, None] == classes[None, :]).to(torch.float32)  # -100 and other ignored ids: all-zero rows
            ignored = ((y < 0) | (y >= self.num_classes)).sum()
        elif y.dtype.is_floating_point and y.dim() in (1, 2) and y.shape[0] == n:
            if self.num_classes is not None and y.dim() == 2 and y.shape[1] != self.num_classes:
                raise GuardInputError(f"{self._who}: {lname} has shape {tuple(y.shape)}; expected ({n}, "
                                      f"{self.num_classes}) soft labels (num_classes={self.num_classes})")
            soft, ignored = y, torch.zeros((), dtype=torch.int64, device=y.device)
        else:
            raise GuardInputError(f"{self._who}: {lname} has shape {tuple(y.shape)} and dtype {y.dtype}; expected "
                                  f"({n},) class indices or ({n}, classes) float soft labels, matching {name} "
                                  f"of shape {tuple(x.shape)}")
        return x, soft, ignored, rebuild

    def _finish(self, batch: Any, rebuild, out_x: torch.Tensor, out_y: torch.Tensor) -> Any:
        if isinstance(batch, torch.Tensor):
            return out_x
        return rebuild(out_x, {self.label_key if isinstance(batch, Mapping) else "labels": out_y})


class MixUp(_MixBase):
    """MixUp with per-sample mixing weights and soft labels (Zhang et al. 2018).

    Row ``i`` becomes ``lam_i * x_i + (1 - lam_i) * x_{i-1}`` (its neighbour in the batch, the first row
    mixing with the last), with ``lam_i ~ Beta(alpha, alpha)`` drawn per sample and applied with
    probability ``p``; labels become ``lam_i * y_i + (1 - lam_i) * y_{i-1}``. Integer class labels are
    turned into one-hot rows first (``num_classes``); ids outside ``[0, num_classes)`` (such as -100) give
    all-zero rows, which a probability cross-entropy ignores, and are counted as
    ``augment/mixup/ignored_labels``. Output labels are float32 soft labels of shape ``(N, classes)``: use
    a loss that takes probabilities (``torch.nn.functional.cross_entropy(logits, soft_labels)``).

    The key may hold any float tensor with a batch dimension (images, features, embeddings). MixUp mixes
    two rows, so a batch is not equal to its rows one by one; what does hold is that each row's weight
    depends only on its place in the stream (``draw``). It refuses batches that carry privacy units
    (``tdg_unit_ids``): under DP, run it before :class:`~torchdataguard.augment.Multiplicity`, or not at all.

    Example:
        >>> mix = MixUp(alpha=0.4, num_classes=3, seed=0)
        >>> out = mix({"pixel_values": torch.rand(4, 3, 8, 8), "labels": torch.tensor([0, 1, 2, 1])})
        >>> out["labels"].shape, bool(torch.allclose(out["labels"].sum(1), torch.ones(4)))
        (torch.Size([4, 3]), True)
    """

    counter_names: ClassVar[Tuple[str, ...]] = ("augment/mixup/mixed", "augment/mixup/ignored_labels")
    stage_name: ClassVar[str] = "mixup"
    _who: ClassVar[str] = "MixUp"

    def __init__(self, *, alpha: float = 0.2, p: float = 1.0, num_classes: Optional[int] = None,
                 key: str = "pixel_values", label_key: str = "labels", seed: Optional[int] = None) -> None:
        super().__init__(alpha=alpha, p=p, num_classes=num_classes, key=key, label_key=label_key, seed=seed)

    def counters(self) -> Dict[str, int]:
        out = super().counters()
        out.setdefault("augment/mixup/examples", 0)
        return out

    def draw(self, n: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """Per-sample ``gate`` (bool) and ``lam`` (1.0 where the gate is off); advances the stream by ``n``."""
        u = _unit_np(_fmix_np(self._keys_np(n, 2)))  # on the host: no device kernels
        gate = u[:, 0] < self.p
        lam = np.where(gate, self._beta_np(u[:, 1]), 1.0)
        return {"gate": _ship(gate, device), "lam": _ship(lam.astype(np.float32), device)}

    def forward(self, batch: Any) -> Any:
        x, soft, ignored, rebuild = self._inputs(batch, rank4=False)
        n = x.shape[0]
        prm = self.draw(n, x.device)
        cdt = _compute_dtype(x.dtype)
        xf = x.to(cdt)
        lam = prm["lam"].to(cdt).view(-1, *([1] * (x.dim() - 1)))
        mixed = lam * xf + (1 - lam) * xf.roll(1, 0)
        out_x = _restore(_sel(prm["gate"], mixed, xf), x.dtype)
        sf = soft.to(torch.promote_types(soft.dtype, torch.float32))
        ly = prm["lam"].to(sf.dtype).view(-1, *([1] * (sf.dim() - 1)))
        out_y = _sel(prm["gate"], ly * sf + (1 - ly) * sf.roll(1, 0), sf)
        self._add_host("augment/mixup/examples", n)
        self._add_counts([prm["gate"].sum(), ignored])
        return self._finish(batch, rebuild, out_x, out_y)


class CutMix(_MixBase):
    """CutMix with per-sample boxes and soft labels (Yun et al. 2019).

    For each picked sample (probability ``p``) a box covering about ``1 - lam`` of the image, ``lam ~
    Beta(alpha, alpha)``, centred uniformly and clipped to the image, is pasted from its neighbour
    ``i - 1``; labels are mixed by the exact pasted area. Same label rules and DP refusal as :class:`MixUp`.

    Example:
        >>> cut = CutMix(alpha=1.0, num_classes=2, seed=0)
        >>> out = cut((torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])))
        >>> out[1].shape
        torch.Size([4, 2])
    """

    counter_names: ClassVar[Tuple[str, ...]] = ("augment/cutmix/mixed", "augment/cutmix/ignored_labels")
    stage_name: ClassVar[str] = "cutmix"
    _who: ClassVar[str] = "CutMix"

    def __init__(self, *, alpha: float = 1.0, p: float = 1.0, num_classes: Optional[int] = None,
                 key: str = "pixel_values", label_key: str = "labels", seed: Optional[int] = None) -> None:
        super().__init__(alpha=alpha, p=p, num_classes=num_classes, key=key, label_key=label_key, seed=seed)

    def counters(self) -> Dict[str, int]:
        out = super().counters()
        out.setdefault("augment/cutmix/examples", 0)
        return out

    def draw(self, n: int, height: int, width: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """Per-sample ``gate``, box ``top, left, bottom, right`` (pixels, end exclusive) and the label
        weight ``lam`` (share of the sample's own pixels kept); advances the stream by ``n``."""
        u = _unit_np(_fmix_np(self._keys_np(n, 4)))  # on the host: no device kernels
        gate = u[:, 0] < self.p
        r = np.sqrt(1.0 - self._beta_np(u[:, 1]))
        bh, bw = np.floor(height * r), np.floor(width * r)
        cy, cx = np.floor(u[:, 2] * height), np.floor(u[:, 3] * width)
        top = np.where(gate, np.clip(cy - np.floor(bh / 2), 0, height), 0.0)
        bottom = np.where(gate, np.clip(cy + np.ceil(bh / 2), 0, height), 0.0)
        left = np.where(gate, np.clip(cx - np.floor(bw / 2), 0, width), 0.0)
        right = np.where(gate, np.clip(cx + np.ceil(bw / 2), 0, width), 0.0)
        kept = 1.0 - (bottom - top) * (right - left) / float(height * width)
        f = _ship(np.stack([top, bottom, left, right, kept], 1).astype(np.float32), device)
        return {"gate": _ship(gate, device), "top": f[:, 0], "bottom": f[:, 1], "left": f[:, 2], "right": f[:, 3],
                "lam": f[:, 4]}

    def forward(self, batch: Any) -> Any:
        x, soft, ignored, rebuild = self._inputs(batch, rank4=True)
        n, _, h, w = x.shape
        prm = self.draw(n, h, w, x.device)
        rows = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
        cols = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
        box = ((rows >= prm["top"].view(-1, 1, 1)) & (rows < prm["bottom"].view(-1, 1, 1))
               & (cols >= prm["left"].view(-1, 1, 1)) & (cols < prm["right"].view(-1, 1, 1)))
        out_x = torch.where(box.unsqueeze(1), x.roll(1, 0), x)
        sf = soft.to(torch.promote_types(soft.dtype, torch.float32))
        ly = prm["lam"].to(sf.dtype).view(-1, *([1] * (sf.dim() - 1)))
        out_y = _sel(prm["gate"], ly * sf + (1 - ly) * sf.roll(1, 0), sf)
        self._add_host("augment/cutmix/examples", n)
        self._add_counts([prm["gate"].sum(), ignored])
        return self._finish(batch, rebuild, out_x, out_y)
