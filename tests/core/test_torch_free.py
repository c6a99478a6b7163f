"""A guard on the CPU whose stages and records hold no tensors never imports torch (``import torch`` is most of a
small ``torchdataguard scan``): it filters, resolves ``device="cpu"`` and ``"auto"`` (without a GPU driver), saves
and loads its state without it. Each check runs in a fresh interpreter, where nothing else imported torch."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.core.arrays import is_tensor, tensors_of, to_numpy
from torchdataguard.core.plan import take_keys
from torchdataguard.core.state import load_tensors, save_state, save_tensors
from torchdataguard.device import CPU, GPU_DRIVER_FILES, may_have_gpu, resolve_device

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
import json, sys
import torchdataguard as tdg
TEXT = ("The harbour was quiet this morning. Fishermen checked their nets while gulls circled above the old stone pier, "
        "waiting for scraps. A light rain had fallen overnight, leaving puddles that reflected the grey sky. Later, "
        "children walked along the beach collecting shells, and an elderly couple sat on a bench reading newspapers. "
        "By noon the clouds had lifted, the ferry arrived on time, and the small cafe near the market filled with "
        "visitors ordering soup and fresh bread.")
RECORDS = [{"text": f"Note {i}. " + TEXT + f" Write to a{i}@example.com about it."} for i in range(30)]
RECORDS += RECORDS[:10] + [{"text": "too short"}] * 5
def stages():
    return [tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(key="k" * 32)]
def done(**extra):
    print(json.dumps(dict(extra, torch="torch" in sys.modules)))
"""


