"""Reading the calibration sweep (chapter 8): what each noise costs, where it breaks, what it buys.

The sweep (``evaluation.calibration``) trains one model per setting: the NSDE at each σ for every
diffusion and noise shape, and the control at each input-noise std. Along each such line the
reading gives, in percentage points of test accuracy against the sweep's ConvNeXt: the clean cost
per doubling of the setting before the line's steepest step (the slope of a least-squares line of
accuracy against log₂ of the setting, ``scipy.stats.linregress``), that steepest step (the *cliff*:
the largest fall of clean accuracy between two neighbouring settings; none where accuracy never
falls), the setting at which the cost reaches the paper's (interpolated as the calibration rule
does), and the gain under every robustness measure of the sweep at the last setting before the cliff.

The frontier (``evaluation.calibration.frontier_points``, several seeds per point) answers the first
question a reviewer asks of any robustness gain: does it hold at matched clean accuracy? Per seed,
the control's robust accuracy is interpolated along its line of input-noise stds at the clean
accuracy of the book's NSDE (its reported ensemble), and the difference is judged over seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..evaluation.calibration import interpolate_setting
from .paper import PAPER_VALUES, get_claim
from .stats import Reference, primary_and_family, seed_effects_verdict, verdicts_frame

ROBUST_PREFIXES = ("gaussian_", "apgd_")
#: The Holm family of the matched-accuracy verdicts; its primary measure is the paper's own noise level (C2's std).
MATCHED_FAMILY = "matched clean accuracy"
#: Smallest effect of interest at matched clean accuracy: C2's (two points; its justification is C2's).
MATCHED_REFERENCE = Reference(get_claim("C2").reference.value, "smallest effect of interest")


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


def robust_measures(points: pd.DataFrame) -> list[str]:
    """The robustness columns of measured points (Gaussian input noise per std, the cheap APGD-L2 attack)."""
    return [column for column in points.columns if column.startswith(ROBUST_PREFIXES)]


def frontier_seed_counts(points: pd.DataFrame) -> pd.Series:
    """How many seeds each point of the frontier has, by line and setting (e.g. ``NSDE σ 0.43``)."""
    setting = np.where(points["kind"] == "nsde", "NSDE σ " + points["sigma"].map("{:g}".format, na_action="ignore"),
                       np.where(points["kind"] == "convnext_noise",
                                "control std " + points["input_noise_std"].map("{:g}".format, na_action="ignore"),
                                "ConvNeXt"))
    return points.assign(point=setting).groupby("point", sort=False)["seed"].nunique()


def matched_accuracy_effects(points: pd.DataFrame, chosen_sigma: float, measure: str) -> pd.DataFrame:
    """Per seed: the NSDE at σ = ``chosen_sigma`` against the control interpolated to the NSDE's clean accuracy.

    ``points`` are frontier rows (``measure_point``'s, with ``seed``): the NSDE's clean accuracy is its
    reported ``clean`` (the ensemble), the control's its ``clean_off``. The control's ``measure`` is
    interpolated linearly in clean accuracy between its two stds that bracket the NSDE's; a seed whose
    NSDE lies outside the control's measured range gets NaN (nothing is extrapolated).
    """
    rows = []
    for seed, group in points.groupby("seed", sort=True):
        nsde = group[(group["kind"] == "nsde") & np.isclose(group["sigma"].astype(float), chosen_sigma)]
        control = group[group["kind"] == "convnext_noise"].sort_values("clean_off")
        if nsde.empty or len(control) < 2:
            continue
        level, nsde_value = float(nsde["clean"].iloc[0]), float(nsde[measure].iloc[0])
        clean = control["clean_off"].to_numpy(float)
        inside = clean.min() <= level <= clean.max()
        control_value = float(np.interp(level, clean, control[measure].to_numpy(float))) if inside else math.nan
        rows.append({"seed": seed, "measure": measure, "matched clean accuracy": level, "NSDE": nsde_value,
                     "control at that clean accuracy": control_value, "NSDE − control": nsde_value - control_value})
    return pd.DataFrame(rows)


def matched_accuracy_verdicts(points: pd.DataFrame, chosen_sigma: float) -> pd.DataFrame:
    """NSDE − control at matched clean accuracy under every robustness measure, judged over seeds (Holm family
    ``MATCHED_FAMILY``; primary: Gaussian noise at C2's std); seeds outside the control's range are left out."""
    primary = f"gaussian_{PAPER_VALUES['C2.noise_intensity']:g}"
    verdicts = {}
    for measure in robust_measures(points):
        effects = matched_accuracy_effects(points, chosen_sigma, measure)["NSDE − control"].dropna()
        verdicts[measure] = seed_effects_verdict(effects.to_numpy(), MATCHED_REFERENCE,
                                                 comparison="NSDE − control at matched clean accuracy")
    return verdicts_frame(primary_and_family(verdicts, MATCHED_FAMILY, primary if primary in verdicts else None),
                          "measure")
