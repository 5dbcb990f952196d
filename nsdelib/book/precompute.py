"""Paper-scale work split across processes: the chapters' models and sweeps, computed ahead of the build.

A chapter runs its models one after another in one process. On a machine with several cores,
``nsdebook precompute --stage S --workers N`` (N processes, one thread each, one share of the jobs
each) fills the artifact store first; the chapters then read every result back, so the build only
renders. With ``--dynamic`` the workers share one queue instead of fixed shares: each claims the next
job that no live worker holds (a claim file in the store naming its process), so a worker that
finishes early takes over the rest; a claim whose process has died is taken over. The jobs are the
very cached calls the chapters make, so their keys are the chapters' keys.
Run the stages in order (``train`` before the sweeps that evaluate the trained models, ``attribution``
before ``abc``, whose budget and noise level are chosen from every model's ABC curve and accuracy).
``nsdebook build`` starts such workers itself (:func:`run_in_workers`) for the training stages, most of
the default build's time, which two one-thread processes get through faster than one two-thread one.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

import pandas as pd

from ..common.errors import ConfigError
from ..evaluation.abc import Crossing
from ..models.registry import MODEL_KINDS, ModelKind
from ..report.claims import CONVNEXT, NSDE, c4_budget, detector_noise_level
from .context import Context

Stage = Literal["train", "noise", "attack", "attribution", "abc", "data_size"]
STAGES: tuple[str, ...] = get_args(Stage)
#: What ``nsdebook build`` precomputes in workers: every model the chapters train (chapters 3 and 8).
BUILD_STAGES: tuple[Stage, ...] = ("train", "data_size")


class PrecomputeFailed(RuntimeError):
    """A precompute worker exited with an error (its output, above, says which)."""


def check_stages(stages: Sequence[str]) -> None:
    """Refuse an unknown stage with one ConfigError naming the allowed ones, before any work starts."""
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage {unknown[0]!r}; allowed stages: {', '.join(STAGES)}")


def stage_jobs(ctx: Context, stage: str) -> list[tuple[ModelKind, int]]:
    """The (model kind, seed) jobs of ``stage`` for the profile's seeds (the size study's for ``data_size``), seed by seed."""
    check_stages([stage])
    seeds = ctx.data_size_seeds if stage == "data_size" else ctx.seeds
    return [(kind, seed) for seed in seeds for kind in MODEL_KINDS]


def run_share(ctx: Context, stage: str, worker: int, workers: int, log: Callable[[str], None] = print,
              dynamic: bool = False) -> None:
    """Run this worker's share (every ``workers``-th job, from ``worker``) of ``stage``; done jobs are read back.

    With ``dynamic`` the share is whatever this process claims first from the common queue
    (:func:`claimed_jobs`). The attack stage also runs chapter 5's convergence study on the first seed's
    NSDE. The attribution stage computes chapter 6's maps and stability measure and chapter 7's ABC
    curve; the abc stage, from those, ABC at C4's budget and the detector scores. The data_size stage
    trains one kind and seed of chapter 8's study at every smaller training-set size.
    """
    if not 0 <= worker < workers:
        raise ConfigError(f"worker {worker} must lie in [0, workers = {workers})")
    jobs = stage_jobs(ctx, stage)
    if stage == "attack":
        jobs.append(("nsde", -1))  # the convergence study, marked by seed -1
    with store_lock(ctx, "dataset"):  # two processes writing one artifact at once leave a checksum mismatch
        _ = ctx.data_size_datasets() if stage == "data_size" else ctx.data
    if stage == "abc":
        c4_m, detector_std = abc_choices(ctx)
    for kind, seed in claimed_jobs(ctx, stage, jobs) if dynamic else jobs[worker::workers]:
        start = time.perf_counter()
        # bars only on a terminal: piped to ``nsdebook build``, a worker's bars would flood it; epochs print anyway
        run = ctx.train(kind, ctx.seeds[0] if seed < 0 else seed, progress=None if stage == "train" else False)
        if stage == "noise":
            ctx.noise_sweep(run)
        elif stage == "attack":
            (ctx.attack_convergence if seed < 0 else ctx.attack_sweep)(run)
        elif stage == "attribution":
            ctx.attribution_stability(run)
            ctx.abc_curve(run)
            if kind == CONVNEXT:
                ctx.detector_accuracy(run)
        elif stage == "abc":
            ctx.abc_at(run, c4_m.value)
            if kind == NSDE:
                ctx.abc_at(run, c4_m.value, neighbours="mode")
            ctx.detector_scores(run, c4_m.value, detector_std.value)
        elif stage == "data_size":
            ctx.data_size_study((kind,), (seed,))
        log(f"{stage}: {'convergence study' if seed < 0 else kind} seed {run.seed} done "
            f"({time.perf_counter() - start:.0f} s)")


def run_in_workers(stages: Sequence[str], workers: int, profile: str, seed: int, device: str,
                   log: Callable[[str], None] = print) -> None:
    """Run ``stages`` in order in ``workers`` processes of one thread each, sharing one queue (``--dynamic``).

    Each line a worker prints goes to ``log`` as it comes, prefixed with the worker's index. Raises
    :class:`PrecomputeFailed` naming the workers that exited with an error; what they finished stays in
    the store, and the chapters compute whatever is missing.
    """
    check_stages(stages)
    command = [sys.executable, "-m", "nsdelib", "precompute", "--stage", *stages, "--profile", profile,
               "--seed", str(seed), "--device", device, "--workers", str(workers), "--dynamic"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([*command, "--worker", str(index)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, env=env) for index in range(workers)]

    def forward(index: int, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log(f"worker {index}: {line.rstrip()}")

    readers = [threading.Thread(target=forward, args=item, daemon=True) for item in enumerate(processes)]
    for reader in readers:
        reader.start()
    codes = [process.wait() for process in processes]
    for reader in readers:
        reader.join()
    failed = {index: code for index, code in enumerate(codes) if code}
    if failed:
        workers_failed = ", ".join(f"{index} (exit code {code})" for index, code in failed.items())
        raise PrecomputeFailed(f"precompute of {', '.join(stages)} failed in worker(s) {workers_failed}; "
                               "see their output above")


@contextmanager
def store_lock(ctx: Context, name: str) -> Iterator[None]:
    """An exclusive lock (``flock``) shared by every process that uses the same artifact store."""
    path = ctx.store.root / "precompute-claims" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def claim_path(ctx: Context, stage: str, kind: ModelKind, seed: int) -> Path:
    """The claim file of one job of ``stage`` in the artifact store."""
    return ctx.store.root / "precompute-claims" / ctx.profile.name / stage / f"{kind}-seed{seed}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(path: Path) -> bool:
    """Claim the job of ``path`` for this process: True if it was free, already ours, or held by a dead process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x") as handle:
            handle.write(str(os.getpid()))
        return True
    except FileExistsError:
        text = path.read_text().strip()
        holder = int(text) if text.isdigit() else -1
        if holder == os.getpid():
            return True
        if holder > 0 and _alive(holder):
            return False
        path.unlink(missing_ok=True)
        return claim(path)


