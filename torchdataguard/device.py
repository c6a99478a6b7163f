"""Device selection shared by every stage.

:func:`resolve_device` returns a ``torch.device``, except for the CPU in a process that has not imported
torch: ``import torch`` costs about 0.75 s on a 2-core machine, more than ``torchdataguard scan`` spends
deciding 26,000 short documents, and a guard on the CPU whose records hold no tensors never needs it. There
it returns :data:`CPU`, a ``str`` equal to ``"cpu"`` that has the ``type`` and ``index`` of
``torch.device("cpu")``, prints as it does and compares equal to it; torch takes it wherever it takes a device
(a string). ``"auto"`` imports torch to ask it about CUDA only where a GPU driver is present (see
:func:`may_have_gpu`).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Union

from .errors import ConfigError

__all__ = ["CPU", "CpuDevice", "DeviceLike", "may_have_gpu", "resolve_device"]

#: what ``device=`` takes: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, a ``torch.device`` or ``None`` (auto)
DeviceLike = Union[str, "torch.device", None]  # noqa: F821 - named, never imported, for the annotation

#: files that exist where a CUDA (NVIDIA driver, WSL 2 GPU) or ROCm (``/dev/kfd``) device can be used: without
#: any of them ``torch.cuda.is_available()`` is False, so ``"auto"`` picks the CPU without importing torch
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


class CpuDevice(str):
    """The CPU, named without importing torch: the string ``"cpu"`` with ``torch.device("cpu")``'s ``type``
    (``"cpu"``), ``index`` (``None``), ``repr`` and equality.

    Example:
        >>> CPU, str(CPU), CPU.type, CPU == "cpu"
        (device(type='cpu'), 'cpu', 'cpu', True)
    """

    type = "cpu"
    index = None

    def __new__(cls) -> "CpuDevice":
        return super().__new__(cls, "cpu")

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            return str.__eq__(self, other)
        t = sys.modules.get("torch")
        if t is not None and isinstance(other, t.device):
            return other == t.device("cpu")
        return NotImplemented

    def __ne__(self, other: Any) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = str.__hash__

    def __reduce__(self) -> Any:  # pickled (DataLoader workers) as itself, not as a plain str
        return CpuDevice, ()


#: the CPU of a process that has not imported torch (see the module docstring)
CPU = CpuDevice()


def may_have_gpu() -> bool:
    """Whether ``torch.cuda.is_available()`` could be True here, known without importing torch: torch is
    already imported (then it is asked: cheap), the platform is Windows (no cheap test) or one of
    :data:`GPU_DRIVER_FILES` exists. macOS has no CUDA (``"auto"`` never picks MPS)."""
    if sys.modules.get("torch") is not None or os.name == "nt":
        return True
    if sys.platform == "darwin":
        return False
    return any(os.path.exists(p) for p in GPU_DRIVER_FILES)


def resolve_device(device: DeviceLike = "auto") -> Any:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device`` into a ``torch.device`` (or,
    for the CPU in a process that has not imported torch, :data:`CPU`, which compares and prints alike).

    ``"auto"`` picks CUDA when available, else CPU. Asking for CUDA where there is none raises.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if not may_have_gpu():
            return CPU
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, str) and device == "cpu" and sys.modules.get("torch") is None:
        return CPU
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError.bad("device", device, "'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError.bad("device", device, "'auto' or 'cpu' on a machine without CUDA",
                              "Use device='auto' to fall back to the CPU.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError.bad("device", device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    return dev
