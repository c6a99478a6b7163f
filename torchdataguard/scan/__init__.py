"""Scanning a corpus before training: ``torchdataguard scan``.

* :func:`scan` (:mod:`.local`): stream a file through a Guard in this process;
* :func:`scan_ray` (:mod:`.ray`): the same outputs with Ray Data (``--engine ray``);
* :func:`build_stages` (:mod:`.stages`): the built-in stages by name;
* :mod:`.outputs`: the files of a scan and how it ends (exit codes).
"""
from .local import scan
from .ray import scan_ray
from .stages import build_stages

__all__ = ["build_stages", "scan", "scan_ray"]
