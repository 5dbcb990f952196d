"""The calibration sweep is one task per point, resumable, and can re-measure the trained points without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsdelib.book.context import setup
from nsdelib.book.precompute import Run
from nsdelib.book.precompute import calibration_graph, collected, is_trained, measure_calibration_point
from nsdelib.claims.sigma_tuning import priority


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
