"""Privacy of the data: PII scrubbing (:mod:`.pii`, :mod:`.detectors`) and tabular anonymity metrics (:mod:`.anonymity`).

``torchdataguard.privacy.anonymity`` is imported on first use (it needs pandas).
"""
import importlib as _importlib

_LAZY = ("anonymity", "detectors", "pii")


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
