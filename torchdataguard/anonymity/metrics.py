"""Anonymity metrics of a table: k-anonymity, l-diversity, t-closeness and re-identification risk.

See the package docstring (:mod:`torchdataguard.anonymity`) for the definitions.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [23, 23, 35, 35, 35], "disease": ["flu", "cancer", "flu", "flu", "cold"]})
    >>> k_anonymity(df, ["age"]), distinct_l_diversity(df, ["age"], "disease")
    (2, 2)
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, Dict, Literal, Sequence, Tuple

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .table import as_frame, checked_columns, class_ids, require_rows

__all__ = [
    "Distance",
    "RiskSummary",
    "class_sizes",
    "distinct_l_diversity",
    "distinct_per_class",
    "entropy_l_diversity",
    "entropy_l_per_class",
    "equivalence_classes",
    "k_anonymity",
    "l_diversity",
    "reidentification_risk",
    "t_closeness",
    "t_per_class",
]

Distance = Literal["auto", "ordered", "equal"]


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
    df = as_frame(data)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    out = df.groupby(qi, dropna=False, sort=False).size().reset_index(name="size")
    return out.sort_values("size", kind="stable").reset_index(drop=True)


def class_sizes(data: Any, quasi_identifiers: Sequence[str]) -> np.ndarray:
    """The size of each record's equivalence class, aligned with the rows.

    Example:
        >>> import pandas as pd
        >>> class_sizes(pd.DataFrame({"a": [1, 1, 2]}), ["a"]).tolist()
        [2, 2, 1]
    """
    df = as_frame(data)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    ids, n = class_ids(df, qi)
    return np.bincount(ids, minlength=n)[ids]


def k_anonymity(data: Any, quasi_identifiers: Sequence[str]) -> int:
    """The size of the smallest equivalence class (every record hides among at least k records).

    Example:
        >>> import pandas as pd
        >>> k_anonymity(pd.DataFrame({"a": [1, 1, 2, 2, 2]}), ["a"])
        2
    """
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    ids, n = class_ids(df, qi)
    return int(np.bincount(ids, minlength=n).min())


def _per_class_counts(df: pd.DataFrame, qi: Sequence[str], sensitive: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class id per row, value code per row, counts[class, value])."""
    ids, n = class_ids(df, qi)
    codes, uniques = pd.factorize(df[sensitive], use_na_sentinel=False)
    m = len(uniques)
    counts = np.zeros((n, m), dtype=np.int64)
    np.add.at(counts, (ids, codes), 1)
    return ids, codes, counts


def distinct_per_class(df: pd.DataFrame, qi: Sequence[str], sensitive: str) -> np.ndarray:
    _, _, counts = _per_class_counts(df, qi, sensitive)
    return (counts > 0).sum(axis=1)


def entropy_l_per_class(df: pd.DataFrame, qi: Sequence[str], sensitive: str) -> np.ndarray:
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
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    (s,) = checked_columns(df, [sensitive], "sensitive")
    return int(distinct_per_class(df, qi, s).min())


def entropy_l_diversity(data: Any, quasi_identifiers: Sequence[str], sensitive: str) -> float:
    """The smallest ``exp(entropy)`` of ``sensitive`` over equivalence classes (natural log; >= 1).

    A table is entropy l-diverse for every ``l`` up to this value.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"zip": [1, 1, 2, 2], "dx": ["a", "b", "a", "b"]})
        >>> entropy_l_diversity(df, ["zip"], "dx")
        2.0
    """
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    (s,) = checked_columns(df, [sensitive], "sensitive")
    return float(np.round(entropy_l_per_class(df, qi, s).min(), 12))


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


def t_per_class(df: pd.DataFrame, qi: Sequence[str], sensitive: str, distance: str) -> np.ndarray:
    col = df[sensitive]
    mode = _resolve_distance(col, distance)
    ids, n = class_ids(df, qi)
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
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    (s,) = checked_columns(df, [sensitive], "sensitive")
    return float(np.round(t_per_class(df, qi, s, distance).max(), 12))


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
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    ids, n = class_ids(df, qi)
    sizes = np.bincount(ids, minlength=n)
    per_record = 1.0 / sizes[ids]
    return RiskSummary(records=len(df), classes=n, max_risk=float(per_record.max()),
                       avg_risk=float(n / len(df)), threshold=float(threshold),
                       records_at_risk=float((per_record > threshold).mean()), unique_records=int((sizes == 1).sum()))

