"""Everything about a table at once: the classes that miss a target (:func:`violations`) and the
:class:`AnonymityReport` (numbers only, safe for reports).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"zip": [1, 1, 2, 2], "dx": ["a", "b", "a", "a"]})
    >>> report(df, ["zip"], "dx", k=2, l=2).violating_classes
    1
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .metrics import (Distance, RiskSummary, distinct_l_diversity, distinct_per_class, entropy_l_diversity,
                      entropy_l_per_class, k_anonymity, reidentification_risk, t_closeness, t_per_class)
from .table import as_frame, check_targets, checked_columns, require_rows

__all__ = ["AnonymityReport", "report", "violations"]


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
    check_targets(k, l, t)
    df = as_frame(data)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    sens = checked_columns(df, sensitive, "sensitive", allow_empty=True)
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
            per = (distinct_per_class(df, qi, s) if l_kind == "distinct" else entropy_l_per_class(df, qi, s))
            classes[f"l[{s}]"] = per
            for i in np.flatnonzero(per < l - 1e-12):
                bad[i] = True
                why[i].append(f"l[{s}]")
        if t is not None:
            per = t_per_class(df, qi, s, distance)
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
    df = as_frame(data)
    require_rows(df)
    qi = checked_columns(df, quasi_identifiers, "quasi_identifiers")
    sens = checked_columns(df, sensitive, "sensitive", allow_empty=True)
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

