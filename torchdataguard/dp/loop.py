"""DP-SGD for a plain training loop: :func:`make_private` and the :class:`PrivateTraining` it returns.

Example:
    >>> import torch, torch.nn as nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> torch.manual_seed(0) and None
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> dp = make_private(model, opt, DataLoader(data, batch_size=16), DPConfig(noise_multiplier=1.0, delta=1e-3))
    >>> model, opt, loader = dp
    >>> for x, y in loader:
    ...     opt.zero_grad(); nn.functional.cross_entropy(model(x), y).backward(); opt.step()
    >>> dp.report()["steps"], dp.epsilon() > 0
    (4, True)
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..errors import ConfigError
from .batch import default_forward, to_device
from .config import DPConfig
from .engine import DPEngine
from .sampling import PoissonBatchSampler, loader_sampling_problems, poisson_loader

__all__ = ["PrivateTraining", "make_private"]


class PrivateTraining:
    """What :func:`make_private` returns: unpacks to ``(model, optimizer, loader)`` and also carries the
    accounting (:meth:`epsilon`, :meth:`report`, :meth:`save` / :meth:`load`). Use it as a context manager to
    remove the hooks afterwards.

    The model and the optimizer are the objects you passed in (hooks attached, not wrapped); the loader is a
    new one over the same dataset, batched by Poisson sampling, that stops when the budget is spent.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                 engine: DPEngine) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loader = loader
        self.engine = engine

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.optimizer, self.loader))

    def __enter__(self) -> "PrivateTraining":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def epsilon(self) -> float:
        """Epsilon spent so far, by the configured accountant."""
        return self.engine.epsilon()

    def report(self) -> Dict[str, Any]:
        """The privacy section: unit, delta, accountant, noise, sampling rate, steps, PRV and RDP epsilons,
        whether the guarantee is approximate (and why), the preflight, and the epsilon history."""
        return self.engine.report()

    def state_dict(self) -> Dict[str, Any]:
        return self.engine.state_dict()

    def load_state_dict(self, state: Dict[str, Any], *, expect_steps: Optional[int] = None) -> None:
        self.engine.load_state_dict(state, expect_steps=expect_steps)
        self._rebase()

    def _rebase(self) -> None:
        s = self.engine.sampler
        if s is not None:
            self.engine.steps_before_sampler = self.engine.ledger.steps - s.logical_steps_drawn

    def save(self, directory) -> str:
        """Write the privacy ledger (JSON) into ``directory``, next to your model checkpoint."""
        return self.engine.ledger.save(directory)

    def load(self, directory, *, expect_steps: Optional[int] = None) -> None:
        """Restore the ledger saved in ``directory`` (call it right after :func:`make_private`, before the first
        step); missing, edited, or made with another delta, accountant, unit, noise multiplier or sampling rate
        (or another step count than ``expect_steps``) is an error."""
        self.engine.load_ledger(directory, expect_steps=expect_steps)
        self._rebase()

    def start_new_ledger(self) -> None:
        """Declare that this run's guarantee is a new one although the model was loaded from a folder holding a
        privacy ledger (it trains on other data). Without this (or :meth:`load`) the first step is refused."""
        self.engine.new_ledger_declared = True

    def reattach(self) -> None:
        """Clip the parameters the optimizer holds now (after unfreezing layers and adding them with
        ``optimizer.add_param_group``); call it between two optimizer steps. See :meth:`DPEngine.reattach`."""
        self.engine.reattach()

    def close(self) -> None:
        """Detach the hooks from the model and the optimizer."""
        self.engine.detach()


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, privacy: DPConfig, *,
                 unit_ids: Optional[Sequence[int]] = None,
                 forward: Callable[[nn.Module, Any], Any] = default_forward,
                 loss_fn: Optional[Callable[[Any, Any], torch.Tensor]] = None,
                 accumulation: int = 1, guard: Any = None) -> PrivateTraining:
    """Make a plain training loop differentially private (DP-SGD through Opacus).

    Args:
        model: the model, in training mode; hooks are attached to it (it is not wrapped).
        optimizer: a fresh optimizer over the model's parameters; the private gradient is written into
            ``p.grad`` right before each of its steps.
        loader: your DataLoader, unshuffled (``shuffle=False``), without ``drop_last`` or a weighted sampler;
            its ``batch_size`` is the expected logical batch. It is replaced by a Poisson-sampled loader.
        privacy: the :class:`DPConfig`.
        unit_ids: the privacy unit of each dataset row (rows of one user share an id); each row is a unit by
            default.
        forward: how the preflight calls the model on a batch (default: ``model(**batch)`` for mappings,
            ``model(batch[0])`` for tuples).
        loss_fn: ``loss_fn(output, batch)`` for the preflight when the output carries no ``loss``.
        accumulation: micro-batches per optimizer step: each Poisson-drawn logical batch (expected size
            ``batch_size``) is split into this many micro-batches, and the loop calls ``optimizer.step()`` after
            every ``accumulation`` batches of the private loader. Back-propagate each micro-batch's loss as it
            is (not divided by ``accumulation``): each example's gradient is clipped on its own.
        guard: the :class:`~torchdataguard.Guard` whose batch stages run on the batch inside the model's forward
            (a forward pre-hook registered before ``make_private``): their random streams are put back after
            each preflight pass, so the passes see the same augmentation draws and training's stream is untouched.
            Not needed when the stages run in the collate function (``guard.collator()``).

    Returns:
        A :class:`PrivateTraining` that unpacks to ``(model, optimizer, loader)``.
    """
    if not isinstance(privacy, DPConfig):
        raise ConfigError.bad("privacy", type(privacy).__name__, "a tdg.DPConfig")
    if not isinstance(loader, DataLoader):
        raise ConfigError.bad("loader", type(loader).__name__, "a torch.utils.data.DataLoader")
    if not isinstance(accumulation, int) or isinstance(accumulation, bool) or accumulation < 1:
        raise ConfigError.bad("accumulation", accumulation, "a positive integer (micro-batches per optimizer step)")
    problems = loader_sampling_problems(loader)
    approx = None
    if problems and not privacy.accept_approximate:
        raise ConfigError.collect(problems + ["or set DPConfig(accept_approximate=True) to keep this loader; the "
                                              "report then marks the guarantee approximate"], "loader under DP-SGD")
    dataset = loader.dataset
    try:
        num_rows = len(dataset)
    except TypeError:
        raise ConfigError("DP-SGD needs the dataset size to set the sampling rate: use a map-style dataset with "
                          "__len__") from None
    batch_size = loader.batch_size or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    if not batch_size:
        raise ConfigError("DP-SGD needs the loader's batch_size (the expected logical batch) to set the sampling "
                          "rate; build the DataLoader with batch_size=")
    if unit_ids is not None and len(unit_ids) != num_rows:
        raise ConfigError(f"unit_ids has {len(unit_ids)} entries for {num_rows} rows: give one unit id per row")
    num_units = len(set(int(u) for u in unit_ids)) if unit_ids is not None else num_rows
    if num_units < 1:
        raise ConfigError("the dataset is empty: nothing to train on")
    q = batch_size / num_units
    if problems:
        approx = "; ".join(problems)
        sampler = None
        new_loader = loader
    else:
        steps_per_epoch = max(1, int(math.ceil(num_units / batch_size)))
        sampler = PoissonBatchSampler(num_rows, sample_rate=min(q, 1.0),
                                      micro_batches_per_epoch=steps_per_epoch * accumulation,
                                      accumulation=accumulation, unit_ids=unit_ids, seed=privacy.seed)
        new_loader = poisson_loader(loader, sampler)
    preflight_batch = None
    if privacy.preflight and num_rows > 0:
        # two rows show what a preflight needs (a layer that mixes rows, an input broadcast over the batch) at a
        # quarter of the memory of eight: Opacus's per-sample gradients of the check cost rows x parameters
        k = min(num_rows, 2)
        preflight_batch = loader.collate_fn([dataset[i] for i in range(k)])
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        preflight_batch = to_device(preflight_batch, dev)
    engine = DPEngine(model, optimizer, privacy, num_units=num_units, sample_rate=q, sampler=sampler,
                      preflight_batch=preflight_batch, forward=forward, loss_fn=loss_fn, approximate_reason=approx,
                      unit_ids_given=unit_ids is not None,
                      batch_stages=guard.batch_stages if guard is not None else ())
    if sampler is not None and privacy.target_epsilon is not None and privacy.enforce_budget:
        # steps accounted before this sampler's draws (a loaded ledger moves it): the loader stops before a step
        # that would exceed the budget instead of handing out a batch the optimizer must refuse
        engine.steps_before_sampler = engine.ledger.steps
        sampler.step_allowed = lambda n: engine.ledger.allows(engine.noise_multiplier, engine.sample_rate,
                                                              engine.steps_before_sampler + n)
    if approx:
        warnings.warn(f"DP-SGD with an approximate guarantee: {approx}", stacklevel=2)
    return PrivateTraining(model, optimizer, new_loader, engine)
