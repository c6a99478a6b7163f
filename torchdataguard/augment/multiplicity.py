"""Augmentation multiplicity (De et al. 2022): K augmented views of each example, one privacy unit.

The contract with the DP layer (DP-SGD with per-unit clipping) is the batch key ``"tdg_unit_ids"``
(:data:`UNIT_IDS_KEY`):

* an ``int64`` tensor of shape ``[N * K]`` on the batch's device, one id per row of the batch;
* rows with the same id come from the same privacy unit (the K views of one example, or every row of
  one user when the batch already carried user ids); the views of a unit are adjacent rows;
* ids are unique within the stage's stream (not only within one batch), so micro-batches accumulated into
  one optimizer step never share an id by accident;
* the DP layer averages the per-sample gradients of rows that share an id, then clips each unit's mean
  gradient, so the sensitivity is that of one unit whatever K is;
* models reject unknown keyword arguments: take the key out before the forward with
  ``batch, unit_ids = pop_unit_ids(batch)``.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple

import torch

from ..errors import ConfigError, GuardInputError
from .base import AugmentStage, rebuild_mapping, shape_of
from .streams import worker_tag

__all__ = ["Multiplicity", "UNIT_IDS_KEY", "pop_unit_ids"]

#: The batch key holding privacy-unit ids (int64, shape [rows]); consumed by the DP layer.
UNIT_IDS_KEY = "tdg_unit_ids"

_BATCH_KEYS = ("input_ids", "pixel_values", "inputs_embeds", "input_values", "input_features", "labels")


def pop_unit_ids(batch: Any) -> Tuple[Any, Optional[torch.Tensor]]:
    """Split ``batch`` into (the batch without ``"tdg_unit_ids"``, the unit ids or ``None``).

    The input is not modified. Call it before ``model(**batch)``: models reject unknown keyword arguments.

    Example:
        >>> batch = {"input_ids": torch.ones(4, 3, dtype=torch.long), "tdg_unit_ids": torch.tensor([0, 0, 1, 1])}
        >>> rest, ids = pop_unit_ids(batch)
        >>> sorted(rest), ids.tolist(), "tdg_unit_ids" in batch
        (['input_ids'], [0, 0, 1, 1], True)
    """
    if not isinstance(batch, Mapping) or UNIT_IDS_KEY not in batch:
        return batch, None
    out = {k: v for k, v in batch.items() if k != UNIT_IDS_KEY}
    return rebuild_mapping(batch, out), batch[UNIT_IDS_KEY]


class Multiplicity(AugmentStage):
    """Turn each example of a batch into ``k`` rows that share one privacy-unit id.

    Every tensor (and list) whose first dimension is the batch size N is repeated ``k`` times row by row
    (``repeat_interleave``: the views of example i are rows ``i*k .. i*k + k - 1``); other values pass
    through. Put augmentation stages *after* it in the guard so that each view is augmented differently
    (every row has its own place in their random streams). The unit ids go to ``batch["tdg_unit_ids"]``
    (see the module docstring for the contract):

    * if the batch already has ``"tdg_unit_ids"`` (user-level units), they are repeated;
    * else, with ``unit_key`` set, the ids are taken from ``batch[unit_key]`` (an integer tensor ``[N]``,
      e.g. a user id column) and repeated;
    * else each example is its own unit, numbered by its place in this stage's stream.

    Args:
        k: views per example (1 only attaches unit ids).
        key: the batch key whose first dimension is the batch size; by default the first of
            ``input_ids``, ``pixel_values``, ``inputs_embeds``, ``input_values``, ``input_features``, ``labels``.
        unit_key: a batch key holding per-example unit ids (user-level DP).

    Example:
        >>> mult = Multiplicity(2)
        >>> out = mult({"input_ids": torch.tensor([[5, 6], [7, 8]]), "labels": torch.tensor([1, 0])})
        >>> out["input_ids"].tolist(), out["labels"].tolist(), out["tdg_unit_ids"].tolist()
        ([[5, 6], [5, 6], [7, 8], [7, 8]], [1, 1, 0, 0], [0, 0, 1, 1])
    """

    counter_names: ClassVar[Tuple[str, ...]] = ()
    stage_name: ClassVar[str] = "multiplicity"

    def __init__(self, k: int, *, key: Optional[str] = None, unit_key: Optional[str] = None) -> None:
        problems = []
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1024:
            problems.append(f"k={k!r}: expected an integer in [1, 1024] (views per example)")
        for nm, v in (("key", key), ("unit_key", unit_key)):
            if v is not None and (not isinstance(v, str) or not v):
                problems.append(f"{nm}={v!r}: expected a non-empty string or None")
        if problems:
            raise ConfigError.collect(problems, "Multiplicity settings")
        super().__init__(seed=0)  # no randomness: the stream's offset numbers the units
        self.k = k
        self.key = key
        self.unit_key = unit_key

    def config(self) -> Dict[str, Any]:
        return {"k": self.k, "key": self.key, "unit_key": self.unit_key, "unit_ids_key": UNIT_IDS_KEY}

    def counters(self) -> Dict[str, int]:
        out = super().counters()
        out.setdefault("augment/multiplicity/examples", 0)
        out.setdefault("augment/multiplicity/views", 0)
        return out

    def _batch_size(self, batch: Mapping[str, Any]) -> Tuple[str, int]:
        names = [self.key] if self.key is not None else [k for k in _BATCH_KEYS if k in batch]
        if not names:
            names = [k for k, v in batch.items() if isinstance(v, torch.Tensor) and v.dim() >= 1]
        for name in names:
            v = batch.get(name)
            if isinstance(v, torch.Tensor) and v.dim() >= 1:
                if v.shape[0] == 0:
                    raise GuardInputError(f"Multiplicity: batch[{name!r}] has shape {tuple(v.shape)}: the batch is empty")
                return name, int(v.shape[0])
            if self.key is not None:
                got = shape_of(v) if name in batch else "missing"
                raise GuardInputError(f"Multiplicity: batch[{name!r}] is {got}; "
                                      f"expected a tensor whose first dimension is the batch size")
        raise GuardInputError(f"Multiplicity: found no tensor with a batch dimension among the keys "
                              f"{sorted(map(str, batch))}; set key= to the entry that holds the examples")

    def _ids(self, batch: Mapping[str, Any], name: str, n: int, device: torch.device) -> torch.Tensor:
        src_key = UNIT_IDS_KEY if UNIT_IDS_KEY in batch else self.unit_key
        if src_key is not None:
            ids = batch.get(src_key)
            if (not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.shape[0] != n
                    or ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool):
                raise GuardInputError(f"Multiplicity: batch[{src_key!r}] is {shape_of(ids) if src_key in batch else 'missing'}"
                                      f"{'' if not isinstance(ids, torch.Tensor) else f' ({ids.dtype})'}; expected an "
                                      f"integer tensor of shape ({n},), one unit id per example of batch[{name!r}]")
            return ids.to(device=device, dtype=torch.int64)
        start = (worker_tag() << 40) + self.stream.offset
        return torch.arange(start, start + n, device=device, dtype=torch.int64)

    def forward(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        if not isinstance(batch, Mapping):
            raise GuardInputError(f"Multiplicity expects a mapping of tensors (it adds the key {UNIT_IDS_KEY!r}); got "
                                  f"{type(batch).__name__}. Collate to a dict, e.g. {{'pixel_values': x, 'labels': y}}")
        name, n = self._batch_size(batch)
        device = batch[name].device
        ids = self._ids(batch, name, n, device)
        k = self.k
        out: Dict[str, Any] = {}
        for key, v in batch.items():
            if key == UNIT_IDS_KEY:
                continue
            if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == n:
                out[key] = v.repeat_interleave(k, dim=0) if k > 1 else v
            elif isinstance(v, (list, tuple)) and len(v) == n and k > 1:
                out[key] = type(v)(x for x in v for _ in range(k)) if isinstance(v, tuple) else [x for x in v for _ in range(k)]
            else:
                out[key] = v
        out[UNIT_IDS_KEY] = ids.repeat_interleave(k) if k > 1 else ids
        self.stream.advance(n)
        self.add_count("augment/multiplicity/examples", n)
        self.add_count("augment/multiplicity/views", n * k)
        return rebuild_mapping(batch, out)
