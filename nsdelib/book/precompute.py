"""The chapters' cached calls and the σ sweep as Dask task graphs, and where they run: a local cluster, a running
scheduler or Slurm jobs ("Running this book")."""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import dask
import pandas as pd
import torch
from dask.base import tokenize
from dask_jobqueue import SLURMCluster
from distributed import Client, Future, LocalCluster, get_worker, wait

from ..claims.error_detection import abc_choices
from ..claims.sigma_tuning import (MeasuredPoint, fixed_choice, frontier_plan, measure_point, point_label,
                                   point_settings, priority, sweep_record)
from ..common import ConfigError, one_of, resolve_device, seed_everything
from ..common.artifacts import ArtifactStore
from ..models.registry import MODEL_KINDS, ModelConfig, ModelKind
from ..report.claims import CONVNEXT, NSDE
from ..training import trainer
from ..training.trainer import training_key
from .context import Context, setup
from .profiles import Profile, validate_params
from .adversarial_records import seed_record_name
from .provenance import (RESULTS_ROOT, frontier_record_name, is_recorded, load_recorded, provenance, record_point,
                         record_result, recorded_point, size_study_record_name, sweep_record_name)

#: The resource a GPU worker advertises (``dask worker --resources GPU=1``); each torch task asks for one.
GPU = "GPU"
#: Threads of the numerical libraries in each worker process: one, since each worker runs one task at a time.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
#: Keep glibc's own threshold: Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` returns memory after nearly every
#: free, and torch's many small allocations then train 1.7 times slower (benchmarks/bench_precompute.py).
KEEP_MALLOC_DEFAULT = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
#: The same setting as an environment variable, for workers started by a batch script.
KEEP_MALLOC_DEFAULT_ENV = {"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_": "None"}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a batch system may restrict)."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class SlurmJobs:
    """Slurm jobs of Dask workers (one per core, or per GPU); ``directives`` are further ``#SBATCH`` options."""

    jobs: int
    gpus_per_job: int = 0
    cores_per_job: int = 8
    memory_per_job: str = "32GB"
    walltime: str = "08:00:00"
    directives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {self.jobs}")
        if self.gpus_per_job < 0:
            raise ConfigError(f"--gpus-per-job must be 0 or more, got {self.gpus_per_job}")
        if self.cores_per_job < max(1, self.gpus_per_job):
            raise ConfigError(f"--cores-per-job ({self.cores_per_job}) must be at least 1 and at least "
                              f"--gpus-per-job ({self.gpus_per_job})")


@dataclass(frozen=True)
class ClusterSpec:
    """A local cluster of ``workers`` processes, or one of: a running scheduler (address or file), Slurm jobs."""

    workers: int = field(default_factory=usable_cores)
    scheduler: str | None = None
    scheduler_file: Path | None = None
    slurm: SlurmJobs | None = None

    def __post_init__(self) -> None:
        chosen = [name for name, value in (("--scheduler", self.scheduler), ("--scheduler-file", self.scheduler_file),
                                           ("--cluster slurm", self.slurm)) if value is not None]
        if len(chosen) > 1:
            raise ConfigError(f"choose one cluster: {' and '.join(chosen)} were both given")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")


def local_cluster(workers: int) -> LocalCluster:
    # one-thread processes: two of them train faster than one two-thread process on a 2-core machine
    with dask.config.set(KEEP_MALLOC_DEFAULT):  # read by each nanny when it is created
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, env=ONE_THREAD,
                            dashboard_address=":0")


def slurm_cluster(jobs: SlurmJobs) -> SLURMCluster:
    """A dask-jobqueue cluster for ``jobs``, none submitted yet (``cluster.job_script()`` shows a job's script)."""
    directives = [f"--gres=gpu:{jobs.gpus_per_job}"] if jobs.gpus_per_job else []
    return SLURMCluster(
        cores=jobs.cores_per_job, processes=jobs.gpus_per_job or jobs.cores_per_job, memory=jobs.memory_per_job,
        walltime=jobs.walltime, job_extra_directives=[*directives, *jobs.directives],
        worker_extra_args=["--resources", f"{GPU}=1"] if jobs.gpus_per_job else [],
        job_script_prologue=[f"export {name}={value}"
                             for name, value in {**ONE_THREAD, **KEEP_MALLOC_DEFAULT_ENV}.items()],
        scheduler_options={"dashboard_address": ":0"},
    )


