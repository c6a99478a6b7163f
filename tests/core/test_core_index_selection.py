"""Which rows each index stage decides (core/decider.py ``_decide_index_stages``): every row its keyer saw that is
not replayed, not dropped by a record stage or validation before it, and not dropped by an earlier index stage;
the shortcuts for chunks without such rows select exactly what the row-by-row test selects."""
from __future__ import annotations

import random

import pytest
import torch

from torchdataguard.core.decider import _decide_index_stages
from torchdataguard.core.plan import Plan
from torchdataguard.core.stage import Drop, Example, IndexStage


class _Drops(IndexStage):
    """Drops the rows whose id is in ``drop``; notes the ids and keys it was given."""

    def __init__(self, drop):
        self.drop, self.calls = set(drop), []

    def keyer(self):
        return lambda exs: torch.tensor([e.id for e in exs])

    def decide(self, exs, keys):
        self.calls.append(([e.id for e in exs], keys.tolist()))
        return [Drop("x/dup") if e.id in self.drop else None for e in exs]


def _reference(stages, plan, replay):
    """The row-by-row selection, as it was written before the shortcuts."""
    exs, m = plan.examples, len(plan.examples)
    final, step, calls = [None] * m, [-1] * m, []
    for si, st in enumerate(stages):
        rows, keys = plan.keys.get(si, ([], None))
        pre = plan.pre_drop
        sel = [j for j, i in enumerate(rows) if not replay[i] and final[i] is None and (pre[i] is None or pre[i][0] >= si)]
        if not sel:
            calls.append(None)
            continue
        ids = [exs[rows[j]].id for j in sel]
        calls.append((ids, [keys[j].item() for j in sel]))
        for j in sel:
            if exs[rows[j]].id in st.drop:
                final[rows[j]], step[rows[j]] = "x/dup", si
    return calls, final, step


@pytest.mark.parametrize("seed", range(40))
def test_index_stages_decide_the_rows_the_row_by_row_test_selects(seed):
    rnd = random.Random(seed)
    m = rnd.choice([1, 5, 40])
    kind = seed % 4  # 0: nothing dropped before; 1: replays; 2: record-stage drops; 3: a row the keyer never saw
    replay = [rnd.choice([0, 0, 1, 2]) if kind == 1 else 0 for _ in range(m)]
    pre = [None] * m
    if kind == 2:
        for i in rnd.sample(range(m), max(1, m // 4)):
            pre[i] = (rnd.choice([-1, 0, 1, 2]), Drop("quality/x"))
    exs = [Example(i, f"t{i}", f"t{i}") for i in range(m)]
    stages = [_Drops(rnd.sample(range(m), m // 3)), _Drops(rnd.sample(range(m), m // 2))]
    plan = Plan(exs, pre)
    for si in range(2):
        rows = [i for i in range(m) if not (kind == 3 and i == 0 and si == 1)]
        plan.keys[si] = (rows, torch.tensor([100 * si + i for i in rows]))
    want_calls, want_final, want_step = _reference(stages, plan, replay)
    final, step = _decide_index_stages(stages, plan, replay)
    got_calls = [st.calls[0] if st.calls else None for st in stages]
    assert got_calls == want_calls
    assert [d and d.reason for d in final] == want_final and step == want_step


class _Short(IndexStage):
    """Keys every example it is given by its id; keeps everything."""

    def __init__(self, name):
        self.stage_name = name

    def keyer(self):
        return lambda exs: [e.id for e in exs]

    def decide(self, exs, keys):
        return [None] * len(exs)


@pytest.mark.parametrize("case", ["plain", "invalid", "record_drop", "protected"])
def test_keyers_see_the_rows_alive_at_their_step(case):
    import torchdataguard as tdg
    from torchdataguard.core.ids import record_fingerprint
    from torchdataguard.core.stage import Filter

    class DropsOdd(Filter):
        stage_name = "drops_odd_test"

        def judge(self, ex):
            return Drop("quality/odd") if int(ex.text.split()[-1]) % 2 else None

    texts = [f"text {i}" for i in range(12)]
    if case == "invalid":
        texts[3] = None
    stages = [_Short("a"), DropsOdd(), _Short("b")] if case == "record_drop" else [_Short("a"), _Short("b")]
    g = tdg.Guard(stages, device="cpu", progress=False)
    if case == "protected":
        g.protect({record_fingerprint(texts[5]): "audit/canary"})
    plan = g.planner().plan(texts, list(range(12)))
    first, last = plan.keys[0], plan.keys[len(stages) - 1]
    everyone = list(range(12))
    want_first = [i for i in everyone if not (case == "invalid" and i == 3) and not (case == "protected" and i == 5)]
    want_last = [i for i in want_first if not (case == "record_drop" and i % 2)]
    assert first == (want_first, want_first) and last == (want_last, want_last)
