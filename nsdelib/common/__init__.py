"""What every stage shares: errors, the validated config base, devices and seeded random streams."""

from __future__ import annotations

import math
import platform
import random
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Self, get_args

import numpy as np
import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from torch import nn


class ConfigError(ValueError):
    """A parameter or configuration value is invalid; the message names it and what is allowed."""


class ArtifactError(RuntimeError):
    """An artifact on disk cannot be used (missing, corrupt or stale)."""


class ArtifactMissing(ArtifactError):
    """No artifact has been written for this kind and config."""


class ArtifactCorrupt(ArtifactError):
    """The artifact's bytes do not match the checksum recorded when it was written."""


class ArtifactStale(ArtifactError):
    """The artifact was written for another config or another library version."""


def config_error(what: str, exc: ValidationError, allowed_fields: list[str] | None = None) -> ConfigError:
    """One ConfigError naming each bad parameter, the value given and what is allowed."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown parameter '{loc}'")
        else:
            lines.append(f"parameter '{loc}' = {err.get('input')!r}: {err['msg']}")
    message = f"invalid {what}: " + "; ".join(lines)
    if allowed_fields and any(e["type"] == "extra_forbidden" for e in exc.errors()):
        message += f" (allowed parameters: {', '.join(allowed_fields)})"
    return ConfigError(message)


def _increasing_positive(values: tuple[float, ...]) -> tuple[float, ...]:
    if any(not (0 < value < math.inf) for value in values):
        raise ValueError(f"every value must be finite and > 0 (a sweep's clean point 0 is implied), got {list(values)}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"the values must be strictly increasing, got {list(values)}")
    return values


def _at_most_one(values: tuple[float, ...]) -> tuple[float, ...]:
    if values and values[-1] > 1:
        raise ValueError(f"the values must lie in (0, 1], got {list(values)}")
    return values


#: A sweep's values or a grid: finite, positive, strictly increasing (give ``min_length=1`` where it may not be empty).
IncreasingPositive = Annotated[tuple[float, ...], AfterValidator(_increasing_positive)]
#: Strictly increasing fractions or levels in (0, 1].
IncreasingFractions = Annotated[IncreasingPositive, AfterValidator(_at_most_one)]


def one_of(value: str, choices: Any, what: str) -> Any:
    """``value`` if the ``Literal`` type ``choices`` allows it, else one ConfigError naming what is allowed."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; allowed {what}s: {', '.join(allowed)}")
    return value


class Section(BaseModel):
    """A validated, frozen config: unknown keys rejected, ``build`` raises one ConfigError naming the bad field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def build(cls, **values: Any) -> Self:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise config_error(cls.__name__, exc, list(cls.model_fields)) from exc

    def replace(self, **changes: Any) -> Self:
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return self.build(**{**self.model_dump(), **changes})


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; an explicit device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def device_description(device: torch.device | str = "cpu") -> str:
    """Human-readable name of the hardware a result was computed on (with the CPU's thread count)."""
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
    return next(model.parameters(), torch.empty(0)).device


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the independent stream ``keys`` under ``seed`` (SeedSequence; strings hashed by CRC-32)."""
    words = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) >> 1


def generator(seed: int, *keys: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` for the stream named ``keys`` under ``seed``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed gives the same numbers on the CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Fork torch's global generator and seed it: reproducible draws that leave the caller's RNG untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
