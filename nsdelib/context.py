"""The first call of every chapter: validate parameters, seed everything, pick the device."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch

from .artifacts import ArtifactStore
from .profiles import Profile, get_profile, validate_params


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; an explicit device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed gives the same numbers on the CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Context:
    """What a chapter needs: the profile's config, the seed, the device and the artifact store."""

    profile: Profile
    seed: int
    device: torch.device
    store: ArtifactStore = field(default_factory=ArtifactStore)

    @property
    def seeds(self) -> list[int]:
        """The seeds of multi-seed experiments: ``seed, seed+1, …`` (``profile.n_seeds`` of them)."""
        return [self.seed + k for k in range(self.profile.n_seeds)]


def setup(profile: str = "quick", seed: int = 0, device: str = "auto") -> Context:
    """Validate the chapter parameters and return the run's context (seeded, device resolved)."""
    params = validate_params(profile=profile, seed=seed, device=device)
    seed_everything(params.seed)
    return Context(profile=get_profile(params.profile), seed=params.seed, device=resolve_device(params.device))
