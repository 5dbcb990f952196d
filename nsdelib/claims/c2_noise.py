"""Claim C2, accuracy under input noise (chapter 4): the sweep, its verdicts, the 2 × 2 design, matched accuracy."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from ..common import IncreasingPositive, Section
from ..common.artifacts import ArtifactKind
from ..evaluation.input_noise import NOISE_KINDS, NoiseKind, add_noise, image_snr_db, noise_pattern
from ..evaluation.sweeps import SweepTarget, per_image_outcomes
from ..models.inference import DETERMINISTIC_LABELS, eval_modes, injected_noise_modes, nsde_mode
from ..models.nsde import SDEConfig
from ..models.registry import ModelKind
from ..report.claims import C2_LEVELS, C2_STRUCTURED, models_table
from ..report.paper import PAPER_VALUES, get_claim
from ..report.stats import (Verdict, crossed_estimate, effect_verdict, effect_verdicts, effects_in_points,
                            holm_family, judge, primary_and_family, verdicts_frame)
from .sigma_tuning import robust_measures

#: Chapter 4's sweep table; bump when the sweep's numbers change.
NOISE_SWEEP = ArtifactKind("noise_sweep", 2, "table.json")
#: The Gaussian std of the paper's claim ("noise intensity" read as the std on the [0, 1] scale).
C2_STD = PAPER_VALUES["C2.noise_intensity"]
#: The Holm family of the 2 × 2 design's verdicts (exploratory: not a claim of the paper).
DESIGN_FAMILY = "internal noise 2 × 2"
#: The input conditions the design judges: clean, and the Gaussian stds of the frontier.
DESIGN_LEVELS = (0.0, 0.05, 0.2, 0.5)
#: The Holm family of the matched-accuracy verdicts (primary: Gaussian noise at C2's std).
MATCHED_FAMILY = "matched clean accuracy"
StructuredNoiseKind = Literal["impulsive", "narrowband"]


class NoiseSweepConfig(Section):
    """The input-noise sweep of chapter 4 (``subset_size`` None: the whole test split)."""

    gaussian_stds: IncreasingPositive = Field(min_length=1)
    structured_kinds: tuple[StructuredNoiseKind, ...] = ("impulsive", "narrowband")
    structured_levels: IncreasingPositive = Field(min_length=1)
    impulse_probability: float = Field(default=0.05, gt=0, le=1)
    subset_size: int | None = Field(default=None, ge=1)
    subset_seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=256, ge=1)

    def levels(self, kind: NoiseKind) -> tuple[float, ...]:
        """The levels swept for noise ``kind``."""
        return self.gaussian_stds if kind == "gaussian" else self.structured_levels


def noise_sweep(target: SweepTarget, cfg: NoiseSweepConfig) -> pd.DataFrame:
    """Per (noise, level, mode, image) whether the target classifies it correctly (level 0: clean), with the SNR."""
    model, x, y, modes, seed = target.model, target.x, target.y, target.modes, target.seed
    outcome_kw = {"batch_size": cfg.batch_size, "seed": seed, "noise_control": target.noise_control}
    clean = per_image_outcomes(model, x, y, modes, **outcome_kw)
    tables = []
    for kind in ("gaussian", *cfg.structured_kinds):
        generator = torch.Generator().manual_seed(seed * len(NOISE_KINDS) + NOISE_KINDS.index(kind))
        pattern = noise_pattern(x.shape, kind, generator, cfg.impulse_probability)
        tables.append(clean.assign(noise=kind, level=0.0, image_snr_db=math.inf))
        for level in cfg.levels(kind):
            noisy = add_noise(x, pattern, level)
            outcomes = per_image_outcomes(model, noisy, y, modes, **outcome_kw)
            tables.append(outcomes.assign(noise=kind, level=level, image_snr_db=image_snr_db(x, noisy)))
    return pd.concat(tables, ignore_index=True)[["noise", "level", "image_snr_db", "mode", "example", "correct"]]


def sweep_accuracy(table: pd.DataFrame, by: tuple[str, ...] = ("noise", "level", "image_snr_db", "mode")
                   ) -> pd.DataFrame:
    """Accuracy and number of images per group of a per-image table, model and seed kept."""
    keys = [*by, *(k for k in ("model", "seed") if k in table.columns)]
    return table.groupby(keys, sort=False)["correct"].agg(accuracy="mean", n_samples="size").reset_index()


def c2_comparisons(sde: SDEConfig) -> dict[str, tuple[str, str]]:
    """Chapter 4's comparisons by name, (the mode claimed better, the other); the first is C2's own."""
    convnext, control = eval_modes("convnext", sde)[0].name, eval_modes("convnext_noise", sde)[0].name
    off, single, ensemble = (mode.name for mode in eval_modes("nsde", sde))
    return {"NSDE ensemble − ConvNeXt (C2)": (ensemble, convnext), "NSDE single pass − ConvNeXt": (single, convnext),
            "NSDE noise off − ConvNeXt": (off, convnext), "NSDE ensemble − ConvNeXt + input noise": (ensemble, control)}


def noise_claim(sweep: pd.DataFrame, nsde_mode: str, baseline_mode: str, *, value: str = "correct",
                unit: str | None = "example") -> tuple[pd.DataFrame, Verdict]:
    """C2 at the paper's std: accuracy of both modes and the primary verdict on NSDE − baseline."""
    rows = sweep[(sweep["noise"] == "gaussian") & np.isclose(sweep["level"], C2_STD)]
    if rows.empty:
        raise ValueError(f"the sweep has no Gaussian noise at the paper's std {C2_STD}: add it to the sweep's levels")
    table = models_table(rows, {baseline_mode: (baseline_mode, None),
                                nsde_mode: (nsde_mode, PAPER_VALUES["C2.nsde_accuracy_at_noise"])},
                         value=value, model="mode")
    verdict = effect_verdict(rows, nsde_mode, baseline_mode, get_claim("C2").reference, value=value, model="mode",
                             unit=unit)
    return table, verdict


