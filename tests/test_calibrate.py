"""The calibration sweep is one task per point, resumable, and can re-measure the trained points without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsdelib.book.context import setup
from nsdelib.book.precompute import Run
from nsdelib.book.precompute import calibration_graph, collected, is_trained, measure_calibration_point
from nsdelib.claims.sigma_tuning import measure_point, priority
from nsdelib.training.trainer import train_or_load


def test_trained_only_measures_the_trained_points_and_trains_nothing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path))
    ctx = setup("ci", 0, "cpu")
    points = priority(ctx.profile.calibration, ctx.profile.model)
    assert [kind for kind, _ in points][:1] == ["convnext"] and len(points) == 5
    graph = calibration_graph(ctx)
    assert [task.name for task in graph] == ["data set", *(f"calibration point {index} {kind} seed 0"
                                                           for index, (kind, _) in enumerate(points))]
    assert all(task.after == ("data set",) for task in graph[1:])
    assert [task.name for task in calibration_graph(ctx, trained_only=True)] == ["data set"]
    line = measure_calibration_point(Run.of(ctx, "cpu"), *points[1])  # as a worker runs it
    assert line.startswith("nsde σ=0.1 ") and ", flip rate " in line
    assert [is_trained(ctx, *point) for point in points] == [False, True, False, False, False]
    assert [task.name for task in calibration_graph(ctx, trained_only=True)] == [
        "data set", "calibration point 1 nsde seed 0"]
    table, missing = collected(ctx)
    assert len(table) == 1 and missing == 4


def test_a_measured_point_names_its_model_seed_and_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path))
    ctx = setup("ci", 0, "cpu")
    cfg = ctx.profile.calibration
    kind, model = next(point for point in priority(cfg, ctx.profile.model) if point[0] == "convnext_noise")
    train = ctx.train_config(kind)
    row = measure_point(ctx.data, kind, model, train, cfg, ctx.store, ctx.device, seed=1)
    run = train_or_load(ctx.data, kind, 1, model, train, ctx.store, ctx.device, progress=False)
    assert row["kind"] == kind and row["seed"] == 1 and row["weights_sha256"] == run.digest
    assert row["input_noise_std"] == model.input_noise_std > 0 and row["sigma"] is None
    assert run.digest != train_or_load(ctx.data, kind, 0, model, train, ctx.store, ctx.device, progress=False).digest
    attacked = row[f"apgd_l2_{cfg.attack_eps:g}"] * cfg.subset_size
    assert len(ctx.data.test) > cfg.subset_size and attacked == pytest.approx(round(attacked)), "scored on the subset"