def run_fresh(code: str) -> dict:
    """Run SETUP + ``code`` in a fresh interpreter (this checkout first on the path); its last line as JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", SETUP + code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cpu_guard_of_record_stages_filters_without_importing_torch():
    out = run_fresh("g = tdg.Guard(stages(), device='cpu', progress=False)\nkept = g.filter(RECORDS)\n"
                    "done(kept=len(kept), device=repr(g.device), type=g.device.type, seen=g.report()['seen'], "
                    "scrubbed='<EMAIL>' in kept[0]['text'])")
    assert out == {"kept": 40, "device": "device(type='cpu')", "type": "cpu", "seen": 45, "scrubbed": True,
                   "torch": False}


@pytest.mark.skipif(any(os.path.exists(p) for p in GPU_DRIVER_FILES), reason="a GPU driver is present")
def test_auto_picks_the_cpu_without_importing_torch_where_no_gpu_driver_is_present():
    out = run_fresh("g = tdg.Guard(stages(), device='auto', progress=False)\ng.filter(RECORDS[:5])\n"
                    "done(device=str(g.device))")
    assert out == {"device": "cpu", "torch": False}


def test_a_guard_state_saves_and_loads_without_importing_torch(tmp_path):
    out = run_fresh(f"g = tdg.Guard(stages(), device='cpu', progress=False)\nfirst = g.filter(RECORDS)\n"
                    f"g.save({str(tmp_path)!r})\nh = tdg.Guard(stages(), device='cpu', progress=False)\n"
                    f"h.load({str(tmp_path)!r})\nagain = h.filter(RECORDS)\n"
                    f"done(same=again == first, replayed=h.report()['replayed'])")
    assert out == {"same": True, "replayed": 45, "torch": False}
    g = tdg.Guard([tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(key="k" * 32)], device="cpu", progress=False)
    g.load(tmp_path)  # and in a process with torch: the same state, read as tensors
    assert g.report()["seen"] == 45


def test_a_state_saved_as_tensors_loads_without_torch_and_the_file_is_the_same(tmp_path):
    g = tdg.Guard([tdg.Normalize(), tdg.QualityFilter()], device="cpu", progress=False)
    g.filter([f"Record number {i} is a plain sentence about the weather and the sea." for i in range(20)])
    save_state(tmp_path / "tensors", tensors_of(g.state_dict()))  # what every earlier version wrote
    save_state(tmp_path / "arrays", g.state_dict())
    files = {k: sorted((tmp_path / k).glob("*.safetensors")) for k in ("tensors", "arrays")}
    assert [p.name for p in files["tensors"]] == [p.name for p in files["arrays"]]  # named by their SHA-256
    out = run_fresh(f"from torchdataguard.core.state import load_state\n"
                    f"s = load_state({str(tmp_path / 'tensors')!r})\nd = s['ledger']['tensors']['memo_dense']\n"
                    f"done(kind=type(d).__module__, dtype=str(d.dtype), n=int((d != 0).sum()))")
    assert out == {"kind": "numpy", "dtype": "uint8", "n": 20, "torch": False}


def test_numpy_arrays_and_tensors_write_the_same_safetensors_bytes(tmp_path):
    arrays = {"a.ids": np.arange(7, dtype=np.int64), "b": np.array([1, 0, 2], dtype=np.uint8),
              "c": np.zeros((2, 3), dtype=np.int32), "d": np.array([True, False])}
    save_tensors(arrays, str(tmp_path / "np.safetensors"))
    save_tensors({k: torch.from_numpy(v) for k, v in arrays.items()}, str(tmp_path / "pt.safetensors"))
    save_tensors(dict(arrays, b=torch.from_numpy(arrays["b"])), str(tmp_path / "mixed.safetensors"))
    data = {p: (tmp_path / f"{p}.safetensors").read_bytes() for p in ("np", "pt", "mixed")}
    assert data["np"] == data["pt"] == data["mixed"]
    back = load_tensors(str(tmp_path / "np.safetensors"))  # torch is imported here: tensors, as before
    assert all(is_tensor(v) and np.array_equal(v.numpy(), arrays[k]) for k, v in back.items())


def test_a_record_holding_a_tensor_still_works():
    out = run_fresh("import torch\nrecs = [{'text': f'Record number {i} is a plain sentence about the weather.', "
                    "'x': torch.tensor([i % 3, 1])} for i in range(12)]\n"
                    "g = tdg.Guard([tdg.Normalize(), tdg.ExactDedup()], device='cpu', progress=False)\n"
                    "done(kept=len(g.filter(recs + recs)), device=repr(g.device))")
    assert out == {"kept": 12, "device": "device(type='cpu')", "torch": True}


def test_the_cpu_stand_in_behaves_like_the_cpu_device():
    assert CPU == torch.device("cpu") and torch.device("cpu") == CPU and CPU == "cpu" and CPU != "cuda"
    assert CPU != torch.device("cpu", 0) and not (CPU != torch.device("cpu"))
    assert (repr(CPU), str(CPU), CPU.type, CPU.index) == ("device(type='cpu')", "cpu", "cpu", None)
    assert torch.zeros(2, device=CPU).device == torch.device("cpu") and torch.device(CPU).type == "cpu"
    assert pickle.loads(pickle.dumps(CPU)) is not None and type(pickle.loads(pickle.dumps(CPU))) is type(CPU)
    assert resolve_device(CPU) == torch.device("cpu")  # torch is imported here: a torch.device, as before
    assert isinstance(resolve_device("cpu"), torch.device) and isinstance(resolve_device("auto"), torch.device)


def test_auto_asks_torch_only_where_a_gpu_driver_can_be(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "torch")  # may_have_gpu looks torch up, and only looks
    monkeypatch.setattr("torchdataguard.device.GPU_DRIVER_FILES", (str(tmp_path / "nvidiactl"),))
    monkeypatch.setattr("torchdataguard.device.os.name", "posix")
    monkeypatch.setattr("torchdataguard.device.sys.platform", "linux")
    assert may_have_gpu() is False
    (tmp_path / "nvidiactl").write_text("")
    assert may_have_gpu() is True
    monkeypatch.setattr("torchdataguard.device.sys.platform", "darwin")  # no CUDA on macOS; "auto" never picks MPS
    assert may_have_gpu() is False


def test_keys_are_taken_by_row_from_numpy_arrays_tensors_and_objects():
    keys = np.arange(10, dtype=np.int64).reshape(5, 2)  # ExactDedup's [n, 2] keys on the CPU
    assert take_keys(keys, [3, 1]).tolist() == [[6, 7], [2, 3]]
    assert take_keys(keys, []).shape == (0, 2)
    assert take_keys(torch.from_numpy(keys), [4]).tolist() == [[8, 9]]

    class Rows:
        def __init__(self) -> None:
            self.a, self.b, self.name = np.arange(5), torch.arange(5) * 10, "n"

    got = take_keys(Rows(), [2, 0])
    assert got.a.tolist() == [2, 0] and got.b.tolist() == [20, 0] and got.name == "n"


def test_the_ledger_holds_numpy_arrays_and_takes_tensors_back():
    g = tdg.Guard([tdg.Normalize()], device="cpu", progress=False)
    g.filter([f"text {i}" for i in range(10)])
    state = g.state_dict()
    assert {type(v) for v in state["ledger"]["tensors"].values()} == {np.ndarray}
    h = tdg.Guard([tdg.Normalize()], device="cpu", progress=False)
    h.load_state_dict(tensors_of(state))
    assert np.array_equal(to_numpy(h.state_dict()["ledger"]["tensors"]["memo_dense_fp"]),
                          state["ledger"]["tensors"]["memo_dense_fp"])
