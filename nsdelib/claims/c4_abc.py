"""Claim C4 (chapter 7): ABC (Algorithm 1 of Jha et al. 2019) over a grid of budgets, the budget rule, the verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import Tensor, nn

from ..common import ConfigError, IncreasingFractions, Section, seeded_rng
from ..common.artifacts import ArtifactKind, ArtifactStore
from ..evaluation.attributions import AttributionConfig, AttributionMethod, explained_attributions, resolve_baseline
from ..evaluation.sweeps import SweepTarget
from ..models.inference import EvalMode
from ..report.claims import C4_BUDGETS, CONVNEXT, NSDE, two_model_claim
from ..report.paper import PAPER_VALUES
from ..report.stats import Verdict, holm_family, seed_intervals, verdicts_frame

#: ABC of every explained image at one budget; bump when the score changes.
ABC_TABLE = ArtifactKind("abc", 3, "table.json")

Mutation = Literal["as_written", "expected_count"]
Neighbours = Literal["mode", "one_draw"]
AS_WRITTEN = "as written"


class DetectorConfig(Section):
    """How ABC is tested as a detector of wrong predictions (``claims.error_detection``)."""

    noise_stds: IncreasingFractions = Field(min_length=1, description="input-noise stds the detector rule picks from")
    bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000)
    bootstrap_seed: int = Field(default=0, ge=0)
    reliability_bins: int = Field(default=10, ge=2, le=100, description="equal-width score bins")


class ABCConfig(Section):
    """Algorithm 1's parameters (the defaults follow it as written), its budget grid and the detector test."""

    samples: int = Field(ge=1, le=100_000, description="S, mutated neighbours per input")
    method: AttributionMethod = "integrated_gradients"
    mutation: Mutation = Field(default="as_written", description="'expected_count': probability min(1, m·P(x_j))")
    expected_mutations: float | None = Field(default=None, gt=0, validate_default=True, description="m when rescaling")
    neighbours: Neighbours = Field(default="mode", description="'one_draw': one stochastic pass per neighbour")
    zero_guard: float = Field(default=1e-6, gt=0.0, lt=1.0, description="features with |x_j| ≤ this get P(x_j) = 0")
    rescaled_fractions: IncreasingFractions = Field(default=(), description="the budget grid: m = fraction · features")
    batch_size: int = Field(ge=1, le=65_536, description="neighbours per forward pass")
    detectors: DetectorConfig | None = None

    @field_validator("expected_mutations")
    @classmethod
    def _m_only_when_rescaling(cls, value: float | None, info: ValidationInfo) -> float | None:
        if (info.data.get("mutation") == "expected_count") != (value is not None):
            raise ValueError("give expected_mutations with mutation='expected_count' and only then")
        return value


def abc_key(config: ABCConfig) -> dict[str, Any]:
    """What an ABC score depends on: the config without its budget grid and detector settings."""
    return config.model_dump(mode="json", exclude={"rescaled_fractions", "detectors"})


def at_budget(config: ABCConfig, m: float) -> ABCConfig:
    """``config`` rescaled to ``m`` expected mutations per neighbour."""
    return config.replace(mutation="expected_count", expected_mutations=float(m))


def nominal_mutations(config: ABCConfig) -> float:
    """Expected mutated features per neighbour: 1 as written, else m (before clipping at P = 1)."""
    return 1.0 if config.mutation == "as_written" else float(config.expected_mutations)


def abc_variants(config: ABCConfig, n_features: int) -> dict[str, ABCConfig]:
    """The budget grid by label: ``config``, then m = fraction · n_features per rescaled fraction (each must grow)."""
    label = AS_WRITTEN if config.mutation == "as_written" else f"m = {config.expected_mutations:.3g}"
    variants = {label: config}
    for fraction in config.rescaled_fractions:
        m = fraction * n_features
        if m <= nominal_mutations(config):
            raise ConfigError(f"rescaled fraction {fraction:g} of {n_features} features is m = {m:.3g} mutations, no "
                              f"more than {label} ({nominal_mutations(config):g}): use larger fractions")
        variants[f"m = {m:.3g} ({100 * fraction:g} % of features)"] = at_budget(config, m)
    return variants


