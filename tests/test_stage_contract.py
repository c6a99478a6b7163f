"""The shared contract every registered stage passes (see STYLE.md).

Record stages: pickle, do not mutate their input, give the same answer twice, run inside a Guard.
Index stages: keyers pickle; decisions do not depend on chunking; state round-trips through
safetensors + JSON and a resumed stage makes the same decisions. Batch stages have their own contract
tests (tests/augment) because they need tensors of the right shape.
"""
import copy
import pickle
import warnings

import pytest

import torchdataguard as tdg
from torchdataguard.core.plan import Planner
from torchdataguard.core.stage import STAGES, Example, IndexStage, RecordStage
from torchdataguard.core.state import load_state, save_state
from torchdataguard.scan.stages import load_builtin_stages

load_builtin_stages()  # registers every built-in stage

TEXTS = [
    "The committee met on Tuesday to discuss the budget for the coming year, and agreed on most points.",
    "the committee met on tuesday to discuss the budget for the coming year, and agreed on most points.",
    "Write to alice@example.com or call +1 415 555 0100 about the meeting notes from last week.",
    "Random words: apple banana cherry.",
    "The committee met on Tuesday to discuss the budget for the coming year and agreed on most points today.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "What time is it?",  # short texts: near-dedup decides them on exact shingle sets (state included)
    "Paris is in France.",
    "paris is in france",
    "Paris is in France and Lyon is too.",
] * 3


#: stages that cannot be built without arguments: the arguments their contract runs with
ARGS = {
    # boilerplate counting (max_train_count) gives the stage state that the resume check exercises
    "decontaminate": lambda: dict(evals={"bench": ["They met on Tuesday to discuss the budget for the coming year.",
                                                   "Count: 5 6 7 8 9 10 11"]}, ngram=5, max_train_count=2),
}


def _make(name):
    return STAGES.get(name)(**ARGS.get(name, dict)())


def _record_names():
    return [n for n in STAGES.names() if issubclass(STAGES.get(n), RecordStage)]


def _index_names():
    return [n for n in STAGES.names() if issubclass(STAGES.get(n), IndexStage)]


@pytest.mark.parametrize("name", _record_names())
def test_record_stage_contract(name):
    stage = _make(name)
    clone = pickle.loads(pickle.dumps(stage))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, t in enumerate(TEXTS):
            rec = {"text": t, "label": i % 2}
            before = copy.deepcopy(rec)
            ex = Example(i, rec, t, "text")
            a = stage.process(ex)
            b = clone.process(Example(i, dict(rec), t, "text"))
            assert rec == before, f"{name} mutated its input record"
            assert type(a) is type(b)
            if isinstance(a, tdg.Drop):
                assert a.reason == b.reason and a.reason
            else:
                assert a.record == b.record and a.text == b.text
    assert isinstance(stage.config(), dict)


@pytest.mark.parametrize("name", _index_names())
def test_index_stage_contract(name, tmp_path):
    records = [{"text": t} for t in TEXTS]
    # chunking does not change decisions
    results = []
    for chunk in (1, 4, 64):
        g = tdg.Guard([_make(name)], device="cpu", chunk_size=chunk, progress=False)
        results.append([(ex.id, None if d is None else (d.reason, d.matched)) for ex, d, _ in g.process(records)])
    assert results[0] == results[1] == results[2]
    # keyers pickle (they run in workers)
    st = _make(name)
    keyer = pickle.loads(pickle.dumps(st.keyer()))
    assert keyer([Example(0, records[0], TEXTS[0], "text")]) is not None
    # a resumed stage makes the same decisions as an uninterrupted one
    full = tdg.Guard([_make(name)], device="cpu", chunk_size=4, progress=False)
    expected = [(ex.id, d and d.reason, d and d.matched) for ex, d, _ in full.process(records)]
    first = tdg.Guard([_make(name)], device="cpu", chunk_size=4, progress=False)
    got = [(ex.id, d and d.reason, d and d.matched) for ex, d, _ in first.process(records[:7])]
    save_state(tmp_path, first.state_dict())
    second = tdg.Guard([_make(name)], device="cpu", chunk_size=4, progress=False)
    second.load_state_dict(load_state(tmp_path))
    got += [(ex.id, d and d.reason, d and d.matched)
            for ex, d, _ in second.process(records[7:], ids=range(7, len(records)))]
    assert got == expected
    assert second.report()["seen"] == len(records)


def test_planner_pickles_with_every_record_stage():
    stages = [_make(n) for n in _record_names()] + [_make(n) for n in _index_names()]
    g = tdg.Guard(stages, device="cpu", progress=False)
    p = pickle.loads(pickle.dumps(g.planner()))
    assert isinstance(p, Planner)
    plan = p.plan([{"text": t} for t in TEXTS[:3]], [0, 1, 2])
    assert len(plan.examples) == 3
