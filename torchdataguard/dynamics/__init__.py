"""Training dynamics: per-example statistics from one training run (data maps, area under the margin),
label-issue detection and a next-epoch filter, keyed by ledger id.

Example:
    >>> import torchdataguard as tdg
    >>> tdg.TrainingDynamics(action="drop", from_epoch=2).config()["action"]
    'drop'
"""
from .dynamics import ACTIONS, DROP_REASON, TrainingDynamics
from .measures import DETECTORS, MIN_SEPARATION, bimodal_separation, data_map_measures, regions, two_groups
from .store import StatStore

__all__ = ["ACTIONS", "DETECTORS", "DROP_REASON", "MIN_SEPARATION", "StatStore", "TrainingDynamics", "bimodal_separation",
           "data_map_measures", "regions", "two_groups"]
