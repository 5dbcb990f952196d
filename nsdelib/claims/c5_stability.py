"""Claim C5, the NSDE's attributions change less under input perturbation: the measure, its controls, verdicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..common import seeded_rng
from ..common.artifacts import ArtifactKind, ArtifactStore
from ..evaluation.attributions import (AttributionConfig, Normalisation, attribute, cached_attribution_draws,
                                       cached_predictions, is_stochastic)
from ..evaluation.sweeps import SweepTarget
from ..models.inference import EvalMode, NoiseControl
from ..models.nsde import EvalNoise, eval_noise
from ..report.claims import C5_CONTROLS, CONVNEXT, MODEL_LABELS, NSDE, models_table
from ..report.outcomes import MEASURE, long_measures
from ..report.paper import get_claim
from ..report.stats import Verdict, effect_verdict, primary_and_family, seed_intervals, verdicts_frame

#: The attribution change under perturbation and its controls; bump when the measure changes.
ATTRIBUTION_STABILITY = ArtifactKind("attribution_stability", 3, "table.json")

#: The map variants of :func:`stability_controls`, by the models they apply to.
ONE_MAP, INPUT_AVERAGED = "one map", "averaged over input noise"
NOISE_AVERAGED, ONE_DRAW, NOISE_OFF = "averaged over its noise", "one noise draw", "noise off"
MAP_VARIANTS: tuple[str, ...] = (ONE_MAP, INPUT_AVERAGED, NOISE_AVERAGED, ONE_DRAW, NOISE_OFF)


def attribution_change(reference: Tensor, perturbed: Tensor, normalisation: Normalisation = "l1") -> Tensor:
    """Per input, ``Σ_j |Â_j(perturbed) − Â_j(reference)|``; ``"l1"`` divides each map by its own Σ|A|."""
    if reference.shape != perturbed.shape:
        raise ValueError(f"attribution maps differ in shape: {tuple(reference.shape)} vs {tuple(perturbed.shape)}")
    maps = [reference.flatten(1), perturbed.flatten(1)]
    if normalisation == "l1":
        maps = [m / m.abs().sum(1, keepdim=True).clamp_min(torch.finfo(m.dtype).tiny) for m in maps]
    return (maps[1] - maps[0]).abs().sum(1)


def perturbed_maps(model: nn.Module, x: Tensor, target: Tensor | int, config: AttributionConfig,
                   levels: tuple[float, ...], *, seed: int, input_draws: int = 0, reference: Tensor | None = None
                   ) -> Tensor:
    """The per-draw maps at ``x`` and at ``x + σ·z`` (clipped to [0, 1]) per level σ, one ``z ~ N(0, I)`` per
    input: ``[1 + L, D, *x.shape]``; ``reference``: the maps at ``x`` if already computed."""
    method = config.stability_method
    clean = reference if reference is not None else attribute(
        model, x, target, method, config, None, seed, input_draws, keep_draws=True)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    states = [clean]
    for index, level in enumerate(levels):
        noise_seed = seed if config.common_noise else seed + 1 + index
        states.append(attribute(model, (x + level * direction).clamp(0.0, 1.0), target, method, config, None,
                                noise_seed, input_draws, keep_draws=True))
    return torch.stack(states)


def change_table(maps: Tensor, levels: tuple[float, ...], normalisation: Normalisation) -> pd.DataFrame:
    """One row per input and level of maps ``[1 + L, *x.shape]`` (state 0 unperturbed): the change after
    ``normalisation`` and of the raw maps, each with its log."""
    table = pd.concat([pd.DataFrame({"example": range(maps.shape[1]), "level": level,
                                     "change": attribution_change(maps[0], state, normalisation).cpu().numpy(),
                                     "raw_change": attribution_change(maps[0], state, "none").cpu().numpy()})
                       for level, state in zip(levels, maps[1:], strict=True)], ignore_index=True)
    with np.errstate(divide="ignore"):  # a zero change has log −inf
        table.insert(3, "log_change", np.log(table["change"].to_numpy()))
        table["log_raw_change"] = np.log(table["raw_change"].to_numpy())
    return table


def stability_controls(model: nn.Module, x: Tensor, target: Tensor, config: AttributionConfig, mode: EvalMode, *,
                       seed: int, noise_control: NoiseControl | None = None,
                       reference: Callable[[EvalNoise], Tensor] | None = None) -> pd.DataFrame:
    """:func:`change_table` of every map variant of one model, with ``variant`` and ``reported`` (that of ``mode``);
    ``reference(noise)``: the per-draw maps at ``x`` with the model's noise ``noise``, if stored."""
    control = noise_control or eval_noise
    levels = config.perturbation_levels

    def maps(noise: EvalNoise, input_draws: int = 0) -> Tensor:
        # read before the noise is set: the stored maps' key digests the model's own settings
        clean = reference(noise) if reference is not None and input_draws == 0 else None
        with control(model, noise, None):
            return perturbed_maps(model, x, target, config, levels, seed=seed, input_draws=input_draws, reference=clean)

    with seeded_rng(seed, x.device), control(model, "single", None):
        stochastic = is_stochastic(model, x)
    if stochastic:
        noisy = maps("single")
        variants = {NOISE_AVERAGED: noisy.mean(1), ONE_DRAW: noisy[:, 0], NOISE_OFF: maps("off")[:, 0]}
        reported = NOISE_OFF if mode.noise == "off" else NOISE_AVERAGED
    else:
        variants = {ONE_MAP: maps("off")[:, 0], INPUT_AVERAGED: maps("off", config.noise_draws)[:, 0]}
        reported = ONE_MAP
    return pd.concat([change_table(m, levels, config.normalisation).assign(variant=name, reported=name == reported)
                      for name, m in variants.items()], ignore_index=True)


