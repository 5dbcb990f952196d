"""Reading the calibration sweep (chapter 8): what each noise costs, where it breaks, what it buys.

The sweep (``evaluation.calibration``) trains one model per setting: the NSDE at each σ for every
diffusion and noise shape, and the control at each input-noise std. Along each such line the
reading gives, in percentage points of test accuracy against the sweep's ConvNeXt: the clean cost
per doubling of the setting before the line's steepest step (the slope of a least-squares line of
accuracy against log₂ of the setting, ``scipy.stats.linregress``), that steepest step (the *cliff*:
the largest fall of clean accuracy between two neighbouring settings; none where accuracy never
falls), the setting at which the cost reaches the paper's (interpolated as the calibration rule
does), and the gain under every robustness measure of the sweep at the last setting before the cliff.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..evaluation.calibration import interpolate_setting

ROBUST_PREFIXES = ("gaussian_", "apgd_")


def _lines(points: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """Each line of the sweep by label: the name of its setting and its points, the accuracy in ``clean``."""
    nsde = points[points["kind"] == "nsde"]
    lines = {f"NSDE, {form}, {shape}": ("σ", group.assign(setting=group["sigma"], clean=group["clean_single"]))
             for (form, shape), group in nsde.groupby(["diffusion", "noise_shape"], sort=True)}
    control = points[points["kind"] == "convnext_noise"]
    if not control.empty:
        control = control.assign(setting=control["input_noise_std"], clean=control["clean_off"])
        lines["ConvNeXt + input noise"] = ("input-noise std", control)
    return lines


def frontier_reading(points: pd.DataFrame, target_cost: float) -> pd.DataFrame:
    """One row per line of the sweep (NSDE per diffusion and shape, then the control), in points of accuracy.

    ``points`` are the rows of ``evaluation.calibration.measure_point`` (one ConvNeXt among them);
    ``target_cost`` is the paper's clean-accuracy cost as a fraction. Lines with a single point get NaN
    where a reading needs two.
    """
    baseline = points[points["kind"] == "convnext"]
    if len(baseline) != 1:
        raise ValueError(f"the sweep needs exactly one ConvNeXt point to measure costs against, found {len(baseline)}")
    reference = baseline.iloc[0]
    robust = [c for c in points.columns if c.startswith(ROBUST_PREFIXES)]
    rows = []
    for label, (setting_name, line) in _lines(points).items():
        line = line.sort_values("setting")
        settings, clean = line["setting"].to_numpy(float), line["clean"].to_numpy(float)
        row: dict[str, object] = {"line": label, "setting": setting_name, "points": len(line),
                                  "settings measured": ", ".join(f"{s:g}" for s in settings)}
        falls = clean[:-1] - clean[1:]
        has_cliff = len(falls) > 0 and falls.max() > 0
        last = int(np.argmax(falls)) if has_cliff else len(settings) - 1
        slope = stats.linregress(np.log2(settings[: last + 1]), clean[: last + 1]).slope if last >= 1 else math.nan
        at_cost = interpolate_setting(settings, float(reference["clean_off"]) - clean, target_cost)
        row |= {
            "cost per doubling before the cliff (points)": -100 * slope,
            "cliff from": settings[last] if has_cliff else math.nan,
            "cliff to": settings[last + 1] if has_cliff else math.nan,
            "cliff: fall (points)": 100 * falls[last] if has_cliff else math.nan,
            "setting at the paper's cost": math.nan if at_cost is None else at_cost,
            "last setting before the cliff": settings[last],
            "clean cost there (points)": 100 * (float(reference["clean_off"]) - clean[last]),
        }
        stable = line.iloc[last]
        row |= {f"gain there, {column} (points)": 100 * (float(stable[column]) - float(reference[column]))
                for column in robust}
        rows.append(row)
    return pd.DataFrame(rows).set_index("line")
