"""The paper's task graph on real Dask clusters fills the artifact store with exactly what the chapters read back.

Each cluster test starts from an empty store, so the workers must compute everything. A worker plugin
logs every artifact a worker writes: each must be written exactly once (two workers training one
model, or computing one sweep, would write it twice). The chapters' reads are then made in this
process with the store's writes turned into errors, so that anything missing or unreadable fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import CiGraph, LogWrites
from distributed import Client

from nsdelib.book import cli
from nsdelib.book.precompute import (
    ONE_THREAD,
    ClusterSpec,
    SlurmJobs,
    local_cluster,
    scheduler_address,
    slurm_cluster,
    worker_device,
)
from nsdelib.book.adversarial_records import seed_record_name
from nsdelib.book.context import Context, setup
from nsdelib.book.provenance import frontier_record_name, size_study_record_name
from nsdelib.book.runner import CHAPTER_TIMES, PRECOMPUTE_ENTRY, WHOLE_BUILD_ENTRY
from nsdelib.book.precompute import (
    BUILD_STAGES,
    STAGES,
    PrecomputeFailed,
    Run,
    Task,
    paper_graph,
    run_graph,
)
from nsdelib.common import ConfigError
from nsdelib.common.artifacts import KINDS, META_FILE, ArtifactStore
from nsdelib.claims.error_detection import abc_choices
from nsdelib.claims.sigma_tuning import frontier_points
from nsdelib.evaluation.data_size import training_sizes
from nsdelib.models.registry import MODEL_KINDS
from nsdelib.report.claims import CONVNEXT, NSDE
from nsdelib.training.trainer import TRAINED

@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """An empty artifact store, the default of every context this test builds."""
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path / "store"))
    return ArtifactStore()


def writes(log: Path) -> Counter[tuple[str, str]]:
    """How often each artifact (kind, folder) was saved by a worker."""
    return Counter(tuple(line.split()) for line in log.read_text().splitlines())  # type: ignore[misc]


def expected_models(ctx: Context, stages: Sequence[str]) -> int:
    """The models a graph of ``stages`` trains: every kind for every seed, and chapter 8's smaller ones."""
    models = len(MODEL_KINDS) * len(ctx.seeds)
    if "data_size" in stages:
        sizes = training_sizes(len(ctx.data.train), ctx.profile.train.batch_size, ctx.profile.data_size.fractions)
        models += len(MODEL_KINDS) * len(ctx.data_size_seeds) * (len(sizes) - 1)
    if "frontier" in stages:
        cfg = ctx.profile.calibration
        others = len(frontier_points(cfg, ctx.profile.model)) - len(MODEL_KINDS)  # beside chapter 3's own settings
        models += others * min(cfg.frontier_seeds, len(ctx.seeds))
    return models


def assert_each_artifact_written_once(log: Path, ctx: Context, stages: Sequence[str]) -> None:
    counts = writes(log)
    assert [item for item, count in counts.items() if count > 1] == [], "an artifact was computed twice"
    assert sum(count for (kind, _), count in counts.items() if kind == TRAINED.name) == expected_models(ctx, stages)


