"""Training dynamics: per-example statistics from one training run (data maps, area under the margin),
label-issue detection and a next-epoch filter, keyed by ledger id.

Example:
    >>> import torchdataguard as tdg
    >>> tdg.TrainingDynamics(action="drop", from_epoch=2).config()["action"]
    'drop'
"""
from .dynamics import ACTIONS, DROP_REASON, TrainingDynamics
from .measures import DETECTORS, data_map_measures, regions
from .store import StatStore

__all__ = ["ACTIONS", "DETECTORS", "DROP_REASON", "StatStore", "TrainingDynamics", "data_map_measures", "regions"]
