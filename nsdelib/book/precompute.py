"""Paper-scale work split across processes: the chapters' models and sweeps, computed ahead of the build.

A chapter runs its models one after another in one process. On a machine with several cores,
``nsdebook precompute --stage S --workers N`` (N processes, one thread each, one share of the jobs
each) fills the artifact store first; the chapters then read every result back, so the build only
renders. The jobs are the very cached calls the chapters make, so their keys are the chapters' keys.
Run the stages in order (``train`` before the sweeps that evaluate the trained models, ``attribution``
before ``abc``, whose budget and noise level are chosen from every model's ABC curve and accuracy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, get_args

import pandas as pd

from ..common.errors import ConfigError
from ..evaluation.abc import Crossing
from ..models.registry import MODEL_KINDS, ModelKind
from ..report.claims import CONVNEXT, c4_budget, detector_noise_level
from .context import Context

Stage = Literal["train", "noise", "attack", "attribution", "abc", "data_size"]
STAGES: tuple[str, ...] = get_args(Stage)


def stage_jobs(ctx: Context, stage: str) -> list[tuple[ModelKind, int]]:
    """The (model kind, seed) jobs of ``stage`` for the profile's seeds (the size study's for ``data_size``), seed by seed."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; allowed stages: {', '.join(STAGES)}")
    seeds = ctx.data_size_seeds if stage == "data_size" else ctx.seeds
    return [(kind, seed) for seed in seeds for kind in MODEL_KINDS]


def run_share(ctx: Context, stage: str, worker: int, workers: int, log: Callable[[str], None] = print) -> None:
    """Run this worker's share (every ``workers``-th job, from ``worker``) of ``stage``; done jobs are read back.

    The attack stage also runs chapter 5's convergence study on the first seed's NSDE. The
    attribution stage computes chapter 6's maps and stability measure and chapter 7's ABC curve; the
    abc stage, from those, ABC at C4's budget and the detector scores. The data_size stage trains one
    kind and seed of chapter 8's study at every smaller training-set size.
    """
    if not 0 <= worker < workers:
        raise ConfigError(f"worker {worker} must lie in [0, workers = {workers})")
    jobs = stage_jobs(ctx, stage)
    if stage == "attack":
        jobs.append(("nsde", -1))  # the convergence study, marked by seed -1
    if stage == "abc":
        c4_m, detector_std = abc_choices(ctx)
    for kind, seed in jobs[worker::workers]:
        start = time.perf_counter()
        run = ctx.train(kind, ctx.seeds[0] if seed < 0 else seed, progress=False)
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
            if kind == "nsde":
                ctx.abc_at(run, c4_m.value, neighbours="mode")
            ctx.detector_scores(run, c4_m.value, detector_std.value)
        elif stage == "data_size":
            ctx.data_size_study((kind,), (seed,))
        log(f"{stage}: {'convergence study' if seed < 0 else kind} seed {run.seed} done "
            f"({time.perf_counter() - start:.0f} s)")


def abc_choices(ctx: Context) -> tuple[Crossing, Crossing]:
    """C4's mutation budget and the detector test's noise std, by their rules, from every seed's models.

    Chapter 7 makes the same two choices from the same cached tables (``report.claims``).
    """
    runs = ctx.train_all(progress=False)
    curve = pd.concat([ctx.abc_curve(run) for kind in MODEL_KINDS for run in runs[kind]], ignore_index=True)
    accuracy = pd.concat([ctx.detector_accuracy(run) for run in runs[CONVNEXT]], ignore_index=True)
    return c4_budget(curve), detector_noise_level(accuracy)
