"""Poisson sampling by unit, split into accumulation micro-batches."""
from torch.utils.data import DataLoader

from torchdataguard.dp.sampling import PoissonBatchSampler, loader_sampling_problems


def test_rate_is_the_accounted_rate():
    s = PoissonBatchSampler(1000, sample_rate=0.05, micro_batches_per_epoch=400, seed=0)
    sizes = [0 if s.plans[m].pad else len(b) for m, b in enumerate(s)]
    mean = sum(sizes) / len(sizes)
    assert abs(mean - 50) < 2.5  # q x N, within ~3 standard errors


def test_groups_follow_gradient_accumulation_with_a_short_last_step():
    s = PoissonBatchSampler(100, sample_rate=0.2, micro_batches_per_epoch=7, accumulation=3, seed=1)
    batches = list(s)
    assert len(batches) == 7 == len(s) and s.groups == [3, 3, 1]
    assert [s.plans[m].step_len for m in range(7)] == [3, 3, 3, 3, 3, 3, 1]
    assert [s.plans[m].pos for m in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    step0 = sum(batches[:3], [])
    assert len(step0) == len(set(step0))  # one Poisson draw split without repeats


def test_empty_micro_batches_are_padding():
    s = PoissonBatchSampler(10, sample_rate=0.01, micro_batches_per_epoch=20, seed=2, pad_index=3)
    batches = list(s)
    pads = [m for m in range(20) if s.plans[m].pad]
    assert pads and all(batches[m] == [3] for m in pads)


def test_units_stay_whole_and_seeded_draws_repeat():
    units = [i // 3 for i in range(30)]
    a = PoissonBatchSampler(30, sample_rate=0.3, micro_batches_per_epoch=6, accumulation=2, unit_ids=units, seed=4)
    b = PoissonBatchSampler(30, sample_rate=0.3, micro_batches_per_epoch=6, accumulation=2, unit_ids=units, seed=4)
    la, lb = list(a), list(b)
    assert la == lb and a.num_units == 10
    for m, rows in enumerate(la):
        if not a.plans[m].pad:
            for u in set(r // 3 for r in rows):
                assert sorted(r for r in rows if r // 3 == u) == [3 * u, 3 * u + 1, 3 * u + 2]
    state = a.state_dict()
    c = PoissonBatchSampler(30, sample_rate=0.3, micro_batches_per_epoch=6, accumulation=2, unit_ids=units, seed=9)
    c.load_state_dict(state)
    assert list(c) == list(a)


def test_loader_problems(list_stream):
    ds = list(range(10))
    assert loader_sampling_problems(DataLoader(ds, batch_size=2)) == []
    assert loader_sampling_problems(DataLoader(ds, batch_size=2, shuffle=True), trainer_default_shuffle_ok=True) == []
    assert "drop_last" in loader_sampling_problems(DataLoader(ds, batch_size=2, drop_last=True))[0]
    it = list_stream(list(range(4)))
    assert "IterableDataset" in loader_sampling_problems(DataLoader(it, batch_size=2))[0]
