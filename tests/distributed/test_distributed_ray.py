"""``torchdataguard scan --engine ray`` equals the local scan (skipped when Ray, an optional extra, is missing)."""
import importlib.util
import json
import random

import pytest

from torchdataguard.cli import main
from torchdataguard.scan import scan

HAS_RAY = importlib.util.find_spec("ray") is not None


def corpus(path, n=260, seed=5):
    rng = random.Random(seed)
    vocab = [f"v{i}" for i in range(300)]
    bases = []
    lines = []
    for i in range(n):
        r = rng.random()
        if bases and r < 0.2:
            lines.append(json.dumps({"text": rng.choice(bases).upper()}))
        elif bases and r < 0.4:
            ws = rng.choice(bases).split()
            ws[rng.randrange(len(ws))] = "changed"
            lines.append(json.dumps({"text": " ".join(ws)}))
        elif r < 0.43:
            lines.append("{not json")
        elif r < 0.46:
            lines.append(json.dumps({"text": f"write to person{i}@example.org or call +1 415 555 01{i % 90:02d} "
                                             + " ".join(rng.choice(vocab) for _ in range(30))}))
        else:
            t = " ".join(rng.choice(vocab) for _ in range(rng.randint(20, 50)))
            bases.append(t)
            lines.append(json.dumps({"text": t}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.skipif(HAS_RAY, reason="ray is installed: the install hint is not shown")
def test_ray_engine_without_ray_says_how_to_install(tmp_path, capsys):
    src = corpus(tmp_path / "in.jsonl", n=20)
    rc = main(["scan", str(src), "--out", str(tmp_path / "o"), "--engine", "ray", "--device", "cpu", "--no-progress"])
    assert rc == 2
    assert 'pip install "torchdataguard[ray]"' in capsys.readouterr().err


@pytest.mark.skipif(not HAS_RAY, reason="ray is an optional extra (pip install 'torchdataguard[ray]')")
def test_ray_scan_equals_local_scan(tmp_path, capsys):
    src = corpus(tmp_path / "in.jsonl")
    stages = "pii,exact,near"
    local = scan(str(src), str(tmp_path / "local"), stages=stages.split(","), device="cpu", progress=False,
                 chunk_size=32)
    rc = main(["scan", str(src), "--out", str(tmp_path / "ray"), "--engine", "ray", "--stages", stages,
               "--chunk-size", "32", "--index-actors", "2", "--no-progress"])
    assert rc == 0
    assert "seen 260" in capsys.readouterr().out
    for name in ("kept.jsonl", "dropped.jsonl"):
        a = (tmp_path / "local" / name).read_text()
        b = (tmp_path / "ray" / name).read_text()
        assert a == b, name
    rep = json.loads((tmp_path / "ray" / "report.json").read_text())
    for k in ("seen", "kept", "dropped", "dropped_by_reason", "counts"):
        assert rep[k] == local[k], k
    assert {"duplicate/exact", "duplicate/near", "invalid/json"} <= set(rep["dropped_by_reason"])
    assert rep["counts"].get("pii/email", 0) > 0
    assert rep["engine"]["name"] == "ray" and rep["distributed"]["world_size"] == 2


@pytest.mark.skipif(not HAS_RAY, reason="ray is an optional extra (pip install 'torchdataguard[ray]')")
def test_ray_scan_reports_damaged_input_and_missing_text_field_like_the_local_scan(tmp_path):
    import gzip
    import os

    src = corpus(tmp_path / "in.jsonl", n=120)
    gz = gzip.compress(src.read_bytes())
    bad = tmp_path / "in.jsonl.gz"
    bad.write_bytes(gz[: len(gz) // 2])
    out = tmp_path / "ray"
    (out).mkdir()
    (out / "report.json").write_text("{}")  # a previous run's report must not survive beside partial files
    rc = main(["scan", str(bad), "--out", str(out), "--engine", "ray", "--index-actors", "1", "--no-progress"])
    assert rc == 3
    assert sorted(os.listdir(out)) == ["dropped.partial.jsonl", "kept.partial.jsonl", "report.html", "report.json"]
    rep = json.loads((out / "report.json").read_text())
    assert rep["complete"] is False and rep["status"] == "input_error" and 0 < rep["seen"] == rep["records_read"]
    assert len((out / "kept.partial.jsonl").read_text().splitlines()) == rep["kept"]
    rc = main(["scan", str(src), "--out", str(tmp_path / "ray2"), "--engine", "ray", "--index-actors", "1",
               "--no-progress", "--text-field", "body"])
    assert rc == 2
    assert json.loads((tmp_path / "ray2" / "report.json").read_text())["status"] == "config_error"
