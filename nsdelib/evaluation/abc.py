"""Attribution-Based Confidence (ABC), Algorithm 1 of Jha et al. (NeurIPS 2019), batched and seeded.

For a model F, an input x with features x_1..x_n and a sample size S:

1. attributions A_j of every feature (Integrated Gradients by default, ``ABCConfig.method``);
2. the prediction i = F(x), and the attributions are taken for class i;
3. P(x_j) = |A_j / x_j| / Σ_k |A_k / x_k|;
4. S neighbours of x, each mutating feature j to its baseline value with probability P(x_j),
   independently across features and neighbours;
5. ABC = (number of neighbours still classified i) / S.

As written, the probabilities of step 4 sum to one, so a neighbour mutates **one feature on
average** (and none at all with probability ≈ 1/e when P is spread out). That is the default,
``mutation="as_written"``. The named option ``mutation="expected_count"`` rescales the
probabilities to ``min(1, m·P(x_j))`` with ``m = expected_mutations``, so that about ``m`` features
mutate per neighbour; it is a deviation from the algorithm and is reported as such.
``rescaled_fractions`` lists such variants (m as a fraction of the features) that chapter 7 shows
beside the algorithm as written (:func:`abc_variants`).

Guard for x_j = 0: a feature with ``|x_j| ≤ zero_guard`` gets P(x_j) = 0. With the default baseline
0 such a feature already sits at its baseline, so mutating it would change nothing, and dividing by
it is undefined. If no feature has a non-zero ratio (all attributions zero), P is uniform over the
features above the guard; if no feature is above the guard, the neighbours equal x and ABC = 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationInfo, field_validator
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from ..common.artifacts import ArtifactStore
from ..common.config import Section
from ..common.devices import model_device
from ..common.seeding import seeded_rng
from ..models.inference import EvalMode, NoiseControl, default_noise_control, predict_logits
from .attributions import (
    AttributionConfig,
    AttributionMethod,
    attribute,
    explained_attributions,
    explained_subset,
    resolve_baseline,
)
from .sweeps import content_digest, fetch_table, modes_key

Mutation = Literal["as_written", "expected_count"]


class ABCConfig(Section):
    """Parameters of Algorithm 1; the defaults follow the algorithm as written."""

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
    zero_guard: float = Field(default=1e-6, gt=0.0, lt=1.0, description="features with |x_j| ≤ this get P(x_j) = 0")
    rescaled_fractions: tuple[float, ...] = Field(
        default=(),
        description="rescaled variants shown beside the algorithm: m = fraction · features (abc_variants)",
    )
    batch_size: int = Field(ge=1, le=65_536, description="neighbours per forward pass")

    @field_validator("expected_mutations")
    @classmethod
    def _count_only_when_rescaling(cls, value: float | None, info: ValidationInfo) -> float | None:
        rescaling = info.data.get("mutation") == "expected_count"
        if rescaling and (value is None or value <= 0):
            raise ValueError("mutation='expected_count' needs a positive expected_mutations")
        if not rescaling and value is not None:
            raise ValueError("expected_mutations applies only with mutation='expected_count'; leave it unset")
        return value

    @field_validator("rescaled_fractions")
    @classmethod
    def _increasing_fractions(cls, fractions: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < f <= 1.0 for f in fractions) or list(fractions) != sorted(set(fractions)):
            raise ValueError("rescaled fractions must be strictly increasing values in (0, 1]")
        return fractions


def abc_variants(config: ABCConfig, n_features: int) -> dict[str, ABCConfig]:
    """``config`` itself, then one ``expected_count`` variant per rescaled fraction, by label.

    A variant mutates ``m = fraction · n_features`` features per neighbour on average instead of the
    one feature of the algorithm as written; it is a deviation, labelled as such.
    """
    label = "as written" if config.mutation == "as_written" else f"m = {config.expected_mutations:g}"
    variants = {label: config}
    for fraction in config.rescaled_fractions:
        m = fraction * n_features
        variants[f"m = {m:g} ({fraction:.0%} of features)"] = config.replace(
            mutation="expected_count", expected_mutations=m, rescaled_fractions=()
        )
    return variants


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


def cached_abc(
    store: ArtifactStore,
    cfg: ABCConfig,
    attribution: AttributionConfig,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    mode: EvalMode,
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """ABC of every input of the explained subset of ``(x, y)`` (``explained_subset``), stored as an artifact.

    The prediction and the neighbours are classified in ``mode`` (for the NSDE: one stochastic
    pass, or an ensemble), so a stochastic model's ABC also counts neighbours whose class its own
    noise changed; the attributions of a stochastic mode are averaged over noise draws and shared
    with the stability measure. ``cfg`` lets a chapter compare variants such as ``mutation="expected_count"``. One row per input: ``example`` (index
    in ``x``), ``label``, ``predicted``, ``correct``, ``abc``. Keyed on both configs, the seed, the
    mode and the content of the model and the subset.
    """
    control = noise_control or default_noise_control()
    subset = explained_subset(attribution, y)
    key = {
        "abc": cfg.model_dump(mode="json"),
        "attribution": attribution.model_dump(mode="json"),
        "seed": seed,
        **modes_key((mode,), noise_control),
        "content": content_digest(model, x[subset], y[subset]),
    }

    def build() -> pd.DataFrame:
        _, predicted, attributions = explained_attributions(
            store, attribution, model, x, y, mode, seed=seed, method=cfg.method, noise_control=noise_control
        )
        device = model_device(model)
        inputs, maps, targets = (t.to(device) for t in (x[subset], attributions, predicted))
        with seeded_rng(seed, device), control(model, mode.noise, mode.ensemble_size):
            abc = abc_from_attributions(model, inputs, maps, targets, cfg, attribution.baseline, seed).cpu()
        labels = y[subset]
        columns = {"example": subset, "label": labels, "predicted": predicted, "correct": predicted == labels, "abc": abc}
        return pd.DataFrame({name: values.numpy() for name, values in columns.items()})

    return fetch_table(store, "abc", key, build)


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
