"""The 64-bit mixer the hashing stages share (dedup shingles, decontamination n-grams).

Example:
    >>> import numpy as np
    >>> int(np_mix64(np.array([0], dtype=np.uint64))[0]), np_mix64(np.array([1, 2], dtype=np.uint64)).dtype
    (0, dtype('uint64'))
"""
from __future__ import annotations

import numpy as np

__all__ = ["np_mix64"]

_U = np.uint64


def np_mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic); a new array."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U(30))
        x = x * _U(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U(27))
        x = x * _U(0x94D049BB133111EB)
        return x ^ (x >> _U(31))
