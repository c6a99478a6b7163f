"""A wrap that raises gives back the source name it took: the data wrapped next (the same data, fixed) gets the
name the failed wrap had, ``''`` for the first, so its ids are those a resumed run gives it.

Before, the retry was named ``data1`` (ids ``data1:0`` ...), and a run resumed from its saved state, which wraps its
training data first (plain ids), dropped every record as a duplicate of ``data1``'s, without a warning."""
import warnings

import pytest
from torch.utils.data import Dataset

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin

ROWS = [{"text": r["text"], "label": r["label"]} for r in load_spamassassin(limit=40)]


class Rows(Dataset):
    """A map-style dataset that fails on its rows until it is fixed (a column renamed upstream, say)."""

    def __init__(self, rows, broken=False):
        self.rows, self.broken = rows, broken

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        if self.broken:
            raise KeyError("body")
        return self.rows[i]


def _guard():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)


@pytest.mark.parametrize("failure", ["dataset raises", "text field refused"])
def test_a_failed_first_wrap_leaves_the_retry_its_plain_ids_and_a_resumed_run_replays(failure, tmp_path):
    g = _guard()
    if failure == "dataset raises":
        with pytest.raises(KeyError):
            g.wrap(Rows(ROWS, broken=True))
    else:  # chat messages in the text field: refused with the fix, after the records were decided
        with pytest.raises(tdg.ConfigError, match="holds list values"):
            g.wrap(Rows([{"text": [{"role": "user", "content": r["text"]}]} for r in ROWS]))
    train = g.wrap(Rows(ROWS))
    assert list(g.sources) == [""]  # main: ['', 'data1']
    g.save(tmp_path)

    resumed = _guard()
    resumed.load(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = resumed.wrap(Rows(ROWS))
    rep = resumed.report()
    assert len(again) == len(train) > 0  # main: 0, every record a duplicate of data1's, no warning
    assert rep["replayed"] == len(ROWS)
    assert rep["dropped_by_reason"] == g.report()["dropped_by_reason"]


def test_a_wrap_that_succeeds_still_takes_the_next_name():
    g = _guard()
    g.wrap(Rows(ROWS[:20]))
    with pytest.raises(KeyError):
        g.wrap(Rows(ROWS[20:], broken=True))
    g.wrap(Rows(ROWS[20:]))
    assert list(g.sources) == ["", "data1"]
