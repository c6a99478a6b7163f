"""A pandas ``DataFrame`` or a pyarrow ``Table`` is refused with the conversion to use (its ``[i]`` is a column):
the map-style wrap it fell to failed with a bare ``KeyError: 0`` or ``IndexError: index out of bounds``. And a
dict refused as one value never shows a key that looks like personal data."""
import pandas as pd
import pyarrow as pa
import pytest

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin

ROWS = [{"text": r["text"], "label": r["label"]} for r in load_spamassassin(limit=12)]


def _guard():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)


@pytest.mark.parametrize("make, fix", [(pd.DataFrame, r"datasets\.Dataset\.from_pandas\(df\).*df\.to_dict\(orient='records'\)"),
                                       (pa.Table.from_pylist, r"datasets\.Dataset\(table\).*table\.to_pylist\(\)")],
                         ids=["pandas", "pyarrow"])
def test_a_table_is_refused_with_the_conversion_and_takes_no_name(make, fix):
    g = _guard()
    with pytest.raises(tdg.ConfigError, match=r"is a column, not a row.*" + fix):  # main: KeyError 0, IndexError
        g.wrap(make(ROWS))
    assert g.sources == {}
    assert g.report()["seen"] == 0


def test_the_suggested_conversions_work():
    import datasets

    g = _guard()
    assert len(g.wrap(datasets.Dataset.from_pandas(pd.DataFrame(ROWS + ROWS[:3])))) == len(ROWS)
    assert len(_guard().wrap(pa.Table.from_pylist(ROWS).to_pylist())) == len(ROWS)


def test_a_dict_refused_as_one_value_hides_keys_that_look_like_personal_data():
    with pytest.raises(tdg.ConfigError) as err:
        _guard().wrap({"jane.doe@example.org": ROWS[0]["text"], "+1 415 555 0142": ROWS[1]["text"], "body": "x"})
    msg = str(err.value)
    assert "jane.doe" not in msg and "555" not in msg  # main: both keys in the message
    assert "'body'" in msg and "<hidden: looks like data>" in msg
