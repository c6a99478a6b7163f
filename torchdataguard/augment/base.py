"""What every batch augmentation shares: the :class:`AugmentStage` base class and the batch helpers.

:class:`AugmentStage` owns the random stream (:class:`~torchdataguard.augment.streams.AugmentStream`), the
counters, the state and the pickling rules; a subclass sets :attr:`AugmentStage.counter_names`, draws keys
with :meth:`AugmentStage.next_keys`, does its work in ``forward`` and adds to its counters with
:meth:`AugmentStage.add_device_counts` / :meth:`AugmentStage.add_count`.

The functions below are the batch plumbing the stages share: rebuilding a mapping of the caller's type
(:func:`rebuild_mapping`), naming a bad value in an error (:func:`shape_of`), finding and checking the
image tensor of a batch (:func:`split_images`, :func:`check_images`), the dtype to compute in and back
(:func:`compute_dtype`, :func:`restore_dtype`), a per-row choice (:func:`where_rows`) and the check of a
probability setting (:func:`check_probability`).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..core.stage import BatchStage
from ..errors import ConfigError, GuardInputError, StateError
from .streams import AugmentStream, worker_tag

__all__ = [
    "AugmentStage",
    "check_images",
    "check_probability",
    "compute_dtype",
    "rebuild_mapping",
    "restore_dtype",
    "shape_of",
    "split_images",
    "where_rows",
]


def _check_seed(seed: Optional[int]) -> int:
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError.bad("seed", seed, "an integer in [0, 2**63) or None (drawn from torch's global RNG)")
    return seed


class AugmentStage(BatchStage):
    """Base class of the augmentation batch stages: random stream, counters, state and pickling.

    Subclasses set :attr:`counter_names` (``augment/<op>/<count>``), draw keys with :meth:`next_keys` and
    add to the counters with :meth:`add_device_counts` (device tensors, no host sync) or :meth:`add_count`.
    In a DataLoader worker the stream is keyed by the worker id as well, so workers do not repeat each
    other's draws; the worker's position in the stream is not seen by the main process, so exact resume
    needs the stage to run in the main process (``guard.apply_batch`` or the Trainer callback's hook).

    Example:
        >>> class Coin(AugmentStage):
        ...     counter_names = ("augment/coin/heads",)
        ...     def config(self): return {"seed": self.seed}
        ...     def forward(self, batch):
        ...         heads = torch.from_numpy(self.next_keys(len(batch), 1)[:, 0] % 2 == 1)
        ...         self.add_device_counts([heads.sum()])
        ...         return batch
        >>> c = Coin(seed=0); _ = c(torch.zeros(8))
        >>> c.stream.offset, 0 <= c.counters()["augment/coin/heads"] <= 8
        (8, True)
    """

    counter_names: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, *, seed: Optional[int] = None) -> None:
        #: the stage's random stream (seed and position); saved by :meth:`state_dict`
        self.stream = AugmentStream(_check_seed(seed))
        self._acc: Optional[torch.Tensor] = None
        self._host: Counter = Counter()

    # -- randomness ------------------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.stream.seed

    def next_keys(self, n: int, draws: int) -> np.ndarray:
        """Host keys (uint64, values below 2**32) of shape ``(n, draws)`` for the next ``n`` examples, keyed
        by the DataLoader worker as well; advances the stream by ``n``."""
        k = self.stream.keys_np(n, draws, worker_tag())
        self.stream.advance(n)
        return k

    # -- counters --------------------------------------------------------------------------------------
    def add_device_counts(self, values: Sequence[torch.Tensor]) -> None:
        """Add device scalars (in :attr:`counter_names` order) without synchronising with the device."""
        vec = torch.stack([v.to(torch.int64).reshape(()) for v in values])
        if self._acc is None or self._acc.device != vec.device:
            if self._acc is not None:
                for name, v in zip(self.counter_names, self._acc.tolist()):
                    self._host[name] += int(v)
            self._acc = torch.zeros_like(vec)
        self._acc += vec

    def add_count(self, name: str, n: int) -> None:
        """Add a host integer to the counter ``name``."""
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
        self.stream.offset = 0

    # -- state -----------------------------------------------------------------------------------------
    def decision_settings(self) -> Dict[str, Any]:
        """:meth:`config` without the seed, which a saved state restores along with the stream position."""
        return {k: v for k, v in self.config().items() if k != "seed"}

    def state_dict(self) -> Dict[str, Any]:
        """``{"seed", "offset"}`` as int64 tensors and the counters as JSON integers (no pickle)."""
        return {"seed": torch.tensor([self.stream.seed], dtype=torch.int64),
                "offset": torch.tensor([self.stream.offset], dtype=torch.int64),
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

        self.stream = AugmentStream(as_int(state["seed"], "seed"))
        self.stream.offset = as_int(state["offset"], "offset")
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
# batch plumbing shared by the stages
# ---------------------------------------------------------------------------------------------------

def shape_of(value: Any) -> str:
    """A tensor's shape, or the type name of anything else (for error messages; never the values).

    Example:
        >>> shape_of(torch.zeros(2, 3)), shape_of([1, 2])
        ('(2, 3)', 'list')
    """
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def rebuild_mapping(batch: Mapping[str, Any], new: Dict[str, Any]) -> Any:
    """A mapping of the same type as ``batch`` (dict, BatchEncoding ...) holding ``new``; a plain dict when
    that type cannot be built from a dict.

    Example:
        >>> from collections import OrderedDict
        >>> type(rebuild_mapping(OrderedDict(a=1), {"a": 2})).__name__
        'OrderedDict'
    """
    if type(batch) is dict:
        return new
    try:
        return type(batch)(new)
    except Exception:  # noqa: BLE001 - an exotic mapping type: a plain dict is what models accept anyway
        return new


Rebuild = Callable[[torch.Tensor, Dict[str, Any]], Any]


def split_images(batch: Any, key: str, who: str) -> Tuple[torch.Tensor, Rebuild, Dict[str, Any]]:
    """Find the image tensor of ``batch`` (a mapping holding ``key``, a tensor, or an ``(images, labels)``
    sequence); return it, a function ``(new images, {"labels" or other keys: new values}) -> batch`` that
    rebuilds the batch in its own form, and the batch's other entries (``{"labels": ...}`` for a sequence).

    Example:
        >>> x, rebuild, extra = split_images((torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])), "pixel_values", "demo")
        >>> type(rebuild(x + 1, {"labels": torch.tensor([1, 0])})).__name__, extra["labels"].tolist()
        ('tuple', [0, 1])
    """
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
            return rebuild_mapping(batch, out)

        return batch[key], rebuild_map, dict(batch.items())
    raise GuardInputError(f"{who} expects a mapping of tensors, an (N, C, H, W) tensor, or an (images, labels) "
                          f"pair; got {type(batch).__name__}")


def check_images(x: Any, who: str, name: str, *, rank4: bool = True) -> torch.Tensor:
    """``x`` if it is a non-empty float or uint8 tensor ``(N, C, H, W)`` (``rank4``) or ``(N, features...)``;
    else a :class:`~torchdataguard.errors.GuardInputError` naming ``who``, ``name`` and the shape.

    Example:
        >>> check_images(torch.zeros(1, 3, 4, 4), "demo", "x").shape
        torch.Size([1, 3, 4, 4])
    """
    if not isinstance(x, torch.Tensor):
        raise GuardInputError(f"{who}: {name} is {shape_of(x)}; expected a tensor of images (N, C, H, W)")
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


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype image maths runs in: float64 for float64 input, else float32 (uint8, float16, bfloat16 ...).

    Example:
        >>> compute_dtype(torch.uint8), compute_dtype(torch.float64)
        (torch.float32, torch.float64)
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def restore_dtype(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``y`` back in the input's ``dtype`` (uint8: rounded and clamped to [0, 255]).

    Example:
        >>> restore_dtype(torch.tensor([-3.0, 100.4, 300.0]), torch.uint8).tolist()
        [0, 100, 255]
    """
    if dtype == torch.uint8:
        return y.round().clamp(0, 255).to(torch.uint8)
    return y.to(dtype)


def where_rows(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row ``i`` of ``a`` where ``mask[i]`` (shape ``(N,)``), else row ``i`` of ``b``.

    Example:
        >>> where_rows(torch.tensor([True, False]), torch.ones(2, 2), torch.zeros(2, 2)).tolist()
        [[1.0, 1.0], [0.0, 0.0]]
    """
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


def check_probability(name: str, v: Any, problems: List[str]) -> None:
    """Append a problem to ``problems`` unless ``v`` is a number in [0, 1] (for ``ConfigError.collect``).

    Example:
        >>> problems = []; check_probability("p", 1.5, problems); problems
        ['p=1.5: expected a probability in [0, 1]']
    """
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        problems.append(f"{name}={v!r}: expected a probability in [0, 1]")
