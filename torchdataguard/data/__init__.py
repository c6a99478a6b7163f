"""Wrapping data: the one ``wrap`` dispatcher, torch and Hugging Face wrappers, the worker decision service.

Importing this package registers the ``wrap`` handlers (:mod:`.torch`, :mod:`.hf`) and the guard's
``wrap`` and ``collator`` hooks.
"""
from . import hf, torch  # noqa: F401  (register their wrap handlers)
from .collate import GuardCollator
from .torch import GuardedDataset, GuardedIterableDataset

__all__ = ["GuardCollator", "GuardedDataset", "GuardedIterableDataset"]
