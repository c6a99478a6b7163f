"""Token-level augmentation on the training device, and the random stream every augmentation shares.

Two things live here:

* :class:`AugmentStream` and :class:`AugmentStage`, the machinery shared by every batch augmentation of
  :mod:`torchdataguard.augment` (token, image, MixUp/CutMix, multiplicity): a counter-based random
  stream keyed by ``(seed, example number, draw, position)`` and the counters / state / pickling rules.
* :class:`TokenAugment`, the batch stage that masks, replaces, deletes (with re-padding) and span-masks
  tokens of ``input_ids`` while keeping ``attention_mask``, ``labels`` and the other per-token tensors
  aligned.

Why a counter-based stream rather than drawing from a ``torch.Generator``: a generator's output depends on
how the draws are split into kernel calls (on CUDA the Philox offset advances per launch), so drawing for
a batch of 32 and for 32 batches of 1 gives different numbers, and a generator is tied to one device.
Here every random number is a pure function of the seed, the example's number in the stream and its
position, computed with integer hashing (per-example parameters on the host with numpy, per-token and
per-pixel draws in torch on the batch's device): the same example gets the same
augmentation whether it comes alone or in a batch, on the CPU or on a GPU, and resuming needs two integers
(the seed and the number of examples seen), saved as int64 tensors.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..core.stage import BatchStage
from ..errors import ConfigError, GuardInputError, StateError

__all__ = [
    "AugmentStage",
    "AugmentStream",
    "TokenAugment",
    "TokenAugmentSettings",
]

_M32 = 0xFFFFFFFF
# Multipliers below 2**31, so that a 32-bit value times one fits in a signed int64 (no overflow anywhere,
# identical results on every device). The pair comes from the published "hash prospector" search for
# 32-bit integer hashes (x ^= x >> 16; x *= A; x ^= x >> 15; x *= B; x ^= x >> 15).
_A = 0x21F0AAAD
_B = 0x735A2D97
_POS = 0x7FEB352D  # odd, < 2**31: spreads positions before hashing
_TWO_M24 = 1.0 / (1 << 24)


def _fmix_int(x: int) -> int:
    """The 32-bit hash on a Python int (same arithmetic as :func:`_fmix`)."""
    x &= _M32
    x ^= x >> 16
    x = (x * _A) & _M32
    x ^= x >> 15
    x = (x * _B) & _M32
    return x ^ (x >> 15)


def _fmix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash on int64 tensors holding values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = (x * _A) & _M32
    x = x ^ (x >> 15)
    x = (x * _B) & _M32
    return x ^ (x >> 15)


_M32_NP = np.uint64(_M32)


def _fmix_np(x: np.ndarray) -> np.ndarray:
    """The same 32-bit hash on numpy uint64 arrays (values in [0, 2**32))."""
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(_A)) & _M32_NP
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(_B)) & _M32_NP
    return x ^ (x >> np.uint64(15))


def _unit_np(h: np.ndarray) -> np.ndarray:
    """32-bit hashes to float64 uniforms in [0, 1) (the same 24-bit values as :func:`_to_unit`)."""
    return (h >> np.uint64(8)).astype(np.float64) * _TWO_M24


def _ship(a: np.ndarray, device: torch.device | str, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """A host array as a tensor on ``device`` (one copy; none on the CPU)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if dtype is not None:
        t = t.to(dtype)
    dev = torch.device(device)
    return t if dev.type == "cpu" else t.to(dev)


