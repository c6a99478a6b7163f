"""The seeded per-sample random streams every batch augmentation draws from.

Why a counter-based stream rather than drawing from a ``torch.Generator``: a generator's output depends on
how the draws are split into kernel calls (on CUDA the Philox offset advances per launch), so drawing for
a batch of 32 and for 32 batches of 1 gives different numbers, and a generator is tied to one device.
Here every random number is a pure function of the seed, the example's number in the stream and its
position, computed with integer hashing (per-example parameters on the host with numpy, per-token and
per-pixel draws in torch on the batch's device): the same example gets the same augmentation whether it
comes alone or in a batch, on the CPU or on a GPU, and resuming needs two integers (the seed and the
number of examples seen), saved as int64 tensors.

The hash (:func:`fmix`) exists three times with the same arithmetic - on Python ints (:func:`fmix_int`),
on numpy arrays (:func:`fmix_np`, the host) and on torch tensors (:func:`fmix`, any device) - and the
tests check that the three agree.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

__all__ = [
    "AugmentStream",
    "fmix",
    "fmix_int",
    "fmix_np",
    "host_to_device",
    "to_unit",
    "uniform_np",
    "unit_np",
    "worker_tag",
]

_M32 = 0xFFFFFFFF
# Multipliers below 2**31, so that a 32-bit value times one fits in a signed int64 (no overflow anywhere,
# identical results on every device). The pair comes from the published "hash prospector" search for
# 32-bit integer hashes (x ^= x >> 16; x *= A; x ^= x >> 15; x *= B; x ^= x >> 15).
_A = 0x21F0AAAD
_B = 0x735A2D97
_POS = 0x7FEB352D  # odd, < 2**31: spreads positions before hashing
_TWO_M24 = 1.0 / (1 << 24)
_M32_NP = np.uint64(_M32)


def fmix_int(x: int) -> int:
    """The 32-bit hash on a Python int (same arithmetic as :func:`fmix`).

    Example:
        >>> fmix_int(0), fmix_int(1) == fmix_int(1 + 2**32)   # only the low 32 bits count
        (0, True)
    """
    x &= _M32
    x ^= x >> 16
    x = (x * _A) & _M32
    x ^= x >> 15
    x = (x * _B) & _M32
    return x ^ (x >> 15)


def fmix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash on int64 tensors holding values in [0, 2**32) (runs on any device).

    Example:
        >>> int(fmix(torch.tensor([7]))[0]) == fmix_int(7)
        True
    """
    x = x ^ (x >> 16)
    x = (x * _A) & _M32
    x = x ^ (x >> 15)
    x = (x * _B) & _M32
    return x ^ (x >> 15)


def fmix_np(x: np.ndarray) -> np.ndarray:
    """The same 32-bit hash on numpy uint64 arrays (values in [0, 2**32)), for draws on the host.

    Example:
        >>> int(fmix_np(np.array([7], dtype=np.uint64))[0]) == fmix_int(7)
        True
    """
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(_A)) & _M32_NP
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(_B)) & _M32_NP
    return x ^ (x >> np.uint64(15))


def unit_np(h: np.ndarray) -> np.ndarray:
    """32-bit hashes (numpy uint64) to float64 uniforms in [0, 1): the same 24-bit values as :func:`to_unit`.

    Example:
        >>> unit_np(np.array([0, 2**32 - 1], dtype=np.uint64)).tolist()
        [0.0, 0.9999999403953552]
    """
    return (h >> np.uint64(8)).astype(np.float64) * _TWO_M24


def uniform_np(keys: np.ndarray) -> np.ndarray:
    """One float64 uniform in [0, 1) per key (``unit_np(fmix_np(keys))``): per-sample draws on the host.

    Example:
        >>> u = uniform_np(AugmentStream(seed=1).keys_np(4, 3))
        >>> u.shape, bool(((u >= 0) & (u < 1)).all())
        ((4, 3), True)
    """
    return unit_np(fmix_np(keys))


def to_unit(h: torch.Tensor) -> torch.Tensor:
    """32-bit hashes (int64 tensor) to float32 uniforms in [0, 1) (24 bits, exact in float32).

    Example:
        >>> to_unit(torch.tensor([0, 2**31])).tolist()
        [0.0, 0.5]
    """
    return (h >> 8).to(torch.float32) * _TWO_M24