def scheduler_address(path: Path) -> str:
    """The scheduler's address in a ``dask scheduler --scheduler-file`` file, or one ConfigError."""
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"scheduler file {path} does not exist; start one with "
                          f"`dask scheduler --scheduler-file {path}`") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"scheduler file {path} is not a Dask scheduler file ({exc})") from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ConfigError(f"scheduler file {path} is not a Dask scheduler file (it names no address)")
    return info["address"]


@contextmanager
def connect(spec: ClusterSpec, log: Callable[[str], None] = print) -> Iterator[Client]:
    """A client of the cluster ``spec`` names; a local or Slurm cluster is started here and stopped after."""
    if spec.scheduler is not None or spec.scheduler_file is not None:
        address = spec.scheduler or scheduler_address(spec.scheduler_file)
        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise ConfigError(f"no Dask scheduler answers at {address} ({exc})") from None
        with client:
            log(f"connected to the scheduler at {address} ({len(client.scheduler_info()['workers'])} workers now)")
            yield client
        return
    if spec.slurm is not None:
        cluster = slurm_cluster(spec.slurm)
        cluster.scale(jobs=spec.slurm.jobs)
        log(f"submitted {spec.slurm.jobs} Slurm jobs; the scheduler is at {cluster.scheduler_address}")
    else:
        cluster = local_cluster(spec.workers)
        log(f"started a local cluster of {spec.workers} worker processes, one thread each")
    with cluster, Client(cluster) as client:
        log(f"Dask dashboard (with bokeh installed): {client.dashboard_link}")
        yield client


def has_gpu_workers(client: Client, spec: ClusterSpec) -> bool:
    """Whether the cluster offers GPUs: Slurm jobs with GPUs, or connected workers that advertise one."""
    if spec.slurm is not None:
        return spec.slurm.gpus_per_job > 0
    return any(GPU in worker.get("resources", {}) for worker in client.scheduler_info()["workers"].values())


def worker_device(device: str) -> str:
    """The device a task asks for on this worker: a bare CUDA request is spread over the visible GPUs by the number
    ending the worker's name (``3``, ``SLURMCluster-0-3``) modulo the GPU count."""
    if device not in ("auto", "cuda") or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return device
    try:
        name = str(get_worker().name)
    except ValueError:  # not in a worker
        return device
    number = re.search(r"(\d+)$", name)
    return f"cuda:{int(number.group(1)) % torch.cuda.device_count()}" if number else device


Stage = Literal["train", "noise", "attack", "attribution", "abc", "data_size", "frontier"]
STAGES: tuple[str, ...] = get_args(Stage)
#: What ``nsdebook build`` precomputes on a local cluster: everything the chapters compute but the recorded σ sweep.
BUILD_STAGES: tuple[Stage, ...] = ("train", "noise", "attack", "attribution", "abc", "data_size")
#: Stages whose results another stage gathers: ABC's settings are chosen from every model's attribution task.
NEEDS: dict[str, tuple[Stage, ...]] = {"abc": ("attribution",)}
#: The command that trains and records the clean–robust frontier (resumable: only missing points are computed).
FRONTIER_COMMAND = "nsdebook precompute --profile paper --stage frontier"
#: Reruns of a task that raised (a full GPU, a filesystem hiccup); the scheduler reruns a task whose worker died.
RETRIES = 2
#: Seconds between looks at the cluster while tasks run: a worker that joined meanwhile gets a task after at most this.
POLL_S = 5.0


class PrecomputeFailed(RuntimeError):
    """Tasks of the graph failed (each named by its stage, kind and seed); every finished result is in the store."""


@dataclass(frozen=True)
class Run:
    """What a worker builds a task's context from: the profile as JSON, the seed, the device, the store's folder and
    the folder of the records."""

    profile: str
    seed: int
    device: str
    store: str
    results: str = str(RESULTS_ROOT)

    @classmethod
    def of(cls, ctx: Context, device: str) -> Run:
        return cls(ctx.profile.model_dump_json(), ctx.seed, device, str(ctx.store.root.resolve()),
                   str(ctx.results.resolve()))


@dataclass(frozen=True)
class Task:
    """One node: ``call(run, *args, *results of the tasks named in after)``; ``torch`` tasks go to GPU workers."""

    stage: str
    call: Callable[..., object]
    args: tuple[Any, ...] = ()
    kind: ModelKind | None = None
    seed: int | None = None
    what: str = ""
    after: tuple[str, ...] = ()
    torch: bool = True

    @property
    def name(self) -> str:
        seed = "" if self.seed is None else f"seed {self.seed}"
        return " ".join(part for part in (self.stage, self.what, self.kind or "", seed) if part)


