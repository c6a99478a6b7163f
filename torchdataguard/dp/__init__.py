"""DP-SGD through Opacus: the settings, the engine that wires it, and ``make_private`` for a plain loop.

Opacus computes the per-sample gradients (hooks attached to the model without wrapping it, so Hugging Face
models keep ``generate`` and ``save_pretrained``) and accounts for the noise; the default clipping mode,
book-keeping (:mod:`~torchdataguard.dp.clipping.bookkeeper`), gets the same clipped sum with one backward pass and is
checked against Opacus's per-sample gradients on the preflight batch before it is used.
This module wires those pieces so that the epsilon reported is what happened:

* **Sampling**: Poisson sampling by privacy unit (:mod:`~torchdataguard.dp.sampling`); the sampling rate
  accounted is the expected logical batch over the dataset size after filtering.
* **Clipping per micro-batch**: each physical micro-batch's per-sample gradients are clipped as soon as its
  backward pass ends and summed; noise is added once per logical step, so gradient accumulation neither
  keeps every per-sample gradient in memory nor changes the guarantee.
* **Loss scaling**: the per-sample gradients are rescaled so that the loop's own division of the loss (by the
  accumulation steps, or by the number of label tokens) does not shrink them before clipping.
* **Privacy units**: rows that share a unit id (the batch key ``"tdg_unit_ids"``, int64 ``[N]``, from the
  augmentation stages; or per-row unit ids given to the sampler) have their per-sample gradients averaged
  (augmentation views, ``unit_reduction="mean"``) or summed (several rows of one user, ``"sum"``) before
  clipping; a negative unit id marks a row that must not count. The key is popped before the model's forward.
* **Clipping modes**: ``"hooks"`` (per-sample gradients), ``"ghost"`` (ghost clipping: per-sample gradient norms
  without the gradients, then a second backward pass of the re-weighted per-sample losses), ``"bk"``
  (book-keeping: norms and clipped sum from one backward pass, units of several rows included) and ``"auto"``:
  book-keeping if every trained layer supports it and its per-row gradients add up to autograd's gradient on the
  preflight batch; else ghost when the per-sample losses can be read from the model's output (``logits`` and
  ``labels``) and no unit groups several rows (with per-layer fallback to per-sample gradients where ghost norms
  cost more or cannot work, e.g. tied weights); otherwise hooks.
* **Noise**: ``N(0, (sigma C)^2)`` per coordinate, drawn straight into the gradient buffer (Opacus's own
  ``_generate_noise`` under ``secure_mode``).
* **Budget**: with a ``target_epsilon``, no step is taken that would exceed it: the Poisson loader stops, and
  ``optimizer.step()`` refuses.
* **Every step is the one accounted, or it is refused** (``StateError``, nothing applied; :mod:`.stepguard`): a
  parameter that requires a gradient but is not clipped by the engine (unfrozen after set-up without
  :meth:`~torchdataguard.dp.engine.DPEngine.reattach`, or held by another optimizer), a backward pass of an eval-mode
  forward, micro-batches of two Poisson draws, and the first step of a run whose optimizer state or model folder
  shows DP training its ledger does not account.
* **Preflight** (:mod:`~torchdataguard.dp.preflight`, :mod:`~torchdataguard.dp.rowcheck`): modules,
  summed per-sample gradients, rows that influence each other, layers called twice; every pass draws the same
  random numbers (:func:`~torchdataguard.dp.stepchecks.same_draws`).

Where things are (read in this order): :mod:`.config` (:class:`DPConfig`), :mod:`.loop` (:func:`make_private`,
the plain-loop API), :mod:`.engine` (the hooks, the step), :mod:`.selection` (preflight passes, the choice of the
clipper), :mod:`.clipping` (one clipper per mode, registered by name; book-keeping's per-layer rules registered by
module type), :mod:`.micro` (micro-batches, units, loss scale), :mod:`.losses` (per-example losses),
:mod:`.stepguard` and :mod:`.stepchecks` (refusals), :mod:`.noise`, :mod:`.accounting` (the ledger),
:mod:`.epsilon` (PRV and RDP), :mod:`.sampling` (Poisson sampler), :mod:`.preflight` and :mod:`.rowcheck` (audits),
:mod:`.report` (the privacy section).

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
from .batch import UNIT_KEY
from .config import DPConfig
from .engine import DPEngine
from .losses import per_sample_loss
from .loop import PrivateTraining, make_private

__all__ = ["DPConfig", "DPEngine", "PrivateTraining", "UNIT_KEY", "make_private", "per_sample_loss"]
