"""Profiles: the three scales at which the book runs, as validated, typed data.

A profile is one `Profile` object. Chapters never branch on its name; they read its fields.
``ci`` runs in seconds (tests, CI), ``quick`` in minutes on a laptop CPU (the default build),
``paper`` at the scale of the paper (10,000 spectrograms, full evaluation).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from .config import Section
from .errors import ConfigError, config_error

ProfileName = Literal["ci", "quick", "paper"]
PROFILE_NAMES: tuple[str, ...] = ("ci", "quick", "paper")
DEFAULT_PROFILE: ProfileName = "quick"


class Profile(Section):
    """Everything that changes between the ``ci``, ``quick`` and ``paper`` scales."""

    name: ProfileName
    description: str
    n_seeds: int = Field(ge=1, le=20, description="seeds for multi-seed experiments (intervals over seeds)")


PROFILES: dict[str, dict[str, Any]] = {
    "ci": {
        "name": "ci",
        "description": "smallest scale: seconds per chapter; used by the tests and CI",
        "n_seeds": 2,
    },
    "quick": {
        "name": "quick",
        "description": "default: minutes per chapter on a laptop CPU",
        "n_seeds": 2,
    },
    "paper": {
        "name": "paper",
        "description": "the scale of the paper: 10,000 spectrograms and the full evaluation",
        "n_seeds": 3,
    },
}


def get_profile(name: str, **overrides: Any) -> Profile:
    """Return the validated profile ``name``; ``overrides`` replace top-level fields (validated too)."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; allowed profiles: {', '.join(PROFILE_NAMES)}")
    raw = {**PROFILES[name], **overrides}
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise config_error(f"profile {name!r}", exc, list(Profile.model_fields)) from exc


class ChapterParams(Section):
    """The parameters every chapter's papermill ``parameters`` cell declares."""

    profile: ProfileName = DEFAULT_PROFILE
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError("allowed devices: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")
        return value


def validate_params(**params: Any) -> ChapterParams:
    """Validate chapter parameters, raising one ConfigError that names the bad parameter."""
    if "profile" in params and params["profile"] not in PROFILE_NAMES:
        raise ConfigError(
            f"invalid chapter parameters: parameter 'profile' = {params['profile']!r}; "
            f"allowed profiles: {', '.join(PROFILE_NAMES)}"
        )
    try:
        return ChapterParams.model_validate(params)
    except ValidationError as exc:
        raise config_error("chapter parameters", exc, list(ChapterParams.model_fields)) from exc
