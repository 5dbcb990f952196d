"""Shared test set-up: an isolated artifact store, one torch thread, deterministic property-based tests,
and the whole book built once per session for the slow tests."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from nsdelib.book.runner import build_html, run_book

# Property-based tests draw the same examples on every run (no flaky CI) and leave no example database.
settings.register_profile("nsdelib", derandomize=True, database=None, deadline=None, print_blob=False)
settings.load_profile("nsdelib")


ARTIFACTS = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Point the artifact store (and chapter kernels, which inherit the environment) at a fresh folder."""
    config.stash[ARTIFACTS] = os.environ["NSDE_ARTIFACTS"] = tempfile.mkdtemp(prefix="nsde-test-artifacts-")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Delete the session's artifact store: the book at ``ci`` alone leaves about 3 GB in it."""
    shutil.rmtree(config.stash.get(ARTIFACTS, ""), ignore_errors=True)


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


@dataclass(frozen=True)
class BuiltBook:
    """The whole book executed at the ci profile (``stage``) and rendered (``html``)."""

    stage: Path
    html: Path


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BuiltBook:
    """Execute and render the whole book once per test session, for the slow tests that inspect it."""
    out = tmp_path_factory.mktemp("book")
    start = time.perf_counter()
    stage = run_book(profile="ci", seed=0, device="cpu", out=out, progress=False, log=lambda _: None)
    executed = time.perf_counter()
    build_html(stage, out=out, log=lambda _: None)
    print(f"book at ci: executed in {executed - start:.0f} s, rendered in {time.perf_counter() - executed:.0f} s")
    return BuiltBook(stage=stage, html=out / "_build" / "html")