def cached_attribution_stability(store: ArtifactStore, cfg: AttributionConfig, target: SweepTarget) -> pd.DataFrame:
    """:func:`stability_controls` of the predicted classes of the explained subset (cached)."""
    subset, device = target.subset(cfg), target.device

    def build() -> pd.DataFrame:
        def reference(noise: EvalNoise) -> Tensor:
            return cached_attribution_draws(store, cfg, target, cfg.stability_method, noise).to(device)

        predicted = cached_predictions(store, cfg, target)
        table = stability_controls(target.model, target.x[subset].to(device), predicted.to(device), cfg, target.mode,
                                   seed=target.seed, noise_control=target.noise_control, reference=reference)
        position = table["example"].to_numpy()
        table.insert(1, "label", target.y[subset].numpy()[position])
        table["example"] = subset.numpy()[position]
        return table

    return store.fetch_table(ATTRIBUTION_STABILITY, target.key(cfg, kind="stability"), build)


def stability_claim(stability: pd.DataFrame, *, value: str = "log_change", unit: str | None = "example"
                    ) -> tuple[pd.DataFrame, dict[float, Verdict]]:
    """C5 per level, from the ``reported`` rows: mean log change per model and the verdict on ConvNeXt − NSDE."""
    verdicts: dict[float, Verdict] = {}
    tables = []
    comparison = f"{MODEL_LABELS[CONVNEXT]} − {MODEL_LABELS[NSDE]}"
    for level, at_level in stability.groupby("level"):
        verdicts[float(level)] = effect_verdict(at_level, CONVNEXT, NSDE, get_claim("C5").reference, value=value,
                                                unit=unit, comparison=comparison)
        at = models_table(at_level, {kind: (kind, None) for kind in (CONVNEXT, NSDE)}, value=value)
        tables.append(at.drop(columns="paper").assign(level=float(level)))
    table = pd.concat(tables).reset_index().set_index(["level", "model"]).rename(
        columns={"this book (mean)": "mean log change"})
    table["C5 (NSDE < ConvNeXt)"] = [verdicts[level].label for level, _ in table.index]
    return table, verdicts


#: C5's matched comparisons: (name, (model, map variant) claimed to change more, the arm claimed to change less).
C5_COMPARISONS: tuple[tuple[str, tuple[str, str], tuple[str, str]], ...] = (
    ("as reported: ConvNeXt vs NSDE averaged over its noise", (CONVNEXT, ONE_MAP), (NSDE, NOISE_AVERAGED)),
    ("equal averaging: ConvNeXt averaged over input noise", (CONVNEXT, INPUT_AVERAGED), (NSDE, NOISE_AVERAGED)),
    ("no averaging: one map each", (CONVNEXT, ONE_MAP), (NSDE, ONE_DRAW)),
    ("NSDE's weights alone: its noise off", (CONVNEXT, ONE_MAP), (NSDE, NOISE_OFF)),
    ("noise-trained control, equal averaging", ("convnext_noise", INPUT_AVERAGED), (NSDE, NOISE_AVERAGED)),
    ("noise-trained control, no averaging", ("convnext_noise", ONE_MAP), (NSDE, ONE_DRAW)),
    ("averaging alone: ConvNeXt one map vs averaged", (CONVNEXT, ONE_MAP), (CONVNEXT, INPUT_AVERAGED)),
)


def arm_label(model: str, variant: str) -> str:
    """A model and the map variant it is explained with, for tables and figures."""
    return f"{MODEL_LABELS[model]}, {variant}"


