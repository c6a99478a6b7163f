"""Stop-word lists of the quality rules (written for this project)."""
from __future__ import annotations

from typing import FrozenSet

__all__ = ["GOPHER_STOP_WORDS"]

#: The stop words of Gopher's stop-word rule (Rae et al. 2021, A.1.1): a document needs at least two of them.
GOPHER_STOP_WORDS: FrozenSet[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
