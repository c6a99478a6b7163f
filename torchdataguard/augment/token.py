"""Token-level augmentation of collated batches on the training device (:class:`TokenAugment`).

The stage masks, replaces, deletes (with re-padding) and span-masks tokens of ``input_ids`` while keeping
``attention_mask``, ``labels`` and the other per-token tensors aligned. Every draw comes from the stage's
counter-based stream (:mod:`torchdataguard.augment.streams`), keyed by the example's number in the stream
and the token's position among the attended tokens, so an example is augmented the same way alone or in a
batch, on any device. Its settings are :class:`~torchdataguard.augment.config.TokenAugmentConfig`.

How ``labels`` are read (per token or per example) is chosen by ``label_mode`` through :data:`LABEL_MODES`,
and where rows are re-padded after deletions by ``padding_side`` through :data:`PADDING_SIDES`.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError, GuardInputError
from ..registry import Registry
from .base import AugmentStage, rebuild_mapping, shape_of
from .config import TokenAugmentConfig
from .streams import AugmentStream, host_to_device, to_unit, uniform_np

__all__ = ["LABEL_MODES", "PADDING_SIDES", "TokenAugment"]

# ---------------------------------------------------------------------------------------------------
# label modes and padding sides (chosen by name from the settings)
# ---------------------------------------------------------------------------------------------------

#: ``label_mode`` -> ``(labels, ids, input_key) -> "token" | "sequence"``: how ``batch["labels"]`` is read
#: (one label per token, moved with deletions; or one per example, untouched). Raises on a shape the mode
#: cannot take.
LABEL_MODES: Registry[Callable[[torch.Tensor, torch.Tensor, str], str]] = Registry("TokenAugment label_mode")

#: ``padding_side`` -> ``(valid, n) -> (n,) bool``: which rows are re-padded on the left after deletions,
#: from the attended-token mask ``valid`` ``(n, L)``.
PADDING_SIDES: Registry[Callable[[torch.Tensor, int], torch.Tensor]] = Registry("TokenAugment padding_side")


def _per_example_labels(labels: torch.Tensor, ids: torch.Tensor, key: str) -> str:
    n = ids.shape[0]
    if labels.dim() in (1, 2) and labels.shape[0] == n:
        return "sequence"
    raise GuardInputError(f"TokenAugment: batch['labels'] has shape {tuple(labels.shape)}; expected "
                          f"{tuple(ids.shape)} (one label per token), ({n},) or ({n}, C) (per example)")


@LABEL_MODES.register("token")
def _token_labels(labels: torch.Tensor, ids: torch.Tensor, key: str) -> str:
    if tuple(labels.shape) != tuple(ids.shape):
        raise GuardInputError(f"TokenAugment: batch['labels'] has shape {tuple(labels.shape)}; with "
                              f"label_mode='token' expected the shape of batch[{key!r}], {tuple(ids.shape)}")
    return "token"


@LABEL_MODES.register("auto")
def _auto_labels(labels: torch.Tensor, ids: torch.Tensor, key: str) -> str:
    return "token" if tuple(labels.shape) == tuple(ids.shape) else _per_example_labels(labels, ids, key)


LABEL_MODES.register("sequence")(_per_example_labels)


@PADDING_SIDES.register("auto")
def _pad_auto(valid: torch.Tensor, n: int) -> torch.Tensor:
    # left padding when some row starts with padding (decided on the device: no host sync)
    return (~valid[:, 0] & valid.any(1)).any().expand(n)


@PADDING_SIDES.register("left")
def _pad_left(valid: torch.Tensor, n: int) -> torch.Tensor:
    return torch.full((n,), True, dtype=torch.bool, device=valid.device)


@PADDING_SIDES.register("right")
def _pad_right(valid: torch.Tensor, n: int) -> torch.Tensor:
    return torch.full((n,), False, dtype=torch.bool, device=valid.device)


def _span_table(mean: float, span_max: int) -> Tuple[List[float], float]:
    """CDF (as a list) of a geometric span length with the given mean, truncated to [1, span_max]."""
    if mean <= 1.0 + 1e-9:
        return [1.0] * span_max, 1.0
    # find q (success probability) so that the truncated geometric has the requested mean (bisection)
    def tmean(q: float) -> float:
        w = [q * (1 - q) ** (k - 1) for k in range(1, span_max + 1)]
        z = sum(w)
        return sum(k * x for k, x in zip(range(1, span_max + 1), w)) / z

    lo, hi = 1e-6, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if tmean(mid) > mean:
            lo = mid
        else:
            hi = mid
    q = (lo + hi) / 2
    w = [q * (1 - q) ** (k - 1) for k in range(1, span_max + 1)]
    z = sum(w)
    cdf, acc = [], 0.0
    for x in w:
        acc += x / z
        cdf.append(acc)
    cdf[-1] = 1.0
    return cdf, tmean(q)


class TokenAugment(AugmentStage):
    """Mask, replace, delete and span-mask tokens of a collated batch, on the batch's device.

    Works on a mapping of tensors (``input_ids`` ``(N, L)`` and whatever the collator added:
    ``attention_mask``, ``labels``, ``token_type_ids``, ``special_tokens_mask`` ...) and on the keyword
    arguments of a model's forward (non-tensor values pass through). Returns a new mapping; the input is
    never modified.

    What it guarantees:

    * only *eligible* tokens change: attended (``attention_mask == 1``, or ``!= pad_token_id`` without a
      mask), not in ``special_ids`` and not flagged by a ``special_tokens_mask`` in the batch;
    * each eligible token gets at most one of delete / mask / replace, drawn per token; spans mask further
      tokens; every draw is keyed by the example's number in the stream and the token's position among
      the attended tokens, so an example is augmented the same way alone or in a padded batch (left or
      right padding);
    * deletion removes the token from every per-token tensor (``labels`` of token classification or causal
      LM included), packs the row and re-pads it to the same length on the batch's padding side (so
      shapes stay static); at least one eligible token per row survives; per-example labels (sequence
      classification) are untouched;
    * counters ``augment/token/{examples,augmented,tokens,masked,replaced,deleted,span_masked}``.

    Args:
        seed: seeds the stream (``None``: drawn from torch's global RNG, so ``torch.manual_seed`` fixes it).
        **settings: see :class:`TokenAugmentConfig`.

    Example:
        >>> aug = TokenAugment(mask_rate=0.5, mask_token_id=103, pad_token_id=0, special_ids=[101, 102], seed=0)
        >>> batch = {"input_ids": torch.tensor([[101, 7, 8, 9, 102, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0]])}
        >>> out = aug(batch)
        >>> out["input_ids"][0, [0, 4, 5]].tolist()   # [CLS], [SEP] and padding untouched
        [101, 102, 0]
        >>> aug.counters()["augment/token/examples"]
        1
    """

    counter_names: ClassVar[Tuple[str, ...]] = (
        "augment/token/augmented", "augment/token/tokens", "augment/token/masked", "augment/token/replaced",
        "augment/token/deleted", "augment/token/span_masked")
    stage_name: ClassVar[str] = "token_augment"

    def __init__(self, *, seed: Optional[int] = None, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(TokenAugmentConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"TokenAugment got unknown option(s) {unknown}; allowed: "
                              f"{sorted(TokenAugmentConfig.__dataclass_fields__)} and seed")
        super().__init__(seed=seed)
        self.settings = TokenAugmentConfig(**settings)
        s = self.settings
        self._span_cdf, self._span_mean = _span_table(float(s.span_mean), s.span_max)
        self._span_start = min(1.0, s.span_rate / self._span_mean) if s.span_rate > 0 else 0.0
        self._cache: Dict[Any, torch.Tensor] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, *, seed: Optional[int] = None, **settings: Any) -> "TokenAugment":
        """Build from a Hugging Face tokenizer: mask, pad, vocabulary size and special ids come from it.

        Example:
            >>> class Tok:  # anything with the tokenizer attributes
            ...     mask_token_id, pad_token_id, all_special_ids = 4, 0, [0, 1, 2, 3, 4]
            ...     def __len__(self): return 100
            >>> TokenAugment.from_tokenizer(Tok(), mask_rate=0.15, seed=0).settings.vocab_size
            100
        """
        opts: Dict[str, Any] = {
            "mask_token_id": getattr(tokenizer, "mask_token_id", None),
            "pad_token_id": getattr(tokenizer, "pad_token_id", None),
            "vocab_size": len(tokenizer),
            "special_ids": tuple(getattr(tokenizer, "all_special_ids", ()) or ()),
        }
        if getattr(tokenizer, "padding_side", None) in ("left", "right"):
            opts["padding_side"] = tokenizer.padding_side
        opts.update(settings)
        return cls(seed=seed, **opts)

    # -- reporting ---------------------------------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        s = self.settings
        return {"mask_rate": s.mask_rate, "replace_rate": s.replace_rate, "delete_rate": s.delete_rate,
                "span_rate": s.span_rate, "span_mean": s.span_mean, "span_max": s.span_max, "p": s.p,
                "mask_with": s.mask_with, "label_mode": s.label_mode, "input_key": s.input_key,
                "padding_side": s.padding_side,
                "n_special_ids": len(s.special_ids), "seed": self.seed}

    def decision_settings(self) -> Dict[str, Any]:
        """Every setting (token ids and pad values included), without the seed (restored by the state)."""
        return asdict(self.settings)

    def counters(self) -> Dict[str, int]:
        out = super().counters()
        out.setdefault("augment/token/examples", 0)
        return out

    # -- helpers -----------------------------------------------------------------------------------------
    def _tensor_on(self, name: str, device: torch.device, build) -> torch.Tensor:
        key = (name, str(device))
        t = self._cache.get(key)
        if t is None:
            t = build().to(device)
            self._cache[key] = t
        return t

    def _allowed_ids(self, device: torch.device) -> torch.Tensor:
        s = self.settings

        def build() -> torch.Tensor:
            keep = torch.ones(int(s.vocab_size), dtype=torch.bool)
            sp = [i for i in s.special_ids if i < s.vocab_size]
            if sp:
                keep[torch.tensor(sp)] = False
            return torch.nonzero(keep).flatten()

        return self._tensor_on("allowed", device, build)

    def _validate(self, batch: Any) -> Tuple[torch.Tensor, Optional[torch.Tensor], str]:
        s = self.settings
        key = s.input_key
        if not isinstance(batch, Mapping):
            raise GuardInputError(f"TokenAugment expects a mapping of tensors (a collated batch or a model's "
                                  f"keyword arguments); got {type(batch).__name__}")
        ids = batch.get(key)
        if not isinstance(ids, torch.Tensor):
            raise GuardInputError(f"TokenAugment: batch[{key!r}] is {shape_of(ids) if key in batch else 'missing'}; "
                                  f"expected a 2-D integer tensor (batch, sequence). Batch keys: {sorted(map(str, batch))}. "
                                  f"Collate with a padding collator first, or set input_key=")
        if ids.dim() != 2 or ids.dtype in (torch.bool,) or ids.dtype.is_floating_point or ids.dtype.is_complex:
            raise GuardInputError(f"TokenAugment: batch[{key!r}] has shape {tuple(ids.shape)} and dtype {ids.dtype}; "
                                  f"expected a 2-D integer tensor (batch, sequence), e.g. from DataCollatorWithPadding")
        if ids.shape[0] == 0 or ids.shape[1] == 0:
            raise GuardInputError(f"TokenAugment: batch[{key!r}] has shape {tuple(ids.shape)}: the batch is empty; "
                                  f"expected at least one example with at least one token")
        am = batch.get("attention_mask")
        if am is not None:
            if not isinstance(am, torch.Tensor) or tuple(am.shape) != tuple(ids.shape):
                raise GuardInputError(f"TokenAugment: batch['attention_mask'] has shape {shape_of(am)}; expected the "
                                      f"shape of batch[{key!r}], {tuple(ids.shape)}")
            if am.dtype.is_floating_point or am.dtype.is_complex:
                raise GuardInputError(f"TokenAugment: batch['attention_mask'] has dtype {am.dtype}; expected an "
                                      f"integer or bool 2-D mask of 0/1 (a 4-D float mask is not supported)")
        elif s.pad_token_id is None:
            raise GuardInputError("TokenAugment: the batch has no 'attention_mask' and pad_token_id is not set, so "
                                  "padding cannot be told apart from text; pass pad_token_id= or keep the mask")
        for k in ("special_tokens_mask", "token_type_ids"):
            t = batch.get(k)
            if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(ids.shape)):
                raise GuardInputError(f"TokenAugment: batch[{k!r}] has shape {shape_of(t)}; expected {tuple(ids.shape)}")
        for k, v in batch.items():
            if isinstance(v, torch.Tensor) and v.device != ids.device:
                raise GuardInputError(f"TokenAugment: batch[{k!r}] is on {v.device} but batch[{key!r}] is on "
                                      f"{ids.device}; move the whole batch to one device first")
        mode = "none"
        labels = batch.get("labels")
        if labels is not None:
            if not isinstance(labels, torch.Tensor):
                raise GuardInputError(f"TokenAugment: batch['labels'] is a {type(labels).__name__}; expected a tensor")
            mode = LABEL_MODES.get(s.label_mode)(labels, ids, key)
        return ids, am, mode

    # -- the work ----------------------------------------------------------------------------------------
    def forward(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        s = self.settings
        ids, am, label_mode = self._validate(batch)
        n, length = ids.shape
        dev = ids.device
        keys_np = self.next_keys(n, 5)  # gate, op, random id, span start, span length
        keys = host_to_device(keys_np.astype(np.int64), dev)
        self.add_count("augment/token/examples", n)

        valid = am.bool() if am is not None else ids != s.pad_token_id
        elig = valid
        if s.special_ids:
            sp = self._tensor_on("special", dev, lambda: torch.tensor(s.special_ids, dtype=ids.dtype))
            elig = elig & ~torch.isin(ids, sp.to(ids.dtype))
        stm = batch.get("special_tokens_mask")
        if isinstance(stm, torch.Tensor):
            elig = elig & ~stm.bool()
        if s.p < 1.0:
            gate = host_to_device(uniform_np(keys_np[:, 0]) < s.p, dev)
            elig = elig & gate[:, None]
        pos = valid.to(torch.int64).cumsum(1) - 1  # rank among attended tokens: padding-side independent

        false = torch.zeros_like(elig)
        delete = mask = replace = span = false
        d, m, r = s.delete_rate, s.mask_rate, s.replace_rate
        # one fused hash for every per-token draw: (N, 4, L) -> op choice, random id, span start, span length
        bits = AugmentStream.bits(keys[:, 1:5, None], pos[:, None, :])
        units = to_unit(bits)
        if d + m + r > 0:
            u = units[:, 0]
            if d > 0:
                delete = elig & (u < d)
            if m > 0:
                mask = elig & (u >= d) & (u < d + m)
            if r > 0:
                replace = elig & (u >= d + m) & (u < d + m + r)
        if self._span_start > 0:
            starts = elig & (units[:, 2] < self._span_start)
            cdf = self._tensor_on("span_cdf", dev, lambda: torch.tensor(self._span_cdf, dtype=torch.float32))
            lens = torch.searchsorted(cdf, units[:, 3].contiguous(), right=True).clamp_(max=s.span_max - 1) + 1
            idx = torch.arange(length, device=dev, dtype=torch.int64).expand(n, length)
            ends = torch.where(starts, idx + lens, 0)
            covered = torch.cummax(ends, dim=1).values > idx
            span = covered & elig & ~(delete | mask | replace)
        if d > 0:
            # never delete every eligible token of a row: keep its first eligible token
            gone = ~(elig & ~delete).any(1) & elig.any(1)
            first = elig & (elig.to(torch.int32).cumsum(1) == 1)
            delete = delete & ~(first & gone[:, None])

        new_ids = ids
        use_random_mask = s.mask_with == "random"
        if r > 0 or ((m > 0 or self._span_start > 0) and use_random_mask):
            allowed = self._allowed_ids(dev)
            # uniform index into the allowed ids: (32-bit hash * count) >> 32, no division
            rand_ids = torch.take(allowed, (bits[:, 1] * allowed.numel()) >> 32).to(ids.dtype)
            new_ids = torch.where(replace, rand_ids, new_ids)
            if use_random_mask:
                new_ids = torch.where(mask | span, rand_ids, new_ids)
        if not use_random_mask and (m > 0 or self._span_start > 0):
            new_ids = torch.where(mask | span, int(s.mask_token_id), new_ids)

        out: Dict[str, Any] = dict(batch.items())
        out[s.input_key] = new_ids
        if d > 0:
            out = self._delete(out, batch, delete, valid, label_mode, ids)
        changed = (delete | mask | replace | span).any(1)
        self.add_device_counts([changed.sum(), elig.sum(), mask.sum(), replace.sum(), delete.sum(), span.sum()])
        return rebuild_mapping(batch, out)

    def _delete(self, out: Dict[str, Any], batch: Mapping[str, Any], delete: torch.Tensor, valid: torch.Tensor,
                label_mode: str, ids: torch.Tensor) -> Dict[str, Any]:
        s = self.settings
        n, length = delete.shape
        idx = torch.arange(length, device=delete.device, dtype=torch.int64).expand(n, length)
        left = PADDING_SIDES.get(s.padding_side)(valid, n)
        key = torch.where(delete, torch.where(left[:, None], idx - length, idx + length), idx)
        order = torch.argsort(key, dim=1, stable=True)
        moved = torch.gather(delete, 1, order)
        defaults = {s.input_key: s.pad_token_id, "attention_mask": 0, "labels": -100, "special_tokens_mask": 1}
        defaults.update(s.pad_values)
        for k, v in batch.items():
            if not isinstance(v, torch.Tensor) or v.dim() < 2 or tuple(v.shape[:2]) != (n, length):
                continue
            if k == "labels" and label_mode != "token":
                continue
            src = out[k]
            o = order.view(n, length, *([1] * (src.dim() - 2))).expand_as(src)
            g = torch.gather(src, 1, o)
            mv = moved.view(n, length, *([1] * (src.dim() - 2)))
            fill = defaults.get(k, 0)
            out[k] = torch.where(mv, torch.full_like(g, fill), g) if g.dtype == torch.bool else g.masked_fill(mv, fill)
        return out