def mutation_probabilities(attributions: Tensor, x: Tensor, zero_guard: float) -> Tensor:
    """Step 3 per input as ``[N, n]``: 0 where |x_j| ≤ ``zero_guard``, even over the rest for an all-zero map."""
    a, v = attributions.flatten(1), x.flatten(1)
    eligible = v.abs() > zero_guard
    ratio = torch.where(eligible, (a / torch.where(eligible, v, 1.0)).abs(), 0.0)
    ratio = torch.where(ratio.sum(1, keepdim=True) > 0, ratio, eligible.to(ratio.dtype))
    return ratio / ratio.sum(1, keepdim=True).clamp_min(torch.finfo(ratio.dtype).tiny)


@torch.no_grad()
def abc_from_attributions(model: nn.Module, x: Tensor, attributions: Tensor, predicted: Tensor, config: ABCConfig,
                          baseline: float | Tensor = 0.0, seed: int = 0) -> Tensor:
    """Steps 3–5: ABC of every input, ``[N]``; the mutation masks come from one generator seeded with ``seed``."""
    if attributions.shape != x.shape:
        raise ValueError(f"attributions of shape {tuple(attributions.shape)} do not match inputs {tuple(x.shape)}")
    base = resolve_baseline(baseline, x).expand_as(x).flatten(1)
    rates = mutation_probabilities(attributions, x, config.zero_guard)
    if config.mutation == "expected_count":
        rates = (config.expected_mutations * rates).clamp(max=1.0)
    flat = x.flatten(1)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    kept = torch.zeros(len(x), device=x.device)
    owners = torch.arange(len(x), device=x.device).repeat_interleave(config.samples)
    for start in range(0, len(owners), config.batch_size):
        owner = owners[start : start + config.batch_size]
        mask = torch.rand(rates[owner].shape, generator=generator, device=x.device) < rates[owner]
        neighbours = torch.where(mask, base[owner], flat[owner]).view(len(owner), *x.shape[1:])
        same = (model(neighbours).argmax(1) == predicted[owner]).float()
        kept.index_add_(0, owner, same)
    return kept / config.samples


def neighbour_mode(config: ABCConfig, mode: EvalMode) -> EvalMode:
    """The mode the neighbours are classified in: ``mode`` itself, or one stochastic pass for ``one_draw``."""
    if config.neighbours == "one_draw" and mode.stochastic:
        return EvalMode(f"{mode.name}, one draw per neighbour", "single")
    return mode


def abc_in_mode(target: SweepTarget, x: Tensor, attributions: Tensor, predicted: Tensor, config: ABCConfig,
                attribution: AttributionConfig) -> Tensor:
    """Steps 3–5 on inputs of ``target``, neighbours classified as ``config.neighbours`` says, under its seed (CPU)."""
    device, mode = target.device, neighbour_mode(config, target.mode)
    inputs, maps, targets = (t.to(device) for t in (x, attributions, predicted))
    with seeded_rng(target.seed, device), target.control(target.model, mode.noise, mode.ensemble_size):
        return abc_from_attributions(target.model, inputs, maps, targets, config, attribution.baseline,
                                     target.seed).cpu()


def cached_abc(store: ArtifactStore, cfg: ABCConfig, attribution: AttributionConfig, target: SweepTarget
               ) -> pd.DataFrame:
    """ABC of the target's explained subset from the attributions chapter 6 shares, one row per image (cached)."""

    def build() -> pd.DataFrame:
        subset, predicted, attributions = explained_attributions(store, attribution, target, method=cfg.method)
        abc = abc_in_mode(target, target.x[subset], attributions, predicted, cfg, attribution)
        labels = target.y[subset]
        columns = {"example": subset, "label": labels, "predicted": predicted, "correct": predicted == labels, "abc": abc}
        return pd.DataFrame({name: values.numpy() for name, values in columns.items()})

    return store.fetch_table(ABC_TABLE, target.key(attribution, abc=abc_key(cfg)), build)


def abc_curve(store: ArtifactStore, cfg: ABCConfig, attribution: AttributionConfig, target: SweepTarget
              ) -> pd.DataFrame:
    """:func:`cached_abc` at every budget of :func:`abc_variants`, labelled ``budget`` with ``m``."""
    n_features = target.x[0].numel()
    return pd.concat([cached_abc(store, variant, attribution, target).assign(budget=label, m=nominal_mutations(variant))
                      for label, variant in abc_variants(cfg, n_features).items()], ignore_index=True)


