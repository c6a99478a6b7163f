"""torchdataguard: trust your fine-tuning data.

Streaming dedup, quality filtering, PII scrubbing, augmentation and DP-SGD for PyTorch, with every
example accounted for.

Example:
    >>> import torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
    >>> guard.wrap(["same text here", "Same text here", "other"])
    ['same text here', 'other']
"""
from typing import Any, Dict, List

from .version import __version__

#: every public name and the module that defines it. ``import torchdataguard`` imports none of them (it costs
#: about what ``import torch`` costs, measured by benchmarks/import_time.py); each is imported on first use
#: (``tdg.Guard``, ``from torchdataguard import Guard``), and the integrations import ``transformers`` only then.
_LAZY: Dict[str, str] = {
    "BatchStage": "torchdataguard.core.stage",
    "ConfigError": "torchdataguard.errors",
    "CutMix": "torchdataguard.augment",
    "DPCallback": "torchdataguard.integrations.dp_trainer",
    "Decontaminate": "torchdataguard.decontam",
    "DPConfig": "torchdataguard.dp.config",
    "DistributedGuard": "torchdataguard.distributed",
    "Drop": "torchdataguard.core.stage",
    "ExactDedup": "torchdataguard.dedup.exact",
    "Example": "torchdataguard.core.stage",
    "Filter": "torchdataguard.core.stage",
    "Guard": "torchdataguard.core.guard",
    "GuardCallback": "torchdataguard.integrations.trainer",
    "GuardError": "torchdataguard.errors",
    "GuardInputError": "torchdataguard.errors",
    "ImageAugment": "torchdataguard.augment",
    "IndexStage": "torchdataguard.core.stage",
    "LanguageID": "torchdataguard.quality.langid",
    "Ledger": "torchdataguard.core.ledger",
    "MixUp": "torchdataguard.augment",
    "Multiplicity": "torchdataguard.augment",
    "NearDedup": "torchdataguard.dedup.near",
    "Normalize": "torchdataguard.quality.normalize",
    "PIIScrubber": "torchdataguard.pii.scrubber",
    "PrivacyAudit": "torchdataguard.audit",
    "QualityFilter": "torchdataguard.quality.filter",
    "QuarantineSink": "torchdataguard.core.quarantine",
    "RecordStage": "torchdataguard.core.stage",
    "Rewriter": "torchdataguard.core.stage",
    "Stage": "torchdataguard.core.stage",
    "StateError": "torchdataguard.errors",
    "TrainingDynamics": "torchdataguard.dynamics",
    "TextAugment": "torchdataguard.augment",
    "TokenAugment": "torchdataguard.augment",
    "make_private": "torchdataguard.dp.loop",
    "pop_example_ids": "torchdataguard.core.idtag",
    "register_stage": "torchdataguard.core.stage",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups do not come back here
        return value
    if not name.startswith("_"):  # a subpackage or module, e.g. tdg.augment.pop_unit_ids, imported on first use
        import importlib.util

        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'torchdataguard' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted([
    "BatchStage",
    "ConfigError",
    "CutMix",
    "DPCallback",
    "DPConfig",
    "Decontaminate",
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
