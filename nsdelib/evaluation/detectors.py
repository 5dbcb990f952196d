"""Detectors of wrong predictions: ABC against the scores a classifier gives for free (MSP, entropy,
an ensemble's disagreement), by AUROC with bootstrap intervals, risk–coverage and reliability. Chapter 7.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from ..common.artifacts import ArtifactKind, ArtifactStore
from ..common.seeding import seeded_rng
from ..models.inference import EvalMode, predict
from .abc import ABCConfig, DetectorConfig, abc_in_mode, abc_key, neighbour_mode
from .attributions import (
    AttributionConfig,
    ExplainedModel,
    attribute_in_mode,
    attribution_noise,
)
from .input_noise import add_noise, noise_pattern
from .sweeps import fetch_table

#: Correctness of each explained image under input noise; bump when it changes.
NOISY_ACCURACY = ArtifactKind("noisy_accuracy", 2, "table.json")
#: Every detector's score of each explained image; bump when a score changes.
DETECTOR_SCORES = ArtifactKind("detector_scores", 2, "table.json")

MSP, ENTROPY, DISAGREEMENT = "max softmax probability", "predictive entropy", "disagreement of passes"
#: +1 where a higher score means more confidence, −1 where it means less; ABC columns are confidences.
SCORE_DIRECTIONS: dict[str, int] = {MSP: 1, ENTROPY: -1, DISAGREEMENT: -1}


@dataclass(frozen=True)
class AurocInterval:
    """AUROC of a detector of wrong predictions with a percentile bootstrap interval (NaN without both outcomes)."""

    auroc: float
    low: float
    high: float
    n_wrong: int
    n_right: int
    resamples: int
    confidence: float = 0.95


def _auroc(wrong: np.ndarray, confidence: np.ndarray, weight: np.ndarray | None = None) -> float:
    """AUROC of ``−confidence`` for ``wrong`` (0.5 chance, 1 when every wrong prediction is the least confident)."""
    return float(roc_auc_score(wrong, -confidence, sample_weight=weight))


def auroc_interval(
    confidence: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    *,
    groups: Sequence[object] | np.ndarray | None = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> AurocInterval:
    """The AUROC of low ``confidence`` as a detector of wrong predictions, with a bootstrap interval.

    Each resample draws the ``groups`` (by default every row is its own group; pass the image index
    to keep an image's rows from several seeds together) with replacement and weights each row by
    how often its group was drawn; resamples that lack one of the outcomes are dropped. The interval
    is the percentile interval at ``level``. Without a wrong or without a right prediction the AUROC
    is undefined: NaN.
    """
    score, ok = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    if score.shape != ok.shape or score.ndim != 1:
        raise ValueError(f"confidence and correct must be 1-d and as long as each other; got {score.shape}, {ok.shape}")
    if not np.isfinite(score).all():
        raise ValueError(f"{int((~np.isfinite(score)).sum())} non-finite confidence values")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"the bootstrap needs at least one resample and a level in (0, 1); got {resamples}, {level}")
    wrong = ~ok
    n_wrong, n_right = int(wrong.sum()), int(ok.sum())
    if n_wrong == 0 or n_right == 0:
        return AurocInterval(float("nan"), float("nan"), float("nan"), n_wrong, n_right, 0, level)
    codes = pd.factorize(np.asarray(groups if groups is not None else np.arange(len(score)), dtype=object))[0]
    if len(codes) != len(score):
        raise ValueError(f"{len(codes)} groups for {len(score)} scores")
    n_groups = int(codes.max()) + 1
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(resamples, n_groups))
    values = []
    for drawn in draws:
        weight = np.bincount(drawn, minlength=n_groups)[codes].astype(float)
        if weight[wrong].sum() > 0 and weight[ok].sum() > 0:
            values.append(_auroc(wrong, score, weight))
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return AurocInterval(_auroc(wrong, score), float(low), float(high), n_wrong, n_right, len(values), level)


def risk_coverage(confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray) -> pd.DataFrame:
    """The risk–coverage curve: keeping the predictions with confidence ≥ t, the share kept and their error rate.

    One row per distinct confidence t, from the highest down: ``threshold``, ``coverage`` (share of
    predictions kept) and ``risk`` (share of the kept ones that are wrong). Ties are kept or dropped
    together, so the curve does not depend on the order of equal scores.
    """
    score, ok = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    if score.shape != ok.shape or score.ndim != 1 or score.size == 0:
        raise ValueError(f"confidence and correct must be 1-d, non-empty and as long as each other; got {score.shape}, "
                         f"{ok.shape}")
    order = np.argsort(-score, kind="stable")
    ranked, errors = score[order], np.cumsum(~ok[order])
    kept = np.arange(1, score.size + 1)
    last = np.r_[ranked[1:] != ranked[:-1], True]
    return pd.DataFrame({"threshold": ranked[last], "coverage": kept[last] / score.size,
                         "risk": errors[last] / kept[last]})


def reliability_bins(score: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, bins: int = 10
                     ) -> pd.DataFrame:
    """Accuracy of the predictions in each of ``bins`` equal-width bins of a score in [0, 1].

    One row per bin: ``low``, ``high``, ``count``, ``mean score`` and ``accuracy`` (NaN for an empty bin).
    """
    values, ok = np.asarray(score, dtype=float), np.asarray(correct, dtype=bool)
    if values.shape != ok.shape or values.ndim != 1:
        raise ValueError(f"score and correct must be 1-d and as long as each other; got {values.shape}, {ok.shape}")
    if ((values < 0) | (values > 1) | ~np.isfinite(values)).any():
        raise ValueError("reliability bins need scores in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    table = pd.DataFrame({"bin": which, "score": values, "correct": ok.astype(float)})
    grouped = table.groupby("bin").agg(count=("score", "size"), mean_score=("score", "mean"),
                                       accuracy=("correct", "mean")).reindex(range(bins))
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": grouped["count"].fillna(0).astype(int).to_numpy(),
                         "mean score": grouped["mean_score"].to_numpy(), "accuracy": grouped["accuracy"].to_numpy()})


def pass_scores(probabilities: Tensor) -> pd.DataFrame:
    """The free scores from the softmax of K passes ``[K, N, C]`` (K = 1 for a deterministic model).

    The prediction is the class of the mean softmax (the ensemble's); ``msp`` its probability,
    ``entropy`` the entropy of the mean softmax (nats), ``disagreement`` the share of passes whose
    class differs from the prediction (NaN for one pass).
    """
    if probabilities.dim() != 3:
        raise ValueError(f"pass probabilities must be [K, N, C], got shape {tuple(probabilities.shape)}")
    mean = probabilities.mean(0)
    msp, predicted = mean.max(1)
    entropy = -(mean * mean.clamp_min(torch.finfo(mean.dtype).tiny).log()).sum(1)
    disagreement = (probabilities.argmax(2) != predicted).float().mean(0)
    if len(probabilities) == 1:
        disagreement = torch.full_like(disagreement, float("nan"))
    return pd.DataFrame({"predicted": predicted.numpy(), MSP: msp.numpy(), ENTROPY: entropy.numpy(),
                         DISAGREEMENT: disagreement.numpy()})


@torch.no_grad()
def pass_probabilities(target: ExplainedModel, x: Tensor, batch_size: int) -> Tensor:
    """Softmax of every pass of the target in its mode, ``[K, N, C]`` on the CPU: K single passes for a
    stochastic ensemble (their mean is the ensemble's prediction), else the one prediction."""
    mode, device = target.mode, target.device
    passes = mode.ensemble_size if mode.noise == "ensemble" else 1
    noise = "single" if mode.stochastic else "off"
    with seeded_rng(target.seed, device), target.control(target.model, noise, None):
        return torch.stack([torch.cat([target.model(batch.to(device)).softmax(1).cpu() for batch in x.split(batch_size)])
                            for _ in range(passes)])


def noisy_copies(x: Tensor, std: float, seed: int) -> Tensor:
    """``x`` with Gaussian noise of std ``std`` (clipped to [0, 1]), one fixed pattern per ``seed``."""
    pattern = noise_pattern(x.shape, "gaussian", torch.Generator().manual_seed(seed))
    return add_noise(x, pattern, std)


def noisy_accuracy(store: ArtifactStore, cfg: AttributionConfig, target: ExplainedModel, stds: Sequence[float]
                   ) -> pd.DataFrame:
    """Whether the target classifies each image of its explained subset correctly under every Gaussian noise std.

    One row per std and image: ``std``, ``example``, ``correct``; the noise pattern is that of
    :func:`noisy_copies` with the target's seed, so it matches :func:`cached_detector_scores`. Cached.
    """
    subset = target.subset(cfg)

    def build() -> pd.DataFrame:
        x, y = target.x[subset], target.y[subset]
        rows = [pd.DataFrame({"std": std, "example": subset.numpy(), "correct": (predict(
            target.model, noisy_copies(x, std, target.seed), target.mode, batch_size=cfg.batch_size, seed=target.seed,
            noise_control=target.noise_control) == y).numpy()}) for std in stds]
        return pd.concat(rows, ignore_index=True)

    return fetch_table(store, NOISY_ACCURACY, target.key(cfg, kind="noisy_accuracy", stds=list(stds)), build)


def cached_detector_scores(
    store: ArtifactStore, attribution: AttributionConfig, budgets: Mapping[str, ABCConfig], target: ExplainedModel,
    std: float,
) -> pd.DataFrame:
    """Every detector score of the target on its explained subset under Gaussian input noise of std ``std``.

    One row per image: ``example``, ``label``, ``predicted`` (the mode's prediction on the noisy
    input), ``correct``, the free scores of :func:`pass_scores` and one ABC column per entry of
    ``budgets`` (label → config), computed from attributions of the noisy input for its predicted
    class. Stored as an artifact keyed on the configs, ``std`` and the target.
    """
    subset = target.subset(attribution)
    key = target.key(attribution, kind="detectors", std=float(std),
                     budgets={label: abc_key(cfg) for label, cfg in budgets.items()})

    def build() -> pd.DataFrame:
        noisy, labels = noisy_copies(target.x[subset], std, target.seed), target.y[subset]
        scores = pass_scores(pass_probabilities(target, noisy, attribution.batch_size))
        predicted = torch.tensor(scores["predicted"].to_numpy(), dtype=torch.long)
        maps = {method: attribute_in_mode(target.model, noisy, predicted, method, attribution, target.mode,
                                          seed=target.seed, noise_control=target.noise_control)
                for method in {cfg.method for cfg in budgets.values()}}
        for label, cfg in budgets.items():
            scores[label] = abc_in_mode(target, noisy, maps[cfg.method], predicted, cfg, attribution).numpy()
        scores.insert(0, "example", subset.numpy())
        scores.insert(1, "label", labels.numpy())
        scores.insert(3, "correct", (predicted == labels).numpy())
        return scores

    return fetch_table(store, DETECTOR_SCORES, key, build)


def detector_aurocs(scores: pd.DataFrame, abc_columns: Sequence[str], config: DetectorConfig, *, by: str = "model",
                    group: str = "example") -> pd.DataFrame:
    """:func:`auroc_interval` of every score per ``by``: the ABC columns (confidences) and the free scores.

    The free scores are oriented by :data:`SCORE_DIRECTIONS`. Rows pool every seed; the bootstrap
    resamples the images (``group``). A score that is NaN for a group (the disagreement of a
    deterministic model) is left out. One row per group and score: ``score``, ``AUROC``, ``low``,
    ``high``, ``wrong``, ``right``.
    """
    directions = {**dict.fromkeys(abc_columns, 1), **SCORE_DIRECTIONS}
    rows = []
    for key, table in scores.groupby(by, sort=False):
        for column, direction in directions.items():
            if column not in table or table[column].isna().all():
                continue
            interval = auroc_interval(direction * table[column].to_numpy(), table["correct"].to_numpy(dtype=bool),
                                      groups=table[group].to_numpy(), resamples=config.bootstrap_resamples,
                                      seed=config.bootstrap_seed)
            rows.append({by: key, "score": column, "AUROC": interval.auroc, "low": interval.low, "high": interval.high,
                         "wrong": interval.n_wrong, "right": interval.n_right})
    return pd.DataFrame(rows)


def risk_coverage_curves(scores: pd.DataFrame, abc_columns: Sequence[str], *, by: str = "model") -> pd.DataFrame:
    """:func:`risk_coverage` of every score per ``by`` (oriented as in :func:`detector_aurocs`), with ``by`` and ``score``."""
    directions = {**dict.fromkeys(abc_columns, 1), **SCORE_DIRECTIONS}
    return pd.concat([risk_coverage(direction * table[column], table["correct"]).assign(**{by: key, "score": column})
                      for key, table in scores.groupby(by, sort=False)
                      for column, direction in directions.items()
                      if column in table and table[column].notna().all()], ignore_index=True)


def score_costs(attribution: AttributionConfig, budgets: Mapping[str, ABCConfig], mode: EvalMode) -> pd.DataFrame:
    """Forward and backward passes per input that each score costs, prediction included, from the configs.

    The prediction costs K forward passes for a K-pass ensemble, else one; the free scores cost
    nothing more. ABC adds its attributions (Integrated Gradients: ``ig_steps`` forward and backward
    passes per map; saliency one; SmoothGrad ``smoothgrad_samples``; times the noise draws averaged)
    and S neighbours, each classified as ``neighbours`` says. The disagreement of passes exists only
    for an ensemble of K > 1 passes.
    """
    prediction = mode.ensemble_size if mode.noise == "ensemble" else 1
    rows = {MSP: (prediction, 0), ENTROPY: (prediction, 0)}
    if prediction > 1:
        rows[DISAGREEMENT] = (prediction, 0)
    draws = attribution.noise_draws if attribution_noise(mode) != "off" else 1
    for label, cfg in budgets.items():
        steps = {"integrated_gradients": attribution.ig_steps, "saliency": 1,
                 "smoothgrad": attribution.smoothgrad_samples}[cfg.method] * draws
        scoring = neighbour_mode(cfg, mode)
        per_neighbour = scoring.ensemble_size if scoring.noise == "ensemble" else 1
        rows[label] = (prediction + steps + cfg.samples * per_neighbour, steps)
    return pd.DataFrame([{"score": score, "forward passes": f, "backward passes": b} for score, (f, b) in rows.items()])


def abc_against_free_scores(aurocs: pd.DataFrame, abc_score: str, *, by: str = "model") -> pd.DataFrame:
    """Per ``by``: ABC's AUROC (``abc_score``) beside the best free score's, and which detects errors better.

    ``aurocs`` is :func:`detector_aurocs`'s table. ABC is "better" or "worse" when its 95 % interval
    lies wholly above or below the best free score's, and "no clear difference" when they overlap
    (a conservative reading: overlapping intervals can still hide a difference a paired test finds).
    """
    rows = []
    for key, table in aurocs.groupby(by, sort=False):
        abc = table[table["score"] == abc_score]
        free = table[table["score"].isin(list(SCORE_DIRECTIONS))]
        if abc.empty or free.empty:
            raise ValueError(f"{by} {key!r} needs the AUROC of {abc_score!r} and of at least one free score")
        abc, best = abc.iloc[0], free.loc[free["AUROC"].idxmax()]
        reading = ("better" if abc["low"] > best["high"] else "worse" if abc["high"] < best["low"]
                   else "no clear difference")
        rows.append({by: key, "ABC": abc["AUROC"], "ABC low": abc["low"], "ABC high": abc["high"],
                     "best free score": best["score"], "free": best["AUROC"], "free low": best["low"],
                     "free high": best["high"], "ABC is": reading, "wrong predictions": abc["wrong"]})
    return pd.DataFrame(rows)
