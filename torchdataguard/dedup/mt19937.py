"""The 32-bit Mersenne Twister (MT19937) in NumPy, without ``numpy.random``.

:func:`mt_words` gives the raw 32-bit outputs of the generator seeded as torch's CPU generator and NumPy's legacy
``RandomState`` seed it (the low 32 bits of the seed, Matsumoto and Nishimura's ``init_genrand``). The dedup
constants drawn from it (:func:`~.minhash.mt_randint`) were drawn with ``numpy.random`` before, whose import took
5-7 ms of every scan (sixteenth session); tests pin the words to both.

The state words ``x[0..623]`` and the outputs before tempering ``x[624], x[625], ...`` follow one recurrence,
``x[n] = x[n - 227] ^ twist(x[n - 624], x[n - 623])``, so a block of up to 623 new words takes the twisted part
at once and the ``x[n - 227]`` part in three strided steps.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mt_words"]

_N, _M = 624, 397
_LAG = _N - _M  # 227
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER, _LOWER = np.uint32(0x80000000), np.uint32(0x7FFFFFFF)


def _seeded(seed: int) -> np.ndarray:
    """The 624 state words after ``init_genrand(seed & 0xffffffff)``."""
    mt = [int(seed) & 0xFFFFFFFF]
    for i in range(1, _N):
        p = mt[-1]
        mt.append((1812433253 * (p ^ (p >> 30)) + i) & 0xFFFFFFFF)
    return np.array(mt, dtype=np.uint32)


def mt_words(seed: int, n: int) -> np.ndarray:
    """uint32 [n]: the first ``n`` outputs of MT19937 seeded with the low 32 bits of ``seed`` (what
    ``np.random.RandomState(seed & 0xffffffff).randint(0, 2**32, n, dtype=np.uint32)`` gives, and torch's CPU
    generator draws from).

    Example:
        >>> mt_words(5489, 2).tolist()  # the reference implementation's first outputs for its default seed
        [3499211612, 581869302]
    """
    n = int(n)
    x = np.empty(_N + max(n, 0), dtype=np.uint32)
    x[:_N] = _seeded(seed)
    s = _N
    while s < x.size:
        e = min(s + _N - 1, x.size)  # 623 words at most: each twist reads x[n - 623], written before the block
        y = (x[s - _N : e - _N] & _UPPER) | (x[s - _N + 1 : e - _N + 1] & _LOWER)
        g = y >> np.uint32(1)
        g ^= (y & np.uint32(1)) * _MATRIX_A
        for a in range(s, e, _LAG):  # x[n] = x[n - 227] ^ g: each step reads the words the step before wrote
            b = min(a + _LAG, e)
            np.bitwise_xor(x[a - _LAG : b - _LAG], g[a - s : b - s], out=x[a:b])
        s = e
    y = x[_N:]
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y
