"""The guard's counters as the training integrations log them (Trainer and Lightning callbacks).

Example:
    >>> import torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    >>> _ = guard.wrap(["a", "a"])
    >>> guard_counters(guard, "tdg")
    {'tdg/seen': 2, 'tdg/kept': 1, 'tdg/dropped': 1, 'tdg/dropped/duplicate/exact': 1}
"""
from __future__ import annotations

from typing import Any, Dict

__all__ = ["guard_counters"]


def guard_counters(guard: Any, prefix: str) -> Dict[str, float]:
    """``<prefix>/seen``, ``/kept``, ``/dropped``, ``/dropped/<reason>`` and every stage counter (record stages'
    from the ledger, batch stages' from the stages), never the values detected."""
    led = guard.ledger
    out: Dict[str, float] = {f"{prefix}/seen": led.seen, f"{prefix}/kept": led.kept, f"{prefix}/dropped": led.dropped}
    for reason, n in sorted(led.by_reason.items()):
        out[f"{prefix}/dropped/{reason}"] = n
    counts = dict(led.counts)
    for st in guard.batch_stages:
        for key, v in st.counters().items():
            counts[key] = counts.get(key, 0) + v
    for key, v in sorted(counts.items()):
        out[f"{prefix}/{key}"] = v
    return out
