"""A guard never closed still flushes and closes its quarantine file: when collected, and at interpreter exit."""
import gc
import json
import os
import subprocess
import sys
import textwrap
import warnings

import torchdataguard as tdg
from torchdataguard.core.quarantine import QuarantineSink
from torchdataguard.core.stage import Drop, Example

RECORDS = [{"text": "the same words here"}, {"text": "the same words here"}, {"text": "other words entirely"}]


def _lines(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_a_guard_never_closed_closes_its_quarantine_file_when_collected(tmp_path):
    path = str(tmp_path / "dropped.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, quarantine=path)
        assert len(list(guard.filter(RECORDS))) == 2
        del guard
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert [row["reason"] for row in _lines(path)] == ["duplicate/exact"]  # flushed, not lost in a buffer


def test_a_sink_never_closed_is_flushed_and_a_later_close_does_nothing(tmp_path):
    path = str(tmp_path / "q.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"earlier": "run"}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        QuarantineSink(path)  # collected having written nothing (a guard whose load failed): the file stays
        gc.collect()
        assert os.path.getsize(path) == 19
        QuarantineSink(path).close()  # closed: a fresh sink empties the file, even before writing a line
        sink = QuarantineSink(str(tmp_path / "r.jsonl"))
        sink.write(Example(1, {"text": "x"}), Drop("duplicate/exact", matched=0))
        sink.close()
        sink.close()
        del sink
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert os.path.getsize(path) == 0
    assert [row["id"] for row in _lines(str(tmp_path / "r.jsonl"))] == [1]


def test_a_guard_alive_at_interpreter_exit_closes_its_quarantine_file(tmp_path):
    path = str(tmp_path / "dropped.jsonl")
    code = textwrap.dedent(f"""
        import torchdataguard as tdg
        guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, quarantine={path!r})
        kept = list(guard.filter({RECORDS!r}))
        keep_alive = [guard, guard]  # still referenced when the interpreter exits
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import torchdataguard
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(torchdataguard.__file__)))  # the code under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, root, os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ResourceWarning" not in p.stderr, p.stderr
    assert [row["reason"] for row in _lines(path)] == ["duplicate/exact"]
