"""benchmarks/guard_overhead_blocks.py: the drift-corrected figure compares each guarded block with plain blocks on
both sides of it in time (the sides take turns going first: g0 p0 p1 g1 g2 p2 ...)."""
import importlib.util
import os
import sys

import pytest

pytest.importorskip("transformers")
HERE = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


def _blocks():
    sys.path.insert(0, HERE)
    try:
        spec = importlib.util.spec_from_file_location("guard_overhead_blocks", os.path.join(HERE, "guard_overhead_blocks.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(HERE)


@pytest.mark.parametrize("slope", [0.02, -0.02])
def test_a_steady_drift_without_overhead_reads_as_no_overhead(slope):
    order = []  # (side, time slot) in the order the benchmark runs its blocks
    for r in range(9):
        order += [("g", r), ("p", r)] if r % 2 == 0 else [("p", r), ("g", r)]
    walls = {(side, r): 1.0 + slope * t for t, (side, r) in enumerate(order)}
    rounds = [({"wall": walls["g", r]}, {"wall": walls["p", r]}) for r in range(9)]
    fixed = _blocks().drift_corrected(rounds)
    assert fixed and max(abs(x) for x in fixed) < 1e-9
