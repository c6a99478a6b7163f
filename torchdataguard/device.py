"""Device selection shared by every stage."""
from __future__ import annotations

import torch

from .errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device`` into a ``torch.device``.

    ``"auto"`` picks CUDA when available, else CPU. Asking for CUDA where there is none raises.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
