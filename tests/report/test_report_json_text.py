"""report.json's text is what ``json.dumps(indent=2)`` writes, whatever the report holds (report/json.py writes
lists of flat dicts, the matches, with the C encoder)."""
import json
import random

import pytest

from torchdataguard.report.json import jsonable_json


class _Str(str):
    pass


def _scalar(rng):
    return rng.choice([0, -7, 2**70, 1.0, 0.1, 1e-9, 2.5e300, -0.0, True, False, None, "", "a}", "}, {",
                       "caf\u00e9 \u6570", "quote\" back\\ tab\t nl\n", "\u2028", _Str("sub"), "\ud800"])


def _value(rng, depth):
    r = rng.random()
    if depth > 3 or r < 0.4:
        return _scalar(rng)
    if r < 0.6:  # a list of flat dicts, sometimes spoilt by one other item
        items = [{rng.choice(["id", "matched", "reason", "score", "k\u00e9"]): _scalar(rng)
                  for _ in range(rng.randint(1, 4))} for _ in range(rng.randint(0, 6))]
        if items and rng.random() < 0.3:
            items[rng.randrange(len(items))] = rng.choice([{}, [], [1, 2], {"x": [1]}, {1: 2}, 3])
        return items
    if r < 0.8:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "b", "c\u00e9", "d e", ""]) + str(i): _value(rng, depth + 1)
            for i in range(rng.randint(0, 4))}


def test_the_text_is_json_dumps_indent_2():
    rng = random.Random(3)
    for _ in range(2000):
        rep = {"seen": 3, "matches": _value(rng, 0), "nested": _value(rng, 0)}
        assert jsonable_json(rep) == json.dumps(rep, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def test_a_real_matches_list_and_non_finite_floats():
    matches = [{"id": i, "matched": i // 2, "reason": "duplicate/near", "score": round(0.8 + i / 1000, 4)}
               for i in range(500)]
    rep = {"seen": 500, "matches": matches, "scores": {"x": {"values": [1.5, 2]}}, "empty": {}, "none": []}
    assert jsonable_json(rep) == json.dumps(rep, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            jsonable_json({"matches": [{"score": bad}, {"score": 1.0}]})
