"""Arrays made for the wrong device, found on the CPU: with ``xp.on_numpy`` told that a ``torch.device`` (what a
guard on an accelerator holds) means tensors and a plain ``"cpu"`` string (the default of ``xp.zeros`` ... without
``like=``) means NumPy arrays, an array created for the default device instead of the stage's comes out of the
other kind, and every xp function here refuses to mix kinds. On a GPU that array would sit on the CPU while the
stage's tensors are on the GPU (a device mismatch, or a copy to the host per call)."""
import functools
import inspect

import numpy as np
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.dedup import xp

KEEP_MIXED = {"asarray", "to_like", "as_device", "same_device", "saved", "numpy_of", "on_numpy", "torch_module",
              "is_tensor", "is_array", "Array", "device_type", "device_of", "dtype_name"}


def _kinds(args):
    out = set()
    for v in args:
        for u in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(u, np.ndarray) or xp.is_tensor(u):
                out.add("tensor" if xp.is_tensor(u) else "numpy")
    return out


@pytest.fixture
def strict_kinds(monkeypatch):
    monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)
    real = xp.on_numpy
    monkeypatch.setattr(xp, "on_numpy", lambda device: not isinstance(device, torch.device) and real(device))
    for name in set(xp.__all__) - KEEP_MIXED:
        fn = getattr(xp, name)
        if not inspect.isfunction(fn):
            continue

        def checked(*a, _fn=fn, _name=name, **k):
            if len(_kinds(list(a) + list(k.values()))) > 1:
                raise AssertionError(f"xp.{_name} got NumPy arrays and tensors together")
            return _fn(*a, **k)

        monkeypatch.setattr(xp, name, functools.wraps(fn)(checked))


TEXTS = ([f"document number {i} has some words in it about topic {i % 7} and more words to read" for i in range(40)]
         + ["short one", "short one!", "Short one.", "another small text", "another small text here",
            "中文的短文本去重测试一下", "中文的短文本去重测试一下吧"])
TOKENS = [{"input_ids": list(range(i, i + 30))} for i in range(12)] + [{"input_ids": list(range(3, 33)) + [7]}]


def _stages(threshold):
    return [tdg.ExactDedup(), tdg.NearDedup(threshold=threshold)]


def _decisions(g):
    out = []
    for source, data in (("a", TEXTS), ("b", TEXTS + [t + " x" for t in TEXTS]), ("c", TOKENS)):
        out += [(drop.reason if drop else None, drop.matched if drop else None)
                for _, drop, _ in g.process(data, source=source)]
    return out


@pytest.mark.parametrize("threshold", [0.8, 0.5])
def test_stages_on_a_tensor_device_make_no_array_for_the_default_device(strict_kinds, threshold):
    reference = _decisions(tdg.Guard(_stages(threshold), device="cpu", progress=False))
    g = tdg.Guard(_stages(threshold), device=torch.device("cpu"), progress=False)
    assert _decisions(g) == reference
    assert xp.is_tensor(g.stages[0].index.digests) and xp.is_tensor(g.stages[1].index.packed)
    assert xp.is_tensor(g.stages[1].small.pool)
    g2 = tdg.Guard(_stages(threshold), device=torch.device("cpu"), progress=False)
    g2.load_state_dict(g.state_dict())
    assert xp.is_tensor(g2.stages[1].index.packed)
    again = [drop for _, drop, _ in g2.process(TEXTS, source="z")]  # every text was seen: each is a duplicate
    assert all(d is not None and d.reason.startswith("duplicate/") for d in again)
