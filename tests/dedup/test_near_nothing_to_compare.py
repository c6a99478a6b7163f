"""NearDedup refuses settings under which it compares nothing: shingles='tokens' on records that hold text but no
token ids, or records where it finds neither text nor token ids (text_field=None on text records, tensors).
Before, every record passed uncompared, counted only as near/no_content, and the duplicates stayed."""
import pytest
import torch
from torch.utils.data import TensorDataset

import torchdataguard as tdg
from torchdataguard.errors import ConfigError

TEXTS = [f"the message number {i} about the weekly meeting of the team" for i in range(10)] * 2


def test_token_shingles_on_text_records_are_refused_with_the_fix():
    g = tdg.Guard([tdg.NearDedup(shingles="tokens")], progress=False)
    with pytest.raises(ConfigError, match=r"shingles='tokens'.*'input_ids', which none of the first 20 records holds"):
        g.wrap([{"text": t} for t in TEXTS])
    assert len(tdg.Guard([tdg.NearDedup()], progress=False).wrap([{"text": t} for t in TEXTS])) == 10


@pytest.mark.parametrize("data", [[{"text": t} for t in TEXTS],
                                  TensorDataset(torch.arange(40.0).reshape(20, 2), torch.zeros(20))])
def test_records_with_neither_text_nor_tokens_are_refused(data):
    g = tdg.Guard([tdg.NearDedup()], text_field=None, progress=False)
    with pytest.raises(ConfigError, match="neither text nor token ids"):
        g.wrap(data)


def test_some_records_without_tokens_among_others_stay_counted():
    rows = [{"input_ids": [5, 6, 7, 8, 9, i]} for i in range(8)] + [{"label": 1}] * 2
    g = tdg.Guard([tdg.NearDedup()], text_field=None, progress=False)
    assert len(g.wrap(rows)) == 10
    assert g.report()["counts"]["near/no_content"] == 2
    g.reset()  # a reset guard looks at its first records again
    with pytest.raises(ConfigError, match="neither text nor token ids"):
        g.wrap([{"label": 1}] * 3, source="other")
