"""Opacus's DP optimizer as the engine uses it (per-sample clipping and the secure-mode noise), and the release
of one step: Gaussian noise on the clipped sum, averaged by the expected batch.

The engine attaches to the user's optimizer; Opacus's ``DPOptimizer`` here only clips the per-sample gradients
the hooks clipper hands it (through the parameter attribute :data:`CLIPPED_INPUT_ATTR`) and draws the noise.

Example:
    >>> import torch
    >>> p = torch.nn.Parameter(torch.zeros(3))
    >>> opt = opacus_optimizer(torch.optim.SGD([p], lr=0.1), noise_multiplier=0.0, max_grad_norm=1.0,
    ...                        expected_batch=2.0, secure_mode=False)
    >>> p.summed_grad = torch.ones(3)  # the clipped sum of the step
    >>> release_noisy_mean(opt, [p], noise_multiplier=0.0, max_grad_norm=1.0, expected_batch=2.0, secure_mode=False)
    >>> p.grad
    tensor([0.5000, 0.5000, 0.5000])
"""
from __future__ import annotations

from typing import Any, List

import torch

from ..errors import ConfigError

__all__ = ["CLIPPED_INPUT_ATTR", "opacus_optimizer", "release_noisy_mean"]

#: parameter attribute holding the per-unit gradients ``[units, ...]`` that Opacus's optimizer clips
CLIPPED_INPUT_ATTR = "_tdg_gs"


def opacus_optimizer(optimizer: torch.optim.Optimizer, *, noise_multiplier: float, max_grad_norm: float,
                     expected_batch: float, secure_mode: bool) -> Any:
    """An Opacus ``DPOptimizer`` over ``optimizer`` that clips the per-unit gradients in
    :data:`CLIPPED_INPUT_ATTR` (not Opacus's own ``grad_sample``) into ``p.summed_grad``."""
    from opacus.optimizers import DPOptimizer

    class _Clipper(DPOptimizer):
        def _get_flat_grad_sample(self, p):
            return getattr(p, CLIPPED_INPUT_ATTR)

    gen = None
    if secure_mode:
        try:
            import torchcsprng as csprng  # type: ignore
        except ImportError:
            raise ConfigError("secure_mode=True needs torchcsprng (pip install torchcsprng)") from None
        gen = csprng.create_random_device_generator("/dev/urandom")
    return _Clipper(optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                    expected_batch_size=max(1, int(round(expected_batch))), loss_reduction="mean",
                    generator=gen, secure_mode=secure_mode)


def release_noisy_mean(opt: Any, params: List[torch.nn.Parameter], *, noise_multiplier: float,
                       max_grad_norm: float, expected_batch: float, secure_mode: bool) -> None:
    """Write ``(summed_grad + N(0, (sigma C)^2)) / expected_batch`` into ``p.grad`` of every parameter that still
    requires a gradient (a parameter frozen since set-up gets no gradient); ``summed_grad`` is consumed."""
    trained = [p for p in params if p.requires_grad]
    for p in params:
        if not p.requires_grad:  # frozen since make_private: not trained, nothing released for it
            p.summed_grad = p.grad = None
        elif getattr(p, "summed_grad", None) is None:
            p.summed_grad = torch.zeros_like(p)
    if secure_mode:
        opt.add_noise()
        for p in trained:
            p.grad = p.grad / expected_batch
            p.summed_grad = None
        return
    # Opacus's Gaussian mechanism (std = noise_multiplier x max_grad_norm per coordinate), drawn straight into the
    # gradient buffer: one pass fewer over every parameter than zeros + normal + add
    std = noise_multiplier * max_grad_norm
    for p in trained:
        g = torch.empty_like(p.summed_grad)
        if std > 0:
            g.normal_(0.0, std, generator=opt.generator)
        else:
            g.zero_()
        p.grad = g.add_(p.summed_grad).div_(expected_batch).view_as(p)
        p.summed_grad = None
