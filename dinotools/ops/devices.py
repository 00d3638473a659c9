"""Device names -> ``torch.device``: ``auto`` (the default everywhere) is CUDA when available, else CPU."""
from __future__ import annotations

import torch

from dinotools.errors import ConfigError

AUTO = "auto"


def resolve_device(device=AUTO) -> torch.device:
    """``None``/``"auto"`` -> ``cuda`` when a CUDA GPU is usable, else ``cpu``; any other name is checked
    (a CUDA device that is not there is a ``ConfigError`` saying why, not a failure mid-run)."""
    if device is None or (isinstance(device, str) and device.strip().lower() == AUTO):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {device!r} is not a device name: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device {device!r}: {why}; use --device cpu (or auto: CUDA when available)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible "
                              f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return dev


def describe_device(device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what a run summary prints."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return str(dev)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
