"""The chapters' cached calls as one Dask task graph, computed ahead of the build ("Running this book")."""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pandas as pd
from dask.base import tokenize
from distributed import Client, Future, as_completed

from ..claims.error_detection import abc_choices
from ..claims.sigma_tuning import frontier_points, measure_point
from ..common import one_of, resolve_device, seed_everything
from ..common.artifacts import ArtifactStore
from ..models.registry import MODEL_KINDS, ModelConfig, ModelKind
from ..report.claims import CONVNEXT, NSDE
from .cluster import GPU, ClusterSpec, connect, has_gpu_workers, worker_device
from .context import Context, setup
from .profiles import Profile, validate_params
from .provenance import frontier_record_name, record_frontier_point

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


class PrecomputeFailed(RuntimeError):
    """Tasks of the graph failed (each named by its stage, kind and seed); every finished result is in the store."""


@dataclass(frozen=True)
class Run:
    """What a worker builds a task's context from: the profile as JSON, the seed, the device, the store's folder."""

    profile: str
    seed: int
    device: str
    store: str

    @classmethod
    def of(cls, ctx: Context, device: str) -> Run:
        return cls(ctx.profile.model_dump_json(), ctx.seed, device, str(ctx.store.root.resolve()))


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
    return Context(profile, run.seed, resolve_device(worker_device(run.device)), ArtifactStore(run.store))


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
    row = measure_point(ctx.data, kind, model, ctx.train_config(kind), ctx.profile.calibration, ctx.store, ctx.device,
                        seed=seed)
    if ctx.profile.record_results:
        record_frontier_point(row, ctx.profile.name, ctx.device)
    return f"{frontier_record_name(row)}: clean {row['clean']:.3f}"


def make_size_datasets(run: Run, *_after: object) -> str:
    """The data sets of chapter 8's study, one per smaller training-set size."""
    return f"{len(worker_context(run).data_size_datasets())} training-set sizes"


def train_smaller(run: Run, kind: ModelKind, seed: int, *_after: object) -> str:
    """Chapter 8's study for one kind and seed."""
    return _rows(worker_context(run).data_size_study((kind,), (seed,)))


def paper_graph(ctx: Context, stages: Sequence[str] = STAGES) -> list[Task]:
    """The tasks of ``stages`` and of what they need, each after its inputs: the models first, seed by seed."""
    for stage in stages:
        one_of(stage, Stage, "stage")
    wanted = set(stages).union(*(NEEDS.get(stage, ()) for stage in stages))
    tasks: dict[str, Task] = {}

    def add(task: Task) -> str:
        return tasks.setdefault(task.name, task).name

    data = add(Task("data", make_dataset, what="set", torch=False))

    def rate_grid(kind: ModelKind) -> tuple[str, ...]:
        grid = ctx.profile.lr_grid
        return () if len(grid) == 1 else tuple(
            add(Task("train", train_at_rate, (kind, lr), kind, ctx.seed, f"learning rate {lr:g}", after=(data,)))
            for lr in grid)

    def model(kind: ModelKind, seed: int) -> str:
        return add(Task("train", train_model, (kind, seed), kind, seed, after=(data, *rate_grid(kind))))

    def per_model(stage: str, call: Callable[..., object], seeds: Sequence[int], *after: str) -> list[str]:
        return [add(Task(stage, call, (kind, seed), kind, seed, after=(model(kind, seed), *after)))
                for seed in seeds for kind in MODEL_KINDS]

    for seed in ctx.seeds if wanted != {"data_size"} else ctx.data_size_seeds:  # the models first
        for kind in MODEL_KINDS:
            model(kind, seed)
    if "noise" in wanted:
        per_model("noise", sweep_noise, ctx.seeds)
    if "attack" in wanted:
        attacked = per_model("attack", sweep_attacks, ctx.seeds)
        first = ctx.seeds[0]
        studies = [add(Task("attack", study_attack_convergence, (kind, first), kind, first, "convergence study",
                            after=(model(kind, first),))) for kind in MODEL_KINDS]
        for seed in ctx.seeds:  # one record per seed, as soon as its three models are attacked
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
        for seed in ctx.seeds[: cfg.frontier_seeds]:
            for kind, point in frontier_points(cfg, ctx.profile.model):
                setting = point.sde.sigma if kind == NSDE else point.input_noise_std if kind == "convnext_noise" else None
                add(Task("frontier", measure_frontier_point, (kind, point, seed), kind, seed,
                         "point" if setting is None else f"point {setting:g}", after=(model(kind, seed),)))
    if "data_size" in wanted:
        sizes = add(Task("data_size", make_size_datasets, what="data sets", after=(data,), torch=False))
        per_model("data_size", train_smaller, ctx.data_size_seeds, sizes)
    return list(tasks.values())


def task_key(task: Task, run: Run) -> str:
    """The task's name and a token of the run: two runs on one scheduler never share a key."""
    return re.sub(r"\W+", "_", task.name) + f"-{tokenize(run.profile, run.seed, run.device, run.store)}"


def run_graph(client: Client, tasks: Sequence[Task], run: Run, gpu: bool = False,
              log: Callable[[str], None] = print) -> dict[str, object]:
    """Run ``tasks`` (the earlier first where several are ready), logging each as it finishes; results by name.
    A task failing after its retries blocks only the tasks that need it; :class:`PrecomputeFailed` then names all."""
    futures: dict[str, Future] = {}
    for index, task in enumerate(tasks):  # earlier tasks first where several are ready: the first seed's models
        futures[task.name] = client.submit(task.call, run, *task.args, *(futures[name] for name in task.after),
                                           key=task_key(task, run), priority=len(tasks) - index, retries=RETRIES,
                                           resources={GPU: 1} if gpu and task.torch else None)
    by_key = {future.key: task for task, future in zip(tasks, futures.values(), strict=True)}
    total, done = Counter(task.stage for task in tasks), Counter[str]()
    results: dict[str, object] = {}
    failed, blocked = [], []
    start = time.perf_counter()
    log(f"{len(tasks)} tasks: " + ", ".join(f"{stage} {count}" for stage, count in total.items()))
    for future in as_completed(list(futures.values())):
        task = by_key[future.key]
        minutes, seconds = divmod(int(time.perf_counter() - start), 60)
        clock = f"{minutes // 60:d}:{minutes % 60:02d}:{seconds:02d}"
        if future.status == "finished":
            results[task.name] = future.result()
            done[task.stage] += 1
            log(f"[{clock}] {task.stage} {done[task.stage]}/{total[task.stage]}: {task.name}: {results[task.name]}")
        elif any(futures[name].status != "finished" for name in task.after):
            blocked.append(task.name)
            log(f"[{clock}] {task.stage}: {task.name} not run (a task it needs failed)")
        else:
            error = future.exception()
            failed.append(f"{task.name} (stage {task.stage}, kind {task.kind}, seed {task.seed}): "
                          f"{type(error).__name__}: {error}")
            log(f"[{clock}] FAILED {failed[-1]}")
    if failed:
        raise PrecomputeFailed(f"{len(failed)} of {len(tasks)} tasks failed: {'; '.join(failed)}. "
                               f"{len(blocked)} tasks that need them were not run; the {len(results)} "
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
