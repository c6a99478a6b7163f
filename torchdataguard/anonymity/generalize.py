"""Generalisation and suppression: coarsen quasi-identifiers by levels, remove small classes, and search the
levels that reach a target k (:func:`anonymize`).

Example:
    >>> import pandas as pd
    >>> generalize(pd.DataFrame({"zip": ["13053", "14850"]}), {"zip": masking(3)})["zip"].tolist()
    ['13***', '14***']
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .metrics import class_sizes, k_anonymity
from .table import as_frame, check_targets, checked_columns, require_rows, same_kind

__all__ = ["AnonymizationResult", "Level", "anonymize", "generalize", "masking", "suppress"]

#: One generalisation level of a column: a bin width (numbers), a list of bin edges (numbers), a mapping
#: value -> generalised value (categories), a function, or ``"*"`` (every value becomes ``"*"``).
Level = Union[int, float, Sequence[float], Mapping[Any, Any], Callable[[Any], Any], str]


# ---------------------------------------------------------------------------------------------------
# generalisation and suppression
# ---------------------------------------------------------------------------------------------------
def masking(n: int, *, char: str = "*") -> Callable[[Any], str]:
    """A level that replaces the last ``n`` characters of a value by ``char`` (ZIP code 13053 -> 130**).

    Example:
        >>> masking(2)("13053")
        '130**'
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError.bad("n", n, "a positive number of characters to mask")

    def mask(v: Any) -> str:
        s = str(v)
        return s[:-n] + char * min(n, len(s)) if len(s) > n else char * len(s)

    mask.__name__ = f"masking({n})"
    return mask


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _apply_level(col: pd.Series, level: Level, name: str) -> pd.Series:
    """Generalise one column by one level (see :data:`Level`)."""
    if isinstance(level, str):
        if level != "*":
            raise ConfigError(f"level {level!r} for column {name!r}: the only string level is '*' (suppress the column)")
        return pd.Series(["*"] * len(col), index=col.index, dtype=object)
    if isinstance(level, Mapping):
        present = col.dropna().unique()
        unmapped = [v for v in present if v not in level]
        if unmapped:
            raise ConfigError(f"the hierarchy level for column {name!r} does not map {len(unmapped)} of its "
                              f"{len(present)} distinct values; every value in the column needs a generalisation "
                              f"(values not shown: they may be personal data)")
        return col.map(lambda v: level[v] if not (isinstance(v, float) and math.isnan(v)) else v)
    if callable(level):
        return col.map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else level(v))
    if isinstance(level, Real) and not isinstance(level, bool):
        width = float(level)
        if width <= 0:
            raise ConfigError.bad(f"bin width for {name!r}", level, "a positive number, e.g. 10 for decades")
        if not pd.api.types.is_numeric_dtype(col):
            raise ConfigError(f"column {name!r} is not numeric ({col.dtype}); give it a mapping or a function level "
                              f"instead of the bin width {level!r}")
        lo = np.floor(col.to_numpy(dtype=float) / width) * width
        labels = [None if np.isnan(a) else f"[{_fmt(a)}, {_fmt(a + width)})" for a in lo]
        return pd.Series(labels, index=col.index, dtype=object)
    if isinstance(level, Sequence):
        edges = sorted(float(e) for e in level)
        if len(edges) < 2:
            raise ConfigError(f"bin edges for {name!r} need at least two numbers, got {list(level)}")
        if not pd.api.types.is_numeric_dtype(col):
            raise ConfigError(f"column {name!r} is not numeric ({col.dtype}); bin edges need numbers")
        vals = col.to_numpy(dtype=float)
        idx = np.searchsorted(edges, vals, side="right") - 1
        labels = []
        for v, i in zip(vals, idx):
            if np.isnan(v):
                labels.append(None)
            elif i < 0:
                labels.append(f"< {_fmt(edges[0])}")
            elif i >= len(edges) - 1:
                labels.append(f">= {_fmt(edges[-1])}")
            else:
                labels.append(f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])})")
        return pd.Series(labels, index=col.index, dtype=object)
    raise ConfigError(f"level {level!r} for column {name!r} is not understood; use a bin width, a list of bin "
                      f"edges, a mapping, a function or '*'")


def generalize(data: Any, levels: Mapping[str, Level]) -> Any:
    """Generalise columns, one level each; returns the same kind of table as ``data`` (a copy).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"age": [23, 37, 41], "zip": ["13053", "13068", "14850"]})
        >>> generalize(df, {"age": 10, "zip": masking(3)}).to_dict("list")
        {'age': ['[20, 30)', '[30, 40)', '[40, 50)'], 'zip': ['13***', '13***', '14***']}
    """
    df = as_frame(data)
    checked_columns(df, list(levels), "levels", allow_empty=True)
    out = df.copy()
    for name, level in levels.items():
        out[name] = _apply_level(df[name], level, name)
    return same_kind(data, out)


def suppress(data: Any, quasi_identifiers: Sequence[str], k: int) -> Tuple[Any, int]:
    """Remove the records of every equivalence class smaller than ``k``; returns (table, records removed).

    Example:
        >>> import pandas as pd
        >>> table, n = suppress(pd.DataFrame({"a": [1, 1, 2]}), ["a"], 2)
        >>> (table["a"].tolist(), n)
        ([1, 1], 1)
    """
    check_targets(k, None, None)
    df = as_frame(data)
    keep = class_sizes(df, quasi_identifiers) >= k
    return same_kind(data, df[keep].reset_index(drop=True)), int((~keep).sum())


