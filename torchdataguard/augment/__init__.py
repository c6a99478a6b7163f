"""Augmentation: token-level and image batches on the device, word-level records, MixUp/CutMix, multiplicity.

Batch stages (:class:`TokenAugment`, :class:`ImageAugment`, :class:`MixUp`, :class:`CutMix`,
:class:`Multiplicity`) run on a collated batch where it lives (``guard.apply_batch(batch)`` or the Trainer
callback's hook on the GPU; ``guard.collator(...)`` in DataLoader workers on the CPU). The record stage
:class:`TextAugment` rewrites one text at a time. ``"tdg_unit_ids"`` (:data:`UNIT_IDS_KEY`) is the batch
key through which :class:`Multiplicity` hands privacy units to the DP layer; remove it before the model's
forward with :func:`pop_unit_ids`.
"""
from .image import CutMix, ImageAugment, ImageAugmentSettings, MixUp
from .multiplicity import UNIT_IDS_KEY, Multiplicity, pop_unit_ids
from .text import TextAugment, TextAugmentSettings
from .token import AugmentStage, AugmentStream, TokenAugment, TokenAugmentSettings

__all__ = [
    "AugmentStage",
    "AugmentStream",
    "CutMix",
    "ImageAugment",
    "ImageAugmentSettings",
    "MixUp",
    "Multiplicity",
    "TextAugment",
    "TextAugmentSettings",
    "TokenAugment",
    "TokenAugmentSettings",
    "UNIT_IDS_KEY",
    "pop_unit_ids",
]
