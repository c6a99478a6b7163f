"""The sections of the HTML report, one module each; importing this package registers them all.

A section module registers its renderer with :func:`torchdataguard.report.html.context.section`, naming its
anchor, heading, place on the page (``order``) and the report keys it shows. Current order: summary 10,
training 20, drops 30, languages 40, scores 50, duplicates 60, pii 70, augmentation 80, counters 90,
privacy 100, audit 105, contamination 106, dynamics 107, leakage 110, distributed 115, stages 120, run 130, other 1000.
"""
from . import (audit, augmentation, contamination, counters, distributed, drops, duplicates, dynamics, languages, leakage, other, pii, privacy,  # noqa: F401
               run, scores, stages, summary, training)

__all__ = ["audit", "augmentation", "contamination", "counters", "distributed", "drops", "duplicates", "dynamics", "languages", "leakage", "other", "pii",
           "privacy", "run", "scores", "stages", "summary", "training"]