@dataclass(frozen=True)
class AnonymizationResult:
    """What :func:`anonymize` chose.

    Attributes:
        data: the generalised table without the suppressed records (same kind as the input).
        levels: column -> chosen level index (0 = unchanged, i = the i-th level given).
        suppressed: records removed because their class stayed smaller than k.
        k: k-anonymity of ``data``.
        nodes_checked: combinations of levels evaluated.
    """

    data: Any
    levels: Dict[str, int]
    suppressed: int
    k: int
    nodes_checked: int

    def to_dict(self) -> Dict[str, Any]:
        """Numbers only (for reports)."""
        return {"levels": dict(self.levels), "suppressed": self.suppressed, "k": self.k,
                "records": len(self.data), "nodes_checked": self.nodes_checked}


def anonymize(data: Any, quasi_identifiers: Sequence[str], k: int, *, hierarchies: Mapping[str, Sequence[Level]],
              max_suppression: float = 0.0, max_nodes: int = 100_000) -> AnonymizationResult:
    """Reach k-anonymity by full-domain generalisation plus suppression of at most ``max_suppression``.

    Every quasi-identifier gets a list of levels, from fine to coarse (level 0, the raw column, is
    implicit; a column without levels stays as it is). All combinations are searched by total height
    (the sum of level indices), lowest first; the first height with a combination whose small classes
    hold at most ``max_suppression`` of the records wins, ties broken by fewer suppressed records, then
    by less generalisation relative to each column's deepest level. The suppressed records are removed.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"age": [21, 24, 27, 33, 36, 38], "zip": ["13053", "13068", "13053", "14850",
        ...                    "14853", "14850"], "dx": ["flu", "cold", "flu", "flu", "cancer", "cold"]})
        >>> res = anonymize(df, ["age", "zip"], 3, hierarchies={"age": [10, 20], "zip": [masking(2), "*"]})
        >>> (res.levels, res.k, res.suppressed)
        ({'age': 1, 'zip': 1}, 3, 0)
        >>> res.data[["age", "zip"]].drop_duplicates().to_dict("records")
        [{'age': '[20, 30)', 'zip': '130**'}, {'age': '[30, 40)', 'zip': '148**'}]
    """
    check_targets(k, None, None)
    if not isinstance(max_suppression, Real) or not 0.0 <= float(max_suppression) <= 1.0:
        raise ConfigError.bad("max_suppression", max_suppression, "a share of records in [0, 1], e.g. 0.05")
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    extra = [c for c in hierarchies if c not in qi]
    if extra:
        raise ConfigError(f"hierarchies name columns {extra} that are not quasi-identifiers {qi}")
    depth = {c: len(hierarchies.get(c, ())) for c in qi}
    n_nodes = math.prod(d + 1 for d in depth.values())
    if n_nodes > max_nodes:
        raise ConfigError(f"{n_nodes} combinations of levels exceed max_nodes={max_nodes}; give fewer levels per "
                          f"column or raise max_nodes")
    # integer codes of every column at every level, computed once
    codes: Dict[Tuple[str, int], np.ndarray] = {}
    for c in qi:
        levels = [df[c]] + [_apply_level(df[c], lv, c) for lv in hierarchies.get(c, ())]
        for i, col in enumerate(levels):
            codes[(c, i)] = pd.factorize(col, use_na_sentinel=False)[0].astype(np.int64)
    budget = int(math.floor(float(max_suppression) * len(df) + 1e-9))
    nodes = sorted(itertools.product(*(range(depth[c] + 1) for c in qi)), key=sum)
    checked = 0
    best: Optional[Tuple[Tuple[int, float], Tuple[int, ...], np.ndarray]] = None
    for height, group in itertools.groupby(nodes, key=sum):
        for node in group:
            checked += 1
            key = np.zeros(len(df), dtype=np.int64)
            for c, lv in zip(qi, node):
                col = codes[(c, lv)]
                # re-number after each column so the combined key stays below len(df) ** 2
                key = pd.factorize(key * (int(col.max()) + 1) + col)[0].astype(np.int64)
            _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
            small = counts[inv] < k
            n_small = int(small.sum())
            if n_small > budget:
                continue
            loss = sum(lv / depth[c] for c, lv in zip(qi, node) if depth[c]) / len(qi)
            score = (n_small, loss)
            if best is None or score < best[0]:
                best = (score, node, ~small)
        if best is not None:
            break
    if best is None:
        raise ConfigError(f"no combination of the given levels reaches k={k} with at most {budget} suppressed "
                          f"records; add coarser levels (the coarsest can be '*') or raise max_suppression")
    _, node, keep = best
    chosen = {c: lv for c, lv in zip(qi, node)}
    out = df.copy()
    for c, lv in chosen.items():
        if lv:
            out[c] = _apply_level(df[c], hierarchies[c][lv - 1], c)
    out = out[keep].reset_index(drop=True)
    k_out = k_anonymity(out, qi) if len(out) else 0
    return AnonymizationResult(data=same_kind(data, out), levels=chosen, suppressed=int((~keep).sum()), k=k_out,
                               nodes_checked=checked)

