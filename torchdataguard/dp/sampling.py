"""Poisson sampling by privacy unit, split into the micro-batches of gradient accumulation.

DP-SGD's accounting (PRV or RDP of the *Poisson-subsampled* Gaussian mechanism) assumes that every privacy
unit joins each logical batch independently with probability ``q``. Shuffled fixed-size batches,
``drop_last`` and weighted samplers are different mechanisms: their epsilon is not what the accountant
computes. :class:`PoissonBatchSampler` draws the real thing:

* one Bernoulli(``q``) draw per privacy unit and logical step (all rows of a drawn unit join together);
* the logical batch is split into ``k`` physical micro-batches (the training loop's gradient accumulation),
  units kept whole;
* a micro-batch that the draw left empty is filled with one *padding* row, recorded in :attr:`plans` so the
  DP engine drops its gradient (collators cannot collate an empty list). The padding row never counts.

Example:
    >>> s = PoissonBatchSampler(100, sample_rate=0.1, micro_batches_per_epoch=4, accumulation=2, seed=0)
    >>> batches = list(s)
    >>> len(batches), len(s)
    (4, 4)
    >>> sorted({s.plans[i].step_len for i in range(4)})
    [2]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import (BatchSampler, DataLoader, IterableDataset, RandomSampler, Sampler, SequentialSampler,
                              WeightedRandomSampler)

from ..errors import ConfigError

__all__ = ["MicroPlan", "PoissonBatchSampler", "loader_sampling_problems", "poisson_loader"]


@dataclass(frozen=True)
class MicroPlan:
    """What the sampler put into one physical micro-batch.

    Attributes:
        rows: rows yielded (1 for a padding micro-batch).
        pad: the Poisson draw left this micro-batch empty; its one row is padding and must not count.
        units: the privacy unit of each row (``None`` when every row is its own unit).
        step_len: micro-batches in this logical step (the gradient-accumulation group).
        pos: position of this micro-batch in its logical step (0-based).
        step: logical step index within the epoch.
    """

    rows: int
    pad: bool
    units: Optional[Tuple[int, ...]]
    step_len: int
    pos: int
    step: int


class PoissonBatchSampler(Sampler[List[int]]):
    """Yields Poisson-sampled micro-batches of dataset indices (see the module docstring).

    Args:
        num_rows: rows in the (filtered) dataset.
        sample_rate: ``q``, the probability that a unit joins a logical batch.
        micro_batches_per_epoch: micro-batches yielded per pass (the training loop's batches per epoch).
        accumulation: micro-batches per logical step (gradient accumulation). When it does not divide
            ``micro_batches_per_epoch`` the last step of the epoch has fewer micro-batches (as the Trainer does).
        unit_ids: the privacy unit of each row (rows of one user share an id); by default each row is a unit.
        seed: seed of the sampling generator (``None``: drawn from torch's global generator).
        max_logical_steps: stop after this many logical steps over the sampler's life (the privacy budget).
        pad_index: the dataset row used as padding for an empty micro-batch.

    Example:
        >>> s = PoissonBatchSampler(6, sample_rate=0.5, micro_batches_per_epoch=3, unit_ids=[0, 0, 1, 1, 2, 2], seed=1)
        >>> for b in s:
        ...     assert len(b) % 2 == 0 or s.plans[0].pad   # units stay whole
    """

    def __init__(self, num_rows: int, *, sample_rate: float, micro_batches_per_epoch: int, accumulation: int = 1,
                 unit_ids: Optional[Sequence[int]] = None, seed: Optional[int] = None,
                 max_logical_steps: Optional[int] = None, pad_index: int = 0) -> None:
        problems = []
        if not isinstance(num_rows, int) or num_rows < 1:
            problems.append(f"num_rows={num_rows!r}: expected a positive number of rows")
        if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
            problems.append(f"sample_rate={sample_rate!r}: expected a float in (0, 1]")
        if not isinstance(micro_batches_per_epoch, int) or micro_batches_per_epoch < 1:
            problems.append(f"micro_batches_per_epoch={micro_batches_per_epoch!r}: expected a positive integer")
        if not isinstance(accumulation, int) or accumulation < 1:
            problems.append(f"accumulation={accumulation!r}: expected a positive integer")
        if unit_ids is not None and len(unit_ids) != num_rows:
            problems.append(f"unit_ids has {len(unit_ids)} entries for {num_rows} rows: give one unit id per row")
        if problems:
            raise ConfigError.collect(problems, "Poisson sampler settings")
        self.num_rows = num_rows
        self.sample_rate = float(sample_rate)
        self.micro_batches_per_epoch = micro_batches_per_epoch
        self.accumulation = accumulation
        self.pad_index = int(pad_index)
        self.max_logical_steps = max_logical_steps
        #: optional ``f(n) -> bool``: may the n-th logical step (counted over the sampler's life) be drawn?
        self.step_allowed: Optional[Callable[[int], bool]] = None
        if unit_ids is None:
            self._unit_of_row: Optional[np.ndarray] = None
            self.num_units = num_rows
            self._rows_of_unit: Optional[List[np.ndarray]] = None
        else:
            ids = np.asarray(list(unit_ids), dtype=np.int64)
            uniq, inverse = np.unique(ids, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
            self._rows_of_unit = [order[bounds[i]:bounds[i + 1]] for i in range(len(uniq))]
            self._unit_of_row = ids
            self.num_units = int(len(uniq))
        if seed is None:
            seed = int(torch.randint(0, 2 ** 62, (1,)).item())
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.generation = 0
        self.logical_steps_drawn = 0
        self.plans: Dict[int, MicroPlan] = {}

    @property
    def groups(self) -> List[int]:
        """Micro-batches per logical step over one epoch."""
        m, k = self.micro_batches_per_epoch, self.accumulation
        return [k] * (m // k) + ([m % k] if m % k else [])

    @property
    def expected_batch_units(self) -> float:
        """Expected units per logical batch (``q x units``), the denominator of the averaged gradient."""
        return self.sample_rate * self.num_units

    def __len__(self) -> int:
        return self.micro_batches_per_epoch

    def _draw_units(self) -> np.ndarray:
        mask = torch.rand(self.num_units, generator=self.generator) < self.sample_rate
        return mask.nonzero().flatten().numpy()

    def __iter__(self) -> Iterator[List[int]]:
        self.generation += 1
        self.plans = {}
        m = 0
        for step, k in enumerate(self.groups):
            if self.max_logical_steps is not None and self.logical_steps_drawn >= self.max_logical_steps:
                return
            if self.step_allowed is not None and not self.step_allowed(self.logical_steps_drawn + 1):
                return
            self.logical_steps_drawn += 1
            units = self._draw_units()
            chunks = np.array_split(units, k) if len(units) else [units[:0]] * k
            for pos, chunk in enumerate(chunks):
                if len(chunk) == 0:
                    self.plans[m] = MicroPlan(1, True, None, k, pos, step)
                    m += 1
                    yield [self.pad_index]
                    continue
                if self._rows_of_unit is None:
                    rows = [int(i) for i in chunk]
                    plan_units = None
                else:
                    rows = [int(r) for u in chunk for r in self._rows_of_unit[int(u)]]
                    plan_units = tuple(int(u) for u in chunk for _ in self._rows_of_unit[int(u)])
                self.plans[m] = MicroPlan(len(rows), False, plan_units, k, pos, step)
                m += 1
                yield rows

    def state_dict(self) -> Dict[str, Any]:
        """JSON-able state (the generator state as a list of bytes values)."""
        return {"seed": self.seed, "generation": self.generation, "logical_steps_drawn": self.logical_steps_drawn,
                "generator": self.generator.get_state().tolist()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.generation = int(state.get("generation", 0))
        self.logical_steps_drawn = int(state.get("logical_steps_drawn", 0))
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))


def _base_samplers(loader: DataLoader) -> Tuple[Any, Any]:
    """(batch sampler, sampler) of a loader, looking through accelerate's shard wrapper."""
    bs = getattr(loader, "batch_sampler", None)
    inner = getattr(bs, "batch_sampler", None)  # accelerate BatchSamplerShard / SkipBatchSampler
    if inner is not None and not isinstance(bs, BatchSampler):
        bs = inner
    sampler = getattr(bs, "sampler", None) if bs is not None else getattr(loader, "sampler", None)
    return bs, sampler


def loader_sampling_problems(loader: DataLoader, *, trainer_default_shuffle_ok: bool = False) -> List[str]:
    """Why this loader's batches are not Poisson samples (empty list: only the default samplers are in use).

    ``trainer_default_shuffle_ok``: the Hugging Face Trainer shuffles by default; that random sampler is not
    the user's choice and is replaced, so it is not reported as a problem.

    Example:
        >>> from torch.utils.data import DataLoader
        >>> loader_sampling_problems(DataLoader(list(range(10)), batch_size=2, shuffle=True))[0][:40]
        'the loader shuffles into fixed-size batc'
    """
    problems: List[str] = []
    if isinstance(getattr(loader, "dataset", None), IterableDataset):
        problems.append("the dataset is an IterableDataset: Poisson sampling needs a map-style dataset with a length "
                        "(wrap your data as a map-style dataset, e.g. guard.wrap(list_or_dataset))")
        return problems
    bs, sampler = _base_samplers(loader)
    drop_last = bool(getattr(bs, "drop_last", getattr(loader, "drop_last", False)))
    if drop_last:
        problems.append("drop_last=True: the last partial batch is dropped every epoch, so some units never join "
                        "with probability q; set drop_last=False (dataloader_drop_last=False in the Trainer)")
    if bs is not None and not isinstance(bs, BatchSampler):
        problems.append(f"a custom batch sampler ({type(bs).__name__}) decides the batches; remove it so that "
                        f"Poisson sampling can replace it")
    if isinstance(sampler, WeightedRandomSampler):
        problems.append("a WeightedRandomSampler draws rows with unequal probabilities, which the accountant does "
                        "not model; remove the weights (re-weight the loss instead) or accept an approximate guarantee")
    elif isinstance(sampler, RandomSampler):
        if not trainer_default_shuffle_ok:
            problems.append("the loader shuffles into fixed-size batches (RandomSampler / shuffle=True): the "
                            "accountant assumes Poisson sampling; pass the loader with shuffle=False and "
                            "make_private replaces its sampler with Poisson sampling")
    elif sampler is not None and not isinstance(sampler, SequentialSampler):
        problems.append(f"a custom sampler ({type(sampler).__name__}) decides which rows are drawn; remove it so "
                        f"that Poisson sampling can replace it")
    return problems


def poisson_loader(loader: DataLoader, sampler: PoissonBatchSampler) -> DataLoader:
    """A DataLoader with ``loader``'s dataset, collate function and worker settings, batched by ``sampler``."""
    kwargs: Dict[str, Any] = dict(batch_sampler=sampler, collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                                  pin_memory=loader.pin_memory, timeout=loader.timeout,
                                  worker_init_fn=loader.worker_init_fn,
                                  multiprocessing_context=loader.multiprocessing_context)
    if loader.num_workers > 0:
        kwargs["persistent_workers"] = loader.persistent_workers
        if loader.prefetch_factor is not None:
            kwargs["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(loader.dataset, **kwargs)
