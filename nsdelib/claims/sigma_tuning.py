"""σ tuning (chapters 3 and 8): the sweep setting σ and the control's noise to C1's cost, its rule, its reading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy import stats

from ..common import IncreasingPositive, Section, generator
from ..common.artifacts import ArtifactKind, ArtifactStore
from ..data.dataset import SpectrogramData
from ..evaluation.input_noise import add_noise
from ..evaluation.sweeps import stratified_subset
from ..models.diagnostics import flip_rate
from ..models.inference import headline_mode, predict
from ..models.nsde import DiffusionForm, NoiseShape, eval_noise
from ..models.registry import ModelConfig, ModelKind
from ..report.paper import get_claim
from ..report.stats import mean_interval
from ..training.trainer import TrainConfig, train_or_load, training_key
from .c3_attacks import apgd

#: One measured point of the σ sweep; bump when its measurement changes.
CALIBRATION_POINT = ArtifactKind("calibration_point", 3, "point.json")
#: The paper's clean-accuracy cost of the NSDE (C1): the rule's target.
TARGET_COST = get_claim("C1").reference.value
#: The commands that measure the sweep's points and record them (resumable; see the README).
CALIBRATE_COMMAND = "nsdebook calibrate --profile paper && nsdebook calibrate --profile paper --record"
#: The robustness columns of a measured point (Gaussian input noise per std, the cheap APGD-L2 attack).
ROBUST_PREFIXES = ("gaussian_", "apgd_")
Point = tuple[ModelKind, ModelConfig]


class CalibrationConfig(Section):
    """The points of the σ sweep and of the frontier, and what is measured at each."""

    forms: tuple[DiffusionForm, ...] = ("relative",)
    shapes: tuple[NoiseShape, ...] = ("white", "coloured")
    sigmas: IncreasingPositive = Field(min_length=2)
    input_noise_stds: IncreasingPositive = Field(min_length=2)
    chosen_form: DiffusionForm = "relative"
    chosen_shape: NoiseShape = "coloured"
    gaussian_stds: tuple[float, ...] = (0.05, 0.2, 0.5)
    attack_eps: float = Field(default=1.0, gt=0)
    attack_steps: int = Field(default=10, ge=1)
    subset_size: int = Field(default=256, ge=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=256, ge=1)
    frontier_sigmas: IncreasingPositive = (0.3, 0.43, 0.55, 0.7)
    frontier_input_noise_stds: IncreasingPositive = (0.1, 0.23, 0.4)
    frontier_seeds: int = Field(default=3, ge=1)


def sweep_points(cfg: CalibrationConfig, model: ModelConfig) -> list[Point]:
    """ConvNeXt, the control at each input-noise std, the NSDE at each form, shape and σ, all else the profile's: a
    point's model is then the same artifact as chapter 3's or the frontier's of those settings, trained once."""
    points: list[Point] = [("convnext", model)]
    points += [("convnext_noise", model.replace(input_noise_std=std)) for std in cfg.input_noise_stds]
    points += [
        ("nsde", model.replace(sde={**model.sde.model_dump(), "diffusion": form, "noise_shape": shape, "sigma": sigma}))
        for form in cfg.forms for shape in cfg.shapes for sigma in cfg.sigmas
    ]
    return points


def priority(cfg: CalibrationConfig, model: ModelConfig) -> list[Point]:
    """The sweep's points, those the rule needs first: ConvNeXt, the chosen form and shape, the control, the rest;
    within each, nearest (in log) the profile's own σ or std first, so that a sweep cut short is densest there."""
    def rank(point: Point) -> tuple[int, float]:
        kind, config = point
        if kind == "nsde":
            chosen = (config.sde.diffusion, config.sde.noise_shape) == (cfg.chosen_form, cfg.chosen_shape)
            return 1 if chosen else 3, abs(math.log(config.sde.sigma / model.sde.sigma))
        if kind == "convnext_noise":
            return 2, abs(math.log(config.input_noise_std / model.input_noise_std))
        return 0, 0.0

    return sorted(sweep_points(cfg, model), key=rank)


