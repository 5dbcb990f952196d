"""Shared test set-up: an isolated artifact store, one torch thread, deterministic property-based tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property-based tests draw the same examples on every run (no flaky CI) and leave no example database.
settings.register_profile("nsdelib", derandomize=True, database=None, deadline=None, print_blob=False)
settings.load_profile("nsdelib")


def pytest_configure(config: pytest.Config) -> None:
    """Point the artifact store (and chapter kernels, which inherit the environment) at a fresh folder."""
    os.environ["NSDE_ARTIFACTS"] = tempfile.mkdtemp(prefix="nsde-test-artifacts-")


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Unit tests use tiny tensors: extra intra-op threads only add contention on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