def host_to_device(a: np.ndarray, device: torch.device | str, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """A host array as a tensor on ``device``, optionally cast to ``dtype`` (one copy; none on the CPU).

    Example:
        >>> host_to_device(np.arange(3), "cpu", torch.float32).tolist()
        [0.0, 1.0, 2.0]
    """
    t = torch.from_numpy(np.ascontiguousarray(a))
    if dtype is not None:
        t = t.to(dtype)
    dev = torch.device(device)
    return t if dev.type == "cpu" else t.to(dev)


def worker_tag() -> int:
    """0 in the main process, ``worker id + 1`` in a DataLoader worker: keys the stream per worker.

    Example:
        >>> worker_tag()
        0
    """
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return 0 if info is None else int(info.id) + 1


class AugmentStream:
    """Counter-based random numbers: every value is a hash of (seed, example number, draw, position).

    ``keys(n, draws, device)`` gives, for the next ``n`` examples of the stream, one 32-bit key per
    draw; :meth:`bits` / :meth:`uniform` / :meth:`normal_pairs` expand a key over positions. Nothing is
    random across calls except through the example number, so batched and one-by-one draws agree.

    Example:
        >>> s = AugmentStream(seed=7)
        >>> batched = s.keys(3, 2, "cpu")          # examples 0, 1, 2; two draws each
        >>> t = AugmentStream(seed=7); t.advance(2)
        >>> bool((t.keys(1, 2, "cpu")[0] == batched[2]).all())   # example 2 alone: same keys
        True
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.offset = 0

    def base(self, tag: int = 0) -> int:
        """The stream's root key for a worker ``tag`` (0 in the main process)."""
        lo, hi = self.seed & _M32, (self.seed >> 32) & _M32
        return fmix_int(fmix_int(fmix_int(lo ^ 0x5BD1E995) ^ hi) ^ fmix_int(tag + 0x27D4EB2F))

    def keys_np(self, n: int, draws: int, tag: int = 0) -> np.ndarray:
        """uint64 keys (values below 2**32) of shape ``(n, draws)`` for examples ``offset .. offset + n - 1``,
        computed on the host with numpy (microseconds, no device kernels)."""
        s = np.arange(self.offset, self.offset + n, dtype=np.uint64)
        k = fmix_np(np.uint64(self.base(tag)) ^ (s & _M32_NP))
        k = fmix_np(k ^ (s >> np.uint64(32)))
        d = (np.arange(1, draws + 1, dtype=np.uint64) * np.uint64(0x3C6EF372)) & _M32_NP
        return fmix_np(k[:, None] ^ d[None, :])

    def keys(self, n: int, draws: int, device: torch.device | str, tag: int = 0) -> torch.Tensor:
        """:meth:`keys_np` as an int64 tensor on ``device`` (one host-to-device copy)."""
        return host_to_device(self.keys_np(n, draws, tag).astype(np.int64), device)

    def advance(self, n: int) -> None:
        """Move the stream ``n`` examples on."""
        self.offset += int(n)

    @staticmethod
    def bits(key: torch.Tensor, pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        """32-bit hashes of ``key`` (broadcast) at integer positions ``pos``."""
        if pos is None:
            return fmix(key)
        return fmix((key + pos * _POS) & _M32)

    @classmethod
    def uniform(cls, key: torch.Tensor, pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        """float32 uniforms in [0, 1)."""
        return to_unit(cls.bits(key, pos))

    @classmethod
    def normal_pairs(cls, key: torch.Tensor, count: int) -> torch.Tensor:
        """``(rows, count)`` standard normals for keys ``(rows, 1)``: positions ``0 .. count - 1``.

        One hash gives two values (the cosine and sine halves of Box-Muller, 16 bits each, so |z| < 4.8);
        value ``j`` depends only on the key, ``j`` and ``count``.
        """
        half = (count + 1) // 2
        pos = torch.arange(half, device=key.device, dtype=torch.int64).view(1, half)
        h = cls.bits(key, pos)
        r = torch.sqrt(-2.0 * torch.log(((h >> 16).to(torch.float32) + 0.5) * (1.0 / 65536)))
        t = (h & 0xFFFF).to(torch.float32) * (2.0 * math.pi / 65536)
        return torch.cat([r * torch.cos(t), r * torch.sin(t)], dim=1)[:, :count]
