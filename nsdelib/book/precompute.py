"""Paper-scale work split across processes: the chapters' models and sweeps, computed ahead of the build.

A chapter runs its models one after another in one process. On a machine with several cores,
``nsdebook precompute --stage S --workers N`` (N processes, one thread each, one share of the jobs
each) fills the artifact store first; the chapters then read every result back, so the build only
renders. The jobs are the very cached calls the chapters make, so their keys are the chapters' keys.
Run the stages in order (``train`` before the sweeps that evaluate the trained models).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, get_args

from ..common.errors import ConfigError
from ..models.registry import MODEL_KINDS, ModelKind
from .context import Context

Stage = Literal["train", "noise", "attack"]
STAGES: tuple[str, ...] = get_args(Stage)


def stage_jobs(ctx: Context, stage: str) -> list[tuple[ModelKind, int]]:
    """The (model kind, seed) jobs of ``stage`` for the profile's seeds, seed by seed."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; allowed stages: {', '.join(STAGES)}")
    return [(kind, seed) for seed in ctx.seeds for kind in MODEL_KINDS]


def run_share(ctx: Context, stage: str, worker: int, workers: int, log: Callable[[str], None] = print) -> None:
    """Run this worker's share (every ``workers``-th job, from ``worker``) of ``stage``; done jobs are read back.

    The attack stage also runs chapter 5's convergence study on the first seed's NSDE.
    """
    if not 0 <= worker < workers:
        raise ConfigError(f"worker {worker} must lie in [0, workers = {workers})")
    jobs = stage_jobs(ctx, stage)
    if stage == "attack":
        jobs.append(("nsde", -1))  # the convergence study, marked by seed -1
    for kind, seed in jobs[worker::workers]:
        start = time.perf_counter()
        run = ctx.train(kind, ctx.seeds[0] if seed < 0 else seed, progress=False)
        if stage == "noise":
            ctx.noise_sweep(run)
        elif stage == "attack":
            (ctx.attack_convergence if seed < 0 else ctx.attack_sweep)(run)
        log(f"{stage}: {'convergence study' if seed < 0 else kind} seed {run.seed} done "
            f"({time.perf_counter() - start:.0f} s)")
