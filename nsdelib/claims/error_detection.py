"""Does a low ABC flag wrong predictions better than the scores a classifier gives for free (chapter 7)?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from ..common import seeded_rng
from ..common.artifacts import ArtifactKind, ArtifactStore
from ..evaluation.attributions import AttributionConfig, attribute_in_mode, attribution_noise
from ..evaluation.input_noise import add_noise, noise_pattern
from ..evaluation.sweeps import SweepTarget
from ..models.inference import EvalMode, predict
from ..models.registry import MODEL_KINDS
from ..report.claims import CONVNEXT
from ..report.outcomes import MEASURE, long_measures
from ..training.trainer import TrainedModel
from .c4_abc import ABCConfig, Crossing, DetectorConfig, abc_in_mode, abc_key, c4_budget, log_crossing, neighbour_mode

#: Correctness of each explained image under input noise; bump when it changes.
NOISY_ACCURACY = ArtifactKind("noisy_accuracy", 3, "table.json")
#: Every detector's score of each explained image; bump when a score changes.
DETECTOR_SCORES = ArtifactKind("detector_scores", 3, "table.json")

MSP, ENTROPY, DISAGREEMENT = "max softmax probability", "predictive entropy", "disagreement of passes"
#: +1 where a higher score means more confidence, −1 where it means less; ABC columns are confidences.
SCORE_DIRECTIONS: dict[str, int] = {MSP: 1, ENTROPY: -1, DISAGREEMENT: -1}
#: Where a per-image outcome of chapter 7's record comes from: each of C4's verdicts (the NSDE's neighbours scored with
#: one noise draw, with its ensemble) and the detectors under noise; and what one group of those outcomes is.
C4_ONE_DRAW, C4_ENSEMBLE, DETECTORS = "C4, NSDE neighbours one draw", "C4, NSDE neighbours ensemble", "detectors"
ABC_OUTCOME_KEYS: tuple[str, ...] = ("source", "model", "seed", MEASURE)
#: The detector noise rule's target accuracy of the plain ConvNeXt, and the errors per model it aims at (``paper``).
DETECTOR_ACCURACY = 0.60
DETECTOR_MIN_ERRORS = 200


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


def auroc_interval(confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, *,
                   groups: Sequence[object] | np.ndarray | None = None, resamples: int = 1000, seed: int = 0,
                   level: float = 0.95) -> AurocInterval:
    """AUROC of low ``confidence`` for wrong predictions, with a percentile bootstrap over ``groups`` (default:
    rows); resamples lacking an outcome are dropped."""
    score, ok = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    wrong = ~ok
    n_wrong, n_right = int(wrong.sum()), int(ok.sum())
    if n_wrong == 0 or n_right == 0:
        return AurocInterval(float("nan"), float("nan"), float("nan"), n_wrong, n_right, 0, level)
    codes = pd.factorize(np.asarray(groups if groups is not None else np.arange(len(score)), dtype=object))[0]
    n_groups = int(codes.max()) + 1
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(resamples, n_groups))
    weights = (np.bincount(drawn, minlength=n_groups)[codes].astype(float) for drawn in draws)
    values = [float(roc_auc_score(wrong, -score, sample_weight=weight)) for weight in weights
              if weight[wrong].sum() > 0 and weight[ok].sum() > 0]
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    auroc = float(roc_auc_score(wrong, -score))
    return AurocInterval(auroc, float(low), float(high), n_wrong, n_right, len(values), level)


def risk_coverage(confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray) -> pd.DataFrame:
    """Per distinct confidence ``threshold`` from the highest down, the share of predictions at or above it
    (``coverage``) and the share of those wrong (``risk``)."""
    score, ok = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    order = np.argsort(-score, kind="stable")
    ranked, errors = score[order], np.cumsum(~ok[order])
    kept = np.arange(1, score.size + 1)
    last = np.r_[ranked[1:] != ranked[:-1], True]
    return pd.DataFrame({"threshold": ranked[last], "coverage": kept[last] / score.size,
                         "risk": errors[last] / kept[last]})


def reliability_bins(score: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, bins: int = 10
                     ) -> pd.DataFrame:
    """Count, mean score and accuracy of the predictions in each of ``bins`` equal-width bins of a score in [0, 1]."""
    values, ok = np.asarray(score, dtype=float), np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    table = pd.DataFrame({"bin": which, "score": values, "correct": ok.astype(float)})
    grouped = table.groupby("bin").agg(count=("score", "size"), mean_score=("score", "mean"),
                                       accuracy=("correct", "mean")).reindex(range(bins))
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": grouped["count"].fillna(0).astype(int).to_numpy(),
                         "mean score": grouped["mean_score"].to_numpy(), "accuracy": grouped["accuracy"].to_numpy()})


def pass_scores(probabilities: Tensor) -> pd.DataFrame:
    """The free scores of K passes' softmax ``[K, N, C]``: the mean softmax's class, probability and entropy, and
    the share of passes that disagree with it (NaN for one pass)."""
    mean = probabilities.mean(0)
    msp, predicted = mean.max(1)
    entropy = -(mean * mean.clamp_min(torch.finfo(mean.dtype).tiny).log()).sum(1)
    disagreement = (probabilities.argmax(2) != predicted).float().mean(0)
    if len(probabilities) == 1:
        disagreement = torch.full_like(disagreement, float("nan"))
    return pd.DataFrame({"predicted": predicted.numpy(), MSP: msp.numpy(), ENTROPY: entropy.numpy(),
                         DISAGREEMENT: disagreement.numpy()})


@torch.no_grad()
def pass_probabilities(target: SweepTarget, x: Tensor, batch_size: int) -> Tensor:
    """Softmax of every pass of the target in its mode, ``[K, N, C]`` (K single passes of an ensemble, else one)."""
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


def noisy_accuracy(store: ArtifactStore, cfg: AttributionConfig, target: SweepTarget, stds: Sequence[float]
                   ) -> pd.DataFrame:
    """Whether the target classifies each explained image correctly under each std of :func:`noisy_copies` (cached)."""
    subset = target.subset(cfg)

    def build() -> pd.DataFrame:
        x, y = target.x[subset], target.y[subset]
        rows = [pd.DataFrame({"std": std, "example": subset.numpy(), "correct": (predict(
            target.model, noisy_copies(x, std, target.seed), target.mode, batch_size=cfg.batch_size, seed=target.seed,
            noise_control=target.noise_control) == y).numpy()}) for std in stds]
        return pd.concat(rows, ignore_index=True)

    return store.fetch_table(NOISY_ACCURACY, target.key(cfg, kind="noisy_accuracy", stds=list(stds)), build)


def cached_detector_scores(store: ArtifactStore, attribution: AttributionConfig, budgets: Mapping[str, ABCConfig],
                           target: SweepTarget, std: float) -> pd.DataFrame:
    """Every detector score of the explained images under noise of std ``std``: the free scores and one ABC column
    per budget (cached)."""
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

    return store.fetch_table(DETECTOR_SCORES, key, build)


def detector_aurocs(scores: pd.DataFrame, abc_columns: Sequence[str], config: DetectorConfig, *, by: str = "model",
                    group: str = "example") -> pd.DataFrame:
    """:func:`auroc_interval` of every score per ``by``, seeds pooled, images (``group``) resampled."""
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
    """:func:`risk_coverage` of every score defined throughout, per ``by``, with ``by`` and ``score``."""
    directions = {**dict.fromkeys(abc_columns, 1), **SCORE_DIRECTIONS}
    return pd.concat([risk_coverage(direction * table[column], table["correct"]).assign(**{by: key, "score": column})
                      for key, table in scores.groupby(by, sort=False) for column, direction in directions.items()
                      if column in table and table[column].notna().all()], ignore_index=True)


def abc_outcomes(one_draw: pd.DataFrame, ensemble: pd.DataFrame, scores: pd.DataFrame, abc_columns: Sequence[str]
                 ) -> pd.DataFrame:
    """Chapter 7's per-image outcomes in one long table, to record beside ``abc`` (keys :data:`ABC_OUTCOME_KEYS`,
    value column ``value``): ABC and correctness at C4's budget as each of C4's verdicts reads them, and every
    detector score under noise with the correctness it detects."""
    sources = {C4_ONE_DRAW: (one_draw, ("abc", "correct")), C4_ENSEMBLE: (ensemble, ("abc", "correct")),
               DETECTORS: (scores, ("correct", *SCORE_DIRECTIONS, *abc_columns))}
    return pd.concat([long_measures(table.assign(source=source), ABC_OUTCOME_KEYS[:-1], measures)
                      for source, (table, measures) in sources.items()], ignore_index=True)


def score_costs(attribution: AttributionConfig, budgets: Mapping[str, ABCConfig], mode: EvalMode) -> pd.DataFrame:
    """Forward and backward passes per input of each score, prediction included (ABC adds its attributions and
    neighbours)."""
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
    """Per ``by``: ABC's AUROC beside the best free score's, "better" or "worse" where the 95 % intervals do not
    overlap, else "no clear difference"."""
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


def detector_noise_level(accuracy: pd.DataFrame) -> Crossing:
    """The detector test's noise std: where ConvNeXt's pooled accuracy falls to ``DETECTOR_ACCURACY``."""
    rows = accuracy[accuracy["model"] == CONVNEXT]
    if rows.empty:
        raise ValueError("the detector noise rule reads the plain ConvNeXt's accuracy, and there are no ConvNeXt rows")
    means = rows.groupby("std")["correct"].mean().sort_index()
    return log_crossing(means.index.to_numpy(), means.to_numpy(dtype=float), DETECTOR_ACCURACY)


class ChapterRuns(Protocol):
    """What :func:`abc_choices` reads (``book.context.Context`` has it)."""

    def train_all(self, progress: bool | None = None) -> Mapping[str, Sequence[TrainedModel]]: ...
    def abc_curve(self, run: TrainedModel) -> pd.DataFrame: ...
    def detector_accuracy(self, run: TrainedModel) -> pd.DataFrame: ...


def abc_choices(ctx: ChapterRuns) -> tuple[Crossing, Crossing]:
    """Chapter 7's two settings fixed by rule before any NSDE result is read: C4's budget and the detector std."""
    runs = ctx.train_all(progress=False)
    curve = pd.concat([ctx.abc_curve(run) for kind in MODEL_KINDS for run in runs[kind]], ignore_index=True)
    accuracy = pd.concat([ctx.detector_accuracy(run) for run in runs[CONVNEXT]], ignore_index=True)
    return c4_budget(curve), detector_noise_level(accuracy)


def thin_risk_coverage(coverage: pd.DataFrame, points: int = 101, by: Sequence[str] = ("model", "score")
                       ) -> pd.DataFrame:
    """At most ``points`` rows of each risk–coverage curve: the first row at or above each evenly spaced coverage."""
    grid = np.linspace(0.0, 1.0, points)
    kept = []
    for _, curve in coverage.groupby(list(by), sort=False):
        curve = curve.sort_values("coverage", kind="stable")
        if len(curve) > points:
            first_above = np.searchsorted(curve["coverage"].to_numpy(), grid)
            curve = curve.iloc[np.unique(np.minimum(first_above, len(curve) - 1))]
        kept.append(curve)
    return pd.concat(kept).reset_index(drop=True)