def read_like_the_chapters(ctx: Context, stages: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cached call the chapters make for ``stages``, with any computation in this process an error."""

    def computed(store: ArtifactStore, kind, config, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError(f"the chapter computed a {kind.name} artifact the graph should have made")

    monkeypatch.setattr(ArtifactStore, "save", computed)
    runs = ctx.train_all(progress=False)  # a model missing from the store would be saved: an error
    budget, noise = abc_choices(ctx) if "abc" in stages else (None, None)
    for kind in MODEL_KINDS:
        for run in runs[kind]:
            if "noise" in stages:
                assert not ctx.noise_sweep(run).empty
                if kind == CONVNEXT:
                    assert not ctx.injected_noise_sweep(run).empty
            if "attack" in stages:
                assert not ctx.attack_sweep(run).empty
            if "attribution" in stages:
                assert set(ctx.attribution_stability(run)["model"]) == {kind}
                assert not ctx.abc_curve(run).empty
                if kind == CONVNEXT:
                    assert not ctx.detector_accuracy(run).empty
            if budget is not None and noise is not None:
                assert not ctx.abc_at(run, budget.value).empty
                if kind == NSDE:
                    assert not ctx.abc_at(run, budget.value, neighbours="mode").empty
                assert not ctx.detector_scores(run, budget.value, noise.value).empty
    if "attack" in stages:
        assert not ctx.attack_convergence(runs[NSDE][0]).empty
    if "data_size" in stages:
        assert set(ctx.data_size_study()["seed"]) == set(ctx.data_size_seeds)
    if "frontier" in stages:
        cfg = ctx.profile.calibration
        assert len(ctx.frontier()) == len(frontier_points(cfg, ctx.profile.model)) * min(cfg.frontier_seeds,
                                                                                         len(ctx.seeds))


def assert_every_artifact_loads(store: ArtifactStore) -> None:
    """Each artifact folder is where its metadata's key puts it, and its payload loads with a matching checksum."""
    folders = [meta.parent for meta in store.root.rglob(META_FILE)
               if not any(part.startswith(".") for part in meta.relative_to(store.root).parts)]
    assert folders
    for folder in folders:
        meta = json.loads((folder / META_FILE).read_text())
        kind = KINDS[meta["kind"]]
        assert store.directory(kind, meta["config"]) == folder
        store.load(kind, meta["config"])


def test_a_local_cluster_runs_the_whole_graph_once_and_the_chapters_read_it_back(
    ci_graph: CiGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(ci_graph.results) == {task.name for task in ci_graph.tasks}
    assert all(env == {"OMP_NUM_THREADS": "1", "MALLOC_TRIM_THRESHOLD_": None}
               for env in ci_graph.environments.values()), (
        "one thread per worker, and glibc's own malloc trimming (Dask's default slows torch down)")
    for stage, total in Counter(task.stage for task in ci_graph.tasks).items():
        assert f"{stage} {total}/{total}: " in "\n".join(ci_graph.lines)
    monkeypatch.setenv("NSDE_ARTIFACTS", str(ci_graph.store))
    ctx = setup("ci", 0, "cpu")
    assert_each_artifact_written_once(ci_graph.writes, ctx, STAGES)
    read_like_the_chapters(ctx, STAGES, monkeypatch)


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `dask scheduler` and two one-thread `dask worker` processes on 127.0.0.1, found through a scheduler file."""
    path = tmp_path_factory.mktemp("dask") / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    common = ["--scheduler-file", str(path), "--host", "127.0.0.1", "--no-dashboard"]
    processes = [subprocess.Popen([*dask, "scheduler", *common, "--port", "0"])]
    try:
        deadline = time.monotonic() + 120  # a bound against hanging, not a timing check
        while not path.exists() and processes[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        processes += [subprocess.Popen([*dask, "worker", *common, "--nthreads", "1", "--no-nanny"], env={**os.environ, **ONE_THREAD})
                      for _ in range(2)]
        with Client(scheduler_file=str(path), timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield path
    finally:
        for process in processes[1:]:  # a worker without a nanny is one process: killing it leaves nothing behind
            process.kill()
        processes[0].terminate()
        for process in processes:
            process.wait()


def test_the_cli_runs_the_graph_on_a_scheduler_and_workers_started_elsewhere(
    store: ArtifactStore, scheduler_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    stages = ["train", "noise"]
    with Client(scheduler_file=str(scheduler_file)) as client:
        client.register_plugin(LogWrites(str(tmp_path / "writes.log")))
        argv = ["precompute", "--profile", "ci", "--device", "cpu", "--scheduler-file", str(scheduler_file)]
        assert cli.main([*argv, "--stage", *stages]) == 0
    out = capsys.readouterr().out
    assert f"connected to the scheduler at {scheduler_address(scheduler_file)} (2 workers now)" in out
    ctx = setup("ci", 0, "cpu")
    for stage, total in Counter(task.stage for task in paper_graph(ctx, stages)).items():
        assert re.search(rf"\] {stage} {total}/{total}: ", out)
    assert_each_artifact_written_once(tmp_path / "writes.log", ctx, stages)
    read_like_the_chapters(ctx, stages, monkeypatch)

    # the calibration sweep's points run on the same path (their tasks are tested in test_calibrate.py)
    argv = ["calibrate", "--profile", "ci", "--device", "cpu", "--scheduler-file", str(scheduler_file), "--trained-only"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out  # the sweep's ConvNeXt is chapter 3's seed-0 model, trained above: the one measured
    assert "2 tasks: data 1, calibration 1\n" in out and "calibration 1/1: calibration point 0 convnext seed 0" in out


def test_a_worker_killed_mid_run_leaves_a_complete_store_without_corrupt_artifacts(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = setup("ci", 0, "cpu")
    ctx = dataclasses.replace(ctx, profile=ctx.profile.replace(n_seeds=1))  # three models: one is killed mid-run
    stages = ["train"]
    killed: list[str] = []
    with local_cluster(2) as cluster, Client(cluster) as client:
        stop = threading.Event()

        def kill_a_busy_worker() -> None:
            while not stop.is_set() and not killed:
                busy = [address for address, keys in client.processing().items()
                        if any(key.startswith("train_") for key in keys)]
                if busy:
                    killed.append(busy[0])
                    client.run(os._exit, 1, workers=busy[:1], on_error="ignore")
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        try:
            run_graph(client, paper_graph(ctx, stages), Run.of(ctx, "cpu"), log=lambda _: None)
        finally:
            stop.set()
            killer.join()
        assert killed and killed[0] not in client.scheduler_info()["workers"]
    assert_every_artifact_loads(store)
    read_like_the_chapters(ctx, stages, monkeypatch)


def test_a_failing_task_is_named_by_stage_kind_and_seed_and_the_others_still_run(scheduler_file: Path) -> None:
    def fail_for_nsde(run: Run, kind: str, seed: int, *_after: object) -> str:  # local: it travels by value
        if kind == NSDE:
            raise ValueError(f"no {kind} today")
        return "fine"

    tasks = [Task("train", fail_for_nsde, (kind, 1), kind, 1, torch=False) for kind in MODEL_KINDS]
    tasks.append(Task("noise", fail_for_nsde, (CONVNEXT, 1), CONVNEXT, 1, after=(f"train {NSDE} seed 1",)))
    lines: list[str] = []
    with Client(scheduler_file=str(scheduler_file)) as client:
        with pytest.raises(PrecomputeFailed) as failed:
            run = Run.of(dataclasses.replace(setup("ci", 0, "cpu"), store=ArtifactStore("/unused")), "cpu")
            run_graph(client, tasks, run, log=lines.append)
    assert str(failed.value).startswith("1 of 4 tasks failed: train nsde seed 1 (stage train, kind nsde, seed 1): "
                                        "ValueError: no nsde today. 1 tasks that need them were not run; the 2 "
                                        "finished are in the artifact store /unused")
    assert sorted(re.sub(r"^\[[\d:]+\] |(?<=train )\d/", "", line) for line in lines[1:]) == [
        "FAILED train nsde seed 1 (stage train, kind nsde, seed 1): ValueError: no nsde today",
        "noise: noise convnext seed 1 not run (a task it needs failed)",
        "train 3: train convnext seed 1: fine", "train 3: train convnext_noise seed 1: fine"]


def test_tasks_run_in_their_order_as_worker_threads_free_up(scheduler_file: Path) -> None:
    def span(run: Run, *_after: object) -> tuple[float, float]:  # local: it travels by value
        start = time.time()
        time.sleep(0.2)
        return start, time.time()

    data = Task("data", span, what="set", torch=False)  # as in the book's graph, every task needs the data set
    tasks = [Task("train", span, (), what=f"step {index}", after=(data.name,), torch=False) for index in range(12)]
    with Client(scheduler_file=str(scheduler_file)) as client:
        assert sum(client.nthreads().values()) == 2
        run = Run.of(dataclasses.replace(setup("ci", 0, "cpu"), store=ArtifactStore("/unused")), "cpu")
        results = run_graph(client, [data, *tasks], run, log=lambda _: None)
    spans = [results[task.name] for task in tasks]
    for index in range(2, len(tasks)):  # two threads: a task starts once all earlier ones but one have ended
        ends = sorted(end for _, end in spans[:index])
        assert spans[index][0] >= ends[index - 2], f"step {index} started before earlier steps had ended"


def test_a_graph_whose_tasks_wait_on_a_missing_task_is_refused(scheduler_file: Path) -> None:
    tasks = [Task("noise", str, (), CONVNEXT, 1, after=("train convnext seed 1",), torch=False)]
    with Client(scheduler_file=str(scheduler_file)) as client:
        run = Run.of(dataclasses.replace(setup("ci", 0, "cpu"), store=ArtifactStore("/unused")), "cpu")
        with pytest.raises(ValueError, match="noise convnext seed 1"):
            run_graph(client, tasks, run, log=lambda _: None)


def test_the_cli_reports_failed_tasks_with_exit_code_1(scheduler_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--profile", "ci", "--device", "cuda:99", "--scheduler-file", str(scheduler_file)]
    assert cli.main(["precompute", "--stage", "train", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nsdebook: 1 of 7 tasks failed: data set (stage data, kind None, seed None): RuntimeError: "
                          "device 'cuda:99' was requested") and "6 tasks that need them were not run" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stage", "ablation"], "unknown stage 'ablation'; allowed stages: train, noise, attack, attribution, abc, "
                                  "data_size"),
        (["--profile", "fast"], "parameter 'profile' = 'fast'"),
        (["--scheduler-file", "/nonexistent/scheduler.json"], "scheduler file /nonexistent/scheduler.json does not "
                                                              "exist; start one with `dask scheduler --scheduler-file"),
        (["--cluster", "slurm"], r"--cluster slurm needs --jobs N"),
        (["--jobs", "2"], r"--jobs, --gpus-per-job and --sbatch apply to --cluster slurm only"),
        (["--cluster", "slurm", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"],
         "choose one cluster: --scheduler and --cluster slurm were both given"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_error_with_exit_code_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["precompute", *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.count("error:") == 1


def test_a_file_that_is_no_scheduler_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "text.json").write_text("tcp://127.0.0.1:8786")
    with pytest.raises(ConfigError, match=r"empty.json is not a Dask scheduler file \(it names no address\)"):
        scheduler_address(tmp_path / "empty.json")
    with pytest.raises(ConfigError, match=r"text.json is not a Dask scheduler file \("):
        scheduler_address(tmp_path / "text.json")


@pytest.mark.parametrize(("workers", "precomputed"), [("2", [(BUILD_STAGES, "ci", 3, "cpu", ClusterSpec(workers=2))]),
                                                      ("1", [])])
def test_the_build_computes_the_chapters_models_and_sweeps_on_a_local_cluster_first(
    monkeypatch: pytest.MonkeyPatch, workers: str, precomputed: list[tuple], tmp_path: Path
) -> None:
    calls: list[tuple] = []
    monkeypatch.setattr(cli, "run_precompute", lambda *args, log: calls.append(("precompute", *args)))
    monkeypatch.setattr(cli, "run_book", lambda **kwargs: calls.append(("book",)) or tmp_path)
    monkeypatch.setattr(cli, "build_html", lambda stage, out: calls.append(("html",)))
    assert cli.main(["build", "--profile", "ci", "--seed", "3", "--device", "cpu", "--workers", workers]) == 0
    assert calls == [*(("precompute", *call) for call in precomputed), ("book",), ("html",)]
    recorded = json.loads((tmp_path / CHAPTER_TIMES).read_text())["seconds"]
    assert (PRECOMPUTE_ENTRY in recorded) == bool(precomputed), (
        "the build's time for its models is recorded beside the chapters' when it trains them first")
    assert WHOLE_BUILD_ENTRY in recorded, "the whole build's time is recorded: its chapters may run side by side"


def test_the_graph_puts_each_task_after_what_it_reads() -> None:
    ctx = setup("ci", 0, "cpu")
    tasks = paper_graph(ctx)
    names = [task.name for task in tasks]
    assert len(set(names)) == len(names)
    assert all(names.index(before) < names.index(task.name) for task in tasks for before in task.after)
    by_name = {task.name: task for task in tasks}
    assert by_name["noise nsde seed 1"].after == ("train nsde seed 1",)
    assert by_name["attack convergence study nsde seed 0"].after == ("train nsde seed 0",)
    assert set(by_name["abc settings"].after) == {f"attribution {kind} seed {seed}" for kind in MODEL_KINDS
                                                  for seed in ctx.seeds}
    assert by_name["abc convnext seed 1"].after == ("train convnext seed 1", "abc settings")
    assert by_name["data_size nsde seed 0"].after == ("train nsde seed 0", "data_size data sets")
    assert [task.name for task in paper_graph(ctx, ["noise"])] == [
        "data set", *(f"train {kind} seed {seed}" for seed in ctx.seeds for kind in MODEL_KINDS),
        *(f"noise {kind} seed {seed}" for seed in ctx.seeds for kind in MODEL_KINDS)]
    assert {task.stage for task in paper_graph(ctx, ["abc"])} == {"data", "train", "attribution", "abc"}
    frontier = [task for task in paper_graph(ctx, ["frontier"]) if task.stage == "frontier"]
    cfg = ctx.profile.calibration
    per_seed = 1 + len(cfg.frontier_input_noise_stds) + len(cfg.frontier_sigmas)
    assert len(frontier) == per_seed * min(cfg.frontier_seeds, len(ctx.seeds))
    own = [task for task in frontier if task.args[1] == ctx.profile.model]  # chapter 3's settings: its models
    assert len(own) == len(MODEL_KINDS) * min(cfg.frontier_seeds, len(ctx.seeds))
    assert all(task.after == (f"train {task.kind} seed {task.seed}",) for task in own)
    assert all(task.after == ("data set",) for task in frontier if task not in own), "no model trained for nothing"


def test_recorded_attacks_and_frontier_points_are_not_computed_again(tmp_path: Path) -> None:
    ctx = setup("ci", 0, "cpu")
    recording = Context(ctx.profile.replace(record_results=True), 0, ctx.device, ctx.store)
    stages = ["attack", "frontier", "data_size"]
    before = [task.name for task in paper_graph(recording, stages, tmp_path)]
    assert [task.name for task in paper_graph(ctx, stages, tmp_path)] == before
    point = {"kind": "nsde", "seed": 0, "sigma": ctx.profile.calibration.frontier_sigmas[0], "input_noise_std": 0.0}
    for name in (seed_record_name(0), frontier_record_name(point), size_study_record_name("convnext", 1)):
        (tmp_path / "ci" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ci" / f"{name}.json").write_text("{}")
    after = [task.name for task in paper_graph(recording, stages, tmp_path)]
    assert set(before) - set(after) == {
        *(f"attack {kind} seed 0" for kind in MODEL_KINDS), "attack record seed 0",
        *(f"attack convergence study {kind} seed 0" for kind in MODEL_KINDS), f"frontier point {point['sigma']:g} nsde seed 0",
        "data_size convnext seed 1"}
    assert not set(after) - set(before)
    assert [task.name for task in paper_graph(ctx, stages, tmp_path)] == before, "a profile that records nothing skips nothing"
    assert [task.name for task in paper_graph(recording, stages, None)] == before, "the whole graph"
    attack_only = [task.name for task in paper_graph(recording, ["attack"], tmp_path)]
    assert not [name for name in attack_only if name.endswith("seed 0")], "seed 0's models are not trained for nothing"


def test_the_rate_grid_runs_before_every_model_of_its_kind() -> None:
    ctx = setup("ci", 0, "cpu")
    ctx = Context(ctx.profile.replace(lr_grid=(1e-3, 2e-3)), 0, ctx.device, ctx.store)
    by_name = {task.name: task for task in paper_graph(ctx, ["train"])}
    grid = ("train learning rate 0.001 nsde seed 0", "train learning rate 0.002 nsde seed 0")
    assert by_name["train nsde seed 1"].after == ("data set", *grid)
    assert all(by_name[name].args == ("nsde", lr) for name, lr in zip(grid, (1e-3, 2e-3)))


def test_slurm_jobs_run_one_thread_per_core_or_one_worker_per_gpu() -> None:
    gpu_jobs = SlurmJobs(jobs=4, gpus_per_job=2, cores_per_job=8, memory_per_job="32GB", walltime="02:00:00",
                         directives=("--partition=gpu", "--account=nsde"))
    with slurm_cluster(gpu_jobs) as cluster:
        script = cluster.job_script()
    for line in ("#SBATCH --cpus-per-task=8", "#SBATCH --mem=30G", "#SBATCH -t 02:00:00", "#SBATCH --gres=gpu:2",
                 "#SBATCH --partition=gpu", "#SBATCH --account=nsde", "export OMP_NUM_THREADS=1",
                 "export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None"):
        assert line in script.splitlines()
    assert re.search(r"distributed.cli.dask_worker tcp://\S+ .*--nthreads 4 .*--nworkers 2 .*--resources GPU=1", script)
    with slurm_cluster(SlurmJobs(jobs=1, cores_per_job=4)) as cluster:
        script = cluster.job_script()
    assert "#SBATCH --cpus-per-task=4" in script and "--gres" not in script and "--resources" not in script
    assert re.search(r"--nthreads 1 .*--nworkers 4 ", script)


@pytest.mark.parametrize(("jobs", "message"), [
    (dict(jobs=0), "--jobs must be at least 1, got 0"),
    (dict(jobs=1, gpus_per_job=4, cores_per_job=2), r"--cores-per-job \(2\) must be at least 1 and at least "
                                                   r"--gpus-per-job \(4\)"),
])
def test_impossible_slurm_jobs_are_refused(jobs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SlurmJobs(**jobs)


def test_outside_a_worker_the_device_is_kept() -> None:
    assert worker_device("cpu") == "cpu"
    assert worker_device("auto") == "auto"