def _by_level(sweep: pd.DataFrame, comparisons: Mapping[str, tuple[str, str]], value: str = "correct",
              unit: str | None = "example") -> dict[tuple[str, float], Verdict]:
    """Each comparison (a better than b) at each ``level`` of ``sweep``."""
    return {(name, level): verdict for name, (a, b) in comparisons.items()
            for level, verdict in effect_verdicts(sweep, "level", a, b, get_claim("C2").reference, value=value,
                                                  model="mode", unit=unit).items()}


def noise_level_verdicts(sweep: pd.DataFrame, comparisons: Mapping[str, tuple[str, str]], *, value: str = "correct",
                         unit: str | None = "example") -> pd.DataFrame:
    """Every comparison at every Gaussian level: the first at the paper's std is primary, the rest family C2 levels."""
    verdicts = _by_level(sweep[sweep["noise"] == "gaussian"], comparisons, value=value, unit=unit)
    first = next(iter(comparisons))
    primary = next((key for key in verdicts if key[0] == first and np.isclose(key[1], C2_STD)), None)
    return verdicts_frame(primary_and_family(verdicts, C2_LEVELS, primary), ["models", "level"])


def structured_noise_verdicts(sweep: pd.DataFrame, nsde_mode: str, baseline_mode: str, *, value: str = "correct",
                              unit: str | None = "example") -> pd.DataFrame:
    """NSDE − baseline under every structured noise and level above 0: the family C2 structured noise."""
    structured = sweep[(sweep["noise"] != "gaussian") & (sweep["level"] > 0)]
    verdicts = effect_verdicts(structured, ["noise", "level"], nsde_mode, baseline_mode, get_claim("C2").reference,
                               value=value, model="mode", unit=unit)
    return verdicts_frame(holm_family(verdicts, C2_STRUCTURED), ["noise", "level"])


