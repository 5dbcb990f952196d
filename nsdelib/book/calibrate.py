"""Running the calibration sweep of ``evaluation.calibration`` at a profile, resumably, and recording it.

Each point is an artifact (its trained model and its measured row), so a sweep that is stopped picks
up where it was. The points are tasks of a Dask graph (one per point, after the data set, in the
order of ``priority``), run on the same clusters as ``nsdebook precompute`` (``book.cluster``), and
``record`` collects whatever points exist into ``results/<profile>/calibration.json`` with provenance,
saying which are still missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from ..common.errors import ConfigError
from ..evaluation.calibration import CalibrationConfig, choose_settings, measure_point, sweep_points
from ..models.registry import ModelConfig, ModelKind
from ..report.paper import get_claim
from ..training import trainer
from ..training.trainer import training_key
from .cluster import ClusterSpec
from .context import Context
from .precompute import Run, Task, make_dataset, run_on_cluster, worker_context
from .provenance import provenance, record_result

#: The paper's clean-accuracy cost of the NSDE, the target of the calibration rule.
TARGET_COST = get_claim("C1").reference.value
#: The commands that measure the sweep's points and record them (resumable; see the README).
CALIBRATE_COMMAND = "nsdebook calibrate --profile paper && nsdebook calibrate --profile paper --record"


def priority(cfg: CalibrationConfig, model: ModelConfig) -> list[tuple[ModelKind, ModelConfig]]:
    """The sweep's points, those the rule needs first: ConvNeXt, the chosen form and shape, the control, the rest."""
    points = sweep_points(cfg, model)

    def rank(point: tuple[ModelKind, ModelConfig]) -> int:
        kind, config = point
        if kind == "convnext":
            return 0
        if kind == "nsde" and (config.sde.diffusion, config.sde.noise_shape) == (cfg.chosen_form, cfg.chosen_shape):
            return 1
        return 2 if kind == "convnext_noise" else 3

    return sorted(points, key=rank)


def is_trained(ctx: Context, kind: ModelKind, model: ModelConfig) -> bool:
    """Whether the sweep point's model is in the store already (nothing is trained or read)."""
    key = training_key(ctx.data, kind, ctx.profile.calibration.seed, model, ctx.train_config(kind))
    return ctx.store.exists(trainer.TRAINED, key)


def measure_calibration_point(run: Run, kind: ModelKind, model: ModelConfig, *_after: object) -> str:
    """Train one point of the sweep (or read it back) and measure it, in a worker; its line for the log."""
    ctx = worker_context(run)
    row = measure_point(ctx.data, kind, model, ctx.train_config(kind), ctx.profile.calibration, ctx.store, ctx.device)
    return (f"{kind} σ={row['sigma']} {row['diffusion']} {row['noise_shape']} std={row['input_noise_std']}: "
            f"clean {row['clean']:.3f}, flip rate {row['flip_rate']:.3f}")


def calibration_graph(ctx: Context, trained_only: bool = False) -> list[Task]:
    """The data set, then one task per point of the sweep, in the order of ``priority``.

    With ``trained_only``, points whose model is not trained yet are left out: after a change to the
    measuring code, the trained points are measured again without training any new one.
    """
    cfg = ctx.profile.calibration
    data = Task("data", make_dataset, what="set", torch=False)
    points = [Task("calibration", measure_calibration_point, (kind, model), kind, cfg.seed, f"point {index}",
                   after=(data.name,))
              for index, (kind, model) in enumerate(priority(cfg, ctx.profile.model))
              if not trained_only or is_trained(ctx, kind, model)]
    return [data, *points]


def run_calibration(profile: str, device: str, cluster: ClusterSpec, trained_only: bool = False,
                    log: Callable[[str], None] = print) -> None:
    """``nsdebook calibrate``: the sweep's points (:func:`calibration_graph`) on the cluster ``cluster`` names."""
    run_on_cluster(lambda ctx: calibration_graph(ctx, trained_only), profile, 0, device, cluster, log)


def collected(ctx: Context) -> tuple[pd.DataFrame, int]:
    """The measured points found in the store (none is computed) and the number still missing."""
    cfg = ctx.profile.calibration
    rows, missing = [], 0
    for kind, model in priority(cfg, ctx.profile.model):
        row = measure_point(ctx.data, kind, model, ctx.train_config(kind), cfg, ctx.store, ctx.device, only_stored=True)
        if row is None:
            missing += 1
        else:
            rows.append(row)
    return pd.DataFrame(rows), missing


def record(ctx: Context) -> dict[str, Any]:
    """Write the points found so far, and the settings the rule chooses from them, to the results folder."""
    if not ctx.profile.record_results:
        raise ConfigError(f"the {ctx.profile.name} profile does not record results; record the calibration at 'paper'")
    table, missing = collected(ctx)
    cfg = ctx.profile.calibration
    choice = choose_settings(table, cfg, TARGET_COST) if not table.empty and (table["kind"] == "convnext").any() else {}
    result = {"points": table.to_dict(orient="list"), "missing_points": missing, "target_cost": TARGET_COST,
              "choice": choice, "config": cfg.model_dump(mode="json")}
    wall = float(table["wall_time_s"].sum()) if not table.empty else 0.0
    device = torch.device(ctx.device)
    models = [{"kind": row["kind"], "seed": cfg.seed, "sha256": row["weights_sha256"],
               "setting": {name: row[name] for name in ("diffusion", "noise_shape", "sigma", "input_noise_std")}}
              for row in table.to_dict(orient="records")] if not table.empty else []
    record_result("calibration", result, provenance(ctx.profile.name, [cfg.seed], device, wall, models))
    return result
