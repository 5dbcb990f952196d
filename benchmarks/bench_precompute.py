"""The precompute graph on Dask worker processes: the speed-up of two over one, and the paper graph's projected wall time.

1. The ``quick`` profile's training stage (``nsdebook precompute --stage train``: its data set and its
   models) on a local Dask cluster of 1 worker and of 2 worker processes, one thread each, each run
   against a fresh, temporary artifact store; the workers import the library before the clock
   starts. It prints each wall time and the speed-up. (The home-made queue this replaced, one
   one-thread process per core, measured 1.26× on the 2-core development machine.)
2. The projected wall time of the ``paper`` graph on 2, 16 and 64 workers, beside its lower bounds
   (the critical path, and the total work shared by the workers), from the task costs in
   ``benchmarks/paper_task_costs.json`` (``--costs`` another file): ``nsdelib.book.projection``,
   which the chapter "Running this book" shows too.

``--measure-costs FILE`` writes the costs measured in step 1 (each task's compute time on the one
worker, from Dask's task stream) in the same format, so that any measured run can be projected
(``--profile paper --stages ...`` on a machine that can afford it). ``--write-paper-costs``
rebuilds ``benchmarks/paper_task_costs.json`` from what has been measured at the ``paper`` profile:
the recorded results' training times, the figures the README and issue 26 quote, and CPU times
measured here (the data set tasks; the NSDE's convergence study on a few images of an untrained model, scaled up
as ``bench_robustness.py`` does); each cost names its source. On a machine shared with other jobs, wall times grow with the load (the load
average is printed).

    .venv/bin/python benchmarks/bench_precompute.py
    .venv/bin/python benchmarks/bench_precompute.py --skip-speedup      # the projection alone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean

import torch
from distributed import Client, get_task_stream

from nsdelib.book.precompute import local_cluster
from nsdelib.book.context import Context, setup
from nsdelib.book.precompute import STAGES, Run, Task, paper_graph, run_graph, task_key
from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.book.projection import PAPER_TASK_COSTS, TaskCosts, cost_key, load_task_costs, projected_wall_times
from nsdelib.book.runner import REPO_ROOT
from nsdelib.claims.c3_attacks import convergence_study, headline_first
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.evaluation.sweeps import SweepTarget
from nsdelib.models.inference import predict
from nsdelib.models.registry import MODEL_KINDS, ModelKind, build_model
from nsdelib.report.claims import CONVNEXT, NSDE

OLD_QUEUE_SPEEDUP = 1.26
RECORDS = REPO_ROOT / "results" / "paper"
README = "README, 'Paper-scale results'"


def warm_up() -> None:
    """Import the library in a worker, so that the timed run does not count it."""
    import nsdelib.book.precompute  # noqa: F401


def measure(profile: str, stages: Sequence[str], workers: int, seed: int) -> tuple[float, dict[str, float], list[Task]]:
    """The wall time of the graph of ``stages`` on ``workers`` local worker processes, against a fresh store,
    and each task's compute time by name."""
    store = tempfile.mkdtemp(prefix="bench-precompute-")
    try:
        ctx = dataclasses.replace(setup(profile, seed, "cpu"), store=ArtifactStore(store))
        tasks = paper_graph(ctx, stages, results=None)
        run = Run.of(ctx, "cpu")
        with local_cluster(workers) as cluster, Client(cluster) as client:
            client.run(warm_up)
            with get_task_stream(client) as stream:
                start = time.perf_counter()
                run_graph(client, tasks, run, log=lambda line: print(f"  {line}", flush=True))
                wall = time.perf_counter() - start
    finally:
        shutil.rmtree(store, ignore_errors=True)
    names = {task_key(task, run): task.name for task in tasks}
    seconds: dict[str, float] = defaultdict(float)
    for record in stream.data:
        for part in record["startstops"]:
            if part["action"] == "compute":
                seconds[names[record["key"]]] += part["stop"] - part["start"]
    return wall, dict(seconds), tasks


def measured_costs(profile: str, tasks: Sequence[Task], seconds: dict[str, float], how: str) -> TaskCosts:
    """The mean compute time of each kind of task (:func:`cost_key`) in a measured run."""
    by_key: dict[str, list[float]] = defaultdict(list)
    for task in tasks:
        by_key[cost_key(task)].append(seconds[task.name])
    source = f"measured: {how}, mean of its tasks' compute times"
    return TaskCosts(profile, {key: mean(values) for key, values in by_key.items()}, dict.fromkeys(by_key, source),
                     provenance(f"benchmarks/bench_precompute.py --measure-costs ({how})"))


