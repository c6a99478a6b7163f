"""torchdataguard: trust your fine-tuning data.

Streaming dedup, quality filtering, PII scrubbing, augmentation and DP-SGD for PyTorch, with every
example accounted for.

Example:
    >>> import torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
    >>> guard.wrap(["same text here", "Same text here", "other"])
    ['same text here', 'other']
"""
from typing import Any, List

from . import data, report  # noqa: F401  (register the guard's wrap, collator and report hooks)
from .audit import PrivacyAudit
from .augment import CutMix, ImageAugment, MixUp, Multiplicity, TextAugment, TokenAugment
from .core.guard import Guard
from .core.idtag import pop_example_ids
from .core.hooks import HOOKS
from .core.ledger import Ledger
from .core.quarantine import QuarantineSink
from .core.stage import BatchStage, Drop, Example, Filter, IndexStage, RecordStage, Rewriter, Stage, register_stage
from .dedup.exact import ExactDedup
from .dedup.near import NearDedup
from .distributed import DistributedGuard
from .dp.config import DPConfig
from .dp.loop import make_private
from .dynamics import TrainingDynamics
from .errors import ConfigError, GuardError, GuardInputError, StateError
from .pii.scrubber import PIIScrubber
from .quality.filter import QualityFilter
from .quality.langid import LanguageID
from .quality.normalize import Normalize
from .version import __version__

HOOKS.register("save_report")(report.save_report)

#: names imported on first use: they import ``transformers`` (seconds), which ``import torchdataguard`` does not
_LAZY = {"GuardCallback": "torchdataguard.integrations.trainer", "DPCallback": "torchdataguard.integrations.dp_trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups do not come back here
        return value
    raise AttributeError(f"module 'torchdataguard' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "PrivacyAudit",
    "QualityFilter",
    "QuarantineSink",
    "RecordStage",
    "Rewriter",
    "Stage",
    "TrainingDynamics",
    "StateError",
    "TextAugment",
    "TokenAugment",
    "make_private",
    "pop_example_ids",
    "register_stage",
])