@dataclass(frozen=True)
class Crossing:
    """Where a curve on a grid reaches a target; ``crossed`` is False where a grid end stands in."""

    value: float
    crossed: bool
    note: str


def log_crossing(xs: Sequence[float], ys: Sequence[float], target: float) -> Crossing:
    """The first x of an increasing grid where ``ys`` reaches ``target`` (linear in log x), else the nearest end."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    gap = y - target
    for k in range(x.size):
        if gap[k] == 0:
            return Crossing(float(x[k]), True, f"the curve reaches {target:g} at the grid point {x[k]:g}")
        if k + 1 < x.size and gap[k] * gap[k + 1] <= 0:
            share = gap[k] / (gap[k] - gap[k + 1])
            value = float(np.exp(np.log(x[k]) + share * (np.log(x[k + 1]) - np.log(x[k]))))
            return Crossing(value, True, f"the curve crosses {target:g} between {x[k]:g} and {x[k + 1]:g}")
    end = 0 if abs(gap[0]) < abs(gap[-1]) else x.size - 1
    return Crossing(float(x[end]), False, f"the curve never reaches {target:g} on the grid [{x[0]:g}, {x[-1]:g}]: "
                    f"the grid end nearest to it, {x[end]:g} (value {y[end]:.3g}), is used instead")


def both_correct(scores: pd.DataFrame, *, unit: str = "example", correct: str = "correct") -> pd.DataFrame:
    """Every model's rows on the images (per seed) that ConvNeXt and the NSDE both classify correctly."""
    pair = scores[scores["model"].isin([CONVNEXT, NSDE])]
    flags = pair.groupby(["seed", unit, "model"])[correct].all().unstack("model")
    kept = flags.reindex(columns=[CONVNEXT, NSDE]).eq(True).all(axis=1)
    return scores[pd.MultiIndex.from_frame(scores[["seed", unit]]).isin(kept[kept].index)]


def abc_claim(scores: pd.DataFrame, *, value: str = "abc", unit: str | None = "example", correct: str = "correct"
              ) -> tuple[pd.DataFrame, Verdict]:
    """C4: mean ABC per model on the images both get right, against the paper, and the verdict on NSDE − ConvNeXt."""
    rows = scores[scores["model"].isin([CONVNEXT, NSDE])]
    if unit is not None:
        rows = both_correct(rows, unit=unit, correct=correct)
    return two_model_claim(rows, "C4", "abc_correct", NSDE, CONVNEXT, value=value, unit=unit)


def c4_budget(curve: pd.DataFrame) -> Crossing:
    """C4's budget, fixed before the NSDE's ABC is read: the m at which ConvNeXt's mean ABC on the images both
    models classify correctly meets the paper's ConvNeXt value."""
    rows = both_correct(curve)
    means = rows[rows["model"] == CONVNEXT].groupby("m")["abc"].mean().sort_index()
    if means.empty:
        raise ValueError("no ConvNeXt rows on images both models classify correctly: C4's budget is undefined")
    return log_crossing(means.index.to_numpy(), means.to_numpy(), PAPER_VALUES["C4.convnext_abc_correct"])


def abc_budget_curves(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean ABC per model and budget with 95 % intervals over seeds, on the images "both correct" and "own wrong"."""
    sets = {"both correct": both_correct(curve), "own wrong": curve[~curve["correct"].astype(bool)]}
    frames = []
    for images, rows in sets.items():
        if rows.empty:
            continue
        per_seed = rows.groupby(["model", "m", "seed"], as_index=False)["abc"].mean()
        frames.append(seed_intervals(per_seed, ["model", "m"], value="abc").assign(images=images))
    return pd.concat(frames, ignore_index=True)[["images", "model", "m", "mean", "low", "high", "n"]]


def abc_budget_verdicts(curve: pd.DataFrame) -> pd.DataFrame:
    """C4's verdict at every budget of the grid, by ``m``: the family C4 budgets, Holm-adjusted and exploratory."""
    verdicts = {budget: abc_claim(rows)[1] for budget, rows in curve.groupby("budget", sort=False)}
    frame = verdicts_frame(holm_family(verdicts, C4_BUDGETS), "budget")
    frame.insert(0, "m", curve.groupby("budget", sort=False)["m"].first().reindex(frame.index))
    return frame.sort_values("m")
