"""The calibration sweep is one task per point, resumable, and can re-measure the trained points without training."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from nsdelib.book import precompute
from nsdelib.book.context import Context, setup
from nsdelib.book.precompute import (Run, calibration_graph, collected, is_trained, measure_calibration_point,
                                     record_calibration)
from nsdelib.book.provenance import record_result, recorded_point, sweep_record_name
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.report.outcomes import read_outcomes
from nsdelib.claims.sigma_tuning import measure_point, point_settings, priority, robust_measures
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
    assert line.startswith("nsde σ=0.4 ") and ", flip rate " in line
    assert [is_trained(ctx, *point) for point in points] == [False, True, False, False, False]
    assert [task.name for task in calibration_graph(ctx, trained_only=True)] == [
        "data set", "calibration point 1 nsde seed 0"]
    points, missing = collected(ctx)
    assert len(points) == 1 and missing == 4
    # recorded as far as it goes, each point's per-image outcomes beside the record under the point's name
    monkeypatch.setattr(precompute, "record_result", functools.partial(record_result, root=tmp_path / "results"))
    result = record_calibration(Context(ctx.profile.replace(calibrates=True), 0, ctx.device, ctx.store, tmp_path))
    assert result["missing_points"] == 4 and result["choice"] == {}, "no ConvNeXt yet: no choice"
    stored = read_outcomes(tmp_path / "results" / "ci" / "outcomes" / "calibration.json")
    assert set(stored["point"]) == {"NSDE, relative, coloured, σ 0.4"}
    means = stored.groupby("measure")["correct"].mean().to_dict()
    assert means == pytest.approx({measure: result["points"][measure][0] for measure in means})


def test_a_recording_profile_records_each_point_so_an_empty_store_measures_only_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path / "store"))
    monkeypatch.setattr(precompute, "record_result", functools.partial(record_result, root=tmp_path / "results"))
    ci = setup("ci", 0, "cpu")
    profile = ci.profile.replace(calibrates=True, record_results=True)
    ctx = Context(profile, 0, ci.device, ci.store, tmp_path / "results")
    kind, model = priority(profile.calibration, profile.model)[1]
    measure_calibration_point(Run.of(ctx, "cpu"), kind, model)
    name = sweep_record_name(point_settings(kind, model, 0))
    assert (tmp_path / "results" / "ci" / f"{name}.json").exists(), "recorded as soon as it is measured"
    fresh = Context(profile, 0, ci.device, ArtifactStore(tmp_path / "empty"), tmp_path / "results")
    points, missing = collected(fresh)
    assert [point.row["weights_sha256"] for point in points] == [
        recorded_point(name, "ci", tmp_path / "results").row["weights_sha256"]] and missing == 4
    assert "calibration point 1 nsde seed 0" not in [task.name for task in calibration_graph(fresh)]
    assert len(calibration_graph(fresh)) == 1 + 4
    assert record_calibration(fresh)["missing_points"] == 4


def test_a_measured_point_names_its_model_seed_and_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSDE_ARTIFACTS", str(tmp_path))
    ctx = setup("ci", 0, "cpu")
    cfg = ctx.profile.calibration
    kind, model = next(point for point in priority(cfg, ctx.profile.model) if point[0] == "convnext_noise")
    train = ctx.train_config(kind)
    point = measure_point(ctx.data, kind, model, train, cfg, ctx.store, ctx.device, seed=1)
    row = point.row
    run = train_or_load(ctx.data, kind, 1, model, train, ctx.store, ctx.device, progress=False)
    assert row["kind"] == kind and row["seed"] == 1 and row["weights_sha256"] == run.digest
    assert row["input_noise_std"] == model.input_noise_std > 0 and row["sigma"] is None
    assert run.digest != train_or_load(ctx.data, kind, 0, model, train, ctx.store, ctx.device, progress=False).digest
    attacked = row[f"apgd_l2_{cfg.attack_eps:g}"] * cfg.subset_size
    assert len(ctx.data.test) > cfg.subset_size and attacked == pytest.approx(round(attacked)), "scored on the subset"
    per_image = point.outcomes.groupby("measure")["correct"]
    assert per_image.mean().to_dict() == pytest.approx({m: row[m] for m in robust_measures(pd.DataFrame([row]))})
    assert per_image.size().to_dict() == {**{f"gaussian_{std:g}": len(ctx.data.test) for std in cfg.gaussian_stds},
                                          f"apgd_l2_{cfg.attack_eps:g}": cfg.subset_size}
