"""Token-id shingles and the 64-bit mixer they and the MinHash signatures share (torch, any device).

Example:
    >>> import torch
    >>> h, d = token_shingle_hashes(torch.tensor([[1, 2, 3, 4, 5, 6]]), ngram=5)
    >>> d.tolist()
    [0, 0]
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

__all__ = ["SHINGLE_MUL", "mix64", "token_shingle_hashes"]

_U = np.uint64
#: odd multipliers of the k-th token of a shingle (shingle hash = sum of token hashes times these)
SHINGLE_MUL = [_U(0x9E3779B97F4A7C15), _U(0xC2B2AE3D27D4EB4F), _U(0x165667B19E3779F9), _U(0xD6E8FEB86659FD93),
                _U(0xFF51AFD7ED558CCD), _U(0xC4CEB9FE1A85EC53), _U(0x94D049BB133111EB), _U(0xBF58476D1CE4E5B9)]

_M1 = -0x40A7B892E31B1A47  # 0xBF58476D1CE4E5B9 as a signed int64
_M2 = -0x6B2FB644ECCEEE15  # 0x94D049BB133111EB as a signed int64


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 tensors."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic, any device)."""
    x = x ^ _srl(x, 30)
    x = x * _M1
    x = x ^ _srl(x, 27)
    x = x * _M2
    return x ^ _srl(x, 31)


def token_shingle_hashes(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         ngram: int = 5) -> Tuple[torch.Tensor, torch.Tensor]:
    """64-bit hashes of token-id ``ngram``-shingles, on the tensors' device.

    Padding (``attention_mask == 0``) is ignored; a sequence shorter than ``ngram`` tokens is one shingle.

    Example:
        >>> h, d = token_shingle_hashes(torch.tensor([[1, 2, 3, 4, 5, 6]]), ngram=5)
        >>> d.tolist()
        [0, 0]
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape [batch, seq], got {tuple(input_ids.shape)}")
    ids = input_ids.to(torch.int64)
    n, T = ids.shape
    dev = ids.device
    if attention_mask is None:
        mask = torch.ones_like(ids, dtype=torch.bool)
    else:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids "
                             f"shape {tuple(input_ids.shape)}")
        mask = attention_mask.to(torch.bool)
    th = mix64(ids * 0x9E3779B97F4A7C1 + 0x632BE59BD9B4E019)
    th = torch.where(mask, th, torch.zeros_like(th))
    lengths = mask.sum(1)
    muls = torch.from_numpy(np.array(SHINGLE_MUL, dtype=_U).view(np.int64)).to(dev)
    hs: List[torch.Tensor] = []
    ds: List[torch.Tensor] = []
    if T >= ngram:
        win = th.unfold(1, ngram, 1)  # [n, T-ngram+1, ngram]
        wm = mask.unfold(1, ngram, 1).all(-1)
        k = torch.arange(ngram, device=dev)
        acc = (win * muls[k % muls.numel()]).sum(-1) + k.sum()
        hs.append(acc[wm])
        ds.append(torch.nonzero(wm)[:, 0])
    short = lengths < ngram
    if bool(short.any()):
        k = torch.arange(T, device=dev)
        acc = (th[short] * muls[k % muls.numel()]).sum(-1) + lengths[short] * 0x632BE59BD9B4E019
        hs.append(mix64(acc))
        ds.append(torch.nonzero(short).flatten())
    return torch.cat(hs), torch.cat(ds)
