"""k-anonymity, l-diversity, t-closeness and risk on tables small enough to check by hand."""
import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import torchdataguard as tdg
from torchdataguard import anonymity as an
from torchdataguard.errors import ConfigError

QI = ["zip", "age"]


@pytest.fixture
def paper():
    """Li, Li and Venkatasubramanian (2007), tables 3 and 4: nine patients, salary in thousands."""
    return pd.DataFrame({
        "zip": ["4767*"] * 3 + ["4790*"] * 3 + ["4760*"] * 3,
        "age": ["<=40"] * 3 + [">=40"] * 3 + ["3*"] * 3,
        "salary": [3, 4, 5, 6, 11, 8, 7, 9, 10],
        "disease": ["gastric ulcer", "gastritis", "stomach cancer", "gastritis", "flu", "bronchitis",
                    "bronchitis", "pneumonia", "stomach cancer"],
    })


def test_k_and_classes(paper):
    assert an.k_anonymity(paper, QI) == 3
    classes = an.equivalence_classes(paper, QI)
    assert classes["size"].tolist() == [3, 3, 3]
    assert an.k_anonymity(paper.iloc[:7], QI) == 1  # the last class keeps one record
    assert an.class_sizes(paper.iloc[:7], QI).tolist() == [3, 3, 3, 3, 3, 3, 1]


def test_l_diversity_distinct_and_entropy(paper):
    assert an.distinct_l_diversity(paper, QI, "disease") == 3
    assert an.entropy_l_diversity(paper, QI, "disease") == pytest.approx(3.0)
    df = pd.DataFrame({"g": [0, 0, 0, 0, 1, 1, 1, 1], "s": list("aabb") + list("aaab")})
    assert an.distinct_l_diversity(df, ["g"], "s") == 2
    # class 1: p = (3/4, 1/4): exp(-(.75 ln .75 + .25 ln .25)) = 1.7548
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert an.entropy_l_diversity(df, ["g"], "s") == pytest.approx(expected)
    assert an.l_diversity(df, ["g"], "s", kind="entropy") == pytest.approx(expected)
    assert an.l_diversity(df, ["g"], "s") == 2


def test_t_closeness_ordered_matches_the_paper(paper):
    # table 3 of the paper: salaries {3K, 4K, 5K} in one class are 0.375 from the whole table
    assert an.t_closeness(paper, QI, "salary") == pytest.approx(0.375)
    # table 4: classes {3, 5, 9}, {6, 8, 11}, {4, 7, 10}: 1/6, 1/6, 1/12
    t4 = paper.copy()
    t4["salary"] = [3, 5, 9, 6, 11, 8, 4, 7, 10]
    assert an.t_closeness(t4, QI, "salary") == pytest.approx(1 / 6)
    v = an.violations(t4, QI, sensitive="salary", t=0.1)
    assert sorted(v["t[salary]"].round(6).tolist()) == [round(1 / 6, 6)] * 2


def test_t_closeness_equal_distance_by_hand():
    df = pd.DataFrame({"g": [0, 0, 1, 1, 1], "s": ["flu", "cancer", "flu", "flu", "cold"]})
    # whole table: flu .6, cancer .2, cold .2; class 0: .5/.5/0 -> .5*(.1+.3+.2) = .3; class 1: 2/3, 0, 1/3 -> .2
    assert an.t_closeness(df, ["g"], "s") == pytest.approx(0.3)
    assert an.t_closeness(df.assign(s=[1, 2, 1, 1, 3]), ["g"], "s", distance="equal") == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="ordered"):
        an.t_closeness(df.assign(s=[1.0, None, 1, 1, 3]), ["g"], "s")
    with pytest.raises(ConfigError):
        an.t_closeness(df, ["g"], "s", distance="euclid")


def test_t_closeness_single_value_and_one_class():
    df = pd.DataFrame({"g": [0, 0, 1], "s": [5, 5, 5]})
    assert an.t_closeness(df, ["g"], "s") == 0.0
    assert an.t_closeness(pd.DataFrame({"g": [0, 0], "s": [1, 2]}), ["g"], "s") == 0.0


def test_reidentification_risk_by_hand():
    df = pd.DataFrame({"a": [1, 2, 2, 3, 3, 3]})
    r = an.reidentification_risk(df, ["a"], threshold=0.4)
    assert (r.records, r.classes, r.max_risk, r.avg_risk, r.records_at_risk, r.unique_records) == (
        6, 3, 1.0, 0.5, 0.5, 1)
    assert an.reidentification_risk(df, ["a"], threshold=0.5).records_at_risk == pytest.approx(1 / 6)
    with pytest.raises(ConfigError, match="threshold"):
        an.reidentification_risk(df, ["a"], threshold=2)


