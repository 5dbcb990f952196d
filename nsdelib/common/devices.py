"""Where computations run: choosing a device, naming it for provenance, finding a model's."""

from __future__ import annotations

import platform
import re

import torch
from torch import nn


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; an explicit device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def device_description(device: torch.device | str = "cpu") -> str:
    """Human-readable name of the hardware a result was computed on."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu} ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"


def described_threads(description: str) -> int | None:
    """The thread count a :func:`device_description` names (None for a GPU or an older description)."""
    match = re.search(r", (\d+) threads$", description)
    return int(match.group(1)) if match else None


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device
