"""Wrappers for torch and Hugging Face data."""
from .wrappers import GuardCollator, GuardedDataset, GuardedIterableDataset

__all__ = ["GuardCollator", "GuardedDataset", "GuardedIterableDataset"]
