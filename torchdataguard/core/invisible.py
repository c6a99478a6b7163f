"""The characters both dedup stages leave out as if they were not there (:data:`INVISIBLE_RANGES`): the format
characters and the other default-ignorable code points, as inclusive ranges of code points.

Example:
    >>> any(lo <= 0xFE0F <= hi for lo, hi in INVISIBLE_RANGES)  # variation selector-16 (emoji presentation)
    True
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable, List, Mapping, Tuple

__all__ = ["FORMAT_RANGES", "IGNORABLE_RANGES", "INVISIBLE_RANGES", "INVISIBLE_VERSION", "class_body", "merged_ranges",
           "warn_older_state"]

#: the invisible format characters (inclusive ranges): Unicode 14's category ``Cf`` less the prepended
#: concatenation marks, which are visible signs (U+0600-U+0605, U+06DD, U+070F, U+0890-U+0891, U+08E2,
#: U+110BD, U+110CD). Written out so that hashes do not change with Python's Unicode version.
FORMAT_RANGES: Tuple[Tuple[int, int], ...] = (
    (0x00AD, 0x00AD), (0x061C, 0x061C), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F))
#: the other default-ignorable code points (Unicode 15.1's ``Default_Ignorable_Code_Point`` that are not
#: :data:`FORMAT_RANGES`): the combining grapheme joiner U+034F, the Hangul fillers U+115F, U+1160, U+3164 and
#: U+FFA0, the Khmer inherent vowels U+17B4-U+17B5, the Mongolian free variation selectors U+180B-U+180D and
#: U+180F, the variation selectors U+FE00-U+FE0F and U+E0100-U+E01EF (emoji and ideographic variants), and the
#: code points reserved as default-ignorable (U+2065, U+FFF0-U+FFF8, the rest of U+E0000-U+E0FFF). A renderer
#: shows nothing for them, so a copy with them inserted looks like the text itself (until 2026-12-07 such a copy
#: passed both dedup stages as a new text). Written out, as above.
IGNORABLE_RANGES: Tuple[Tuple[int, int], ...] = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F), (0x2065, 0x2065),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0000), (0xE0002, 0xE001F),
    (0xE0080, 0xE0FFF))
#: what both dedup stages leave out as if it were not there: :data:`FORMAT_RANGES` and :data:`IGNORABLE_RANGES`
INVISIBLE_RANGES: Tuple[Tuple[int, int], ...] = FORMAT_RANGES + IGNORABLE_RANGES

#: what a dedup stage's state records as the characters its keys left out (a state without it is older)
INVISIBLE_VERSION = "format+default-ignorable"


def warn_older_state(stage: str, state: Mapping[str, Any]) -> None:
    """Warn when a dedup stage's saved ``state`` was written before the default-ignorable characters were left out:
    a text holding one that was indexed before the save has other keys now, so a copy of it read after the resume
    is not found as its duplicate (other texts are not affected)."""
    if state and state.get("invisible") != INVISIBLE_VERSION:
        warnings.warn(f"{stage} state was saved before the dedup stages left out variation selectors, the combining "
                      f"grapheme joiner and the Hangul fillers (2026-12-07): a text holding one of them that was indexed "
                      f"before the save is keyed differently now, so a copy of it read after this resume is not found as "
                      f"its duplicate (texts without them are not affected); start a fresh index to rule that out",
                      RuntimeWarning, stacklevel=3)


def class_body(ranges: Iterable[Tuple[int, int]]) -> str:
    """The inside of a regular-expression class of the inclusive code-point ``ranges`` (BMP code points as ``\\u``,
    others as ``\\U``: a class of BMP characters only compiles to a bitmap, the quickest to scan).

    Example:
        >>> class_body([(0x200B, 0x200F), (0xE0100, 0xE01EF)])
        '\\\\u200b-\\\\u200f\\\\U000e0100-\\\\U000e01ef'
    """
    def esc(c: int) -> str:
        return f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"

    return "".join(f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges)


def merged_ranges(ranges: Iterable[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """The inclusive ``ranges`` sorted, those that touch or overlap joined (fewer ranges: a quicker class).

    Example:
        >>> merged_ranges([(5, 5), (1, 3), (4, 4), (9, 10)])
        [(1, 5), (9, 10)]
    """
    out: List[Tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out
