"""Exact and near-duplicate filtering."""
from .exact import ExactDedup
from .near import NearDedup, candidate_probability, choose_bands

__all__ = ["ExactDedup", "NearDedup", "candidate_probability", "choose_bands"]
