"""Exact and near-duplicate filtering."""
from .exact import ExactDedup
from .near import NearDedup
from .near_config import NearDedupConfig, candidate_probability, choose_bands

__all__ = ["ExactDedup", "NearDedup", "NearDedupConfig", "candidate_probability", "choose_bands"]
