"""Attribution-Based Confidence (ABC), Algorithm 1 of Jha et al. (NeurIPS 2019), batched and seeded.

``abc_score`` follows the algorithm as written (P(x_j) = |A_j / x_j| / Σ_k |A_k / x_k|, features with
|x_j| at most ``zero_guard`` get P = 0); ``ABCConfig.mutation="expected_count"`` rescales the mutation
budget to m features per neighbour. The algorithm, its budget rule and claim C4 are in chapter 7.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationInfo, field_validator
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from ..common.artifacts import ArtifactKind, ArtifactStore
from ..common.config import IncreasingFractions, Section
from ..common.errors import ConfigError
from ..common.seeding import seeded_rng
from ..models.inference import EvalMode, predict_logits
from .attributions import (
    AttributionConfig,
    AttributionMethod,
    ExplainedModel,
    attribute,
    explained_attributions,
    resolve_baseline,
)
from .sweeps import fetch_table

#: ABC of every explained image at one budget; bump when the score changes.
ABC_TABLE = ArtifactKind("abc", 2, "table.json")

Mutation = Literal["as_written", "expected_count"]
Neighbours = Literal["mode", "one_draw"]
AS_WRITTEN = "as written"


class DetectorConfig(Section):
    """How ABC is tested as a detector of wrong predictions (chapter 7, ``evaluation.detectors``)."""

    noise_stds: IncreasingFractions = Field(
        min_length=1,
        description="Gaussian input-noise stds (input units) among which the rule of report.paper picks the "
        "level of the inputs whose wrong predictions are detected"
    )
    bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000, description="bootstrap resamples of images")
    bootstrap_seed: int = Field(default=0, ge=0, description="seed of the bootstrap")
    reliability_bins: int = Field(default=10, ge=2, le=100, description="equal-width score bins of the reliability plot")



class ABCConfig(Section):
    """Parameters of Algorithm 1 (the defaults follow the algorithm as written), its budget grid and detector test."""

    samples: int = Field(ge=1, le=100_000, description="S, the number of mutated neighbours per input")
    method: AttributionMethod = Field(default="integrated_gradients", description="attribution method of step 1")
    mutation: Mutation = Field(
        default="as_written",
        description="'as_written': mutate feature j with probability P(x_j) (one feature per neighbour on "
        "average); 'expected_count': probability min(1, m·P(x_j)) with m = expected_mutations",
    )
    expected_mutations: float | None = Field(
        default=None, validate_default=True, description="m, only for mutation='expected_count'"
    )
    neighbours: Neighbours = Field(
        default="mode",
        description="a stochastic model classifies the neighbours in its mode ('mode') or with one fresh noise "
        "draw each ('one_draw': the keep-probability of one pass, K times cheaper than a K-pass ensemble)",
    )
    zero_guard: float = Field(default=1e-6, gt=0.0, lt=1.0, description="features with |x_j| ≤ this get P(x_j) = 0")
    rescaled_fractions: IncreasingFractions = Field(
        default=(),
        description="the mutation-budget grid beside the algorithm as written: m = fraction · features (abc_variants)",
    )
    batch_size: int = Field(ge=1, le=65_536, description="neighbours per forward pass")
    detectors: DetectorConfig | None = Field(default=None, description="the test of ABC as a detector of errors")

    @field_validator("expected_mutations")
    @classmethod
    def _count_only_when_rescaling(cls, value: float | None, info: ValidationInfo) -> float | None:
        rescaling = info.data.get("mutation") == "expected_count"
        if rescaling and (value is None or value <= 0):
            raise ValueError("mutation='expected_count' needs a positive expected_mutations")
        if not rescaling and value is not None:
            raise ValueError("expected_mutations applies only with mutation='expected_count'; leave it unset")
        return value



def abc_key(config: ABCConfig) -> dict[str, Any]:
    """What an ABC score depends on: the config without its budget grid and detector settings."""
    return config.model_dump(mode="json", exclude={"rescaled_fractions", "detectors"})


def at_budget(config: ABCConfig, m: float) -> ABCConfig:
    """``config`` rescaled to ``m`` expected mutations per neighbour (``mutation="expected_count"``)."""
    return config.replace(mutation="expected_count", expected_mutations=float(m))


def nominal_mutations(config: ABCConfig) -> float:
    """The expected number of mutated features per neighbour: 1 as written, else m (before clipping at P = 1)."""
    return 1.0 if config.mutation == "as_written" else float(config.expected_mutations)


def abc_variants(config: ABCConfig, n_features: int) -> dict[str, ABCConfig]:
    """The mutation-budget grid by label: ``config`` itself, then one ``expected_count`` config per rescaled fraction.

    A variant mutates ``m = fraction · n_features`` features per neighbour on average instead of the
    one feature of the algorithm as written; it is a deviation, labelled as such. A fraction that
    mutates no more than the configured budget raises ConfigError (the grid must grow).
    """
    label = AS_WRITTEN if config.mutation == "as_written" else f"m = {config.expected_mutations:.3g}"
    variants = {label: config}
    for fraction in config.rescaled_fractions:
        m = fraction * n_features
        if m <= nominal_mutations(config):
            raise ConfigError(f"rescaled fraction {fraction:g} of {n_features} features is m = {m:.3g} mutations, no "
                              f"more than {label} ({nominal_mutations(config):g}): use larger fractions")
        variants[f"m = {m:.3g} ({100 * fraction:g} % of features)"] = at_budget(config, m)
    return variants


@dataclass(frozen=True)
class Crossing:
    """Where a curve on a grid reaches a target: ``value`` on the grid's axis; ``crossed`` False at a grid end."""

    value: float
    crossed: bool
    note: str