def frontier_points(cfg: CalibrationConfig, model: ModelConfig) -> list[Point]:
    """ConvNeXt, the control at each frontier std and the NSDE at each frontier σ, all else the profile's."""
    points: list[Point] = [("convnext", model)]
    points += [("convnext_noise", model.replace(input_noise_std=std)) for std in cfg.frontier_input_noise_stds]
    points += [("nsde", model.replace(sde={**model.sde.model_dump(), "sigma": sigma})) for sigma in cfg.frontier_sigmas]
    return points


def frontier_plan(cfg: CalibrationConfig, model: ModelConfig, seeds: Sequence[int]) -> list[tuple[ModelKind,
                                                                                                 ModelConfig, int]]:
    """Every frontier point on each of the frontier's seeds (the first ``cfg.frontier_seeds`` of ``seeds``)."""
    return [(kind, point, seed) for seed in seeds[: cfg.frontier_seeds] for kind, point in frontier_points(cfg, model)]


@dataclass(frozen=True)
class MeasuredPoint:
    """One measured point: its row (settings, training, accuracies) and, per robustness measure, whether each image
    was classified correctly (columns ``measure``, ``example``, ``correct``; the row's figures are their means)."""

    row: dict[str, Any]
    outcomes: pd.DataFrame


def _per_image(measure: str, examples: torch.Tensor, correct: torch.Tensor) -> dict[str, list]:
    return {"measure": [measure] * len(examples), "example": examples.tolist(), "correct": correct.int().tolist()}


def point_label(row: dict[str, Any]) -> str:
    """A measured point's name in words: ``ConvNeXt``, ``control, std 0.1`` or ``NSDE, relative, coloured, σ 0.4``."""
    if row["kind"] == "nsde":
        return f"NSDE, {row['diffusion']}, {row['noise_shape']}, σ {row['sigma']:g}"
    return f"control, std {row['input_noise_std']:g}" if row["kind"] == "convnext_noise" else "ConvNeXt"


def point_settings(kind: ModelKind, model: ModelConfig, seed: int) -> dict[str, Any]:
    """What tells one point of a sweep from another: kind, seed and the setting of its noise (None where it has none)."""
    nsde = kind == "nsde"
    return {"kind": kind, "seed": seed, "diffusion": model.sde.diffusion if nsde else None,
            "noise_shape": model.sde.noise_shape if nsde else None, "sigma": model.sde.sigma if nsde else None,
            "input_noise_std": model.input_noise_std if kind == "convnext_noise" else None}


def measure_point(data: SpectrogramData, kind: ModelKind, model: ModelConfig, train: TrainConfig,
                  cfg: CalibrationConfig, store: ArtifactStore, device: torch.device, only_stored: bool = False,
                  seed: int | None = None) -> MeasuredPoint | None:
    """Train one point at ``seed`` (default ``cfg.seed``) and measure it; ``only_stored``: the stored point or
    None."""
    seed = cfg.seed if seed is None else seed
    key = {"training": training_key(data, kind, seed, model, train),
           "measure": cfg.model_dump(mode="json", include={"gaussian_stds", "attack_eps", "attack_steps", "subset_size",
                                                           "batch_size"})}

    def build() -> dict[str, Any]:
        run = train_or_load(data, kind, seed, model, train, store, device, progress=False)
        mode = headline_mode(kind, model.sde)
        x, y = data.test.x, data.test.y
        nsde = kind == "nsde"
        row: dict[str, Any] = {
            **point_settings(kind, model, seed),
            "best_epoch": run.metrics["best_epoch"], "epochs": run.metrics["epochs"],
            "weights_sha256": run.metrics["weights_sha256"],
            "train_time_per_epoch_s": float(run.history["train_time_s"].mean()),
            "wall_time_s": run.metrics["wall_time_s"], "clean": run.metrics["accuracy"],
            **{f"clean_{noise}": acc for noise, acc in run.metrics["accuracy_by_eval_noise"].items()},
            "flip_rate": flip_rate(run.model, x, batch_size=cfg.batch_size, seed=seed) if nsde else 0.0,
        }
        outcomes = []
        pattern = torch.randn(x.shape, generator=generator(seed, "calibration", "gaussian"))
        for std in cfg.gaussian_stds:
            correct = predict(run.model, add_noise(x, pattern, std), mode, batch_size=cfg.batch_size, seed=seed) == y
            row[f"gaussian_{std:g}"] = float(correct.float().mean())
            outcomes.append(_per_image(f"gaussian_{std:g}", torch.arange(len(y)), correct))
        subset = stratified_subset(y, cfg.subset_size, seed)
        with eval_noise(run.model, "single"):
            adversarial = apgd(run.model, x[subset], y[subset], norm="L2", eps=cfg.attack_eps, loss="ce",
                               steps=cfg.attack_steps, seed=seed, batch_size=cfg.batch_size)
        correct = predict(run.model, adversarial, mode, batch_size=cfg.batch_size, seed=seed + 1) == y[subset]
        row[f"apgd_l2_{cfg.attack_eps:g}"] = float(correct.float().mean())
        outcomes.append(_per_image(f"apgd_l2_{cfg.attack_eps:g}", subset, correct))
        return {"row": row, "outcomes": {name: sum((part[name] for part in outcomes), []) for name in outcomes[0]}}

    if only_stored and not store.exists(CALIBRATION_POINT, key):
        return None
    stored = store.fetch(CALIBRATION_POINT, key, build)
    return MeasuredPoint(stored["row"], pd.DataFrame(stored["outcomes"]).astype({"correct": bool}))


