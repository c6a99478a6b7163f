"""``.json`` input streams element by element (memory bounded by one element) and malformed JSON is a clear fault."""
import io
import json
import random
import tracemalloc

import pytest

import torchdataguard.io.readers as readers
from torchdataguard.core.plan import BadRecord
from torchdataguard.errors import ConfigError, GuardInputError
from torchdataguard.io.readers import read_records


def iter_json_records(*a, **kw):
    from torchdataguard.io.jsonstream import iter_json_records as it

    return it(*a, **kw)


def big_array(path, n):
    with open(path, "w") as fh:
        fh.write("[\n")
        for i in range(n):
            fh.write(("," if i else "") + json.dumps({"id": i, "text": f"record {i} " + "words " * 30}) + "\n")
        fh.write("]\n")
    return path


def test_records_are_yielded_before_the_file_is_read(tmp_path, monkeypatch):
    p = big_array(tmp_path / "big.json", 40_000)  # about 8 MB
    size = p.stat().st_size
    read = {"bytes": 0}
    real_open = readers._open_binary

    class Counting(io.RawIOBase):
        def __init__(self, fh):
            self.fh = fh

        def readable(self):
            return True

        def readinto(self, b):
            n = self.fh.readinto(b)
            read["bytes"] += n or 0
            return n

        def close(self):
            self.fh.close()
            super().close()

    monkeypatch.setattr(readers, "_open_binary", lambda path: io.BufferedReader(Counting(real_open(path))))
    it = read_records(str(p))
    first = next(it)
    assert first["id"] == 0
    assert read["bytes"] < size / 20, (read["bytes"], size)  # a block or two, not the whole file
    assert sum(1 for _ in it) == 39_999


def test_memory_stays_bounded_by_an_element(tmp_path):
    p = big_array(tmp_path / "big.json", 40_000)
    size = p.stat().st_size
    tracemalloc.start()
    try:
        n = 0
        for rec in read_records(str(p)):
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 40_000
    assert peak < size / 8, (peak, size)  # json.loads of the whole file peaks at several times its size


def test_every_value_survives_any_block_boundary():
    rng = random.Random(7)

    def value(depth=0):
        r = rng.random()
        if depth > 2 or r < 0.4:
            return rng.choice([rng.randint(-10**12, 10**12), rng.random() * 10**rng.randint(-5, 5), True, False, None,
                               "".join(rng.choice('ab"\\\n\u00e9\u4e2d\U0001f600 ') for _ in range(rng.randint(0, 9)))])
        if r < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 4))}

    records = [{"text": f"t{i}", "v": value()} for i in range(60)]
    for indent in (None, 2):
        doc = json.dumps(records, indent=indent, ensure_ascii=bool(indent))
        for block in (1, 2, 3, 7, 64):
            got = list(iter_json_records(lambda: io.StringIO(doc), name="x.json", block=block))
            assert got == records, (indent, block)


def test_an_object_holding_one_array_streams_and_two_arrays_are_refused():
    doc = json.dumps({"version": 2, "meta": {"a": [1, 2]}, "data": [{"text": "a"}, {"text": "b"}]})
    assert list(iter_json_records(lambda: io.StringIO(doc), name="x.json")) == [{"text": "a"}, {"text": "b"}]
    doc = json.dumps({"data": [{"text": "a"}], "more": [{"text": "b"}]})
    with pytest.raises(ConfigError, match="found 2 lists"):
        list(iter_json_records(lambda: io.StringIO(doc), name="x.json"))
    with pytest.raises(ConfigError, match="holds a JSON int"):
        list(iter_json_records(lambda: io.StringIO("42"), name="x.json"))


@pytest.mark.parametrize("doc,n_before,what", [
    ('[{"text": "a"}, {"text": "b"}, {"text": "c', 2, "Unterminated string"),  # truncated
    ('[{"text": "a"}, {"text": "b"}', 2, "expected ',' or ']'"),  # no closing bracket
    ('[{"text": "a"} {"text": "b"}]', 1, "expected ',' or ']'"),  # a missing comma
    ('[{"text": "a"}, {text: "b"}]', 1, "Expecting property name"),
    ('[{"text": "a"}] trailing', 1, "extra data after the top-level value"),
    ("", 0, "the file is empty"),
])
def test_malformed_arrays_end_with_a_clear_fault(tmp_path, doc, n_before, what):
    p = tmp_path / "bad.json"
    p.write_text(doc)
    got = []
    with pytest.raises(GuardInputError) as exc:
        for rec in read_records(str(p)):
            got.append(rec)
    assert len(got) == n_before
    msg = str(exc.value)
    assert what in msg and "bad.json is not a valid JSON file" in msg and "at character" in msg


def test_array_elements_that_are_not_records_are_marked(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps([{"text": "a"}, [1, 2], 3, True, "plain text", None]))
    got = list(read_records(str(p)))
    assert got[0] == {"text": "a"} and got[4] == "plain text" and got[5] is None
    assert [g.reason for g in got[1:4] if isinstance(g, BadRecord)] == ["not_a_record"] * 3


def test_one_huge_element_is_a_fault_not_unbounded_memory():
    doc = '[{"text": "' + "x" * 5000 + '"}]'
    with pytest.raises(GuardInputError, match="longer than 1,000 characters"):
        list(iter_json_records(lambda: io.StringIO(doc), name="x.json", max_item_chars=1000, block=64))


def test_a_huge_element_is_named_a_limit_not_an_invalid_file(tmp_path):
    """Until 2026-12-07 the message began "x.json is not a valid JSON file": the file is valid, only one element is
    over the reader's bound, and the fix is --max-chars or JSON lines."""
    doc = '[{"text": "a"}, {"text": "' + "x" * 5000 + '"}]'
    with pytest.raises(GuardInputError) as exc:
        list(iter_json_records(lambda: io.StringIO(doc), name="x.json", max_item_chars=1000, block=64))
    msg = str(exc.value)
    assert "not a valid JSON file" not in msg and "longer than 1,000 characters" in msg
    assert "--max-chars" in msg and "jq -c '.[]' x.json > records.jsonl" in msg and "at character 16" in msg
