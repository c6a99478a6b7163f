"""Anonymity metrics for tables: k-anonymity, l-diversity, t-closeness, re-identification risk, and the
generalisation and suppression that reach a target k.

A table is a :class:`pandas.DataFrame` or a :class:`datasets.Dataset` (converted with ``to_pandas``). You
declare the *quasi-identifiers* (columns an attacker may know from elsewhere: age, ZIP code, sex ...)
and the *sensitive attributes* (what must not be learnt: diagnosis, salary ...). Records that agree on
every quasi-identifier form an *equivalence class*; a missing value is a value of its own.

* k-anonymity: the size of the smallest class (Samarati and Sweeney 1998).
* distinct l-diversity: the fewest distinct sensitive values in a class; entropy l-diversity: the
  smallest ``exp(entropy)`` of a class's sensitive values (Machanavajjhala et al. 2007).
* t-closeness: the largest Earth Mover's Distance between a class's sensitive distribution and the whole
  table's (Li, Li and Venkatasubramanian 2007): the *ordered* distance for numbers (values ranked, adjacent
  ranks 1/(m-1) apart) and the *equal* distance for categories (half the L1 distance).
* prosecutor re-identification risk: a record's risk is 1 / (size of its class); reported as the maximum,
  the average and the share of records above a threshold.

Summaries meant for reports (:meth:`AnonymityReport.to_dict`) hold numbers only, never table values.

Example:
    >>> import pandas as pd
    >>> from torchdataguard.privacy import anonymity as an
    >>> df = pd.DataFrame({"age": [23, 23, 35, 35, 35], "zip": ["13053"] * 2 + ["14850"] * 3,
    ...                    "disease": ["flu", "cancer", "flu", "flu", "cold"]})
    >>> an.k_anonymity(df, ["age", "zip"])
    2
    >>> an.distinct_l_diversity(df, ["age", "zip"], "disease")
    2
    >>> round(an.t_closeness(df, ["age", "zip"], "disease"), 3)  # 0.5 * (|.5-.6| + |.5-.2| + |0-.2|)
    0.3
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = [
    "AnonymityReport",
    "AnonymizationResult",
    "RiskSummary",
    "anonymize",
    "class_sizes",
    "distinct_l_diversity",
    "entropy_l_diversity",
    "equivalence_classes",
    "generalize",
    "k_anonymity",
    "l_diversity",
    "masking",
    "reidentification_risk",
    "report",
    "suppress",
    "t_closeness",
    "violations",
]

#: One generalisation level of a column: a bin width (numbers), a list of bin edges (numbers), a mapping
#: value -> generalised value (categories), a function, or ``"*"`` (every value becomes ``"*"``).
Level = Union[int, float, Sequence[float], Mapping[Any, Any], Callable[[Any], Any], str]
Distance = Literal["auto", "ordered", "equal"]


# ---------------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------------
def _is_hf(data: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        return False
    return isinstance(data, datasets.Dataset)


def _frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if _is_hf(data):
        return data.to_pandas()
    raise ConfigError(f"expected a pandas DataFrame or a datasets.Dataset, got {type(data).__name__}; "
                      f"convert it first, e.g. pandas.DataFrame(records)")


def _like(original: Any, df: pd.DataFrame) -> Any:
    """``df`` as the same kind of table as ``original``."""
    if _is_hf(original):
        import datasets

        return datasets.Dataset.from_pandas(df.reset_index(drop=True), preserve_index=False)
    return df


def _columns(df: pd.DataFrame, cols: Sequence[str] | str, what: str, *, allow_empty: bool = False) -> List[str]:
    if isinstance(cols, str):
        cols = [cols]
    cols = list(cols)
    if not cols and not allow_empty:
        raise ConfigError(f"{what} is empty; name at least one column of {list(df.columns)}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigError(f"{what} names columns {missing} that the table does not have; it has {list(df.columns)}")
    if len(set(cols)) != len(cols):
        raise ConfigError(f"{what} repeats a column: {cols}")
    return cols


def _nonempty(df: pd.DataFrame) -> None:
    if len(df) == 0:
        raise ConfigError("the table has no rows; anonymity metrics need at least one record")


def _class_ids(df: pd.DataFrame, qi: Sequence[str]) -> Tuple[np.ndarray, int]:
    """Equivalence-class id per row (missing values are values of their own) and the number of classes."""
    ids = df.groupby(list(qi), dropna=False, sort=False).ngroup().to_numpy()
    return ids, int(ids.max()) + 1 if len(ids) else 0


# ---------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------
def equivalence_classes(data: Any, quasi_identifiers: Sequence[str]) -> pd.DataFrame:
    """One row per equivalence class: its quasi-identifier values and its ``size``, smallest first.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"sex": ["F", "F", "M"], "age": [30, 30, 41]})
        >>> equivalence_classes(df, ["sex", "age"]).to_dict("records")
        [{'sex': 'M', 'age': 41, 'size': 1}, {'sex': 'F', 'age': 30, 'size': 2}]
    """
    df = _frame(data)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    out = df.groupby(qi, dropna=False, sort=False).size().reset_index(name="size")
    return out.sort_values("size", kind="stable").reset_index(drop=True)


def class_sizes(data: Any, quasi_identifiers: Sequence[str]) -> np.ndarray:
    """The size of each record's equivalence class, aligned with the rows.

    Example:
        >>> import pandas as pd
        >>> class_sizes(pd.DataFrame({"a": [1, 1, 2]}), ["a"]).tolist()
        [2, 2, 1]
    """
    df = _frame(data)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    ids, n = _class_ids(df, qi)
    return np.bincount(ids, minlength=n)[ids]


def k_anonymity(data: Any, quasi_identifiers: Sequence[str]) -> int:
    """The size of the smallest equivalence class (every record hides among at least k records).

    Example:
        >>> import pandas as pd
        >>> k_anonymity(pd.DataFrame({"a": [1, 1, 2, 2, 2]}), ["a"])
        2
    """
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    ids, n = _class_ids(df, qi)
    return int(np.bincount(ids, minlength=n).min())


def _per_class_counts(df: pd.DataFrame, qi: Sequence[str], sensitive: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class id per row, value code per row, counts[class, value])."""
    ids, n = _class_ids(df, qi)
    codes, uniques = pd.factorize(df[sensitive], use_na_sentinel=False)
    m = len(uniques)
    counts = np.zeros((n, m), dtype=np.int64)
    np.add.at(counts, (ids, codes), 1)
    return ids, codes, counts


