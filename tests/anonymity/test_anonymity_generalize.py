"""Generalisation, suppression and the search for a target k, checked on hand-sized tables."""
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchdataguard import anonymity as an
from torchdataguard.errors import ConfigError


@pytest.fixture
def people():
    return pd.DataFrame({
        "age": [21, 24, 27, 33, 36, 38, 52],
        "zip": ["13053", "13068", "13053", "14850", "14853", "14850", "14850"],
        "sex": ["F", "M", "F", "M", "F", "M", "F"],
        "dx": ["flu", "cold", "flu", "flu", "cancer", "cold", "flu"],
    })


def test_bin_widths_edges_mappings_functions_and_star(people):
    g = an.generalize(people, {"age": 10})
    assert g["age"].tolist() == ["[20, 30)"] * 3 + ["[30, 40)"] * 3 + ["[50, 60)"]
    assert people["age"].tolist()[0] == 21  # the input is not changed
    g = an.generalize(people, {"age": [0, 30, 50]})
    assert g["age"].tolist() == ["[0, 30)"] * 3 + ["[30, 50)"] * 3 + [">= 50"]
    assert an.generalize(people, {"age": [25, 40]})["age"].tolist()[:2] == ["< 25", "< 25"]
    g = an.generalize(people, {"sex": {"F": "person", "M": "person"}, "zip": an.masking(3)})
    assert set(g["sex"]) == {"person"} and g["zip"].tolist()[:2] == ["13***", "13***"]
    assert set(an.generalize(people, {"zip": "*"})["zip"]) == {"*"}
    assert an.generalize(pd.DataFrame({"x": [0.5, 1.25]}), {"x": 0.5})["x"].tolist() == ["[0.5, 1)", "[1, 1.5)"]


def test_generalize_keeps_missing_values_missing():
    df = pd.DataFrame({"age": [21.0, None], "c": ["a", None]})
    g = an.generalize(df, {"age": 10, "c": str.upper})
    assert g["age"].tolist()[0] == "[20, 30)" and g["age"].isna().tolist()[1]
    assert g["c"].tolist()[0] == "A" and g["c"].isna().tolist()[1]


def test_bad_levels_say_what_to_do_without_showing_values(people):
    with pytest.raises(ConfigError) as err:
        an.generalize(people, {"zip": {"13053": "130**"}})
    msg = str(err.value)
    assert "does not map 3 of its 4 distinct values" in msg and "14850" not in msg and "13068" not in msg
    with pytest.raises(ConfigError, match="not numeric"):
        an.generalize(people, {"zip": 10})
    with pytest.raises(ConfigError, match="positive"):
        an.generalize(people, {"age": -5})
    with pytest.raises(ConfigError, match="only string level"):
        an.generalize(people, {"age": "decade"})
    with pytest.raises(ConfigError, match="does not have"):
        an.generalize(people, {"height": 10})
    with pytest.raises(ConfigError):
        an.masking(0)


def test_suppress_removes_small_classes_only(people):
    table, n = an.suppress(people, ["zip"], 2)
    assert n == 2  # 13068 and 14853 are alone
    assert table["zip"].tolist() == ["13053", "13053", "14850", "14850", "14850"]
    assert an.k_anonymity(table, ["zip"]) == 3 - 1


def test_anonymize_finds_the_lowest_generalisation(people):
    res = an.anonymize(people, ["age", "zip"], 3, hierarchies={"age": [10, 20, "*"], "zip": [an.masking(2), "*"]},
                       max_suppression=0.2)
    # decades + 3-digit ZIP prefixes give classes of 3, 3 and 1: the lone 52-year-old is suppressed (1/7 <= 0.2)
    assert res.levels == {"age": 1, "zip": 1}
    assert res.suppressed == 1 and res.k == 3 and len(res.data) == 6
    assert an.k_anonymity(res.data, ["age", "zip"]) == 3
    assert res.to_dict() == {"levels": {"age": 1, "zip": 1}, "suppressed": 1, "k": 3, "records": 6,
                             "nodes_checked": res.nodes_checked}
    # without a suppression budget it has to go higher: ages in 20-year bins are not enough, so "*" it is
    strict = an.anonymize(people, ["age", "zip"], 3, hierarchies={"age": [10, 20, "*"], "zip": [an.masking(2), "*"]})
    assert strict.suppressed == 0 and strict.k >= 3 and len(strict.data) == 7
    assert sum(strict.levels.values()) > 2


def test_anonymize_counts_nodes_and_stops_at_the_first_height(people):
    res = an.anonymize(people, ["sex"], 3, hierarchies={})
    assert res.levels == {"sex": 0} and res.nodes_checked == 1 and res.k == 3


def test_anonymize_errors(people):
    with pytest.raises(ConfigError, match="coarser levels"):
        an.anonymize(people, ["age"], 3, hierarchies={"age": [10]})
    with pytest.raises(ConfigError, match="not quasi-identifiers"):
        an.anonymize(people, ["age"], 2, hierarchies={"zip": ["*"]})
    with pytest.raises(ConfigError, match="max_nodes"):
        an.anonymize(people, ["age", "zip"], 2, hierarchies={"age": [1] * 10, "zip": ["*"] * 10}, max_nodes=50)
    with pytest.raises(ConfigError, match="max_suppression"):
        an.anonymize(people, ["age"], 2, hierarchies={"age": [10]}, max_suppression=1.5)
    with pytest.raises(ConfigError, match="k=0"):
        an.anonymize(people, ["age"], 0, hierarchies={"age": [10]})


def test_same_kind_out_as_in_for_datasets(people):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_pandas(people)
    g = an.generalize(ds, {"age": 10})
    assert isinstance(g, datasets.Dataset) and g["age"][0] == "[20, 30)"
    res = an.anonymize(ds, ["age", "zip"], 3, hierarchies={"age": [10, "*"], "zip": [an.masking(2), "*"]},
                       max_suppression=0.2)
    assert isinstance(res.data, datasets.Dataset) and len(res.data) == 6
    table, n = an.suppress(ds, ["zip"], 2)
    assert isinstance(table, datasets.Dataset) and n == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 99), st.sampled_from(["A1", "A2", "B1", "B2"])), min_size=2, max_size=30),
       st.integers(1, 4), st.sampled_from([0.0, 0.1, 0.3]))
def test_anonymize_always_reaches_k_within_budget(rows, k, budget):
    df = pd.DataFrame(rows, columns=["age", "code"])
    hier = {"age": [10, 50, "*"], "code": [{"A1": "A", "A2": "A", "B1": "B", "B2": "B"}, "*"]}
    if len(df) < k:
        with pytest.raises(ConfigError):
            an.anonymize(df, ["age", "code"], k, hierarchies=hier, max_suppression=budget)
        return
    res = an.anonymize(df, ["age", "code"], k, hierarchies=hier, max_suppression=budget)
    assert res.suppressed <= int(budget * len(df) + 1e-9)
    assert len(res.data) + res.suppressed == len(df)
    if len(res.data):
        assert an.k_anonymity(res.data, ["age", "code"]) >= k
    # nothing lower in the lattice would have done: every node of a smaller height fails
    height = sum(res.levels.values())
    for a in range(4):
        for c in range(3):
            if a + c < height:
                lv = {}
                if a:
                    lv["age"] = hier["age"][a - 1]
                if c:
                    lv["code"] = hier["code"][c - 1]
                g = an.generalize(df, lv)
                small = (an.class_sizes(g, ["age", "code"]) < k).sum()
                assert small > int(budget * len(df) + 1e-9)
