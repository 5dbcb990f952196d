"""Shared test set-up: an isolated artifact store, so tests never touch a user's _artifacts/."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Point the artifact store (and chapter kernels, which inherit the environment) at a fresh folder."""
    os.environ["NSDE_ARTIFACTS"] = tempfile.mkdtemp(prefix="nsde-test-artifacts-")


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return Path(__file__).resolve().parent.parent