def _distinct_per_class(df: pd.DataFrame, qi: Sequence[str], sensitive: str) -> np.ndarray:
    _, _, counts = _per_class_counts(df, qi, sensitive)
    return (counts > 0).sum(axis=1)


def _entropy_l_per_class(df: pd.DataFrame, qi: Sequence[str], sensitive: str) -> np.ndarray:
    _, _, counts = _per_class_counts(df, qi, sensitive)
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.exp(h)


def distinct_l_diversity(data: Any, quasi_identifiers: Sequence[str], sensitive: str) -> int:
    """The fewest distinct values of ``sensitive`` found in any equivalence class.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"zip": [1, 1, 2, 2], "dx": ["a", "b", "a", "a"]})
        >>> distinct_l_diversity(df, ["zip"], "dx")
        1
    """
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    (s,) = _columns(df, [sensitive], "sensitive")
    return int(_distinct_per_class(df, qi, s).min())


def entropy_l_diversity(data: Any, quasi_identifiers: Sequence[str], sensitive: str) -> float:
    """The smallest ``exp(entropy)`` of ``sensitive`` over equivalence classes (natural log; >= 1).

    A table is entropy l-diverse for every ``l`` up to this value.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"zip": [1, 1, 2, 2], "dx": ["a", "b", "a", "b"]})
        >>> entropy_l_diversity(df, ["zip"], "dx")
        2.0
    """
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    (s,) = _columns(df, [sensitive], "sensitive")
    return float(np.round(_entropy_l_per_class(df, qi, s).min(), 12))


