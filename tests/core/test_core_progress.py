"""Progress bars appear after half a second of work (tqdm is not even imported for a shorter pass)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torchdataguard as tdg
from torchdataguard.core import progress

ROOT = Path(__file__).resolve().parents[2]


def test_a_pass_longer_than_the_delay_shows_the_bar_from_the_count_so_far(capfd, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    g = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=True)
    assert g.filter(["a", "b", "a"]) == ["a", "b"]
    err = capfd.readouterr().err
    assert "guard: 3ex" in err and "ex/s" in err


def test_a_short_pass_shows_no_bar_and_counts_all(capfd):
    bar = progress.DelayedBar(5, "scan")
    bar.update(2)
    bar.update(3)
    bar.close()
    assert (bar.n, bar.shown) == (5, False)
    assert tdg.Guard([tdg.ExactDedup()], device="cpu", progress=True).filter(["a", "a"]) == ["a"]
    assert "ex/s" not in capfd.readouterr().err


def test_a_short_scan_with_its_default_progress_does_not_import_tqdm(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"text {i}"}) + "\n" for i in range(50)), encoding="utf-8")
    code = (f"import sys, json\nfrom torchdataguard.cli import main\nmain(['scan', {str(src)!r}, '--out', "
            f"{str(tmp_path / 'out')!r}, '--stages', 'exact,near', '--device', 'cpu'])\n"
            "print(json.dumps('tqdm' in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TORCHDATAGUARD_DEDUP_ARRAYS", None)  # the default scan: torch, which imports tqdm itself, not loaded
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False
    assert "ex/s" not in done.stderr
