"""The calibration sweep runs resumably, shares its points among workers and can re-measure without training."""

from __future__ import annotations

from nsdelib.book.calibrate import collected, is_trained, priority, run_sweep
from nsdelib.book.context import setup


def test_trained_only_measures_the_trained_points_and_trains_nothing() -> None:
    ctx = setup("ci", 0, "cpu")
    points = priority(ctx.profile.calibration, ctx.profile.model)
    assert [kind for kind, _ in points][:1] == ["convnext"] and len(points) == 5
    lines: list[str] = []
    run_sweep(ctx, trained_only=True, log=lines.append)
    assert lines == [] and not any(is_trained(ctx, *point) for point in points)
    run_sweep(ctx, worker=1, workers=4, log=lines.append)  # point 1 (the first NSDE) trained and measured
    assert len(lines) == 1 and [is_trained(ctx, *point) for point in points] == [False, True, False, False, False]
    lines.clear()
    run_sweep(ctx, trained_only=True, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("[0] nsde σ=0.1 ")
    table, missing = collected(ctx)
    assert len(table) == 1 and missing == 4
