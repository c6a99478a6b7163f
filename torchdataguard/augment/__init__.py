"""Augmentation: token-level and image batches on the device, word-level records, MixUp/CutMix, multiplicity.

Batch stages (:class:`TokenAugment`, :class:`ImageAugment`, :class:`MixUp`, :class:`CutMix`,
:class:`Multiplicity`) run on a collated batch where it lives (``guard.apply_batch(batch)`` or the Trainer
callback's hook on the GPU; ``guard.collator(...)`` in DataLoader workers on the CPU). The record stage
:class:`TextAugment` rewrites one text at a time. ``"tdg_unit_ids"`` (:data:`UNIT_IDS_KEY`) is the batch
key through which :class:`Multiplicity` hands privacy units to the DP layer; remove it before the model's
forward with :func:`pop_unit_ids`.

Where things are: ``streams`` (the seeded per-sample random streams), ``base`` (:class:`AugmentStage` and
the batch helpers every stage shares), ``config`` (the settings of the token and image stages), ``token``,
``image`` (its operations registered by name) with ``kernels``, ``mix`` (MixUp, CutMix), ``multiplicity``
and ``text``.
"""
from .base import AugmentStage
from .config import ImageAugmentConfig, TokenAugmentConfig
from .image import ImageAugment
from .mix import CutMix, MixUp
from .multiplicity import UNIT_IDS_KEY, Multiplicity, pop_unit_ids
from .streams import AugmentStream
from .text import TextAugment, TextAugmentConfig
from .token import TokenAugment

__all__ = [
    "AugmentStage",
    "AugmentStream",
    "CutMix",
    "ImageAugment",
    "ImageAugmentConfig",
    "MixUp",
    "Multiplicity",
    "TextAugment",
    "TextAugmentConfig",
    "TokenAugment",
    "TokenAugmentConfig",
    "UNIT_IDS_KEY",
    "pop_unit_ids",
]
