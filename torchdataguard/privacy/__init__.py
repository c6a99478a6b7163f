"""Privacy: of the data (PII scrubbing in :mod:`.pii` and :mod:`.detectors`, synthetic test values in
:mod:`.synthetic`, tabular anonymity metrics in :mod:`.anonymity`) and of the model (DP-SGD: :mod:`.dp`,
:mod:`.accounting`, :mod:`.sampling`, :mod:`.preflight`).

Submodules named in ``_LAZY`` are imported on first attribute access (``tdg.privacy.anonymity`` needs pandas).
"""
import importlib as _importlib

_LAZY = ("anonymity", "detectors", "pii", "synthetic")


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
