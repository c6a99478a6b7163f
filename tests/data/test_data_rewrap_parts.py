"""Data made of what the same guard returned (a ``Subset`` from ``random_split``, a ``ConcatDataset``, a
``ChainDataset``, a DataLoader over one of them) is refused as the guarded dataset itself is: wrapped again, it was a
new source whose every example was dropped as a duplicate of itself (warned about from 10 records; fewer, silently)."""
import pytest
import torch
from conftest import ListDataset as Rows
from torch.utils.data import ChainDataset, ConcatDataset, DataLoader, IterableDataset, Subset, random_split

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin

ROWS = [{"text": r["text"]} for r in load_spamassassin(limit=30)]


class Stream(IterableDataset):
    def __iter__(self):
        return iter(ROWS[:6])


def _guard():
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)


@pytest.mark.parametrize("part", ["random_split", "small subset", "concat", "loader over a subset", "chain"])
def test_data_made_of_what_the_guard_returned_is_refused(part):
    g = _guard()
    once = g.wrap(Stream() if part == "chain" else Rows(ROWS))
    data = {"random_split": lambda: random_split(once, [0.8, 0.2], generator=torch.Generator().manual_seed(0))[0],
            "small subset": lambda: Subset(once, [0, 1, 2]),  # main: all 3 dropped, no warning
            "concat": lambda: ConcatDataset([Rows(ROWS[:2]), Subset(once, [5, 6])]),
            "loader over a subset": lambda: DataLoader(Subset(once, [0, 1]), batch_size=2, collate_fn=list),
            "chain": lambda: ChainDataset([once])}[part]()
    with pytest.raises(tdg.ConfigError, match="is made of a Guarded.*Dataset that this guard returned"):
        list(g.wrap(data))
    assert list(g.sources) == [""] and g.report()["dropped"] == 0
    assert len(list(_guard().wrap(data))) > 0  # another guard may wrap it
