"""``import torchdataguard`` is cheap and complete: heavy libraries wait for first use, every public name resolves.

Timings are in benchmarks/import_time.py; these tests check what decides them (which modules an import loads),
each in a fresh interpreter so that nothing imported by other tests hides a regression.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import torchdataguard as tdg

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["transformers", "datasets", "opacus", "matplotlib", "pandas"]


def loaded_after(code: str, modules: List[str]) -> List[str]:
    """Which of ``modules`` are in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_library() -> None:
    assert loaded_after("import torchdataguard", HEAVY + ["torch"]) == []


def test_first_use_of_the_guard_loads_no_optional_integration() -> None:
    code = "import torchdataguard as tdg\ntdg.Guard([tdg.ExactDedup()], device='cpu', progress=False).wrap(['a', 'a'])"
    assert loaded_after(code, HEAVY) == []


def test_help_loads_neither_torch_nor_the_stages() -> None:
    code = ("import sys\nsys.argv = ['torchdataguard', '--help']\nfrom torchdataguard.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    assert loaded_after(code, ["torch", "torchdataguard.scan", "torchdataguard.core"] + HEAVY) == []


def test_scan_help_lists_the_built_in_stages(capsys: pytest.CaptureFixture) -> None:
    from torchdataguard.cli import main

    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "from ['decontaminate', 'exact', 'langid', 'near', 'normalize', 'pii', 'quality', 'text_augment']" in text


def test_dir_and_all_list_every_public_name() -> None:
    listed = set(dir(tdg))
    assert set(tdg.__all__) <= listed
    assert "GuardCallback" in tdg.__all__ and "DPCallback" in tdg.__all__


@pytest.mark.parametrize("name", tdg.__all__)
def test_each_public_name_resolves_to_the_object_of_its_module(name: str) -> None:
    value = getattr(tdg, name)
    assert value is not None
    assert value.__module__.startswith("torchdataguard.")
    assert getattr(sys.modules[value.__module__], name) is value
    namespace: dict = {}
    exec(f"from torchdataguard import {name}", namespace)  # noqa: S102 - the form users write
    assert namespace[name] is value


def test_subpackages_are_reached_as_attributes_in_a_fresh_process() -> None:
    code = ("import torchdataguard as tdg\nassert callable(tdg.augment.pop_unit_ids)\n"
            "assert tdg.anonymity.k_anonymity and tdg.core.stage.STAGES is not None")
    assert loaded_after(code, ["torchdataguard.augment", "torchdataguard.anonymity"]) == [
        "torchdataguard.augment", "torchdataguard.anonymity"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Gaurd'"):
        getattr(tdg, "Gaurd")


def test_a_guard_imported_from_its_module_finds_its_hooks_in_a_fresh_process() -> None:
    """``core`` never imports ``data``/``report``; a Guard used without the package root still wraps and reports."""
    code = ("import tempfile\nfrom torchdataguard.core.guard import Guard\nfrom torchdataguard.dedup.exact import "
            "ExactDedup\ng = Guard([ExactDedup()], device='cpu', progress=False)\nassert g.wrap(['a', 'a', 'b']) == "
            "['a', 'b']\ng.save_report(tempfile.mkdtemp())")
    assert loaded_after(code, ["torchdataguard.data.dispatch", "torchdataguard.report.save"]) == [
        "torchdataguard.data.dispatch", "torchdataguard.report.save"]


def test_a_scan_whose_stages_hold_no_tensors_loads_no_torch(tmp_path: Path) -> None:
    # `import torch` is about 0.75 s of a 2-core machine: most of a small scan (tests/core/test_torch_free.py)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"record {i} mail a{i}@example.com"}) + "\n" for i in range(20)),
                   encoding="utf-8")
    code = ("from torchdataguard.cli import main\n"
            f"assert main(['scan', {str(src)!r}, '--out', {str(tmp_path / 'out')!r}, '--stages', "
            f"'normalize,quality,pii', '--no-progress']) == 0")
    assert loaded_after(code, ["torch"]) == []
    assert (tmp_path / "out" / "report.json").exists()


def test_a_dedup_scan_on_the_cpu_loads_no_torch_and_keeps_what_it_kept_with_torch(tmp_path: Path) -> None:
    # exact and near dedup hold NumPy arrays on the CPU (torchdataguard/dedup/xp.py); the same scan with torch
    # arrays forced (TORCHDATAGUARD_DEDUP_ARRAYS=torch) keeps and drops the same records
    src = tmp_path / "in.jsonl"
    base = ["the quick brown fox jumps over the lazy dog near the river bank today",
            "近似去重把只改了标点或全角字符的副本当作重复文档丢弃，不同的短文本即使只有几个字也会保留。", "short one"]
    rows = [base[i % 3] + ("" if i % 2 else f" variant {i}") for i in range(30)] + base
    src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(rows)),
                   encoding="utf-8")
    outs = []
    for kind in ("numpy", "torch"):
        out = tmp_path / kind
        force = "os.environ['TORCHDATAGUARD_DEDUP_ARRAYS'] = 'torch'\n" if kind == "torch" else ""
        code = ("import os\n" + force + "from torchdataguard.cli import main\n"
                f"assert main(['scan', {str(src)!r}, '--out', {str(out)!r}, '--stages', 'exact,near', '--device', "
                f"'cpu', '--text-field', 'text', '--id-field', 'id', '--no-progress']) == 0")
        assert loaded_after(code, ["torch"]) == ([] if kind == "numpy" else ["torch"])
        outs.append(tuple((out / name).read_text(encoding="utf-8") for name in ("kept.jsonl", "dropped.jsonl")))
    assert outs[0] == outs[1]
    assert len(outs[0][0].splitlines()) < len(rows) and outs[0][1].count("duplicate/near") >= 1
