"""Putting canaries into training data: the same kind of data out as in, with a ``tdg_protected`` mapping.

``tdg_protected`` maps the fingerprint of each canary record (as the data yields it) to ``"audit/canary"``;
:meth:`torchdataguard.Guard.wrap` reads it, so the guard's stages pass canaries through untouched and its
ledger counts them.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch.utils.data import Dataset, IterableDataset

from ..core.ids import record_fingerprint
from ..errors import ConfigError

__all__ = ["CANARY_MARK", "CanaryDataset", "CanaryList", "check_sized", "insert_canaries", "sample_records"]

#: the ledger counter (and the mark a guard's stages honour) of canary records
CANARY_MARK = "audit/canary"


class CanaryList(list):
    """A list of training records with canaries put in; ``tdg_protected`` names the canaries."""

    tdg_protected: Dict[int, str] = {}


class CanaryDataset(Dataset):
    """A map-style dataset: ``dataset`` with canaries put in at seeded positions (``order``: for each position,
    ``(0, index into dataset)`` or ``(1, index into canaries)``). Attributes of ``dataset`` pass through."""

    def __init__(self, dataset: Any, canaries: Sequence[Any], order: Sequence[Tuple[int, int]]) -> None:
        self.dataset = dataset
        self.canaries = list(canaries)
        self.order = list(order)
        self.tdg_protected: Dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> Any:
        src, j = self.order[i]
        return self.canaries[j] if src else self.dataset[j]

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "canaries", "order", "tdg_protected"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def check_sized(dataset: Any) -> None:
    """``ConfigError`` unless ``dataset`` is sized and indexable (canaries go at seeded positions)."""
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise ConfigError(f"PrivacyAudit.wrap needs sized, indexable data (a list, a map-style torch Dataset or a "
                          f"datasets.Dataset), got {type(dataset).__name__}: canaries go at seeded positions. "
                          f"Materialise a stream first (e.g. list(...)), or insert canaries yourself")


def sample_records(dataset: Any, n: int = 256) -> List[Any]:
    """Up to ``n`` records spread over a sized dataset (what the canary kinds look at)."""
    check_sized(dataset)
    size = len(dataset)
    if size == 0:
        raise ConfigError("the dataset is empty: a privacy audit needs training data to put canaries into")
    step = max(1, size // n)
    return [dataset[i] for i in range(0, size, step)][:n]


def _positions(n_data: int, n_canaries: int, gen: torch.Generator) -> List[Tuple[int, int]]:
    """A seeded interleaving of ``n_data`` records and ``n_canaries`` canaries."""
    is_canary = torch.zeros(n_data + n_canaries, dtype=torch.bool)
    is_canary[torch.randperm(n_data + n_canaries, generator=gen)[:n_canaries]] = True
    order: List[Tuple[int, int]] = []
    d = c = 0
    for flag in is_canary.tolist():
        if flag:
            order.append((1, c))
            c += 1
        else:
            order.append((0, d))
            d += 1
    return order


def insert_canaries(dataset: Any, canaries: Sequence[Any], gen: torch.Generator) -> Any:
    """``dataset`` with ``canaries`` put in at seeded positions, as the same kind of data, carrying
    ``tdg_protected`` (the fingerprints of the canaries as the result yields them)."""
    check_sized(dataset)
    order = _positions(len(dataset), len(canaries), gen)
    positions = [i for i, (src, _) in enumerate(order) if src]
    if isinstance(dataset, (list, tuple)):
        out: Any = CanaryList(canaries[j] if src else dataset[j] for src, j in order)
    elif type(dataset).__module__.split(".")[0] == "datasets":
        import datasets  # the datasets library: only for its own Dataset

        cols = dataset.column_names  # columns a canary lacks are empty (None) in its row
        rows = [{c: rec.get(c) for c in cols} if isinstance(rec, dict) else rec for rec in canaries]
        extra = datasets.Dataset.from_list(rows, features=dataset.features)
        both = datasets.concatenate_datasets([dataset, extra])
        n = len(dataset)
        out = both.select([j if not src else n + j for src, j in order])
    else:
        out = CanaryDataset(dataset, canaries, order)
    # the fingerprints of the canaries as the wrapped data yields them (a datasets row has every column)
    marks = {record_fingerprint(out[i]): CANARY_MARK for i in positions}
    out.tdg_protected = marks
    return out