def l_diversity(data: Any, quasi_identifiers: Sequence[str], sensitive: str, *,
                kind: Literal["distinct", "entropy"] = "distinct") -> float:
    """Distinct (default) or entropy l-diversity; see :func:`distinct_l_diversity`, :func:`entropy_l_diversity`."""
    if kind == "distinct":
        return distinct_l_diversity(data, quasi_identifiers, sensitive)
    if kind == "entropy":
        return entropy_l_diversity(data, quasi_identifiers, sensitive)
    raise ConfigError.bad("kind", kind, "'distinct' or 'entropy'")


def _resolve_distance(series: pd.Series, distance: str) -> str:
    if distance not in ("auto", "ordered", "equal"):
        raise ConfigError.bad("distance", distance, "'auto', 'ordered' (numbers) or 'equal' (categories)")
    if distance != "auto":
        return distance
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "equal"
    return "ordered"


def _t_per_class(df: pd.DataFrame, qi: Sequence[str], sensitive: str, distance: str) -> np.ndarray:
    col = df[sensitive]
    mode = _resolve_distance(col, distance)
    ids, n = _class_ids(df, qi)
    if mode == "ordered":
        if col.isna().any():
            raise ConfigError(f"sensitive column {sensitive!r} has missing values; the ordered distance needs a "
                              f"number in every row: fill or drop them, or pass distance='equal'")
        codes, uniques = pd.factorize(col, sort=True)
    else:
        codes, uniques = pd.factorize(col, use_na_sentinel=False)
    m = len(uniques)
    counts = np.zeros((n, m), dtype=np.float64)
    np.add.at(counts, (ids, codes), 1.0)
    p = counts / counts.sum(axis=1, keepdims=True)
    q = counts.sum(axis=0) / counts.sum()
    if mode == "equal":
        return 0.5 * np.abs(p - q).sum(axis=1)
    if m < 2:
        return np.zeros(n)
    return np.abs(np.cumsum(p - q, axis=1)).sum(axis=1) / (m - 1)


def t_closeness(data: Any, quasi_identifiers: Sequence[str], sensitive: str, *, distance: Distance = "auto") -> float:
    """The largest Earth Mover's Distance between a class's distribution of ``sensitive`` and the table's.

    ``distance="auto"`` uses the ordered distance for numeric columns and the equal distance otherwise.
    The table is t-close for every ``t`` at or above the returned value (0 = every class looks like the
    whole table, 1 = the most different possible).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"g": [0, 0, 1, 1], "salary": [3, 4, 5, 6]})
        >>> round(t_closeness(df, ["g"], "salary"), 4)  # ordered distance over the ranks 3 < 4 < 5 < 6
        0.3333
    """
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    (s,) = _columns(df, [sensitive], "sensitive")
    return float(np.round(_t_per_class(df, qi, s, distance).max(), 12))


@dataclass(frozen=True)
class RiskSummary:
    """Prosecutor re-identification risk (an attacker knows the target is in the table).

    Attributes:
        records: rows in the table.
        classes: equivalence classes.
        max_risk: 1 / (smallest class size) = 1 / k.
        avg_risk: mean of 1 / (class size) over records = classes / records.
        threshold: the risk above which a record counts as at risk.
        records_at_risk: share of records whose risk is above ``threshold``.
        unique_records: records alone in their class (risk 1).
    """

    records: int
    classes: int
    max_risk: float
    avg_risk: float
    threshold: float
    records_at_risk: float
    unique_records: int

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def reidentification_risk(data: Any, quasi_identifiers: Sequence[str], *, threshold: float = 0.2) -> RiskSummary:
    """Prosecutor risk of re-identification by the quasi-identifiers.

    Example:
        >>> import pandas as pd
        >>> r = reidentification_risk(pd.DataFrame({"a": [1, 1, 1, 2]}), ["a"], threshold=0.5)
        >>> (r.max_risk, r.avg_risk, r.records_at_risk, r.unique_records)
        (1.0, 0.5, 0.25, 1)
    """
    if not isinstance(threshold, Real) or not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError.bad("threshold", threshold, "a risk in [0, 1], e.g. 0.2 (classes smaller than 5)")
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    ids, n = _class_ids(df, qi)
    sizes = np.bincount(ids, minlength=n)
    per_record = 1.0 / sizes[ids]
    return RiskSummary(records=len(df), classes=n, max_risk=float(per_record.max()),
                       avg_risk=float(n / len(df)), threshold=float(threshold),
                       records_at_risk=float((per_record > threshold).mean()), unique_records=int((sizes == 1).sum()))


