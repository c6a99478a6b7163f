"""torchdataguard: trust your fine-tuning data.

Streaming dedup, quality filtering, PII scrubbing, augmentation and DP-SGD for PyTorch, with every
example accounted for.

Example:
    >>> import torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
    >>> guard.wrap(["same text here", "Same text here", "other"])
    ['same text here', 'other']
"""
from .augment import CutMix, ImageAugment, MixUp, Multiplicity, TextAugment, TokenAugment
from .core.guard import Guard
from .core.ledger import Ledger, QuarantineSink
from .core.stage import BatchStage, Drop, Example, Filter, IndexStage, RecordStage, Rewriter, Stage, register_stage
from .dedup.exact import ExactDedup
from .dedup.near import NearDedup
from .distributed import DistributedGuard
from .errors import ConfigError, GuardError, GuardInputError, StateError
from .pii.scrubber import PIIScrubber
from .quality.filter import QualityFilter
from .quality.langid import LanguageID
from .quality.normalize import Normalize
from .integrations.trainer import GuardCallback
from .integrations.dp_trainer import DPCallback
from .dp.config import DPConfig
from .dp.loop import make_private

from .version import __version__

__all__ = sorted([
    "BatchStage",
    "ConfigError",
    "CutMix",
    "DPCallback",
    "DPConfig",
    "DistributedGuard",
    "Drop",
    "ExactDedup",
    "Example",
    "Filter",
    "Guard",
    "GuardCallback",
    "GuardError",
    "GuardInputError",
    "ImageAugment",
    "IndexStage",
    "LanguageID",
    "Ledger",
    "MixUp",
    "Multiplicity",
    "NearDedup",
    "Normalize",
    "PIIScrubber",
    "QualityFilter",
    "QuarantineSink",
    "RecordStage",
    "Rewriter",
    "Stage",
    "StateError",
    "TextAugment",
    "TokenAugment",
    "make_private",
    "register_stage",
])
