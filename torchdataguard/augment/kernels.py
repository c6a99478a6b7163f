"""The image kernels of :class:`~torchdataguard.augment.ImageAugment`: pure torch, batched, per-sample values.

* :func:`colour_matrix`: brightness, contrast, saturation and hue composed into one 3x3 colour matrix and
  offset per sample (one batched matmul and one clamp instead of a pass per adjustment);
* :func:`gaussian_blur`: a Gaussian blur with a per-sample sigma (separable grouped convolution);
* :func:`noise_field`: standard normal noise keyed per sample, by a method from :data:`NOISE_FIELDS`.

They run wherever torch runs; kornia is used by the tests as an independent check of them.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F

from ..registry import Registry
from .streams import AugmentStream

__all__ = ["NOISE_FIELDS", "colour_matrix", "gaussian_blur", "luma_weights", "noise_field"]

_GRAY = (0.299, 0.587, 0.114)

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


def luma_weights(dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """The RGB weights of the grey level (ITU-R BT.601 luma), a cached ``(3,)`` tensor.

    Example:
        >>> luma_weights(torch.float64, "cpu").tolist()
        [0.299, 0.587, 0.114]
    """
    return _constants(dtype, torch.device(device))["gray"]


#: Ways to make per-sample standard normal noise by name: ``"generator"`` (one seeded ``torch.Generator``
#: per sample: torch's vectorised ``randn``, fast on the CPU) and ``"hash"`` (counter-based hashing, a few
#: elementwise kernels for the whole batch with no host sync, for accelerators). The two give different
#: (equally distributed) noise for the same key.
NOISE_FIELDS: Registry[Callable[[torch.Tensor, Tuple[int, ...]], torch.Tensor]] = Registry("noise field method")


@NOISE_FIELDS.register("generator")
def _generator_noise(keys: torch.Tensor, shape: Tuple[int, ...]) -> torch.Tensor:
    n = keys.shape[0]
    gen = torch.Generator(device="cpu")
    out = torch.empty((n, *shape), dtype=torch.float32)
    for i, k in enumerate(keys.tolist()):
        gen.manual_seed(int(k))
        out[i] = torch.randn(shape, generator=gen)
    return out.to(keys.device)


@NOISE_FIELDS.register("hash")
def _hash_noise(keys: torch.Tensor, shape: Tuple[int, ...]) -> torch.Tensor:
    n = keys.shape[0]
    return AugmentStream.normal_pairs(keys.view(n, 1), math.prod(shape)).view(n, *shape)


def noise_field(keys: torch.Tensor, shape: Tuple[int, ...], method: str = "auto") -> torch.Tensor:
    """Standard normal noise ``(N, *shape)`` float32 on ``keys``' device, sample ``i`` a function of ``keys[i]``
    only. ``method`` names an entry of :data:`NOISE_FIELDS`; ``"auto"`` takes ``"generator"`` on the CPU
    and ``"hash"`` elsewhere.

    Example:
        >>> z = noise_field(torch.tensor([1, 2]), (3, 4))
        >>> z.shape, torch.equal(noise_field(torch.tensor([2]), (3, 4))[0], z[1])
        (torch.Size([2, 3, 4]), True)
    """
    if method == "auto":
        method = "generator" if keys.device.type == "cpu" else "hash"
    return NOISE_FIELDS.get(method)(keys, shape)