def _check_targets(k: Optional[int], l: Optional[float], t: Optional[float]) -> None:
    problems = []
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        problems.append(f"k={k!r}: expected a positive integer, e.g. 5")
    if l is not None and (not isinstance(l, Real) or isinstance(l, bool) or l < 1):
        problems.append(f"l={l!r}: expected a number >= 1, e.g. 2")
    if t is not None and (not isinstance(t, Real) or isinstance(t, bool) or not 0 <= t <= 1):
        problems.append(f"t={t!r}: expected a number in [0, 1], e.g. 0.2")
    if problems:
        raise ConfigError.collect(problems, "anonymity targets")


def violations(data: Any, quasi_identifiers: Sequence[str], *, k: Optional[int] = None,
               sensitive: Sequence[str] | str = (), l: Optional[float] = None,
               l_kind: Literal["distinct", "entropy"] = "distinct", t: Optional[float] = None,
               distance: Distance = "auto") -> pd.DataFrame:
    """The equivalence classes that miss a target: size below ``k``, l-diversity below ``l`` or t above ``t``.

    One row per violating class with its quasi-identifier values, ``size``, the measured ``l[<col>]`` /
    ``t[<col>]`` for each sensitive column when asked for, and ``violates`` (e.g. ``"k,l[dx]"``). The rows
    hold table values: keep this frame out of logs and shared reports.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"zip": [1, 1, 2, 2, 2], "dx": ["a", "b", "a", "a", "a"]})
        >>> violations(df, ["zip"], k=3, sensitive="dx", l=2)[["zip", "size", "violates"]].to_dict("records")
        [{'zip': 1, 'size': 2, 'violates': 'k'}, {'zip': 2, 'size': 3, 'violates': 'l[dx]'}]
    """
    _check_targets(k, l, t)
    df = _frame(data)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    sens = _columns(df, sensitive, "sensitive", allow_empty=True)
    if (l is not None or t is not None) and not sens:
        raise ConfigError("l and t targets need sensitive=[...] columns to measure")
    if l_kind not in ("distinct", "entropy"):
        raise ConfigError.bad("l_kind", l_kind, "'distinct' or 'entropy'")
    grouped = df.groupby(qi, dropna=False, sort=False)
    classes = grouped.size().reset_index(name="size")
    bad = np.zeros(len(classes), dtype=bool)
    why: List[List[str]] = [[] for _ in range(len(classes))]
    if k is not None:
        for i in np.flatnonzero(classes["size"].to_numpy() < k):
            bad[i] = True
            why[i].append("k")
    for s in sens:
        if l is not None:
            per = (_distinct_per_class(df, qi, s) if l_kind == "distinct" else _entropy_l_per_class(df, qi, s))
            classes[f"l[{s}]"] = per
            for i in np.flatnonzero(per < l - 1e-12):
                bad[i] = True
                why[i].append(f"l[{s}]")
        if t is not None:
            per = _t_per_class(df, qi, s, distance)
            classes[f"t[{s}]"] = per
            for i in np.flatnonzero(per > t + 1e-12):
                bad[i] = True
                why[i].append(f"t[{s}]")
    classes["violates"] = [",".join(w) for w in why]
    return classes[bad].reset_index(drop=True)


