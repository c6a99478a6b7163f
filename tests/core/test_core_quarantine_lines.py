"""Quarantine lines: a flat record of plain values is written as it is, any other the way to_jsonable converts
it; the byte count follows what the file holds."""
import json
import os

import pytest
import torch

from torchdataguard.core.jsonable import json_line, to_jsonable
from torchdataguard.core.quarantine import QuarantineSink
from torchdataguard.core.stage import Drop, Example


class _Str(str):
    def __str__(self):
        return "changed"


def test_records_are_written_as_to_jsonable_converts_them(tmp_path):
    records = [
        {"id": 1, "text": "plain"},
        {"id": "a", "text": "caf\u00e9 \u6570\u636e", "flag": True, "none": None},
        {"text": "x", "v": float("nan")},
        {"text": "x", "v": float("inf"), "w": 1.5},
        {"text": "x", "t": torch.tensor([1, 2])},
        {"text": "x", "b": b"bytes", "nested": {"k": [1, (2, 3)]}},
        {1: "int key", "text": "x"},
        {_Str("k"): "str subclass key", "text": "x"},
        {"text": "lone \ud800 surrogate"},
    ]
    path = os.path.join(tmp_path, "dropped.jsonl")
    sink = QuarantineSink(path)
    for i, rec in enumerate(records):
        sink.write(Example(i, rec), Drop("duplicate/exact", matched=0, score=1.0))
    sink.close()
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == len(records) == sink.lines and sink.bytes == len(data)
    for i, (line, rec) in enumerate(zip(lines, records)):
        want = {"id": i, "reason": "duplicate/exact", "matched": 0, "score": 1.0, "record": to_jsonable(rec)}
        assert line == json_line(want)
        assert json.loads(line)["record"] == json.loads(json.dumps(to_jsonable(rec)))


def test_to_jsonable_converts_what_containers_hold():
    nan, inf = float("nan"), float("inf")
    got = to_jsonable({"a": [nan, 1.5, inf, (b"x", None)], 2: {"t": torch.tensor([3]), "s": "s", "b": True}})
    assert got == {"a": ["nan", 1.5, "inf", ["x", None]], "2": {"t": [3], "s": "s", "b": True}}
    assert to_jsonable([nan, -inf, 7, "x"]) == ["nan", "-inf", 7, "x"]


def test_json_line_is_json_dumps():
    for obj in ({"id": 1, "text": "caf\u00e9", "v": [1.5, None, True]}, "plain", 3, [{"a": "\u6570"}],
                {"k": "quote\" nl\n", "f": float("nan")}):
        assert json_line(obj) == json.dumps(obj, ensure_ascii=False)
    assert json_line({"t": "lone \ud800"}) == json.dumps({"t": "lone \ud800"})  # escaped: not valid UTF-8


def test_json_line_takes_the_c_encoder_and_writes_what_json_dumps_writes(monkeypatch):
    import platform

    import torchdataguard.core.jsonable as J

    if platform.python_implementation() == "CPython":
        assert J._C_UTF8 is not None  # built once at import: the path every line takes
    objs = [{"id": 1, "text": "caf\u00e9 \u2028 \"q\"", "v": [1.5, None, True, -1e300, float("-inf")]}, [], {},
            {"n": {"m": [1, {"k": 2}]}}, 7, 2.5, None, "s", {1: "int key", 2.5: "float key", None: 0, True: 1}]
    for obj in objs + [{"t": "lone \ud800"}]:
        want = json.dumps(obj, ensure_ascii=False)
        try:
            want.encode("utf-8")
        except UnicodeEncodeError:
            want = json.dumps(obj)
        assert json_line(obj) == want
    with pytest.raises(TypeError):
        json_line({"x": object()})
    monkeypatch.setattr(J, "_C_UTF8", None)  # no C encoder: the encoder's own path, the same text
    for obj in objs:
        assert json_line(obj) == json.dumps(obj, ensure_ascii=False)
