"""Reading the calibration sweep: cost per doubling, the cliff, the setting at the paper's cost, the gains."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nsdelib.report.frontier import frontier_reading


def point(kind: str, clean: float, gaussian: float, sigma: float | None = None, std: float | None = None,
          form: str | None = None, shape: str | None = None) -> dict[str, object]:
    """One row as ``measure_point`` writes it (only the columns the reading uses)."""
    return {"kind": kind, "diffusion": form, "noise_shape": shape, "sigma": sigma, "input_noise_std": std,
            "clean_off": clean, "clean_single": clean if kind == "nsde" else None, "gaussian_0.2": gaussian,
            "apgd_l2_1": 0.1}


def sweep() -> pd.DataFrame:
    nsde = [point("nsde", acc, g, sigma=s, form="relative", shape="coloured")
            for s, acc, g in [(0.1, 0.89, 0.6), (0.2, 0.88, 0.65), (0.4, 0.87, 0.7), (0.8, 0.50, 0.4)]]
    rising = [point("nsde", acc, 0.6, sigma=s, form="relative", shape="white") for s, acc in [(0.1, 0.80), (0.2, 0.81)]]
    control = [point("convnext_noise", 0.91, 0.8, std=0.1)]
    return pd.DataFrame([point("convnext", 0.90, 0.6), *nsde, *rising, *control])


def test_cost_cliff_paper_setting_and_gains_of_a_line() -> None:
    row = frontier_reading(sweep(), target_cost=0.0432).loc["NSDE, relative, coloured"]
    assert row["points"] == 4 and row["setting"] == "σ"
    assert row["cost per doubling before the cliff (points)"] == pytest.approx(1.0)
    assert (row["cliff from"], row["cliff to"]) == (0.4, 0.8)
    assert row["cliff: fall (points)"] == pytest.approx(37.0)
    t = (0.0432 - 0.03) / (0.40 - 0.03)
    assert row["setting at the paper's cost"] == pytest.approx(np.exp(np.log(0.4) + t * np.log(2)))
    assert row["last setting before the cliff"] == 0.4 and row["clean cost there (points)"] == pytest.approx(3.0)
    assert row["gain there, gaussian_0.2 (points)"] == pytest.approx(10.0)
    assert row["gain there, apgd_l2_1 (points)"] == pytest.approx(0.0)


def test_a_line_that_never_falls_has_no_cliff_and_a_single_point_has_no_slope() -> None:
    table = frontier_reading(sweep(), target_cost=0.0432)
    rising = table.loc["NSDE, relative, white"]
    assert math.isnan(rising["cliff from"]) and math.isnan(rising["cliff: fall (points)"])
    assert rising["cost per doubling before the cliff (points)"] == pytest.approx(-1.0)
    assert math.isnan(rising["setting at the paper's cost"])
    control = table.loc["ConvNeXt + input noise"]
    assert control["setting"] == "input-noise std" and control["points"] == 1
    assert math.isnan(control["cost per doubling before the cliff (points)"])
    assert control["gain there, gaussian_0.2 (points)"] == pytest.approx(20.0)
    assert list(table.index) == ["NSDE, relative, coloured", "NSDE, relative, white", "ConvNeXt + input noise"]


def test_a_sweep_without_its_convnext_is_refused() -> None:
    points = sweep()
    with pytest.raises(ValueError, match="exactly one ConvNeXt point .* found 0"):
        frontier_reading(points[points["kind"] != "convnext"], target_cost=0.0432)
