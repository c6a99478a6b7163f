"""Per-unit gradient clipping, one clipper object per mode, picked by name from :data:`CLIPPERS`:

* ``"hooks"`` (:mod:`.hooks`): Opacus's per-sample gradients, clipped after each backward pass;
* ``"ghost"`` (:mod:`.ghost`): ghost clipping, two backward passes, no per-sample gradient stored;
* ``"bk"`` (:mod:`.bk`, :mod:`.bookkeeper`): book-keeping, one backward pass; its per-layer rules are
  registered by module type (:mod:`.layers`).

The contract every clipper implements is :class:`~.base.Clipper`; ``DPConfig(clipping="auto")`` is decided by
:mod:`~torchdataguard.dp.selection`.

Example:
    >>> CLIPPERS.names()
    ['bk', 'ghost', 'hooks']
"""
from .base import CLIPPERS, Clipper, PreflightFacts
from .bk import BookKeepingClipper, bk_trial
from .bookkeeper import BookKeeper
from .ghost import GhostClipper
from .hooks import HooksClipper

__all__ = ["CLIPPERS", "BookKeeper", "BookKeepingClipper", "Clipper", "GhostClipper", "HooksClipper", "PreflightFacts",
           "bk_trial"]