@dataclass(frozen=True)
class AnonymityReport:
    """All metrics of a table at once; :meth:`to_dict` holds numbers only (safe for reports).

    Attributes:
        quasi_identifiers / sensitive: the declared columns.
        k: k-anonymity. l_distinct / l_entropy / t: per sensitive column.
        risk: prosecutor risk summary.
        violating_classes / violating_records: classes (and their records) that miss the targets given.
    """

    quasi_identifiers: Tuple[str, ...]
    sensitive: Tuple[str, ...]
    k: int
    l_distinct: Dict[str, int]
    l_entropy: Dict[str, float]
    t: Dict[str, float]
    risk: RiskSummary
    targets: Dict[str, Any] = field(default_factory=dict)
    violating_classes: int = 0
    violating_records: int = 0

    def to_dict(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        d["quasi_identifiers"] = list(self.quasi_identifiers)
        d["sensitive"] = list(self.sensitive)
        d["risk"] = self.risk.to_dict()
        return d


def report(data: Any, quasi_identifiers: Sequence[str], sensitive: Sequence[str] | str = (), *,
           k: Optional[int] = None, l: Optional[float] = None, l_kind: Literal["distinct", "entropy"] = "distinct",
           t: Optional[float] = None, distance: Distance = "auto", risk_threshold: float = 0.2) -> AnonymityReport:
    """Every metric at once, plus how many classes and records miss the targets ``k``, ``l`` and ``t``.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"zip": [1, 1, 2, 2], "dx": ["a", "b", "a", "a"]})
        >>> r = report(df, ["zip"], "dx", k=2, l=2)
        >>> (r.k, r.l_distinct, r.violating_classes, r.violating_records)
        (2, {'dx': 1}, 1, 2)
    """
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
    sens = _columns(df, sensitive, "sensitive", allow_empty=True)
    v = violations(df, qi, k=k, sensitive=sens, l=l if sens else None, l_kind=l_kind, t=t if sens else None,
                   distance=distance) if (k is not None or (sens and (l is not None or t is not None))) else None
    targets = {name: val for name, val in (("k", k), ("l", l), ("t", t)) if val is not None}
    if l is not None:
        targets["l_kind"] = l_kind
    return AnonymityReport(
        quasi_identifiers=tuple(qi), sensitive=tuple(sens), k=k_anonymity(df, qi),
        l_distinct={s: distinct_l_diversity(df, qi, s) for s in sens},
        l_entropy={s: entropy_l_diversity(df, qi, s) for s in sens},
        t={s: t_closeness(df, qi, s, distance=distance) for s in sens},
        risk=reidentification_risk(df, qi, threshold=risk_threshold), targets=targets,
        violating_classes=0 if v is None else len(v),
        violating_records=0 if v is None else int(v["size"].sum()))


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
    df = _frame(data)
    _columns(df, list(levels), "levels", allow_empty=True)
    out = df.copy()
    for name, level in levels.items():
        out[name] = _apply_level(df[name], level, name)
    return _like(data, out)


def suppress(data: Any, quasi_identifiers: Sequence[str], k: int) -> Tuple[Any, int]:
    """Remove the records of every equivalence class smaller than ``k``; returns (table, records removed).

    Example:
        >>> import pandas as pd
        >>> table, n = suppress(pd.DataFrame({"a": [1, 1, 2]}), ["a"], 2)
        >>> (table["a"].tolist(), n)
        ([1, 1], 1)
    """
    _check_targets(k, None, None)
    df = _frame(data)
    keep = class_sizes(df, quasi_identifiers) >= k
    return _like(data, df[keep].reset_index(drop=True)), int((~keep).sum())


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
    _check_targets(k, None, None)
    if not isinstance(max_suppression, Real) or not 0.0 <= float(max_suppression) <= 1.0:
        raise ConfigError.bad("max_suppression", max_suppression, "a share of records in [0, 1], e.g. 0.05")
    df = _frame(data)
    _nonempty(df)
    qi = _columns(df, quasi_identifiers, "quasi_identifiers")
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
    return AnonymizationResult(data=_like(data, out), levels=chosen, suppressed=int((~keep).sum()), k=k_out,
                               nodes_checked=checked)
