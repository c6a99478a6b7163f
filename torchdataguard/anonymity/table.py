"""Tables for the anonymity metrics: input handling shared by :mod:`.metrics`, :mod:`.summary` and
:mod:`.generalize` (DataFrame or ``datasets.Dataset`` in, the same kind out; column checks; equivalence-class ids).

Example:
    >>> import pandas as pd
    >>> ids, n = class_ids(pd.DataFrame({"a": [1, 1, 2]}), ["a"])
    >>> ids.tolist(), n
    ([0, 0, 1], 2)
"""
from __future__ import annotations

from numbers import Real
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["as_frame", "check_targets", "checked_columns", "class_ids", "require_rows", "same_kind"]


def _is_hf(data: Any) -> bool:
    import datasets  # a dependency; imported here because it is slow to import

    return isinstance(data, datasets.Dataset)


def as_frame(data: Any) -> pd.DataFrame:
    """``data`` as a DataFrame (a ``datasets.Dataset`` is converted with ``to_pandas``); anything else is refused."""
    if isinstance(data, pd.DataFrame):
        return data
    if _is_hf(data):
        return data.to_pandas()
    raise ConfigError(f"expected a pandas DataFrame or a datasets.Dataset, got {type(data).__name__}; "
                      f"convert it first, e.g. pandas.DataFrame(records)")


def same_kind(original: Any, df: pd.DataFrame) -> Any:
    """``df`` as the same kind of table as ``original``."""
    if _is_hf(original):
        import datasets

        return datasets.Dataset.from_pandas(df.reset_index(drop=True), preserve_index=False)
    return df


def checked_columns(df: pd.DataFrame, cols: Sequence[str] | str, what: str, *, allow_empty: bool = False) -> List[str]:
    """``cols`` as a list, refused when empty (unless ``allow_empty``), repeated or not in the table."""
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


def require_rows(df: pd.DataFrame) -> None:
    """Refuse a table without rows."""
    if len(df) == 0:
        raise ConfigError("the table has no rows; anonymity metrics need at least one record")


def class_ids(df: pd.DataFrame, qi: Sequence[str]) -> Tuple[np.ndarray, int]:
    """Equivalence-class id per row (missing values are values of their own) and the number of classes."""
    ids = df.groupby(list(qi), dropna=False, sort=False).ngroup().to_numpy()
    return ids, int(ids.max()) + 1 if len(ids) else 0



def check_targets(k: Optional[int], l: Optional[float], t: Optional[float]) -> None:
    """Refuse targets out of range (k a positive integer, l >= 1, t in [0, 1]), all problems at once."""
    problems = []
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        problems.append(f"k={k!r}: expected a positive integer, e.g. 5")
    if l is not None and (not isinstance(l, Real) or isinstance(l, bool) or l < 1):
        problems.append(f"l={l!r}: expected a number >= 1, e.g. 2")
    if t is not None and (not isinstance(t, Real) or isinstance(t, bool) or not 0 <= t <= 1):
        problems.append(f"t={t!r}: expected a number in [0, 1], e.g. 0.2")
    if problems:
        raise ConfigError.collect(problems, "anonymity targets")

