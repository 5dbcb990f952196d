"""Shared test set-up: an isolated artifact store, one torch thread, deterministic property-based tests,
and the whole book built once per session for the slow tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import cloudpickle
import pytest
import torch
from distributed import Client, WorkerPlugin
from hypothesis import settings

from nsdelib.book.precompute import local_cluster
from nsdelib.book.context import setup
from nsdelib.book.precompute import STAGES, Run, Task, paper_graph, run_graph
from nsdelib.book.runner import build_html, run_book
from nsdelib.common.artifacts import META_FILE, ArtifactStore

# The worker plugin travels to the workers by value: a `dask worker` process cannot import tests/.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

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


class LogWrites(WorkerPlugin):
    """Appends ``kind folder`` to ``path`` for every artifact a worker saves."""

    def __init__(self, path: str) -> None:
        self.path = path

    def setup(self, worker: object) -> None:
        from nsdelib.common import artifacts

        save, path = artifacts.ArtifactStore.save, self.path

        def logged_save(store: ArtifactStore, kind, config, *args, **kwargs):  # type: ignore[no-untyped-def]
            written = save(store, kind, config, *args, **kwargs)
            with open(path, "a") as log:
                log.write(f"{kind.name} {store.directory(kind, config).name}\n")
            return written

        artifacts.ArtifactStore.save = logged_save  # type: ignore[method-assign]


@dataclass(frozen=True)
class CiGraph:
    """The whole task graph at ``ci`` run once on a two-worker local cluster into the empty store ``store``:
    its tasks, what the run logged, each worker's environment, and ``writes`` (every artifact a worker saved)."""

    store: Path
    tasks: list[Task]
    results: dict[str, object]
    lines: list[str]
    environments: dict[str, dict[str, str | None]]
    writes: Path


@pytest.fixture(scope="session")
def ci_graph(tmp_path_factory: pytest.TempPathFactory) -> CiGraph:
    """What ``nsdebook build`` computes before the chapters (and the σ sweep's frontier), once per session: the
    cluster test inspects it and the book's chapters read it back."""
    folder = tmp_path_factory.mktemp("ci-graph")
    store, writes, lines = folder / "store", folder / "writes.log", []
    with mock.patch.dict(os.environ, {"NSDE_ARTIFACTS": str(store)}):
        ctx = setup("ci", 0, "cpu")
        tasks = paper_graph(ctx, STAGES)
        with local_cluster(2) as cluster, Client(cluster) as client:
            client.register_plugin(LogWrites(str(writes)))
            results = run_graph(client, tasks, Run.of(ctx, "cpu"), log=lines.append)
            environments = client.run(lambda: {name: os.environ.get(name) for name in ("OMP_NUM_THREADS",
                                                                                       "MALLOC_TRIM_THRESHOLD_")})
    return CiGraph(store, tasks, results, lines, environments, writes)


@dataclass(frozen=True)
class BuiltBook:
    """The whole book executed at the ci profile (``stage``) and rendered (``html``); ``computed_by_chapters``: the
    artifacts the chapters saved beyond what the task graph had computed."""

    stage: Path
    html: Path
    computed_by_chapters: list[str]


def artifact_folders(store: Path) -> set[str]:
    return {str(meta.parent.relative_to(store)) for meta in store.rglob(META_FILE)}


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory, ci_graph: CiGraph) -> BuiltBook:
    """Execute and render the whole book once per test session, for the slow tests that inspect it: as
    ``nsdebook build`` does, the chapters run two at a time and read what the task graph computed."""
    out = tmp_path_factory.mktemp("book")
    start, graph_made = time.perf_counter(), artifact_folders(ci_graph.store)
    with mock.patch.dict(os.environ, {"NSDE_ARTIFACTS": str(ci_graph.store)}):
        stage = run_book(profile="ci", seed=0, device="cpu", out=out, progress=False, log=lambda _: None, jobs=2)
    executed = time.perf_counter()
    build_html(stage, out=out, log=lambda _: None)
    print(f"book at ci: executed in {executed - start:.0f} s, rendered in {time.perf_counter() - executed:.0f} s")
    return BuiltBook(stage, out / "_build" / "html", sorted(artifact_folders(ci_graph.store) - graph_made))