@dataclass(frozen=True)
class ABCSettings:
    """Chapter 7's choices from every model's results: C4's mutation budget and the detector test's noise std."""

    budget: float
    noise_std: float

    def __str__(self) -> str:
        return f"C4's budget {self.budget:g} mutations, the detectors' noise std {self.noise_std:g}"


@functools.lru_cache(maxsize=4)  # a long-lived worker serves many runs: keep the data sets of the last few only
def worker_context(run: Run) -> Context:
    """The context of ``run``, built once per process (its data set then stays in memory)."""
    seed_everything(run.seed)
    profile = Profile.model_validate_json(run.profile)
    return Context(profile, run.seed, resolve_device(worker_device(run.device)), ArtifactStore(run.store),
                   Path(run.results))


def make_dataset(run: Run) -> str:
    """The profile's data set, built once and then read from the store by every other task."""
    data = worker_context(run).data
    return f"{len(data.train)} training, {len(data.val)} validation, {len(data.test)} test spectrograms"


def train_at_rate(run: Run, kind: ModelKind, lr: float, *_after: object) -> str:
    """One point of chapter 3's learning-rate grid: ``kind`` on the first seed at rate ``lr`` (or its record)."""
    metrics, recorded = worker_context(run).rate_metrics(kind, lr, progress=False)
    origin = "recorded: " if recorded else ""
    return f"{origin}best validation accuracy {metrics['best_val_accuracy']:.3f} at epoch {metrics['best_epoch']}"


