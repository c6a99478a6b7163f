"""The per-run and per-record shortcuts of ``torchdataguard scan`` (benchmarks/scan_overhead.py) give what the
longer ways gave: JSONL lines decoded as ``JSONDecoder.decode`` decodes them, and the command's collector off
while it imports, on again for the scan."""
import gc
import json
import random

import pytest

from torchdataguard import cli
from torchdataguard.io.readers import _finite_float, _line_decoder, _NotFinite, read_records

PIECES = ['{}', '[]', '{"a": 1}', '"x"', '1', '1e400', '-0', 'NaN', 'Infinity', 'true', 'null', ' ', '\t', '\r',
          '\n', '\x0c', '\x0b', '\ufeff', '\u00a0', '{"a": [1, 2.5e3, "é"]}', '}', '{', '"', '\\', 'x', ',', '1 2',
          '{"a":1}{"b":2}', '{"t": "a\\u0000"}', '{"t": "\\ud800"}']


def _outcome(decode, line):
    try:
        return "value", json.dumps(decode(line), sort_keys=True, default=repr)
    except _NotFinite:
        return ("not finite",)
    except json.JSONDecodeError:
        return ("json error",)


@pytest.mark.parametrize("parse_float", [None, _finite_float])
def test_line_decoder_agrees_with_the_decoder_on_every_line_shape(parse_float):
    decoder = json.JSONDecoder(parse_float=parse_float)
    mine = _line_decoder(decoder)
    rng = random.Random(7)
    lines = ["", " {}", "{} ", "{}\n", "{}\r\n", "{}\x0c", "{} x", "[1]\n\n", "\t[1]", "1e400\n", "{\"a\": NaN}"]
    lines += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4))) + rng.choice(["", "\n", "\r\n", " \n"])
              for _ in range(20000)]
    for line in lines:
        assert _outcome(mine, line) == _outcome(decoder.decode, line), repr(line)


def test_jsonl_records_and_lines_as_the_file_holds_them(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "a"}\n  {"text": "b"}  \r\n\n \t\n[1]\n{"text": "c"} x\n{"v": 1e400}\n"s"\n'
                    b'{"text": "\xc3\xa9"}\x0c\n\xff\n')
    from collections import deque

    lines = deque()
    recs = list(read_records(str(src), lines=lines))
    assert [r if not hasattr(r, "reason") else r.reason for r in recs] == [
        {"text": "a"}, {"text": "b"}, "not_a_record", "json", {"v": float("inf")}, "s", "json", "not_utf8"]
    assert [line for _, line in lines] == ['{"text": "a"}', '  {"text": "b"}  ', None, None, None, '"s"', None, None]


def test_the_command_imports_with_the_collector_off_and_scans_with_it_on(monkeypatch, tmp_path):
    seen = {}

    def fake_main(argv, *, fast_exit):
        seen["importing"] = gc.isenabled()
        cli._imports_done(True)
        seen["scanning"] = gc.isenabled()
        return 0

    monkeypatch.setattr(cli, "_main", fake_main)
    monkeypatch.setattr(gc, "freeze", lambda: seen.setdefault("frozen", True))
    assert gc.isenabled()
    with pytest.raises(SystemExit):
        cli.command()
    assert seen == {"importing": False, "frozen": True, "scanning": True}
    assert gc.isenabled()


def test_main_from_python_leaves_a_disabled_collector_off(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a b c"}\n', encoding="utf-8")
    gc.disable()
    try:
        assert cli.main(["scan", str(src), "--out", str(tmp_path / "o"), "--device", "cpu", "--no-progress"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