def provenance(command: str) -> dict[str, str]:
    """Who wrote a costs file: the command, the commit and the date."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    return {"produced by": command, "commit": commit,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def recorded(name: str) -> tuple[dict, str]:
    """A recorded paper result and how to cite it (file, commit, date, device)."""
    data = json.loads((RECORDS / f"{name}.json").read_text())
    origin = data["provenance"]
    return data["result"], (f"results/paper/{name}.json (commit {origin['commit'][:10]}, {origin['date'][:10]}, "
                            f"{origin['device']})")


def paper_costs(convergence_images: int) -> TaskCosts:
    """The cost of each kind of task of the ``paper`` graph, from what has been measured at that profile."""
    seconds: dict[str, float] = {}
    sources: dict[str, str] = {}

    def cost(key: str, value: float, source: str) -> None:
        seconds[key], sources[key] = value, source

    for kind in MODEL_KINDS:
        grid = [recorded(f"learning_rates/{path.stem}") for path in sorted((RECORDS / "learning_rates").glob(
            f"{kind}-lr*.json"))]
        times = [result["metrics"]["wall_time_s"] for result, _ in grid]
        cost(f"train {kind}", mean(times), f"measured: the seed-0 learning-rate grid under the training rule "
             f"({'; '.join(cite for _, cite in grid)}), the runs' wall time, mean of {len(times)} rates (two one-thread "
             "workers sharing the machine with other work: an upper bound)")
    study, cite = recorded("data_size")
    table = study["table"]
    full = max(table["training samples"])
    for kind in MODEL_KINDS:
        per_seed: dict[int, float] = defaultdict(float)
        for row in zip(table["model"], table["seed"], table["training samples"], table["training wall time (s)"],
                       table["condition"]):
            if row[0] == kind and row[2] < full and row[4] == "clean":  # one row per model and condition
                per_seed[row[1]] += row[3]
        cost(f"data_size {kind}", mean(per_seed.values()), f"measured: {cite}, training wall time of the smaller sizes "
             f"summed, mean of {len(per_seed)} seeds (scoring not included)")
    for kind in MODEL_KINDS:
        cost(f"noise {kind}", 29 * 60 / 15, f"{README}: the noise sweeps of the 15 models took 29 min (split equally)")
        attribution = 57 * 60 / 15 / 2
        issue = "issue 26: chapters 6–7 took about 57 CPU-min for the 15 models (split equally between each model's "
        cost(f"attribution {kind}", attribution, issue + "attribution and ABC tasks)")
        cost(f"abc {kind}", attribution, issue + "attribution and ABC tasks)")
    trained = (f"{README}: bench_robustness.py --profile paper --trained --attack-only measured the cascade on the "
               "seed-0 models of the training rule (2026-12-06, one thread, 64 images scaled to the profile's 256, "
               "Square counted ×4: an upper bound)")
    for kind, seconds_per_seed in ((NSDE, 1312.0), (CONVNEXT, 117.0), ("convnext_noise", 202.0)):
        cost(f"attack {kind}", seconds_per_seed, trained)
    untrained = ("measured here: CPU time of {study} on {images} random spectrograms of an untrained {kind} "
                 "of the paper architecture (one thread), scaled to the profile's {full} images")
    measured, full = untrained_convergence_seconds(NSDE, convergence_images)
    cost("attack convergence study nsde", measured, untrained.format(study="the convergence study",
                                                                     images=convergence_images, kind=NSDE, full=full))
    cost("abc settings", 60.0, "estimate (not timed): it reads back every model and its cached ABC and accuracy tables")
    for kind in MODEL_KINDS:
        cost(f"train learning rate {kind}", seconds[f"train {kind}"], f"as 'train {kind}': one more model of that kind")
        cost(f"attack convergence study {kind}", seconds.get(f"attack convergence study {kind}", 100.0),
             "estimate (not timed): a deterministic model has no EOT budgets to vary, only the steps")
    point = ("estimate (not timed): as 'train {kind}' for a model of another setting, plus about a minute to score it "
             "(an upper bound: the points at the book's own settings are chapter 3's models)")
    for kind in ("convnext_noise", NSDE):
        cost(f"frontier point {kind}", seconds[f"train {kind}"] + 60.0, point.format(kind=kind))
    cost(f"frontier point {CONVNEXT}", 60.0, "estimate (not timed): chapter 3's model, scored clean, under noise and "
         "under the cheap attack")
    cost("attack record", 5.0, "estimate (not timed): it reads back one seed's three attack tables and writes them")
    data_seconds, sizes_seconds = time_data_sets()
    cost("data set", data_seconds, "measured here: building the paper data set (one thread)")
    cost("data_size data sets", sizes_seconds, "measured here: building the study's smaller data sets (one thread)")
    return TaskCosts("paper", seconds, sources, provenance("benchmarks/bench_precompute.py --write-paper-costs"))


def untrained_convergence_seconds(kind: ModelKind, images: int) -> tuple[float, int]:
    """CPU seconds of the paper profile's attack convergence study on ``images`` random spectrograms, labelled by the
    untrained model's own predictions, scaled to the profile's subset; and that subset.

    The cost of a gradient or a forward pass does not depend on the weights (as in ``bench_robustness.py``).
    """
    profile = get_profile("paper")
    attack, data = profile.attack, profile.data
    full, cfg = attack.convergence_subset, attack.replace(convergence_subset=images)
    modes = headline_first(kind, profile.model.sde)
    model = build_model(kind, profile.model, len(data.classes)).eval()
    x = torch.rand(max(images, 4 * len(data.classes)), 1, data.image_rows, data.image_cols,
                   generator=torch.Generator().manual_seed(0))
    labels = predict(model, x, modes[0], batch_size=attack.batch_size, seed=0)
    start = time.process_time()
    convergence_study(SweepTarget(model, x, labels, modes, 0), cfg)
    return (time.process_time() - start) * full / images, full


def time_data_sets() -> tuple[float, float]:
    """CPU seconds to build the paper data set, and then the data size study's smaller ones, in a temporary store."""
    store = tempfile.mkdtemp(prefix="bench-precompute-data-")
    try:
        ctx = Context(get_profile("paper"), 0, torch.device("cpu"), ArtifactStore(store))
        start = time.process_time()
        _ = ctx.data
        built = time.process_time()
        ctx.data_size_datasets()
        return built - start, time.process_time() - built
    finally:
        shutil.rmtree(store, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=PROFILE_NAMES, help="profile of the timed runs")
    parser.add_argument("--stages", nargs="+", default=["train"], choices=STAGES, help="stages of the timed runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speedup", action="store_true", help="only print the projection")
    parser.add_argument("--measure-costs", type=Path, help="write the one-worker run's task costs to this JSON file")
    parser.add_argument("--costs", type=Path, default=PAPER_TASK_COSTS, help="task costs to project")
    parser.add_argument("--write-paper-costs", action="store_true", help=f"rebuild {PAPER_TASK_COSTS.name} first")
    parser.add_argument("--convergence-images", type=int, default=8, help="images of the timed convergence study")
    parser.add_argument("--project-workers", type=int, nargs="+", default=[2, 16, 64])
    args = parser.parse_args()
    torch.set_num_threads(1)

    if not args.skip_speedup:
        print(f"load average {os.getloadavg()[0]:.1f}; {args.profile} profile, stages {', '.join(args.stages)}, "
              f"fresh store per run")
        walls = {}
        for workers in (1, 2):
            print(f"{workers} worker process(es), one thread each:", flush=True)
            walls[workers], seconds, tasks = measure(args.profile, args.stages, workers, args.seed)
            print(f"  wall {walls[workers]:.1f} s (tasks' compute {sum(seconds.values()):.1f} s)", flush=True)
            if workers == 1 and args.measure_costs:
                how = f"{args.profile} profile, stages {' '.join(args.stages)}, one worker"
                args.measure_costs.write_text(json.dumps(measured_costs(args.profile, tasks, seconds, how).to_json(),
                                                         indent=2) + "\n")
                print(f"  task costs written to {args.measure_costs}")
        print(f"speed-up of 2 worker processes over 1: {walls[1] / walls[2]:.2f}× "
              f"(the home-made queue's one-thread-per-core split measured {OLD_QUEUE_SPEEDUP}×); "
              f"load average now {os.getloadavg()[0]:.1f}")

    if args.write_paper_costs:
        costs = paper_costs(args.convergence_images)
        args.costs.write_text(json.dumps(costs.to_json(), indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.costs}")
    costs = load_task_costs(args.costs)
    print(f"\nprojected wall time of the {costs.profile} graph from {args.costs.name} "
          f"({costs.provenance['produced by']}, {costs.provenance['date'][:10]}):")
    print(projected_wall_times(args.costs, args.project_workers).round(2).to_string())


if __name__ == "__main__":
    main()
