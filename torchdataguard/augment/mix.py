"""MixUp and CutMix: two rows of a batch blended, with per-sample weights and soft labels.

Both stages share one ``forward`` (in their base class, not overridden): find the inputs and turn the
labels into soft labels, ``draw`` the per-sample parameters from the stage's stream, mix each row with its
neighbour (a weighted sum for MixUp, a pasted box for CutMix), mix the labels by the same weights, count.
A row's parameters depend only on its place in the stream. They refuse batches that carry privacy units
(``tdg_unit_ids``): mixing rows of two units would make one row depend on both.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError, GuardInputError
from .base import (AugmentStage, check_images, check_probability, compute_dtype, restore_dtype, shape_of,
                   split_images, where_rows)
from .multiplicity import UNIT_IDS_KEY
from .streams import host_to_device, uniform_np

__all__ = ["CutMix", "MixUp"]


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
    _rank4: ClassVar[bool] = False  # whether the inputs must be images (N, C, H, W)

    def __init__(self, *, alpha: float, p: float, num_classes: Optional[int], key: str, label_key: str,
                 seed: Optional[int]) -> None:
        problems: List[str] = []
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.01 <= alpha <= 100:
            problems.append(f"alpha={alpha!r}: expected a number in [0.01, 100] (Beta(alpha, alpha))")
        check_probability("p", p, problems)
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

    def beta_np(self, u: np.ndarray) -> np.ndarray:
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
        x, rebuild, entries = split_images(batch, self.key, self._who)
        if isinstance(batch, Mapping) and UNIT_IDS_KEY in batch:
            raise GuardInputError(
                f"{self._who}: the batch carries {UNIT_IDS_KEY!r} (privacy units from Multiplicity); mixing rows of "
                f"different units would make one row depend on two units and break the DP guarantee. Put "
                f"{self._who} before Multiplicity, or drop it from a DP run")
        name = f"batch[{self.key!r}]" if isinstance(batch, Mapping) else "the images"
        check_images(x, self._who, name, rank4=rank4)
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
            raise GuardInputError(f"{self._who}: {lname} is {shape_of(y)}; expected a tensor of shape ({n},) or ({n}, classes)")
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

    def counters(self) -> Dict[str, int]:
        out = super().counters()
        out.setdefault(f"augment/{self.stage_name}/examples", 0)
        return out

    def _draw_for(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The subclass's ``draw`` for the rows of ``x`` (advances the stream by ``len(x)``)."""
        raise NotImplementedError

    def _mix_inputs(self, x: torch.Tensor, prm: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Each row of ``x`` mixed with its neighbour ``i - 1`` by ``prm`` (in ``x``'s dtype)."""
        raise NotImplementedError

    def forward(self, batch: Any) -> Any:
        x, soft, ignored, rebuild = self._inputs(batch, rank4=self._rank4)
        prm = self._draw_for(x)
        out_x = self._mix_inputs(x, prm)
        sf = soft.to(torch.promote_types(soft.dtype, torch.float32))
        ly = prm["lam"].to(sf.dtype).view(-1, *([1] * (sf.dim() - 1)))
        out_y = where_rows(prm["gate"], ly * sf + (1 - ly) * sf.roll(1, 0), sf)
        self.add_count(f"augment/{self.stage_name}/examples", x.shape[0])
        self.add_device_counts([prm["gate"].sum(), ignored])
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

    def draw(self, n: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """Per-sample ``gate`` (bool) and ``lam`` (1.0 where the gate is off); advances the stream by ``n``."""
        u = uniform_np(self.next_keys(n, 2))  # on the host: no device kernels
        gate = u[:, 0] < self.p
        lam = np.where(gate, self.beta_np(u[:, 1]), 1.0)
        return {"gate": host_to_device(gate, device), "lam": host_to_device(lam.astype(np.float32), device)}

    def _draw_for(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return self.draw(x.shape[0], x.device)

    def _mix_inputs(self, x: torch.Tensor, prm: Mapping[str, torch.Tensor]) -> torch.Tensor:
        cdt = compute_dtype(x.dtype)
        xf = x.to(cdt)
        lam = prm["lam"].to(cdt).view(-1, *([1] * (x.dim() - 1)))
        mixed = lam * xf + (1 - lam) * xf.roll(1, 0)
        return restore_dtype(where_rows(prm["gate"], mixed, xf), x.dtype)


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
    _rank4: ClassVar[bool] = True

    def __init__(self, *, alpha: float = 1.0, p: float = 1.0, num_classes: Optional[int] = None,
                 key: str = "pixel_values", label_key: str = "labels", seed: Optional[int] = None) -> None:
        super().__init__(alpha=alpha, p=p, num_classes=num_classes, key=key, label_key=label_key, seed=seed)

    def draw(self, n: int, height: int, width: int, device: torch.device | str = "cpu") -> Dict[str, torch.Tensor]:
        """Per-sample ``gate``, box ``top, left, bottom, right`` (pixels, end exclusive) and the label
        weight ``lam`` (share of the sample's own pixels kept); advances the stream by ``n``."""
        u = uniform_np(self.next_keys(n, 4))  # on the host: no device kernels
        gate = u[:, 0] < self.p
        r = np.sqrt(1.0 - self.beta_np(u[:, 1]))
        bh, bw = np.floor(height * r), np.floor(width * r)
        cy, cx = np.floor(u[:, 2] * height), np.floor(u[:, 3] * width)
        top = np.where(gate, np.clip(cy - np.floor(bh / 2), 0, height), 0.0)
        bottom = np.where(gate, np.clip(cy + np.ceil(bh / 2), 0, height), 0.0)
        left = np.where(gate, np.clip(cx - np.floor(bw / 2), 0, width), 0.0)
        right = np.where(gate, np.clip(cx + np.ceil(bw / 2), 0, width), 0.0)
        kept = 1.0 - (bottom - top) * (right - left) / float(height * width)
        f = host_to_device(np.stack([top, bottom, left, right, kept], 1).astype(np.float32), device)
        return {"gate": host_to_device(gate, device), "top": f[:, 0], "bottom": f[:, 1], "left": f[:, 2],
                "right": f[:, 3], "lam": f[:, 4]}

    def _draw_for(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        n, _, h, w = x.shape
        return self.draw(n, h, w, x.device)

    def _mix_inputs(self, x: torch.Tensor, prm: Mapping[str, torch.Tensor]) -> torch.Tensor:
        h, w = x.shape[-2:]
        rows = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
        cols = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
        box = ((rows >= prm["top"].view(-1, 1, 1)) & (rows < prm["bottom"].view(-1, 1, 1))
               & (cols >= prm["left"].view(-1, 1, 1)) & (cols < prm["right"].view(-1, 1, 1)))
        return torch.where(box.unsqueeze(1), x.roll(1, 0), x)