def _to_unit(h: torch.Tensor) -> torch.Tensor:
    """32-bit hashes to float32 uniforms in [0, 1) (24 bits, exact in float32)."""
    return (h >> 8).to(torch.float32) * _TWO_M24


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
        return _fmix_int(_fmix_int(_fmix_int(lo ^ 0x5BD1E995) ^ hi) ^ _fmix_int(tag + 0x27D4EB2F))

    def keys_np(self, n: int, draws: int, tag: int = 0) -> np.ndarray:
        """uint64 keys (values below 2**32) of shape ``(n, draws)`` for examples ``offset .. offset + n - 1``,
        computed on the host with numpy (microseconds, no device kernels)."""
        s = np.arange(self.offset, self.offset + n, dtype=np.uint64)
        k = _fmix_np(np.uint64(self.base(tag)) ^ (s & _M32_NP))
        k = _fmix_np(k ^ (s >> np.uint64(32)))
        d = (np.arange(1, draws + 1, dtype=np.uint64) * np.uint64(0x3C6EF372)) & _M32_NP
        return _fmix_np(k[:, None] ^ d[None, :])

    def keys(self, n: int, draws: int, device: torch.device | str, tag: int = 0) -> torch.Tensor:
        """:meth:`keys_np` as an int64 tensor on ``device`` (one host-to-device copy)."""
        return _ship(self.keys_np(n, draws, tag).astype(np.int64), device)

    def advance(self, n: int) -> None:
        self.offset += int(n)

    @staticmethod
    def bits(key: torch.Tensor, pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        """32-bit hashes of ``key`` (broadcast) at integer positions ``pos``."""
        if pos is None:
            return _fmix(key)
        return _fmix((key + pos * _POS) & _M32)

    @classmethod
    def uniform(cls, key: torch.Tensor, pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        """float32 uniforms in [0, 1)."""
        return _to_unit(cls.bits(key, pos))

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


def _check_seed(seed: Optional[int]) -> int:
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError.bad("seed", seed, "an integer in [0, 2**63) or None (drawn from torch's global RNG)")
    return seed


def _worker_tag() -> int:
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return 0 if info is None else int(info.id) + 1


def _shape(t: Any) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def _rebuild(batch: Mapping[str, Any], new: Dict[str, Any]) -> Any:
    """A mapping of the same type as ``batch`` (dict, BatchEncoding ...) holding ``new``."""
    if type(batch) is dict:
        return new
    try:
        return type(batch)(new)
    except Exception:  # noqa: BLE001 - an exotic mapping type: a plain dict is what models accept anyway
        return new


class AugmentStage(BatchStage):
    """Base class of the augmentation batch stages: random stream, counters, state and pickling.

    Subclasses set :attr:`counter_names` (``augment/<op>/<count>``), draw keys with :meth:`_keys` and add
    to the counters with :meth:`_add_counts` (device tensors, no host sync) or :meth:`_add_host`.
    In a DataLoader worker the stream is keyed by the worker id as well, so workers do not repeat each
    other's draws; the worker's position in the stream is not seen by the main process, so exact resume
    needs the stage to run in the main process (``guard.apply_batch`` or the Trainer callback's hook).
    """

    counter_names: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, *, seed: Optional[int] = None) -> None:
        self._stream = AugmentStream(_check_seed(seed))
        self._acc: Optional[torch.Tensor] = None
        self._host: Counter = Counter()

    # -- randomness ------------------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self._stream.seed

    def _keys(self, n: int, draws: int, device: torch.device) -> torch.Tensor:
        """Keys ``(n, draws)`` for the next ``n`` examples on ``device``; advances the stream by ``n``."""
        return _ship(self._keys_np(n, draws).astype(np.int64), device)

    def _keys_np(self, n: int, draws: int) -> np.ndarray:
        """Host keys (uint64) for the next ``n`` examples; advances the stream by ``n``."""
        k = self._stream.keys_np(n, draws, _worker_tag())
        self._stream.advance(n)
        return k

    # -- counters --------------------------------------------------------------------------------------
    def _add_counts(self, values: Sequence[torch.Tensor]) -> None:
        """Add device scalars (in :attr:`counter_names` order) without synchronising with the device."""
        vec = torch.stack([v.to(torch.int64).reshape(()) for v in values])
        if self._acc is None or self._acc.device != vec.device:
            if self._acc is not None:
                for name, v in zip(self.counter_names, self._acc.tolist()):
                    self._host[name] += int(v)
            self._acc = torch.zeros_like(vec)
        self._acc += vec

    def _add_host(self, name: str, n: int) -> None:
        self._host[name] += int(n)

    def counters(self) -> Dict[str, int]:
        """``augment/<op>/<count>`` totals since the last :meth:`reset_counters` (one host sync)."""
        out: Dict[str, int] = {name: 0 for name in self.counter_names}
        if self._acc is not None:
            for name, v in zip(self.counter_names, self._acc.tolist()):
                out[name] += int(v)
        for name, v in self._host.items():
            out[name] = out.get(name, 0) + int(v)
        return out

    def reset_counters(self) -> None:
        self._acc = None
        self._host = Counter()

    def reset(self) -> None:
        """Forget counters and restart the random stream at its first example (same seed)."""
        self.reset_counters()
        self._stream.offset = 0

    # -- state -----------------------------------------------------------------------------------------
    def decision_settings(self) -> Dict[str, Any]:
        """:meth:`config` without the seed, which a saved state restores along with the stream position."""
        return {k: v for k, v in self.config().items() if k != "seed"}

    def state_dict(self) -> Dict[str, Any]:
        """``{"seed", "offset"}`` as int64 tensors and the counters as JSON integers (no pickle)."""
        return {"seed": torch.tensor([self._stream.seed], dtype=torch.int64),
                "offset": torch.tensor([self._stream.offset], dtype=torch.int64),
                "counters": self.counters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or "seed" not in state or "offset" not in state:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise StateError(f"{type(self).__name__}.load_state_dict expects keys 'seed' and 'offset' "
                             f"(from state_dict()); got {got}")

        def as_int(v: Any, name: str) -> int:
            if isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise StateError(f"state[{name!r}] has shape {tuple(v.shape)}; expected one value")
                return int(v.reshape(()).item())
            return int(v)

        self._stream = AugmentStream(as_int(state["seed"], "seed"))
        self._stream.offset = as_int(state["offset"], "offset")
        self.reset_counters()
        for k, v in dict(state.get("counters", {})).items():
            self._host[str(k)] += int(v)

    def __getstate__(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        host = Counter(self._host)
        if self._acc is not None:
            for name, v in zip(self.counter_names, self._acc.tolist()):
                host[name] += int(v)
        d["_acc"] = None
        d["_host"] = host
        d["_cache"] = {}
        return d

    def __setstate__(self, d: Dict[str, Any]) -> None:
        self.__dict__.update(d)


# ---------------------------------------------------------------------------------------------------
# TokenAugment
# ---------------------------------------------------------------------------------------------------

_UNIT = "a float in [0, 1]"


@dataclass
class TokenAugmentSettings:
    """Settings of :class:`TokenAugment` (rates are per eligible token unless said otherwise).

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
        mask_token_id / pad_token_id / vocab_size: from the tokenizer (see :meth:`TokenAugment.from_tokenizer`).
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
        **settings: see :class:`TokenAugmentSettings`.

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
        unknown = sorted(set(settings) - set(TokenAugmentSettings.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"TokenAugment got unknown option(s) {unknown}; allowed: "
                              f"{sorted(TokenAugmentSettings.__dataclass_fields__)} and seed")
        super().__init__(seed=seed)
        self.settings = TokenAugmentSettings(**settings)
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
            raise GuardInputError(f"TokenAugment: batch[{key!r}] is {_shape(ids) if key in batch else 'missing'}; "
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
                raise GuardInputError(f"TokenAugment: batch['attention_mask'] has shape {_shape(am)}; expected the "
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
                raise GuardInputError(f"TokenAugment: batch[{k!r}] has shape {_shape(t)}; expected {tuple(ids.shape)}")
        for k, v in batch.items():
            if isinstance(v, torch.Tensor) and v.device != ids.device:
                raise GuardInputError(f"TokenAugment: batch[{k!r}] is on {v.device} but batch[{key!r}] is on "
                                      f"{ids.device}; move the whole batch to one device first")
        mode = "none"
        labels = batch.get("labels")
        if labels is not None:
            if not isinstance(labels, torch.Tensor):
                raise GuardInputError(f"TokenAugment: batch['labels'] is a {type(labels).__name__}; expected a tensor")
            n, length = ids.shape
            if s.label_mode == "token" or (s.label_mode == "auto" and tuple(labels.shape) == tuple(ids.shape)):
                if tuple(labels.shape) != tuple(ids.shape):
                    raise GuardInputError(f"TokenAugment: batch['labels'] has shape {tuple(labels.shape)}; with "
                                          f"label_mode='token' expected the shape of batch[{key!r}], {tuple(ids.shape)}")
                mode = "token"
            elif labels.dim() in (1, 2) and labels.shape[0] == n:
                mode = "sequence"
            else:
                raise GuardInputError(f"TokenAugment: batch['labels'] has shape {tuple(labels.shape)}; expected "
                                      f"{tuple(ids.shape)} (one label per token), ({n},) or ({n}, C) (per example)")
        return ids, am, mode

    # -- the work ----------------------------------------------------------------------------------------
    def forward(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        s = self.settings
        ids, am, label_mode = self._validate(batch)
        n, length = ids.shape
        dev = ids.device
        keys_np = self._keys_np(n, 5)  # gate, op, random id, span start, span length
        keys = _ship(keys_np.astype(np.int64), dev)
        self._add_host("augment/token/examples", n)

        valid = am.bool() if am is not None else ids != s.pad_token_id
        elig = valid
        if s.special_ids:
            sp = self._tensor_on("special", dev, lambda: torch.tensor(s.special_ids, dtype=ids.dtype))
            elig = elig & ~torch.isin(ids, sp.to(ids.dtype))
        stm = batch.get("special_tokens_mask")
        if isinstance(stm, torch.Tensor):
            elig = elig & ~stm.bool()
        if s.p < 1.0:
            gate = _ship(_unit_np(_fmix_np(keys_np[:, 0])) < s.p, dev)
            elig = elig & gate[:, None]
        pos = valid.to(torch.int64).cumsum(1) - 1  # rank among attended tokens: padding-side independent

        false = torch.zeros_like(elig)
        delete = mask = replace = span = false
        d, m, r = s.delete_rate, s.mask_rate, s.replace_rate
        # one fused hash for every per-token draw: (N, 4, L) -> op choice, random id, span start, span length
        bits = AugmentStream.bits(keys[:, 1:5, None], pos[:, None, :])
        units = _to_unit(bits)
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
        self._add_counts([changed.sum(), elig.sum(), mask.sum(), replace.sum(), delete.sum(), span.sum()])
        return _rebuild(batch, out)

    def _delete(self, out: Dict[str, Any], batch: Mapping[str, Any], delete: torch.Tensor, valid: torch.Tensor,
                label_mode: str, ids: torch.Tensor) -> Dict[str, Any]:
        s = self.settings
        n, length = delete.shape
        idx = torch.arange(length, device=delete.device, dtype=torch.int64).expand(n, length)
        if s.padding_side == "auto":  # left padding when some row starts with padding (decided on the device)
            left = (~valid[:, 0] & valid.any(1)).any().expand(n)
        else:
            left = torch.full((n,), s.padding_side == "left", dtype=torch.bool, device=delete.device)
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
