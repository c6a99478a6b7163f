"""Settings of the batch augmentation stages (:class:`TokenAugmentConfig`, :class:`ImageAugmentConfig`).

Plain dataclasses whose ``__post_init__`` checks every field and raises one
:class:`~torchdataguard.errors.ConfigError` listing all the problems. The stages build them from their
keyword arguments (``TokenAugment(mask_rate=0.15, ...)`` builds a ``TokenAugmentConfig``) and keep them as
``stage.settings``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple

from ..errors import ConfigError
from .base import check_probability

__all__ = ["ImageAugmentConfig", "TokenAugmentConfig"]

_UNIT = "a float in [0, 1]"


@dataclass
class TokenAugmentConfig:
    """Settings of :class:`~torchdataguard.augment.TokenAugment` (rates are per eligible token unless said
    otherwise).

    Attributes:
        mask_rate: share of eligible tokens replaced by the mask token (or a random token, see
            ``mask_with``).
        replace_rate: share of eligible tokens replaced by a random token of the vocabulary.
        delete_rate: share of eligible tokens deleted; the row is re-packed and re-padded to its length.
        span_rate: about this share of eligible tokens masked in contiguous spans (SpanBERT style).
        span_mean: mean span length (geometric distribution, truncated at ``span_max``).
        span_max: longest span.
        p: probability that an example is augmented at all (drawn per example).
        mask_with: ``"mask_token"`` (``mask_token_id``) or ``"random"`` (a random vocabulary token).
        mask_token_id / pad_token_id / vocab_size: from the tokenizer (see
            :meth:`~torchdataguard.augment.TokenAugment.from_tokenizer`).
        special_ids: token ids never touched (``tokenizer.all_special_ids``).
        label_mode: ``"auto"`` (labels shaped like ``input_ids`` are per token, else per example),
            ``"token"`` or ``"sequence"``.
        input_key: the batch key holding token ids.
        padding_side: where re-padding goes after deletions; ``"auto"``: left when some row of the batch
            starts with padding, else right (``from_tokenizer`` takes the tokenizer's ``padding_side``).
        pad_values: fill value of re-padded slots per batch key (defaults: ``input_ids`` -> ``pad_token_id``,
            ``labels`` -> -100, ``special_tokens_mask`` -> 1, anything else -> 0).
    """

    mask_rate: float = 0.0
    replace_rate: float = 0.0
    delete_rate: float = 0.0
    span_rate: float = 0.0
    span_mean: float = 3.0
    span_max: int = 10
    p: float = 1.0
    mask_with: Literal["mask_token", "random"] = "mask_token"
    mask_token_id: Optional[int] = None
    pad_token_id: Optional[int] = None
    vocab_size: Optional[int] = None
    special_ids: Tuple[int, ...] = ()
    label_mode: Literal["auto", "token", "sequence"] = "auto"
    input_key: str = "input_ids"
    padding_side: Literal["auto", "right", "left"] = "auto"
    pad_values: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: List[str] = []
        for name in ("mask_rate", "replace_rate", "delete_rate", "span_rate", "p"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                problems.append(f"{name}={v!r}: expected {_UNIT}")
            else:
                setattr(self, name, float(v))
        if not problems and self.mask_rate + self.replace_rate + self.delete_rate > 1.0:
            problems.append(f"mask_rate + replace_rate + delete_rate = "
                            f"{self.mask_rate + self.replace_rate + self.delete_rate:g}: expected at most 1 "
                            f"(each eligible token gets at most one of these)")
        if isinstance(self.span_max, bool) or not isinstance(self.span_max, int) or not 1 <= self.span_max <= 512:
            problems.append(f"span_max={self.span_max!r}: expected an integer in [1, 512]")
        elif (isinstance(self.span_mean, bool) or not isinstance(self.span_mean, (int, float))
              or not 1.0 <= float(self.span_mean) <= self.span_max):
            problems.append(f"span_mean={self.span_mean!r}: expected a number in [1, span_max={self.span_max}]")
        if self.mask_with not in ("mask_token", "random"):
            problems.append(f"mask_with={self.mask_with!r}: expected 'mask_token' or 'random'")
        if self.label_mode not in ("auto", "token", "sequence"):
            problems.append(f"label_mode={self.label_mode!r}: expected 'auto', 'token' or 'sequence'")
        for name in ("mask_token_id", "pad_token_id"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                problems.append(f"{name}={v!r}: expected a non-negative integer or None")
        if self.vocab_size is not None and (isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int)
                                            or self.vocab_size < 2):
            problems.append(f"vocab_size={self.vocab_size!r}: expected an integer >= 2 (len(tokenizer))")
        try:
            self.special_ids = tuple(sorted({int(i) for i in self.special_ids}))
        except (TypeError, ValueError):
            problems.append(f"special_ids={self.special_ids!r}: expected a sequence of integers")
        masking = self.mask_rate > 0 or self.span_rate > 0
        if masking and self.mask_with == "mask_token" and self.mask_token_id is None:
            problems.append("mask_rate/span_rate > 0 with mask_with='mask_token' needs mask_token_id "
                            "(tokenizer.mask_token_id); a tokenizer without a mask token (GPT-2) can use "
                            "mask_with='random'")
        needs_vocab = self.replace_rate > 0 or (masking and self.mask_with == "random")
        if needs_vocab and self.vocab_size is None:
            problems.append("replace_rate > 0 or mask_with='random' needs vocab_size (len(tokenizer))")
        if self.vocab_size is not None and not problems:
            allowed = self.vocab_size - sum(1 for i in self.special_ids if i < self.vocab_size)
            if needs_vocab and allowed < 1:
                problems.append(f"vocab_size={self.vocab_size} leaves no non-special token to sample")
        if self.mask_token_id is not None and self.vocab_size is not None and self.mask_token_id >= self.vocab_size:
            problems.append(f"mask_token_id={self.mask_token_id} is not below vocab_size={self.vocab_size}")
        if self.delete_rate > 0 and self.pad_token_id is None:
            problems.append("delete_rate > 0 needs pad_token_id (tokenizer.pad_token_id) to re-pad rows")
        if self.padding_side not in ("auto", "right", "left"):
            problems.append(f"padding_side={self.padding_side!r}: expected 'auto', 'right' or 'left'")
        if not isinstance(self.input_key, str) or not self.input_key:
            problems.append(f"input_key={self.input_key!r}: expected a non-empty string such as 'input_ids'")
        if not isinstance(self.pad_values, Mapping):
            problems.append(f"pad_values={self.pad_values!r}: expected a dict of batch key -> fill value")
        else:
            self.pad_values = dict(self.pad_values)
        if problems:
            raise ConfigError.collect(problems, "TokenAugment settings")


def _range(name: str, v: Any, lo: float, hi: float, problems: List[str], *, positive: bool = False) -> None:
    ok = (isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                            for x in v))
    if not ok or not (lo <= float(v[0]) <= float(v[1]) <= hi) or (positive and float(v[0]) <= 0):
        problems.append(f"{name}={v!r}: expected a pair (low, high) with {lo:g} {'<' if positive else '<='} low <= high <= {hi:g}")


@dataclass
class ImageAugmentConfig:
    """Settings of :class:`~torchdataguard.augment.ImageAugment`: each operation's probability (per sample) and
    ranges.

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
            check_probability(name, getattr(self, name), problems)
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
