"""The label-issue benchmark's retrained arms: each chooses its epochs on its own (cleaned) training set."""
import importlib.util
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "benchmarks", "label_issues.py")


def load_benchmark():
    spec = importlib.util.spec_from_file_location("label_issues_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy(seed=0, n=60, d=4, classes=3):
    """Learnable: the label is the largest of ``classes`` random projections of x."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x @ torch.randn(d, classes, generator=g)).argmax(1)


def test_retrained_arm_chooses_epochs_on_its_kept_examples_only():
    bench = load_benchmark()
    x, y = toy()
    removed = set(range(0, 60, 4))
    keep = torch.tensor([i for i in range(60) if i not in removed])
    first = bench.retrain_without(x, y, removed, 3, seed=1, epochs=None)
    assert first["passes_epoch_search"] > 0 and first["curve"]
    assert (first["epochs"], first["curve"]) == bench.choose_epochs(x[keep], y[keep], 3, seed=1)[:2]
    # whatever the removed rows hold, the search and the model are the same: they never see them
    x2, y2 = x.clone(), y.clone()
    rows = torch.tensor(sorted(removed))
    x2[rows] = torch.randn(len(rows), 4, generator=torch.Generator().manual_seed(9)) * 5
    y2[rows] = (y2[rows] + 1) % 3
    assert bench.choose_epochs(x2, y2, 3, seed=1)[1] != bench.choose_epochs(x, y, 3, seed=1)[1]  # they would matter
    second = bench.retrain_without(x2, y2, removed, 3, seed=1, epochs=None)
    assert (second["epochs"], second["curve"], second["passes_epoch_search"]) == \
        (first["epochs"], first["curve"], first["passes_epoch_search"])
    for a, b in zip(first["model"].parameters(), second["model"].parameters()):
        assert torch.equal(a, b)


def test_fixed_epochs_skip_the_search():
    bench = load_benchmark()
    x, y = toy(seed=2)
    removed = {3, 5, 7}
    out = bench.retrain_without(x, y, removed, 3, seed=0, epochs=4)
    assert (out["epochs"], out["curve"], out["passes_epoch_search"]) == (4, {}, 0)
    keep = torch.tensor([i for i in range(60) if i not in removed])
    ref, _ = bench.train(x[keep], y[keep], 3, epochs=4, seed=0)
    for a, b in zip(out["model"].parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_paired_difference_per_seed():
    bench = load_benchmark()
    rows = [{"test_acc_all": 0.95, "test_acc_without_flipped": 0.96},
            {"test_acc_all": 0.97, "test_acc_without_flipped": 0.965},
            {"test_acc_all": 0.94, "test_acc_without_flipped": 0.94}]
    out = bench.paired(rows, "without_flipped")
    assert out["per_seed"] == [0.01, -0.005, 0.0]
    assert out["mean"] == round((0.01 - 0.005) / 3, 4)
    assert (out["positive"], out["negative"], out["seeds"]) == (1, 1, 3)
