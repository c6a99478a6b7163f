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
    >>> from torchdataguard import anonymity as an
    >>> df = pd.DataFrame({"age": [23, 23, 35, 35, 35], "zip": ["13053"] * 2 + ["14850"] * 3,
    ...                    "disease": ["flu", "cancer", "flu", "flu", "cold"]})
    >>> an.k_anonymity(df, ["age", "zip"])
    2
    >>> an.distinct_l_diversity(df, ["age", "zip"], "disease")
    2
    >>> round(an.t_closeness(df, ["age", "zip"], "disease"), 3)  # 0.5 * (|.5-.6| + |.5-.2| + |0-.2|)
    0.3

Modules: :mod:`.metrics` (the metrics), :mod:`.summary` (violations and the report), :mod:`.generalize`
(generalisation, suppression, :func:`anonymize`), :mod:`.table` (input handling).
"""
from .generalize import AnonymizationResult, Level, anonymize, generalize, masking, suppress
from .metrics import (RiskSummary, class_sizes, distinct_l_diversity, entropy_l_diversity, equivalence_classes,
                      k_anonymity, l_diversity, reidentification_risk, t_closeness)
from .summary import AnonymityReport, report, violations

__all__ = [
    "AnonymityReport",
    "AnonymizationResult",
    "Level",
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
