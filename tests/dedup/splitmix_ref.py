"""SplitMix64's finaliser written out in plain Python, for the keyer's reference tests."""
from __future__ import annotations

M64 = (1 << 64) - 1


def splitmix(x: int) -> int:
    """The 64-bit mix the keyer applies to each shingle hash (after its seed's salt)."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def minhash_bins(xs, num_perm: int):
    """``(bins, filled)``: each bin's lowest 32-bit value among the mixed hashes ``xs`` (bin from the high 32
    bits; ``None`` when empty) and the filled bins in order."""
    bins = [None] * num_perm
    for x in xs:
        b, v = (x >> 32) % num_perm, x & 0xFFFFFFFF
        bins[b] = v if bins[b] is None else min(bins[b], v)
    return bins, [b for b in range(num_perm) if bins[b] is not None]