def train_model(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapter 3's model of ``kind`` for ``seed`` (trained, resumed or read back)."""
    trained = worker_context(run).train(kind, seed, progress=False)
    return f"test accuracy {trained.metrics['accuracy']:.3f}"


def _rows(table: pd.DataFrame) -> str:
    return f"{len(table)} rows"


def sweep_noise(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapter 4's input-noise sweeps of one model."""
    ctx = worker_context(run)
    trained = ctx.train(kind, seed, progress=False)
    if kind == CONVNEXT:
        ctx.injected_noise_sweep(trained)
    return _rows(ctx.noise_sweep(trained))


def sweep_attacks(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapter 5's attack protocol on one model."""
    ctx = worker_context(run)
    return _rows(ctx.attack_sweep(ctx.train(kind, seed, progress=False)))


def record_attacks(run: Run, seed: int, *_after: object) -> str:
    """Chapter 5's protocol of one seed, read back from its tasks and recorded at ``paper``."""
    return _rows(worker_context(run).adversarial_seed(seed))


def study_attack_convergence(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapter 5's convergence study of the attack on one model."""
    ctx = worker_context(run)
    return _rows(ctx.attack_convergence(ctx.train(kind, seed, progress=False)))


def explain_model(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapters 6 and 7's results of one model that chapter 7's settings are chosen from."""
    ctx = worker_context(run)
    trained = ctx.train(kind, seed, progress=False)
    ctx.attribution_stability(trained)
    if kind == CONVNEXT:
        ctx.detector_accuracy(trained)
    return _rows(ctx.abc_curve(trained))


def choose_abc_settings(run: Run, *_after: object) -> ABCSettings:
    """Chapter 7's settings, once every model's attribution task is done (they are read back here)."""
    budget, noise = abc_choices(worker_context(run))
    return ABCSettings(budget.value, noise.value)


def score_abc(run: Run, kind: ModelKind, seed: int, _trained: object, settings: ABCSettings) -> str:
    """Chapter 7's ABC of one model at C4's budget (the NSDE's also with mode neighbours) and its detector scores."""
    ctx = worker_context(run)
    trained = ctx.train(kind, seed, progress=False)
    ctx.abc_at(trained, settings.budget)
    if kind == NSDE:
        ctx.abc_at(trained, settings.budget, neighbours="mode")
    return _rows(ctx.detector_scores(trained, settings.budget, settings.noise_std))


def measure_frontier_point(run: Run, kind: ModelKind, model: ModelConfig, seed: int, *_after: object) -> str:
    """One point of the clean–robust frontier for one seed, recorded at ``paper``."""
    ctx = worker_context(run)
    point = measure_point(ctx.data, kind, model, ctx.train_config(kind), ctx.profile.calibration, ctx.store,
                          ctx.device, seed=seed)
    if ctx.profile.record_results:
        record_point(point, frontier_record_name(point.row), ctx.profile.name, ctx.device, ctx.results)
    return f"{frontier_record_name(point.row)}: clean {point.row['clean']:.3f}"


def make_size_datasets(run: Run, *_after: object) -> str:
    """The data sets of chapter 8's study, one per smaller training-set size."""
    return f"{len(worker_context(run).data_size_datasets())} training-set sizes"


def train_smaller(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapter 8's study for one kind and seed."""
    return _rows(worker_context(run).data_size_study((kind,), (seed,)))


def paper_graph(ctx: Context, stages: Sequence[str] = STAGES, results: Path | None = RESULTS_ROOT) -> list[Task]:
    """The tasks of ``stages`` and of what they need, each after its inputs: the models first, seed by seed.

    Where the profile records its results, a seed's attacks, a frontier point and a model's size study already
    recorded under ``results`` are left out, and so are the models only they needed: a new machine computes only what
    is missing. ``results=None``: the whole graph, as for a profile with nothing recorded.
    """
    for stage in stages:
        one_of(stage, Stage, "stage")
    wanted = set(stages).union(*(NEEDS.get(stage, ()) for stage in stages))
    tasks: dict[str, Task] = {}

    def add(task: Task) -> str:
        return tasks.setdefault(task.name, task).name

    def missing(name: str) -> bool:
        return results is None or not (ctx.profile.record_results and is_recorded(name, ctx.profile.name, results))

    data = add(Task("data", make_dataset, what="set", torch=False))

    def rate_grid(kind: ModelKind) -> tuple[str, ...]:
        grid = ctx.profile.lr_grid
        return () if len(grid) == 1 else tuple(
            add(Task("train", train_at_rate, (kind, lr), kind, ctx.seed, f"learning rate {lr:g}", after=(data,)))
            for lr in grid)

    def model(kind: ModelKind, seed: int) -> str:
        return add(Task("train", train_model, (kind, seed), kind, seed, after=(data, *rate_grid(kind))))

    def per_model(stage: str, call: Callable[..., object], seeds: Sequence[int], *after: str,
                  record: Callable[[ModelKind, int], str] | None = None) -> list[str]:
        """One task per model of ``seeds``, but none for a model whose ``record`` name is recorded."""
        return [add(Task(stage, call, (kind, seed), kind, seed, after=(model(kind, seed), *after)))
                for seed in seeds for kind in MODEL_KINDS if record is None or missing(record(kind, seed))]

    if wanted - {"attack", "frontier", "data_size"}:  # the models first, seed by seed
        for seed in ctx.seeds:
            for kind in MODEL_KINDS:
                model(kind, seed)
    if "noise" in wanted:
        per_model("noise", sweep_noise, ctx.seeds)
    if "attack" in wanted:
        first = ctx.seeds[0]
        unrecorded = [seed for seed in ctx.seeds if missing(seed_record_name(seed))]
        attacked = per_model("attack", sweep_attacks, unrecorded)
        studies = [add(Task("attack", study_attack_convergence, (kind, first), kind, first, "convergence study",
                            after=(model(kind, first),))) for kind in MODEL_KINDS] if first in unrecorded else []
        for seed in unrecorded:  # one record per seed, as soon as its three models are attacked
            own = [name for name in attacked if name.endswith(f" seed {seed}")]
            add(Task("attack", record_attacks, (seed,), None, seed, "record",
                     after=(*own, *(studies if seed == first else ())), torch=False))
    if "attribution" in wanted:
        explained = per_model("attribution", explain_model, ctx.seeds)
        if "abc" in wanted:
            settings = add(Task("abc", choose_abc_settings, what="settings", after=tuple(explained), torch=False))
            per_model("abc", score_abc, ctx.seeds, settings)
    if "frontier" in wanted:
        cfg = ctx.profile.calibration
        for kind, point, seed in frontier_plan(cfg, ctx.profile.model, ctx.seeds):
            setting = point.sde.sigma if kind == NSDE else point.input_noise_std if kind == "convnext_noise" else None
            if missing(frontier_record_name(point_settings(kind, point, seed))):  # chapter 3's model, or its own
                needs = model(kind, seed) if point == ctx.profile.model else data
                add(Task("frontier", measure_frontier_point, (kind, point, seed), kind, seed,
                         "point" if setting is None else f"point {setting:g}", after=(needs,)))
    if "data_size" in wanted:
        sizes = add(Task("data_size", make_size_datasets, what="data sets", after=(data,), torch=False))
        per_model("data_size", train_smaller, ctx.data_size_seeds, sizes, record=size_study_record_name)
    return list(tasks.values())


def task_key(task: Task, run: Run) -> str:
    """The task's name and a token of the run: two runs on one scheduler never share a key."""
    return re.sub(r"\W+", "_", task.name) + f"-{tokenize(run.profile, run.seed, run.device, run.store)}"


def run_graph(client: Client, tasks: Sequence[Task], run: Run, gpu: bool = False,
              log: Callable[[str], None] = print) -> dict[str, object]:
    """Run ``tasks`` in their order, logging each as it finishes; results by name.

    A task is submitted once the tasks it needs are done and a worker thread is free, the earliest such first: dask
    would hand every ready task to some worker at once, and each worker would then run its own share, so a long
    graph would not finish in its order (the σ sweep's last point before its first). A task failing after its
    retries blocks only the tasks that need it; :class:`PrecomputeFailed` then names all.
    """
    waiting, running = list(tasks), dict[Future, Task]()
    futures: dict[str, Future] = {}
    total, done = Counter(task.stage for task in tasks), Counter[str]()
    results: dict[str, object] = {}
    failed: list[str] = []
    blocked: set[str] = set()
    start = time.perf_counter()
    log(f"{len(tasks)} tasks: " + ", ".join(f"{stage} {count}" for stage, count in total.items()))

    def clock() -> str:
        minutes, seconds = divmod(int(time.perf_counter() - start), 60)
        return f"[{minutes // 60:d}:{minutes % 60:02d}:{seconds:02d}]"

    while waiting or running:
        threads = max(sum(client.nthreads().values()), 1)  # read again each round: a Slurm job may have joined
        for task in list(waiting):
            if any(name in blocked for name in task.after):
                waiting.remove(task)
                blocked.add(task.name)
                log(f"{clock()} {task.stage}: {task.name} not run (a task it needs failed)")
            elif len(running) < threads and all(name in results for name in task.after):
                waiting.remove(task)
                futures[task.name] = client.submit(
                    task.call, run, *task.args, *(futures[name] for name in task.after), key=task_key(task, run),
                    retries=RETRIES, resources={GPU: 1} if gpu and task.torch else None)
                running[futures[task.name]] = task
        if not running:
            if waiting:
                raise ValueError(f"tasks that need tasks not in the graph, or each other: {[t.name for t in waiting]}")
            break
        try:
            finished = wait(list(running), timeout=POLL_S, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            continue
        for future in finished:
            task = running.pop(future)
            if future.status == "finished":
                results[task.name] = future.result()
                done[task.stage] += 1
                log(f"{clock()} {task.stage} {done[task.stage]}/{total[task.stage]}: {task.name}: "
                    f"{results[task.name]}")
            else:
                error = future.exception()
                blocked.add(task.name)
                failed.append(f"{task.name} (stage {task.stage}, kind {task.kind}, seed {task.seed}): "
                              f"{type(error).__name__}: {error}")
                log(f"{clock()} FAILED {failed[-1]}")
    if failed:
        raise PrecomputeFailed(f"{len(failed)} of {len(tasks)} tasks failed: {'; '.join(failed)}. "
                               f"{len(blocked) - len(failed)} tasks that need them were not run; the {len(results)} "
                               f"finished are in the artifact store {run.store}")
    return results


def run_on_cluster(graph: Callable[[Context], list[Task]], profile: str, seed: int, device: str,
                   cluster: ClusterSpec, log: Callable[[str], None] = print) -> dict[str, object]:
    """Build ``graph(ctx)`` here and run it on the cluster; each worker resolves ``device``."""
    params = validate_params(profile=profile, seed=seed, device=device)
    ctx = setup(params.profile, params.seed, "cpu")  # the graph's shape; each task resolves ``device`` on its worker
    run, tasks = Run.of(ctx, params.device), graph(ctx)
    with connect(cluster, log) as client:
        return run_graph(client, tasks, run, gpu=params.device != "cpu" and has_gpu_workers(client, cluster), log=log)


def run_precompute(stages: Sequence[str], profile: str, seed: int, device: str, cluster: ClusterSpec,
                   log: Callable[[str], None] = print) -> dict[str, object]:
    """``nsdebook precompute``: the graph of ``stages`` (:func:`paper_graph`) on the cluster ``cluster`` names."""
    return run_on_cluster(lambda ctx: paper_graph(ctx, stages), profile, seed, device, cluster, log)


def is_trained(ctx: Context, kind: ModelKind, model: ModelConfig) -> bool:
    """Whether the point's model is in the store already (nothing is trained or read)."""
    key = training_key(ctx.data, kind, ctx.profile.calibration.seed, model, ctx.train_config(kind))
    return ctx.store.exists(trainer.TRAINED, key)


def measure_calibration_point(run: Run, kind: ModelKind, model: ModelConfig, *_after: object) -> str:
    """Train and measure one point in a worker (recorded at ``paper``); its line for the log."""
    ctx = worker_context(run)
    point = measure_point(ctx.data, kind, model, ctx.train_config(kind), ctx.profile.calibration, ctx.store,
                          ctx.device)
    if ctx.profile.record_results:
        record_point(point, sweep_record_name(point.row), ctx.profile.name, ctx.device, ctx.results)
    row = point.row
    return (f"{kind} σ={row['sigma']} {row['diffusion']} {row['noise_shape']} std={row['input_noise_std']}: "
            f"clean {row['clean']:.3f}, flip rate {row['flip_rate']:.3f}")


def recorded_sweep_point(ctx: Context, kind: ModelKind, model: ModelConfig) -> MeasuredPoint | None:
    """The σ sweep's point as recorded (only a profile that records results has such records), or None."""
    name = sweep_record_name(point_settings(kind, model, ctx.profile.calibration.seed))
    return recorded_point(name, ctx.profile.name, ctx.results) if ctx.profile.record_results else None


def calibration_graph(ctx: Context, trained_only: bool = False) -> list[Task]:
    """The data set, then one task per point not yet recorded, in ``priority`` order (``trained_only``: the trained
    points only)."""
    cfg = ctx.profile.calibration
    data = Task("data", make_dataset, what="set", torch=False)
    points = [Task("calibration", measure_calibration_point, (kind, model), kind, cfg.seed, f"point {index}",
                   after=(data.name,))
              for index, (kind, model) in enumerate(priority(cfg, ctx.profile.model))
              if recorded_sweep_point(ctx, kind, model) is None and (not trained_only or is_trained(ctx, kind, model))]
    return [data, *points]


def collected(ctx: Context) -> tuple[list[MeasuredPoint], int]:
    """The measured points, recorded or found in the store (none is computed), and the number still missing."""
    cfg = ctx.profile.calibration
    points = [recorded_sweep_point(ctx, kind, model) or measure_point(
        ctx.data, kind, model, ctx.train_config(kind), cfg, ctx.store, ctx.device, only_stored=True)
        for kind, model in priority(cfg, ctx.profile.model)]
    return [point for point in points if point is not None], points.count(None)


def record_calibration(ctx: Context) -> dict[str, Any]:
    """Write the points found so far, and the settings the rule chooses from them, to the results folder."""
    if not ctx.profile.calibrates:
        raise ConfigError(f"the {ctx.profile.name} profile takes σ from paper's calibration; record the calibration at "
                          "'quick' or 'paper'")
    points, missing = collected(ctx)
    if ctx.profile.record_results:  # each point on its own too (once), so that a new machine measures only the others
        for point in points:
            record_point(point, sweep_record_name(point.row), ctx.profile.name, ctx.device, ctx.results)
    table = pd.DataFrame([point.row for point in points])
    result, models = sweep_record(table, missing, ctx.profile.calibration)
    used = {"sigma": ctx.profile.model.sde.sigma, "input_noise_std": ctx.profile.model.input_noise_std}
    result["fixed_choice"] = fixed_choice(load_recorded("calibration", ctx.profile.name), result, used)
    wall = float(table["wall_time_s"].sum()) if not table.empty else 0.0
    prov = provenance(ctx.profile.name, [ctx.profile.calibration.seed], torch.device(ctx.device), wall, models)
    outcomes = pd.concat([point.outcomes.assign(point=point_label(point.row)) for point in points],
                         ignore_index=True) if points else None
    record_result("calibration", result, prov, outcomes=outcomes, outcome_keys=["point", "measure"])
    return result