def test_missing_values_form_their_own_class():
    df = pd.DataFrame({"a": [1.0, None, None, 1.0], "s": ["x", "y", None, None]})
    assert an.equivalence_classes(df, ["a"])["size"].tolist() == [2, 2]
    assert an.distinct_l_diversity(df, ["a"], "s") == 2  # a missing sensitive value counts as a value


def test_violations_lists_each_failing_class(paper):
    df = paper.iloc[:8]
    v = an.violations(df, QI, k=3, sensitive=["disease"], l=3)
    assert v[["zip", "size", "violates"]].to_dict("records") == [
        {"zip": "4760*", "size": 2, "violates": "k,l[disease]"}]
    assert an.violations(paper, QI, k=3).empty
    with pytest.raises(ConfigError, match="sensitive"):
        an.violations(paper, QI, l=2)
    with pytest.raises(ConfigError) as err:
        an.violations(paper, QI, k=0, sensitive="disease", l=0.5, t=2)
    assert "3 problem" in str(err.value)


def test_report_holds_numbers_only(paper):
    r = an.report(paper.iloc[:8], QI, ["disease", "salary"], k=3, l=2, t=0.5)
    d = r.to_dict()
    text = json.dumps(d)
    assert d["k"] == 2 and d["l_distinct"] == {"disease": 2, "salary": 2}
    assert d["violating_classes"] == 1 and d["violating_records"] == 2
    for value in ["4767*", "gastritis", "<=40", "flu"]:
        assert value not in text
    assert r.risk.max_risk == 0.5


def test_inputs_are_checked():
    df = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(ConfigError, match=r"\['c'\].*\['a', 'b'\]"):
        an.k_anonymity(df, ["a", "c"])
    with pytest.raises(ConfigError, match="no rows"):
        an.k_anonymity(df.iloc[:0], ["a"])
    with pytest.raises(ConfigError, match="DataFrame"):
        an.k_anonymity([{"a": 1}], ["a"])
    with pytest.raises(ConfigError, match="empty"):
        an.k_anonymity(df, [])
    with pytest.raises(ConfigError, match="repeats"):
        an.k_anonymity(df, ["a", "a"])


def test_hf_dataset_and_module_access(paper):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_pandas(paper)
    assert tdg.anonymity.k_anonymity(ds, QI) == 3
    assert an.t_closeness(ds, QI, "salary") == pytest.approx(0.375)


# -- the same numbers from a naive implementation, on random tables --------------------------------------------
def _naive(rows, qi, s):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in qi), []).append(r[s])
    k = min(len(v) for v in groups.values())
    l_distinct = min(len(set(v)) for v in groups.values())
    l_entropy = min(math.exp(-sum((c / len(v)) * math.log(c / len(v)) for c in Counter(v).values()))
                    for v in groups.values())
    overall = Counter(r[s] for r in rows)
    n = len(rows)
    values = sorted(overall)
    t_ordered = 0.0
    t_equal = 0.0
    for v in groups.values():
        cnt = Counter(v)
        diffs = [cnt[x] / len(v) - overall[x] / n for x in values]
        t_equal = max(t_equal, 0.5 * sum(abs(d) for d in diffs))
        if len(values) > 1:
            acc, tot = 0.0, 0.0
            for d in diffs:
                acc += d
                tot += abs(acc)
            t_ordered = max(t_ordered, tot / (len(values) - 1))
    return k, l_distinct, l_entropy, t_ordered, t_equal


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from("xyz"), st.integers(0, 5)), min_size=1, max_size=40))
def test_metrics_agree_with_a_naive_implementation(rows):
    df = pd.DataFrame(rows, columns=["a", "b", "s"])
    recs = df.to_dict("records")
    k, ld, le, to, te = _naive(recs, ["a", "b"], "s")
    assert an.k_anonymity(df, ["a", "b"]) == k
    assert an.distinct_l_diversity(df, ["a", "b"], "s") == ld
    assert an.entropy_l_diversity(df, ["a", "b"], "s") == pytest.approx(le)
    assert an.t_closeness(df, ["a", "b"], "s") == pytest.approx(to)
    assert an.t_closeness(df, ["a", "b"], "s", distance="equal") == pytest.approx(te)
    r = an.reidentification_risk(df, ["a", "b"])
    assert r.max_risk == pytest.approx(1 / k)
    assert r.avg_risk == pytest.approx(np.mean(1 / an.class_sizes(df, ["a", "b"])))
