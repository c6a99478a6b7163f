"""The machine a benchmark ran on (shared by every script in benchmarks/)."""
from __future__ import annotations

import os
import platform
from typing import Any, Dict, Optional

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def machine(device: Optional[torch.device | str] = None, **extra: Any) -> Dict[str, Any]:
    """CPU, cores, torch version and threads, Python, the device (and GPU name), load average, plus ``extra``."""
    dev = torch.device(device) if device is not None else None
    info: Dict[str, Any] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "platform": platform.platform(), "load_average_start": list(os.getloadavg()),
        "device": str(dev) if dev is not None else None,
        "gpu": torch.cuda.get_device_name(dev) if dev is not None and dev.type == "cuda" else None,
    }
    info.update(extra)
    return info


def write_result(path: str, result: Dict[str, Any], *, indent: int = 2) -> str:
    """Write a benchmark's JSON result (creating its folder), say so, and return the path."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=indent)
    print(f"wrote {path}")
    return path