def log_crossing(xs: Sequence[float], ys: Sequence[float], target: float) -> Crossing:
    """The first x at which the curve ``ys(xs)`` reaches ``target``, interpolated linearly in log x.

    Walking up the grid, the first pair of neighbouring points on either side of ``target`` (or on it)
    gives the crossing. A curve that never reaches it gives the grid end whose y is nearest the
    target, with ``crossed`` False and a note that says so. ``xs`` must be positive and strictly
    increasing, ``ys`` finite and as many.
    """
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"a crossing needs as many values as grid points, at least one; got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and (x > 0).all() and (np.diff(x) > 0).all()):
        raise ValueError(f"a crossing needs a positive, strictly increasing grid and finite values; got {x.tolist()}, "
                         f"{y.tolist()}")
    gap = y - target
    for k in range(x.size - 1):
        if gap[k] == 0:
            return Crossing(float(x[k]), True, f"the curve reaches {target:g} at the grid point {x[k]:g}")
        if gap[k] * gap[k + 1] <= 0:
            share = gap[k] / (gap[k] - gap[k + 1])
            value = float(np.exp(np.log(x[k]) + share * (np.log(x[k + 1]) - np.log(x[k]))))
            return Crossing(value, True, f"the curve crosses {target:g} between {x[k]:g} and {x[k + 1]:g}")
    if gap[-1] == 0:
        return Crossing(float(x[-1]), True, f"the curve reaches {target:g} at the grid point {x[-1]:g}")
    end = 0 if abs(gap[0]) < abs(gap[-1]) else x.size - 1
    return Crossing(float(x[end]), False, f"the curve never reaches {target:g} on the grid [{x[0]:g}, {x[-1]:g}]: "
                    f"the grid end nearest to it, {x[end]:g} (value {y[end]:.3g}), is used instead")


def mutation_probabilities(attributions: Tensor, x: Tensor, zero_guard: float) -> Tensor:
    """Step 3: P(x_j) = |A_j/x_j| / Σ_k |A_k/x_k| per input, flattened to ``[N, n]`` (guard: module docstring)."""
    a, v = attributions.flatten(1), x.flatten(1)
    eligible = v.abs() > zero_guard
    ratio = torch.where(eligible, (a / torch.where(eligible, v, 1.0)).abs(), 0.0)
    ratio = torch.where(ratio.sum(1, keepdim=True) > 0, ratio, eligible.to(ratio.dtype))
    return ratio / ratio.sum(1, keepdim=True).clamp_min(torch.finfo(ratio.dtype).tiny)


def mutation_rates(probabilities: Tensor, config: ABCConfig) -> Tensor:
    """Per-feature mutation probability of one neighbour: P as written, or min(1, m·P) when rescaling."""
    if config.mutation == "as_written":
        return probabilities
    return (config.expected_mutations * probabilities).clamp(max=1.0)


@torch.no_grad()
def abc_from_attributions(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    predicted: Tensor,
    config: ABCConfig,
    baseline: float | Tensor = 0.0,
    seed: int = 0,
) -> Tensor:
    """Steps 3–5 for given attributions and predictions: ABC of every input, shape ``[N]``.

    The N·S neighbours are generated and classified in batches of ``config.batch_size``; the
    mutation masks come from one ``torch.Generator`` seeded with ``seed``.
    """
    if attributions.shape != x.shape:
        raise ValueError(f"attributions of shape {tuple(attributions.shape)} do not match inputs {tuple(x.shape)}")
    base = resolve_baseline(baseline, x).expand_as(x).flatten(1)
    rates = mutation_rates(mutation_probabilities(attributions, x, config.zero_guard), config)
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


def abc_score(
    model: nn.Module,
    x: Tensor,
    config: ABCConfig,
    attribution: AttributionConfig,
    baseline: float | Tensor | None = None,
    seed: int = 0,
    attributions: Tensor | None = None,
) -> Tensor:
    """Algorithm 1: one ABC in [0, 1] per input, shape ``[N]``.

    The prediction and the mutated neighbours are classified by ``model`` as it is (set a Neural
    SDE's evaluation noise before calling). Attributions of the predicted class are computed with
    ``config.method`` and ``attribution`` (averaged over noise draws for a stochastic model) unless
    given. The mutation baseline defaults to ``attribution.baseline``, the Integrated Gradients baseline.
    """
    baseline = attribution.baseline if baseline is None else baseline
    resolve_baseline(baseline, x)
    predicted = predict_logits(model, x, config.batch_size, x.device).argmax(1).to(x.device)
    if attributions is None:
        attributions = attribute(model, x, predicted, config.method, attribution, baseline, seed)
    return abc_from_attributions(model, x, attributions, predicted, config, baseline, seed)


