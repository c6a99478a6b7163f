"""``report.json``'s text: :func:`indented_json` writes what ``json.dumps(indent=2)`` writes, byte for byte."""
import json
import random

import pytest

from torchdataguard.report.json import indented_json, report_json


def _dumps(obj):
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)


SCALARS = [None, True, False, 0, -5, 10 ** 20, 1.5, -0.0, 1e300, 2.5e-8, "", 'é\\"\n\x00\u2028', "},\n    {",
           "\n  }\n]", "😀", "\ud800", "a"]


def _random(rng, depth=0):
    c = rng.random()
    if depth > 4 or c < 0.4:
        return rng.choice(SCALARS)
    if c < 0.55:
        return [_random(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if c < 0.75:  # a list of flat objects, as the report's "matches"
        return [{rng.choice(["id", "}", "{", "a\n"]): rng.choice(SCALARS) for _ in range(rng.randint(0, 3))}
                for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "é", "", "\n", f"k{i}", "},\n  {"]): _random(rng, depth + 1) for i in range(rng.randint(0, 4))}


def test_random_structures_are_written_as_json_dumps_writes_them():
    rng = random.Random(3)
    for _ in range(20000):
        obj = _random(rng)
        assert indented_json(obj) == _dumps(obj), obj


@pytest.mark.parametrize("obj", [{"a": (1, 2)}, {1: 2}, {"a": {1: [2]}}, [1, {True: None}], [[]], [{}], [{"a": 1}, {}],
                                 [{"a": [1]}], [{"a": "},\n    {"}, {"b": 2}], {"m": [{"x": 1}, {"y": {"z": 2}}]}])
def test_shapes_outside_the_fast_paths(obj):
    assert indented_json(obj) == _dumps(obj)


def test_a_scan_report_with_matches():
    rep = {"seen": 5, "matches": [{"id": i, "matched": i // 2, "reason": "duplicate/near", "score": 0.8125}
                                  for i in range(300)], "stages": [{"name": "near", "config": {"threshold": 0.8}}],
           "error": None, "counts": {}, "path": "/tmp/é"}
    assert report_json(rep) == _dumps(rep) + "\n"


@pytest.mark.parametrize("obj", [{1: {"a": [1]}}, {None: 1, 2.5: "x", True: [[]]}, [{1: 2, None: 3}], {3: 4}])
def test_keys_that_are_not_strings_are_written_as_json_dumps_writes_them(obj):
    assert indented_json(obj) == _dumps(obj)


@pytest.mark.parametrize("obj", [{(1, 2): [[1]]}, {(1, 2): 3}, [{(1, 2): 3}], {"a": [{"b": 1, (1,): 2}]}])
def test_keys_json_refuses_are_refused(obj):
    with pytest.raises(TypeError):
        _dumps(obj)
    with pytest.raises(TypeError):
        indented_json(obj)


def test_non_finite_floats_are_still_refused():
    with pytest.raises(ValueError):
        indented_json({"a": [{"x": float("nan")}]})


def test_a_cycle_is_refused_as_json_dumps_refuses_it():
    loop = [1]
    loop.append([loop])
    with pytest.raises(ValueError, match="Circular"):
        indented_json({"x": loop})
