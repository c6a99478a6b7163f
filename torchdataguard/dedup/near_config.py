"""Settings of :class:`~torchdataguard.dedup.near.NearDedup` and the band arithmetic they are checked with."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Tuple

from ..errors import ConfigError
from .hashing import DEFAULT_ABUGIDA_NGRAM, DEFAULT_CHAR_NGRAM, TEXT_SHINGLES
from .smallsets import exact_limits

__all__ = ["NearDedupConfig", "candidate_probability", "choose_bands", "default_exact_below"]


def candidate_probability(jaccard: float, bands: int, rows: int, bits: int = 4) -> float:
    """Probability that two documents with Jaccard ``jaccard`` share at least one band of b-bit values.

    Example:
        >>> round(candidate_probability(0.8, 16, 8), 3)
        0.966
    """
    p = jaccard + (1 - jaccard) / (2**bits)
    return 1.0 - (1.0 - p**rows) ** bands


def choose_bands(num_perm: int, threshold: float, target_recall: float = 0.9) -> int:
    """The fewest bands (least memory) whose candidate probability at ``threshold`` reaches ``target_recall``.

    Only divisors of ``num_perm`` are considered; if none reaches the target, the best one is returned.

    Example:
        >>> choose_bands(128, 0.8)
        16
    """
    divisors = [b for b in range(1, num_perm + 1) if num_perm % b == 0]
    for b in divisors:
        if candidate_probability(threshold, b, num_perm // b) >= target_recall:
            return b
    return max(divisors, key=lambda b: candidate_probability(threshold, b, num_perm // b))


def default_exact_below(threshold: float) -> int:
    """``ceil(9 / threshold)``: the fewest distinct shingles from which the 4-bit estimate is trusted.

    Measured (benchmarks/near_short_texts.py, exact enumeration over the 4-bit values for 1-8 shingles): a
    pair of unrelated documents with ``k`` shingles each passes verification with probability about
    ``10 ** (-2 * threshold * k)`` or less (k = 1: 1/16 at any threshold; k = 8 at 0.8: 2e-14), so from
    ``9 / threshold`` shingles on it is below 1e-18 per pair.

    Example:
        >>> default_exact_below(0.8), default_exact_below(0.5)
        (12, 18)
    """
    return max(2, math.ceil(9.0 / float(threshold) - 1e-9))


@dataclass
class NearDedupConfig:
    """Settings of :class:`NearDedup` (checked in ``__post_init__``)."""

    threshold: float = 0.8
    num_perm: int = 128
    bands: Optional[int] = None
    ngram: int = 5
    shingles: Literal["auto", "words", "tokens"] = "auto"
    token_field: str = "input_ids"
    seed: int = 1
    exact_below: Optional[int] = None
    text_shingles: Literal["auto", "words", "chars"] = "auto"
    char_ngram: Optional[int] = None
    abugida_ngram: Optional[int] = None

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not (0 < self.threshold <= 1):
            problems.append(f"threshold={self.threshold!r}: expected a float in (0, 1], e.g. 0.8")
        if isinstance(self.num_perm, bool) or not isinstance(self.num_perm, int) or self.num_perm < 8 or self.num_perm % 2:
            problems.append(f"num_perm={self.num_perm!r}: expected an even integer >= 8, e.g. 128")
        if self.bands is not None:
            if isinstance(self.bands, bool) or not isinstance(self.bands, int) or self.bands < 1:
                problems.append(f"bands={self.bands!r}: expected a positive integer or None (chosen for recall)")
            elif isinstance(self.num_perm, int) and self.num_perm % self.bands:
                divs = [b for b in range(1, self.num_perm + 1) if self.num_perm % b == 0] if self.num_perm > 0 else []
                problems.append(f"bands={self.bands}: num_perm={self.num_perm} is not divisible by it; "
                                f"use one of {divs} or bands=None")
        if isinstance(self.ngram, bool) or not isinstance(self.ngram, int) or self.ngram < 1:
            problems.append(f"ngram={self.ngram!r}: expected a positive integer, e.g. 5")
        threshold_ok = not (isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float))
                            or not (0 < self.threshold <= 1))
        if self.exact_below is not None and threshold_ok:
            least = default_exact_below(self.threshold)
            if isinstance(self.exact_below, bool) or not isinstance(self.exact_below, int) or not (
                    least <= self.exact_below <= 4096):
                problems.append(f"exact_below={self.exact_below!r}: expected None (= {least} at threshold "
                                f"{self.threshold}) or an integer in [{least}, 4096]; with fewer shingles the 4-bit "
                                f"estimate lets unrelated texts pass as duplicates (about 10**(-2 * threshold * k) "
                                f"per pair of k-shingle texts)")
        if self.shingles not in ("auto", "words", "tokens"):
            problems.append(f"shingles={self.shingles!r}: expected 'auto', 'words' or 'tokens'")
        if self.text_shingles not in TEXT_SHINGLES:
            problems.append(f"text_shingles={self.text_shingles!r}: expected 'auto' (characters for scripts written "
                            f"without spaces, words elsewhere), 'words' (word n-grams only, as before script-aware "
                            f"shingles) or 'chars' (character n-grams only)")
        elif self.text_shingles == "words" and self.char_ngram is not None:
            problems.append(f"char_ngram={self.char_ngram!r}: text_shingles='words' shingles no characters; leave "
                            f"char_ngram=None or use text_shingles='auto' or 'chars'")
        if self.char_ngram is not None and (isinstance(self.char_ngram, bool) or not isinstance(self.char_ngram, int)
                                            or not 1 <= self.char_ngram <= 32):
            problems.append(f"char_ngram={self.char_ngram!r}: expected None (= {DEFAULT_CHAR_NGRAM}) or an integer "
                            f"in [1, 32]")
        if self.abugida_ngram is not None and (self.text_shingles != "auto" or isinstance(self.abugida_ngram, bool)
                                               or not isinstance(self.abugida_ngram, int)
                                               or not 1 <= self.abugida_ngram <= 32):
            problems.append(f"abugida_ngram={self.abugida_ngram!r}: expected None (= {DEFAULT_ABUGIDA_NGRAM} with "
                            f"text_shingles='auto', the only shingling that uses it) or an integer in [1, 32]")
        if problems:
            raise ConfigError.collect(problems, "NearDedup settings")
        if self.bands is None:
            self.bands = choose_bands(self.num_perm, float(self.threshold))
        if self.exact_below is None:
            self.exact_below = default_exact_below(float(self.threshold))
        if self.char_ngram is None and self.text_shingles != "words":
            self.char_ngram = DEFAULT_CHAR_NGRAM
        if self.abugida_ngram is None and self.text_shingles == "auto":
            self.abugida_ngram = DEFAULT_ABUGIDA_NGRAM

    @property
    def rows(self) -> int:
        return self.num_perm // int(self.bands)

    @property
    def limits(self) -> Tuple[int, int, int]:
        """``(exact_below, K2, K3)``: see :func:`~torchdataguard.dedup.smallsets.exact_limits`."""
        return exact_limits(float(self.threshold), int(self.exact_below))
