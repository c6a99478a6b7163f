"""Guard(progress=False) silences the progress bar of the `datasets` map that rewrites a wrapped datasets.Dataset
(before, "torchdataguard rewrite: 100%|...|" was printed whatever progress said), and leaves `datasets`' own
switch as it found it."""
import datasets
import pytest
from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

import torchdataguard as tdg

ROWS = [{"text": f"mail user{i}@example.org about item {i}"} for i in range(20)]


@pytest.mark.parametrize("progress", [False, True])
def test_progress_setting_decides_the_datasets_bar(capfd, progress):
    g = tdg.Guard([tdg.PIIScrubber()], device="cpu", progress=progress)
    out = g.wrap(datasets.Dataset.from_list(ROWS))
    assert out[0]["text"] == "mail <EMAIL> about item 0"
    assert ("torchdataguard rewrite" in capfd.readouterr().err) is progress
    assert not are_progress_bars_disabled()  # the user's setting, back as it was


def test_bars_the_user_switched_off_stay_off(capfd):
    disable_progress_bars()
    try:
        tdg.Guard([tdg.PIIScrubber()], device="cpu", progress=False).wrap(datasets.Dataset.from_list(ROWS))
        assert are_progress_bars_disabled()
    finally:
        enable_progress_bars()
    assert "torchdataguard rewrite" not in capfd.readouterr().err