def interpolate_setting(values: np.ndarray, costs: np.ndarray, target: float) -> float | None:
    """The setting whose cost is ``target``, interpolated in log(setting) within the first bracketing pair, or None."""
    for (v0, c0), (v1, c1) in zip(zip(values, costs), zip(values[1:], costs[1:])):
        if min(c0, c1) <= target <= max(c0, c1) and c0 != c1:
            t = (target - c0) / (c1 - c0)
            return float(math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0))))
    return None


def choose_settings(table: pd.DataFrame, cfg: CalibrationConfig, target_cost: float) -> dict[str, float | None]:
    """The rule: the σ of the chosen line whose single-pass cost is ``target_cost``, the control's std likewise."""
    reference = float(table.loc[table["kind"] == "convnext", "clean_off"].iloc[0])
    nsde = table[(table["kind"] == "nsde") & (table["diffusion"] == cfg.chosen_form)
                 & (table["noise_shape"] == cfg.chosen_shape)].sort_values("sigma")
    control = table[table["kind"] == "convnext_noise"].sort_values("input_noise_std")
    return {"sigma": setting_at_cost(nsde["sigma"], nsde["clean_single"], reference, target_cost),
            "input_noise_std": setting_at_cost(control["input_noise_std"], control["clean_off"], reference, target_cost),
            "convnext_accuracy": reference}


def setting_at_cost(settings: Sequence[float], accuracies: Sequence[float], reference: float,
                    target_cost: float) -> float | None:
    """The setting whose clean accuracy is ``target_cost`` below ``reference``, to two significant digits, or None."""
    value = interpolate_setting(np.asarray(settings), reference - np.asarray(accuracies), target_cost)
    return None if value is None else float(f"{value:.2g}")


#: The columns of :func:`settings_at_cost`: the setting of each line at the paper's cost, per seed.
AT_COST_COLUMNS = {"nsde": "NSDE σ (one pass)", "convnext_noise": "control std"}


def settings_at_cost(points: pd.DataFrame, target_cost: float) -> pd.DataFrame:
    """Per seed of the frontier (a row each): the NSDE's σ whose single pass, and the control's input-noise std whose
    clean accuracy, lies ``target_cost`` below that seed's ConvNeXt, interpolated in log(setting) as chapter 3's rule
    does; NaN where the seed's points do not bracket the cost (never extrapolated). The rule's answer again, on
    several seeds and under the training rule."""
    columns = {"nsde": ("sigma", "clean_single"), "convnext_noise": ("input_noise_std", "clean_off")}
    rows = {}
    for seed, group in points.groupby("seed", sort=True):
        reference = group.loc[group["kind"] == "convnext", "clean_off"]
        if reference.empty:
            continue
        row = {}
        for kind, (setting, clean) in columns.items():
            line = group[group["kind"] == kind].sort_values(setting)
            found = interpolate_setting(line[setting].to_numpy(float),
                                        float(reference.iloc[0]) - line[clean].to_numpy(float), target_cost)
            row[AT_COST_COLUMNS[kind]] = math.nan if found is None else found
        rows[seed] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(AT_COST_COLUMNS.values())).rename_axis("seed")