def neighbour_mode(config: ABCConfig, mode: EvalMode) -> EvalMode:
    """The mode the neighbours are classified in: ``mode`` itself, or one stochastic pass for ``one_draw``."""
    if config.neighbours == "one_draw" and mode.stochastic:
        return EvalMode(f"{mode.name}, one draw per neighbour", "single")
    return mode


def abc_in_mode(
    target: ExplainedModel, x: Tensor, attributions: Tensor, predicted: Tensor, config: ABCConfig,
    attribution: AttributionConfig,
) -> Tensor:
    """Steps 3–5 for inputs of ``target``'s split with the neighbours classified as ``config.neighbours`` says (CPU)."""
    device, mode = target.device, neighbour_mode(config, target.mode)
    inputs, maps, targets = (t.to(device) for t in (x, attributions, predicted))
    with seeded_rng(target.seed, device), target.control(target.model, mode.noise, mode.ensemble_size):
        return abc_from_attributions(target.model, inputs, maps, targets, config, attribution.baseline,
                                     target.seed).cpu()


def abc_by_correctness(abc: Tensor | np.ndarray, correct: Tensor | np.ndarray) -> pd.DataFrame:
    """Mean ABC and count of correct and of incorrect predictions (rows ``correct`` / ``incorrect``)."""
    table = pd.DataFrame({"abc": np.asarray(abc, dtype=float), "correct": np.asarray(correct, dtype=bool)})
    summary = table.groupby("correct")["abc"].agg(["mean", "count"])
    summary = summary.reindex([True, False]).fillna({"count": 0})
    summary.index = pd.Index(["correct", "incorrect"], name="prediction")
    return summary.astype({"count": int})


def abc_error_auroc(abc: Tensor | np.ndarray, correct: Tensor | np.ndarray) -> float:
    """AUROC of low ABC as a detector of wrong predictions (0.5 = chance); NaN without both outcomes."""
    wrong = ~np.asarray(correct, dtype=bool)
    if wrong.all() or not wrong.any():
        return float("nan")
    return float(roc_auc_score(wrong, -np.asarray(abc, dtype=float)))


def cached_abc(store: ArtifactStore, cfg: ABCConfig, attribution: AttributionConfig, target: ExplainedModel
               ) -> pd.DataFrame:
    """ABC of every input of the target's explained subset, stored as an artifact.

    The prediction is the model's in its mode; the neighbours are classified as ``cfg.neighbours``
    says (:func:`neighbour_mode`); the attributions are those of ``explained_attributions``, shared
    with the stability measure. One row per input: ``example`` (index in ``x``), ``label``,
    ``predicted``, ``correct``, ``abc``. Keyed on :func:`abc_key` and the target's key.
    """

    def build() -> pd.DataFrame:
        subset, predicted, attributions = explained_attributions(store, attribution, target, method=cfg.method)
        abc = abc_in_mode(target, target.x[subset], attributions, predicted, cfg, attribution)
        labels = target.y[subset]
        columns = {"example": subset, "label": labels, "predicted": predicted, "correct": predicted == labels, "abc": abc}
        return pd.DataFrame({name: values.numpy() for name, values in columns.items()})

    return fetch_table(store, ABC_TABLE, target.key(attribution, abc=abc_key(cfg)), build)


def abc_curve(store: ArtifactStore, cfg: ABCConfig, attribution: AttributionConfig, target: ExplainedModel
              ) -> pd.DataFrame:
    """:func:`cached_abc` at every budget of :func:`abc_variants`, with its label ``budget`` and ``m`` (nominal mutations)."""
    n_features = target.x[0].numel()
    return pd.concat([cached_abc(store, variant, attribution, target).assign(budget=label, m=nominal_mutations(variant))
                      for label, variant in abc_variants(cfg, n_features).items()], ignore_index=True)


def abc_seed_summary(table: pd.DataFrame) -> dict[str, float]:
    """One model and seed: accuracy, mean ABC of correct and of incorrect predictions, their counts, and the AUROC."""
    split = abc_by_correctness(table["abc"], table["correct"])
    return {
        "accuracy": float(table["correct"].mean()),
        "abc_correct": float(split.loc["correct", "mean"]),
        "abc_incorrect": float(split.loc["incorrect", "mean"]),
        "n_correct": int(split.loc["correct", "count"]),
        "n_incorrect": int(split.loc["incorrect", "count"]),
        "auroc_wrong": abc_error_auroc(table["abc"], table["correct"]),
    }
