"""Scanning a corpus before training: ``torchdataguard scan``.

* :func:`scan` (:mod:`.local`): stream a file through a Guard in this process;
* :func:`scan_ray` (:mod:`.ray`): the same outputs with Ray Data (``--engine ray``);
* :func:`build_stages` (:mod:`.stages`): the built-in stages by name;
* :mod:`.outputs`: the files of a scan and how it ends (exit codes).
"""
from typing import Any

from .local import scan
from .stages import build_stages

__all__ = ["build_stages", "scan", "scan_ray"]


def __getattr__(name: str) -> Any:
    """``scan_ray`` is imported on first use (it brings the distributed layer, unused by a local scan)."""
    if name == "scan_ray":
        from .ray import scan_ray

        return scan_ray
    if name == "ray":  # the submodule, as ``torchdataguard.scan.ray`` was an attribute before it was lazy
        import importlib

        return importlib.import_module(".ray", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