def stability_controls_claim(stability: pd.DataFrame, *, value: str = "log_change", unit: str = "example",
                             primary: bool = True) -> pd.DataFrame:
    """Each of :data:`C5_COMPARISONS` whose arms are present, per level; with ``primary`` the first at the largest
    level is C5's primary verdict, every other row the family C5 controls."""
    arms = stability.assign(arm=stability["model"] + "|" + stability["variant"])
    present = set(arms["arm"])
    verdicts = {}
    for name, a, b in C5_COMPARISONS:
        first, second = "|".join(a), "|".join(b)
        if not {first, second} <= present:
            continue
        for level, rows in arms[arms["arm"].isin([first, second])].groupby("level"):
            verdicts[name, float(level)] = effect_verdict(
                rows, first, second, get_claim("C5").reference, value=value, model="arm", unit=unit,
                comparison=f"{arm_label(*a)} − {arm_label(*b)}")
    headline = (C5_COMPARISONS[0][0], max((level for _, level in verdicts), default=None))
    family = primary_and_family(verdicts, C5_CONTROLS, headline if primary else None)
    return verdicts_frame(family, ["control", "level"])


def stability_by_arm(stability: pd.DataFrame) -> pd.DataFrame:
    """Mean log change per level, model and map variant with 95 % intervals over seeds, for both measures."""
    frames = []
    for measure, column in (("normalised", "log_change"), ("literal", "log_raw_change")):
        per_seed = stability.groupby(["level", "model", "variant", "reported", "seed"], as_index=False)[column].mean()
        frames.append(seed_intervals(per_seed, ["level", "model", "variant", "reported"], value=column)
                      .assign(measure=measure))
    table = pd.concat(frames, ignore_index=True)
    table["arm"] = [arm_label(m, v) for m, v in zip(table["model"], table["variant"])]
    return table[["measure", "level", "model", "variant", "arm", "reported", "mean", "low", "high", "n"]]


def arm_order(by_arm: pd.DataFrame) -> list[str]:
    """The arms present, by model then map variant (the same place and colour in every figure)."""
    present = set(zip(by_arm["model"], by_arm["variant"]))
    unknown = {(m, v) for m, v in present if m not in MODEL_LABELS or v not in MAP_VARIANTS}
    if unknown:
        raise ValueError(f"unknown model or map variant in the arms: {sorted(unknown)}")
    return [arm_label(m, v) for m in MODEL_LABELS for v in MAP_VARIANTS if (m, v) in present]


def stability_record(stability: pd.DataFrame, shares: pd.DataFrame) -> dict[str, Any]:
    """The result chapter 6 records as ``attribution_stability``: every table and verdict of C5, both measures."""
    reported = stability[stability["reported"]]
    c5, verdicts = stability_claim(reported)
    literal, literal_verdicts = stability_claim(reported, value="log_raw_change")
    per_seed = stability.groupby(["model", "variant", "reported", "seed", "level"], as_index=False)[
        ["log_change", "log_raw_change"]].mean()
    return {"per_seed": per_seed.to_dict(orient="list"), "by_arm": stability_by_arm(stability).to_dict(orient="list"),
            "c5": c5.reset_index().to_dict(orient="list"), "c5_literal": literal.reset_index().to_dict(orient="list"),
            "verdicts": {str(k): v.to_dict() for k, v in verdicts.items()},
            "verdicts_literal": {str(k): v.to_dict() for k, v in literal_verdicts.items()},
            "controls": stability_controls_claim(stability).reset_index().to_dict(orient="list"),
            "controls_literal": stability_controls_claim(stability, value="log_raw_change", primary=False)
            .reset_index().to_dict(orient="list"),
            "share_on_brightest": shares.to_dict(orient="list")}


#: What one group of chapter 6's recorded per-image outcomes is: a model's map variant in a seed at a perturbation
#: level, on one measure; and the measures C5's verdicts read (normalised and literal log change).
STABILITY_OUTCOME_KEYS: tuple[str, ...] = ("model", "variant", "reported", "seed", "level", MEASURE)
STABILITY_MEASURES: tuple[str, ...] = ("log_change", "log_raw_change")


def stability_outcomes(stability: pd.DataFrame) -> pd.DataFrame:
    """Every per-image log change C5's verdicts and controls read, both measures in one long table, to record beside
    ``attribution_stability`` (keys :data:`STABILITY_OUTCOME_KEYS`, value column ``value``)."""
    return long_measures(stability, STABILITY_OUTCOME_KEYS[:-1], STABILITY_MEASURES)
