"""The 64-bit mixer the hashing stages share (dedup shingles, decontamination n-grams).

Example:
    >>> import numpy as np
    >>> [int(v) for v in np_powers(3, 5)]
    [1, 3, 9, 27, 81]
    >>> int(np_mix64(np.array([0], dtype=np.uint64))[0]), np_mix64(np.array([1, 2], dtype=np.uint64)).dtype
    (0, dtype('uint64'))
"""
from __future__ import annotations

import numpy as np

__all__ = ["np_mix64", "np_powers"]

_U = np.uint64


def np_mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic); a new array."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U(30))
        x = x * _U(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U(27))
        x = x * _U(0x94D049BB133111EB)
        return x ^ (x >> _U(31))


def np_powers(base: int, n: int) -> np.ndarray:
    """``base**i mod 2**64`` for ``i < n``, as a new uint64 array.

    Built by doubling: the powers ``k .. 2k - 1`` are the first ``k`` times ``base**k``, so the work is ``n``
    vectorised multiplications in about ``log2(n)`` NumPy calls. ``np.cumprod`` gives the same values one
    multiplication after another (a dependency chain): 2-7 times slower on the 0.5-2.3 million powers a
    ``torchdataguard scan`` needs (8-68 ms against 3-10 ms a run; docs/speed.md, ninth session).
    """
    out = np.empty(n, dtype=_U)
    if n:
        out[0] = 1
    base %= 1 << 64
    k = 1
    with np.errstate(over="ignore"):
        while k < n:
            s = min(k, n - k)
            np.multiply(out[:s], _U(pow(base, k, 1 << 64)), out=out[k : k + s])
            k += s
    return out