def settings_at_cost_sentence(table: pd.DataFrame, used: dict[str, float]) -> str:
    """:func:`settings_at_cost` in words: each line's setting over the seeds that bracket the cost (mean and 95 %
    interval) beside the setting the book uses (``used``, by the table's column)."""
    parts = []
    for column, setting in used.items():
        found = table[column].dropna() if column in table else pd.Series(dtype=float)
        if found.empty:
            parts.append(f"for the {column} no recorded seed's frontier brackets the cost yet (the book uses {setting:g})")
            continue
        interval = mean_interval(found.to_numpy())
        spread = "" if math.isnan(interval.low) else f" [{interval.low:.2f}, {interval.high:.2f}]"
        parts.append(f"the {column} is {interval.mean:.2f}{spread} over {interval.n} of {len(table)} seeds "
                     f"(the book uses {setting:g})")
    return "; ".join(parts)


def sweep_record(table: pd.DataFrame, missing: int, cfg: CalibrationConfig) -> tuple[dict[str, Any], list[dict]]:
    """The record of the points measured so far (``results/<profile>/calibration.json``) and the models it cites."""
    rows = table.to_dict(orient="records")
    has_reference = bool(rows) and (table["kind"] == "convnext").any()
    result = {"points": table.to_dict(orient="list"), "missing_points": missing, "target_cost": TARGET_COST,
              "choice": choose_settings(table, cfg, TARGET_COST) if has_reference else {},
              "config": cfg.model_dump(mode="json")}
    models = [{"kind": row["kind"], "seed": cfg.seed, "sha256": row["weights_sha256"],
               "setting": {name: row[name] for name in ("diffusion", "noise_shape", "sigma", "input_noise_std")}}
              for row in rows]
    return result, models


def unrun_points(points: pd.DataFrame, config: dict[str, Any]) -> str:
    """The points of a recorded sweep's ``config`` that its ``points`` lack, in words (``""`` when none): a whole
    diffusion form at once, otherwise point by point."""
    measured = {point_label(row) for row in points.to_dict(orient="records")}
    parts = []
    for form in config["forms"]:
        missing = [(shape, sigma) for shape in config["shapes"] for sigma in config["sigmas"]
                   if point_label({"kind": "nsde", "diffusion": form, "noise_shape": shape, "sigma": sigma})
                   not in measured]
        if len(missing) == len(config["shapes"]) * len(config["sigmas"]):
            parts.append(f"the whole {form} diffusion ({len(missing)} points)")
        elif missing:
            parts.append(f"the {form} diffusion at " + ", ".join(f"σ {sigma:g} with {shape} noise"
                                                                  for shape, sigma in missing))
    stds = [f"{std:g}" for std in config["input_noise_stds"]
            if point_label({"kind": "convnext_noise", "input_noise_std": std}) not in measured]
    if stds:
        parts.append("the control at std " + ", ".join(stds))
    if point_label({"kind": "convnext"}) not in measured:
        parts.append("ConvNeXt")
    return "; ".join(parts)


def fixed_choice(previous: dict[str, Any] | None, result: dict[str, Any], used: dict[str, float]
                 ) -> dict[str, Any]:
    """The choice behind the settings the profile ``used`` (σ and the control's std), with the record that made it:
    carried forward from ``previous`` (the record this one replaces) where it made or carried it, else this sweep's
    own choice if it is the one used, else ``{}`` (no record backs the profile). So a re-run, under another training
    recipe say, reports its own choice beside the one in use and never moves it: moving it would retrain every model
    after their outcomes were seen."""
    def matches(choice: dict[str, Any] | None) -> bool:
        return bool(choice) and all(choice.get(name) == value for name, value in used.items())

    if previous is not None:
        earlier, prov = previous["result"], previous["provenance"]
        if matches(earlier.get("fixed_choice")) and earlier["fixed_choice"]["recorded_by"] != "this record":
            return earlier["fixed_choice"]
        if matches(earlier.get("choice")):
            return {**earlier["choice"], "recorded_by": f"the sweep recorded at commit {prov['commit'][:7]} on "
                                                        f"{prov['date'][:10]}, {sweep_epochs(pd.DataFrame(earlier['points']))}"}
    return {**result["choice"], "recorded_by": "this record"} if matches(result.get("choice")) else {}


