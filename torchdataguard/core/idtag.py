"""Example ids that travel with the examples: the ledger id added to each mapping record under a key.

Training dynamics (:class:`torchdataguard.TrainingDynamics`) key their statistics by the ledger id of each
example, so shuffling, DataLoader workers, accumulation and Poisson sampling do not matter. A guard holds one
:class:`IdTag`; the datasets it wraps hold the same object, and while its ``key`` is set they add the id of each
example they serve to the record (a copy: the user's record is never mutated). The tag is off by default;
``TrainingDynamics.attach(guard)`` (or ``GuardCallback(guard, dynamics=...)``) turns it on before training.

Example:
    >>> tag = IdTag()
    >>> tag.attach({"text": "hi"}, 3)
    {'text': 'hi'}
    >>> tag.key = ID_KEY
    >>> tag.attach({"text": "hi"}, 3)
    {'text': 'hi', 'tdg_id': 3}
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Tuple

from ..errors import ConfigError

__all__ = ["ID_KEY", "IdTag", "pop_example_ids"]

#: the batch key that carries each example's ledger id (removed before the model's forward)
ID_KEY = "tdg_id"


class IdTag:
    """Whether (``key`` set) and under which key wrapped data adds each example's ledger id to its record."""

    def __init__(self, key: Optional[str] = None) -> None:
        self.key = key

    def attach(self, record: Any, id_: Any) -> Any:
        """``record`` with ``{key: id_}`` added (a new dict), or ``record`` itself while the tag is off."""
        if self.key is None:
            return record
        if not isinstance(record, Mapping):
            raise ConfigError(
                f"training dynamics need each example's id to travel with it, in a mapping record under "
                f"{self.key!r}; this dataset serves {type(record).__name__} records. Fix: make the dataset return "
                f"dicts (e.g. {{'input_ids': ..., 'labels': ...}}), or call dynamics.update(ids, logits, labels) "
                f"yourself with ids you track")
        out = dict(record)
        if isinstance(id_, bool) or not isinstance(id_, (int, str)):
            id_ = str(id_)
        out[self.key] = id_
        return out

    def __repr__(self) -> str:
        return f"IdTag(key={self.key!r})"


def pop_example_ids(batch: Any, key: str = ID_KEY) -> Tuple[Any, Any]:
    """Split ``batch`` into (the batch without ``key``, the ids or ``None``); ``batch`` is not mutated.

    Example:
        >>> import torch
        >>> rest, ids = pop_example_ids({"x": torch.zeros(2), "tdg_id": torch.tensor([4, 9])})
        >>> sorted(rest), ids.tolist()
        (['x'], [4, 9])
    """
    if not isinstance(batch, Mapping) or key not in batch:
        return batch, None
    return {k: v for k, v in batch.items() if k != key}, batch[key]
