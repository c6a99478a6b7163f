"""Benchmark decontamination while streaming: drop training text that shares n-grams with evaluation sets.

Modules: :mod:`.normalize` (GPT-3 normalisation), :mod:`.ngrams` (n-gram hashes), :mod:`.evalsets`
(evaluation sets as items), :mod:`.index` (the n-gram hash set on the device), :mod:`.matching` (hits
verified, overlaps per item), :mod:`.stage` (the ``decontaminate`` stage).
Depends only on ``core`` and the base modules.
"""
from .stage import Decontaminate

__all__ = ["Decontaminate"]