def choice_origin(result: dict[str, Any]) -> str:
    """The sweep that chose the settings in use, in words: the one recorded by ``fixed_choice``, or this record's."""
    recorded_by = (result.get("fixed_choice") or {}).get("recorded_by", "this record")
    return (f"one seed per point, {sweep_epochs(pd.DataFrame(result['points']))}" if recorded_by == "this record"
            else recorded_by)


def choice_sentence(choice: dict[str, float | None]) -> str:
    """What the rule chose on a sweep, in words; a setting whose line the measured points do not bracket yet (or a
    sweep without its ConvNeXt) is said to be open, not printed as a number."""
    if not choice:
        return "the rule chooses nothing yet: the sweep's ConvNeXt is not measured"
    settings = [f"{name} {choice[key]:g}" if choice.get(key) is not None else f"no {name} yet (its measured points do "
                "not bracket the cost)" for key, name in (("sigma", "σ"), ("input_noise_std", "control std"))]
    return (f"the rule chooses {settings[0]} and {settings[1]}, against the sweep's ConvNeXt at "
            f"{100 * choice['convnext_accuracy']:.1f} % clean accuracy")


def sweep_epochs(points: pd.DataFrame) -> str:
    """How long the sweep's points were trained, in words: ``"12 epochs each"`` or ``"8 to 12 epochs"``."""
    low, high = int(points["epochs"].min()), int(points["epochs"].max())
    return f"{high} epochs each" if low == high else f"{low} to {high} epochs"


def robust_measures(points: pd.DataFrame) -> list[str]:
    """The robustness columns of measured points."""
    return [column for column in points.columns if column.startswith(ROBUST_PREFIXES)]


def frontier_reading(points: pd.DataFrame, target_cost: float) -> pd.DataFrame:
    """Per line of the sweep, against its ConvNeXt: cost per doubling before the cliff (the largest fall), the
    cliff, the setting at ``target_cost`` and the gains at the last setting before the cliff."""
    baseline = points[points["kind"] == "convnext"]
    if len(baseline) != 1:
        raise ValueError(f"the sweep needs exactly one ConvNeXt point to measure costs against, found {len(baseline)}")
    reference = baseline.iloc[0]
    nsde, control = points[points["kind"] == "nsde"], points[points["kind"] == "convnext_noise"]
    # each line by label: the name of its setting and its points, the accuracy in ``clean``
    lines = {f"NSDE, {form}, {shape}": ("σ", group.assign(setting=group["sigma"], clean=group["clean_single"]))
             for (form, shape), group in nsde.groupby(["diffusion", "noise_shape"], sort=True)}
    if not control.empty:
        control = control.assign(setting=control["input_noise_std"], clean=control["clean_off"])
        lines["ConvNeXt + input noise"] = ("input-noise std", control)
    rows = []
    for label, (setting_name, line) in lines.items():
        line = line.sort_values("setting")
        settings, clean = line["setting"].to_numpy(float), line["clean"].to_numpy(float)
        falls = clean[:-1] - clean[1:]
        has_cliff = len(falls) > 0 and falls.max() > 0
        last = int(np.argmax(falls)) if has_cliff else len(settings) - 1
        slope = stats.linregress(np.log2(settings[: last + 1]), clean[: last + 1]).slope if last >= 1 else math.nan
        at_cost = interpolate_setting(settings, float(reference["clean_off"]) - clean, target_cost)
        row: dict[str, object] = {
            "line": label, "setting": setting_name, "points": len(line),
            "settings measured": ", ".join(f"{s:g}" for s in settings),
            "cost per doubling before the cliff (points)": -100 * slope,
            "cliff from": settings[last] if has_cliff else math.nan,
            "cliff to": settings[last + 1] if has_cliff else math.nan,
            "cliff: fall (points)": 100 * falls[last] if has_cliff else math.nan,
            "setting at the paper's cost": math.nan if at_cost is None else at_cost,
            "last setting before the cliff": settings[last],
            "clean cost there (points)": 100 * (float(reference["clean_off"]) - clean[last]),
        }
        row |= {f"gain there, {column} (points)": 100 * (float(line.iloc[last][column]) - float(reference[column]))
                for column in robust_measures(points)}
        rows.append(row)
    return pd.DataFrame(rows).set_index("line")