def _model_ready(ctx: Context, kind: ModelKind, seed: int) -> bool:
    """True when the model is trained, or when no other live worker is training it (then this process may)."""
    return ctx.is_trained(kind, seed) or claim(claim_path(ctx, "train", kind, seed))


def claimed_jobs(ctx: Context, stage: str, jobs: list[tuple[ModelKind, int]], wait_s: float = 30.0
                 ) -> Iterator[tuple[ModelKind, int]]:
    """The jobs this process claims, in order; a later stage's job waits while another live worker trains its model.

    A job of a stage other than ``train`` whose model is claimed for training by another live process
    goes to the back of the queue, and the queue sleeps ``wait_s`` when nothing else is left, so no
    model is trained twice at once.
    """
    queue = list(jobs)
    while queue:
        kind, seed = queue.pop(0)
        if stage != "train" and not _model_ready(ctx, kind, ctx.seeds[0] if seed < 0 else seed):
            queue.append((kind, seed))
            if not any(_model_ready(ctx, k, ctx.seeds[0] if s < 0 else s) for k, s in queue):
                time.sleep(wait_s)
            continue
        if claim(claim_path(ctx, stage, kind, seed)):
            yield kind, seed


def abc_choices(ctx: Context) -> tuple[Crossing, Crossing]:
    """C4's mutation budget and the detector test's noise std, by their rules, from every seed's models.

    Chapter 7 makes the same two choices from the same cached tables (``report.claims``).
    """
    runs = ctx.train_all(progress=False)
    curve = pd.concat([ctx.abc_curve(run) for kind in MODEL_KINDS for run in runs[kind]], ignore_index=True)
    accuracy = pd.concat([ctx.detector_accuracy(run) for run in runs[CONVNEXT]], ignore_index=True)
    return c4_budget(curve), detector_noise_level(accuracy)