def structured_versus_both(sweep: pd.DataFrame, sde: SDEConfig) -> pd.DataFrame:
    """NSDE ensemble − ConvNeXt and − the control under every structured noise and level above 0 (each baseline its
    own Holm family), indexed by ``against``, ``noise`` and ``level``."""
    comparisons = c2_comparisons(sde)
    ensemble, convnext = comparisons["NSDE ensemble − ConvNeXt (C2)"]
    control = comparisons["NSDE ensemble − ConvNeXt + input noise"][1]
    return pd.concat({"ConvNeXt": structured_noise_verdicts(sweep, ensemble, convnext),
                      "control": structured_noise_verdicts(sweep, ensemble, control)}, names=["against"])


def at_largest_level(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per noise kind (and any outer index level), the row at its largest ``level``."""
    outer = [name for name in verdicts.index.names if name != "level"]
    return verdicts.sort_index().groupby(level=outer, sort=False).tail(1)


def recorded_level_rows(by_level: pd.DataFrame, comparison: tuple[str, str], levels: Sequence[float]
                        ) -> pd.DataFrame:
    """A record's ``by_level`` verdict rows of ``comparison`` (the mode claimed better, the other) at ``levels``,
    indexed by level."""
    better, other = comparison
    wanted = np.isclose(by_level["level"].to_numpy(float)[:, None], np.asarray(levels, float)[None, :]).any(axis=1)
    return by_level[(by_level["comparison"] == f"{better} − {other}") & wanted].set_index("level")


def recorded_noise_findings(by_level: pd.DataFrame, sweep: pd.DataFrame, sde: SDEConfig, levels: Sequence[float]
                            ) -> tuple[pd.DataFrame, dict[str, str]]:
    """From chapter 4's record (its ``by_level`` verdicts and per-image ``sweep``): the structured-noise verdicts
    against both baselines, and for prose NSDE ensemble − control at the Gaussian ``levels`` (``versus_control``) and
    each structured noise at its largest level against ConvNeXt and the control (``structured_<baseline>``)."""
    structured = structured_versus_both(sweep, sde)
    largest = at_largest_level(structured)
    control_rows = recorded_level_rows(by_level, c2_comparisons(sde)["NSDE ensemble − ConvNeXt + input noise"], levels)
    sentences = {"versus_control": effects_in_points(control_rows, lambda level: f"at std {level:g}")}
    sentences |= {f"structured_{key}": effects_in_points(largest.loc[against],
                                                          lambda at: f"under {at[0]} noise at level {at[1]:g}")
                  for key, against in (("convnext", "ConvNeXt"), ("control", "control"))}
    return structured, sentences


def design_cells(sde: SDEConfig) -> dict[tuple[str, str], str]:
    """The evaluation mode of each cell, by (noise in training, noise at test time)."""
    return {("no", "no"): DETERMINISTIC_LABELS["convnext"], ("no", "yes"): injected_noise_modes(sde)[1].name,
            ("yes", "no"): nsde_mode("off", sde.ensemble_size).name,
            ("yes", "yes"): nsde_mode("ensemble", sde.ensemble_size).name}


def design_table(sweep: pd.DataFrame, sde: SDEConfig) -> pd.DataFrame:
    """Mean accuracy of each cell (rows: training, test time) at every Gaussian std (columns; 0: clean)."""
    gaussian = sweep[sweep["noise"] == "gaussian"]
    table = pd.DataFrame({cell: gaussian[gaussian["mode"] == mode].groupby("level")["correct"].mean()
                          for cell, mode in design_cells(sde).items()}).T
    table.index.names = ["noise in training", "noise at test time"]
    table.columns.name = "Gaussian std (0: clean)"
    return table


def design_verdicts(sweep: pd.DataFrame, sde: SDEConfig, levels: Sequence[float] = DESIGN_LEVELS) -> pd.DataFrame:
    """Every effect of the design (the cell with the noise − the cell without) at each of ``levels``, one family."""
    cells = design_cells(sde)
    effects = {"noise in training (test-time noise off)": (cells["yes", "no"], cells["no", "no"]),
               "test-time noise, NSDE": (cells["yes", "yes"], cells["yes", "no"]),
               "test-time noise, ConvNeXt": (cells["no", "yes"], cells["no", "no"])}
    gaussian = sweep[(sweep["noise"] == "gaussian") & sweep["level"].isin(levels)]
    verdicts = _by_level(gaussian, effects)
    return verdicts_frame(holm_family(verdicts, DESIGN_FAMILY), ["effect of", "Gaussian std"])


def _named_points(points: pd.DataFrame) -> pd.DataFrame:
    """``points`` with a column ``point`` naming each by line and setting (e.g. ``NSDE σ 0.43``)."""
    setting = np.where(points["kind"] == "nsde", "NSDE σ " + points["sigma"].map("{:g}".format, na_action="ignore"),
                       np.where(points["kind"] == "convnext_noise",
                                "control std " + points["input_noise_std"].map("{:g}".format, na_action="ignore"),
                                "ConvNeXt"))
    return points.assign(point=setting)


def frontier_seed_counts(points: pd.DataFrame) -> pd.Series:
    """How many seeds each point of the frontier has, by line and setting (e.g. ``NSDE σ 0.43``)."""
    return _named_points(points).groupby("point", sort=False)["seed"].nunique()


def frontier_training(points: pd.DataFrame, max_epochs: int) -> pd.DataFrame:
    """Per point of the frontier: its seeds' best epochs and how many of them are the last of ``max_epochs`` (a model
    still improving when the training rule's budget ran out)."""
    named = _named_points(points).sort_values("seed")
    return named.groupby("point", sort=False).agg(
        seeds=("seed", "nunique"), **{"best epochs": ("best_epoch", lambda e: ", ".join(f"{v:.0f}" for v in e))},
        **{"best at the maximum": ("best_epoch", lambda e: int((e >= max_epochs).sum()))})


def at_max_sentence(training: pd.DataFrame, max_epochs: int) -> str:
    """How many of :func:`frontier_training`'s models kept their last allowed epoch, and what that means."""
    at_max, models = int(training["best at the maximum"].sum()), int(training["seeds"].sum())
    if at_max == 0:
        return f"none of the {models} recorded frontier models had its best epoch at the last of the {max_epochs}"
    return (f"{at_max} of the {models} recorded frontier models had their best epoch at the last of the {max_epochs} "
            "the training rule allows, so they may still have been improving. Their learning rate reached zero at the "
            "end of that epoch (the cosine schedule ends at the maximum), so they cannot simply train on: a longer "
            "maximum would be a new rule, for every model")


#: What the chapters say while :func:`matched_accuracy_verdicts` has no verdict yet.
MATCHED_MISSING = ("No recorded seed has both the NSDE at the book's σ and control points on both sides of its clean "
                   "accuracy, with their per-image outcomes, yet: the matched-accuracy verdict waits for them.")

#: One row of :func:`matched_accuracy_effects`; the columns exist when no seed has both lines yet.
MATCHED_COLUMNS = ["seed", "measure", "matched clean accuracy", "NSDE", "control at that clean accuracy",
                   "NSDE − control", "NSDE record", "control below", "control above", "weight above"]


#: The control line's kinds: ConvNeXt is its end at input-noise std 0 (the same training rule, the learning rate from
#: the same grid), so that a seed whose NSDE is more accurate than every noisy control point is still matched.
CONTROL_LINE: tuple[ModelKind, ...] = ("convnext", "convnext_noise")


def control_line(points: pd.DataFrame, kinds: Sequence[ModelKind] = CONTROL_LINE) -> pd.DataFrame:
    """The control line's rows (``kinds``) in the order of their input-noise std, in column ``std`` (ConvNeXt's 0)."""
    control = points[points["kind"].isin(kinds)]
    return control.assign(std=control["input_noise_std"].astype(float).fillna(0.0)).sort_values("std", kind="stable")


def matched_accuracy_effects(points: pd.DataFrame, chosen_sigma: float, measure: str,
                             control_kinds: Sequence[ModelKind] = CONTROL_LINE) -> pd.DataFrame:
    """Per seed: the NSDE at ``chosen_sigma`` against the control's ``measure`` at the NSDE's clean accuracy. The
    control line (``control_kinds``, ConvNeXt at std 0) runs in the order of its input-noise std, linear between
    neighbours; where it reaches that accuracy more than once (a little noise can raise the clean accuracy), the
    crossing with the most noise counts, chosen on clean accuracy alone. Its two points (``record`` names, the more
    accurate one's weight) are kept; never extrapolated: NaN where the line never reaches the NSDE's accuracy."""
    rows = []
    for seed, group in points.groupby("seed", sort=True):
        nsde = group[(group["kind"] == "nsde") & np.isclose(group["sigma"].astype(float), chosen_sigma)]
        control = control_line(group, control_kinds)
        if nsde.empty or len(control) < 2:
            continue
        level, nsde_value = float(nsde["clean"].iloc[0]), float(nsde[measure].iloc[0])
        clean, values = control["clean_off"].to_numpy(float), control[measure].to_numpy(float)
        records = control["record"].tolist() if "record" in control else [None] * len(control)
        below = above = None
        weight = control_value = math.nan
        crossing = [i for i in range(len(clean) - 1) if min(clean[i:i + 2]) <= level <= max(clean[i:i + 2])]
        if crossing:
            lower, upper = sorted((crossing[-1], crossing[-1] + 1), key=lambda i: clean[i])
            span = clean[upper] - clean[lower]
            weight = (level - clean[lower]) / span if span > 0 else 0.0
            control_value = (1 - weight) * values[lower] + weight * values[upper]
            below, above = records[lower], records[upper]
        rows.append((seed, measure, level, nsde_value, control_value, nsde_value - control_value,
                     nsde["record"].iloc[0] if "record" in nsde else None, below, above, weight))
    return pd.DataFrame(rows, columns=MATCHED_COLUMNS)


def matched_differences(effects: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per image (a column each) and seed (a row each): NSDE − the control at matched clean accuracy, the control's
    outcome the same mix of its two points' outcomes as its accuracy (so each seed's mean is its effect); seeds
    whose records lack per-image outcomes are left out."""
    by_record = {(record, measure): group.set_index("example")["correct"].astype(float)
                 for (record, measure), group in outcomes.groupby(["record", "measure"], sort=False)}
    rows = {}
    for effect in effects.dropna(subset=["NSDE − control"]).to_dict(orient="records"):
        wanted = [(effect[record], effect["measure"]) for record in ("NSDE record", "control below", "control above")]
        if all(key in by_record for key in wanted):
            nsde, below, above = (by_record[key] for key in wanted)
            rows[effect["seed"]] = nsde - ((1 - effect["weight above"]) * below + effect["weight above"] * above)
    return pd.DataFrame(rows).T.rename_axis(index="seed", columns="example")


def matched_accuracy_verdicts(points: pd.DataFrame, outcomes: pd.DataFrame, chosen_sigma: float,
                              control_kinds: Sequence[ModelKind] = CONTROL_LINE) -> pd.DataFrame | None:
    """NSDE − control at matched clean accuracy under every robustness measure, seeds and images both random (the
    interpolation weight held fixed); None while no seed has the NSDE at ``chosen_sigma``, control points on both
    sides of its clean accuracy and their per-image outcomes."""
    primary = f"gaussian_{C2_STD:g}"
    verdicts = {}
    for measure in sorted(robust_measures(points), key=lambda measure: measure != primary):  # the primary first
        effects = matched_accuracy_effects(points, chosen_sigma, measure, control_kinds)
        differences = matched_differences(effects, outcomes)
        if not differences.empty:
            verdicts[measure] = judge(crossed_estimate(differences), get_claim("C2").reference,
                                      comparison="NSDE − control at matched clean accuracy")
    if not verdicts:
        return None
    return verdicts_frame(primary_and_family(verdicts, MATCHED_FAMILY, primary if primary in verdicts else None),
                          "measure")
