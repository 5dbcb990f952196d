"""``nsdebook calibrate``: the σ sweep of ``claims.sigma_tuning`` as one task per point, resumable, and its record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from ..claims.sigma_tuning import measure_point, priority, sweep_record
from ..common import ConfigError
from ..models.registry import ModelConfig, ModelKind
from ..training import trainer
from ..training.trainer import training_key
from .cluster import ClusterSpec
from .context import Context
from .precompute import Run, Task, make_dataset, run_on_cluster, worker_context
from .provenance import provenance, record_result


def is_trained(ctx: Context, kind: ModelKind, model: ModelConfig) -> bool:
    """Whether the point's model is in the store already (nothing is trained or read)."""
    key = training_key(ctx.data, kind, ctx.profile.calibration.seed, model, ctx.train_config(kind))
    return ctx.store.exists(trainer.TRAINED, key)


def measure_calibration_point(run: Run, kind: ModelKind, model: ModelConfig, *_after: object) -> str:
    """Train and measure one point in a worker; its line for the log."""
    ctx = worker_context(run)
    row = measure_point(ctx.data, kind, model, ctx.train_config(kind), ctx.profile.calibration, ctx.store, ctx.device)
    return (f"{kind} σ={row['sigma']} {row['diffusion']} {row['noise_shape']} std={row['input_noise_std']}: "
            f"clean {row['clean']:.3f}, flip rate {row['flip_rate']:.3f}")


def calibration_graph(ctx: Context, trained_only: bool = False) -> list[Task]:
    """The data set, then one task per point in ``priority`` order (``trained_only``: the trained points only)."""
    cfg = ctx.profile.calibration
    data = Task("data", make_dataset, what="set", torch=False)
    points = [Task("calibration", measure_calibration_point, (kind, model), kind, cfg.seed, f"point {index}",
                   after=(data.name,))
              for index, (kind, model) in enumerate(priority(cfg, ctx.profile.model))
              if not trained_only or is_trained(ctx, kind, model)]
    return [data, *points]


def run_calibration(profile: str, device: str, cluster: ClusterSpec, trained_only: bool = False,
                    log: Callable[[str], None] = print) -> None:
    run_on_cluster(lambda ctx: calibration_graph(ctx, trained_only), profile, 0, device, cluster, log)


def collected(ctx: Context) -> tuple[pd.DataFrame, int]:
    """The measured points found in the store (none is computed) and the number still missing."""
    cfg = ctx.profile.calibration
    rows = [measure_point(ctx.data, kind, model, ctx.train_config(kind), cfg, ctx.store, ctx.device, only_stored=True)
            for kind, model in priority(cfg, ctx.profile.model)]
    return pd.DataFrame([row for row in rows if row is not None]), rows.count(None)


def record(ctx: Context) -> dict[str, Any]:
    """Write the points found so far, and the settings the rule chooses from them, to the results folder."""
    if not ctx.profile.record_results:
        raise ConfigError(f"the {ctx.profile.name} profile does not record results; record the calibration at 'paper'")
    table, missing = collected(ctx)
    result, models = sweep_record(table, missing, ctx.profile.calibration)
    wall = float(table["wall_time_s"].sum()) if not table.empty else 0.0
    prov = provenance(ctx.profile.name, [ctx.profile.calibration.seed], torch.device(ctx.device), wall, models)
    record_result("calibration", result, prov)
    return result
