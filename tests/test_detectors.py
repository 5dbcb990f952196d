"""Detectors of wrong predictions: AUROC and its bootstrap interval, risk–coverage, reliability, the free scores,
the cost of each score, and the cached scores of a toy model under input noise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

from nsdelib.claims.error_detection import (
    DISAGREEMENT,
    ENTROPY,
    MSP,
    auroc_interval,
    pass_scores,
    reliability_bins,
    risk_coverage,
)


def test_a_perfectly_separating_score_has_auroc_one_and_a_constant_one_half() -> None:
    correct = np.array([True] * 30 + [False] * 10)
    confidence = np.where(correct, 0.9, 0.1) + np.linspace(0, 0.05, 40)
    perfect = auroc_interval(confidence, correct, resamples=200)
    assert (perfect.auroc, perfect.low, perfect.high) == pytest.approx((1.0, 1.0, 1.0))
    assert (perfect.n_wrong, perfect.n_right) == (10, 30)
    constant = auroc_interval(np.full(40, 0.7), correct, resamples=200)
    assert (constant.auroc, constant.low, constant.high) == pytest.approx((0.5, 0.5, 0.5))
    inverted = auroc_interval(-confidence, correct, resamples=200)
    assert inverted.auroc == 0.0


def test_the_bootstrap_interval_covers_a_known_auroc() -> None:
    # Confidence of right predictions ~ N(d, 1), of wrong ones ~ N(0, 1): the AUROC is Φ(d / √2).
    rng = np.random.default_rng(3)
    d, n_right, n_wrong = 1.0, 300, 200
    confidence = np.r_[rng.normal(d, 1, n_right), rng.normal(0, 1, n_wrong)]
    correct = np.r_[np.ones(n_right, bool), np.zeros(n_wrong, bool)]
    truth = norm.cdf(d / math.sqrt(2))
    interval = auroc_interval(confidence, correct, resamples=1000, seed=1)
    assert interval.low < truth < interval.high
    assert 0.05 < interval.high - interval.low < 0.15  # about 4 standard errors of an AUROC on 500 cases
    assert interval.resamples == 1000
    again = auroc_interval(confidence, correct, resamples=1000, seed=1)
    assert (again.low, again.high) == (interval.low, interval.high)


def test_resampling_whole_images_widens_the_interval_of_repeated_rows() -> None:
    # Each image appears five times (five seeds) with the same score: resampling rows treats them as independent
    # and is too narrow; resampling images keeps them together.
    rng = np.random.default_rng(4)
    confidence, correct = rng.normal(0, 1, 60), rng.random(60) < 0.5
    confidence[correct] += 1.0
    repeated = np.tile(confidence, 5), np.tile(correct, 5)
    rows = auroc_interval(*repeated, resamples=500)
    images = auroc_interval(*repeated, groups=np.tile(np.arange(60), 5), resamples=500)
    assert rows.auroc == images.auroc
    assert (images.high - images.low) > 1.5 * (rows.high - rows.low)


def test_auroc_is_undefined_without_both_outcomes() -> None:
    interval = auroc_interval([0.1, 0.2, 0.3], [True, True, True])
    assert math.isnan(interval.auroc) and (interval.n_wrong, interval.n_right) == (0, 3)


def test_risk_coverage_of_a_toy_and_its_ties() -> None:
    curve = risk_coverage([0.6, 0.9, 0.7, 0.8], [True, True, False, True])
    assert curve["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve["risk"].tolist() == pytest.approx([0.0, 0.0, 1 / 3, 1 / 4])
    assert curve["threshold"].tolist() == [0.9, 0.8, 0.7, 0.6]
    tied = risk_coverage([0.9, 0.5, 0.9], [True, True, False])  # the two 0.9s are kept or dropped together
    assert tied["coverage"].tolist() == pytest.approx([2 / 3, 1.0])
    assert tied["risk"].tolist() == pytest.approx([1 / 2, 1 / 3])


def test_reliability_bins_count_and_score_each_bin() -> None:
    bins = reliability_bins([0.05, 0.15, 0.95, 1.0, 0.92], [False, True, True, True, False], bins=10)
    assert bins["count"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert bins.loc[9, "accuracy"] == pytest.approx(2 / 3) and bins.loc[0, "accuracy"] == 0.0
    assert math.isnan(bins.loc[5, "accuracy"]) and bins.loc[9, "high"] == 1.0


def test_free_scores_of_an_ensemble_and_of_one_pass() -> None:
    passes = torch.tensor([[[0.7, 0.3], [0.4, 0.6]],
                           [[0.9, 0.1], [0.8, 0.2]]])  # two passes, two inputs
    scores = pass_scores(passes)
    assert scores["predicted"].tolist() == [0, 0]  # input 1: mean (0.6, 0.4), though one pass says class 1
    assert scores[MSP].tolist() == pytest.approx([0.8, 0.6])
    assert scores[ENTROPY].tolist() == pytest.approx([-(0.8 * math.log(0.8) + 0.2 * math.log(0.2)),
                                                       -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))], rel=1e-5)
    assert scores[DISAGREEMENT].tolist() == [0.0, 0.5]
    assert pass_scores(passes[:1])[DISAGREEMENT].isna().all()


def test_the_cost_of_each_score_follows_from_the_configs() -> None:
    from nsdelib.book.profiles import get_profile
    from nsdelib.claims.c4_abc import at_budget
    from nsdelib.claims.error_detection import score_costs
    from nsdelib.models.inference import EvalMode

    profile = get_profile("ci")
    attribution, abc = profile.attribution.replace(ig_steps=5, noise_draws=3), profile.abc.replace(samples=7)
    budgets = {"ABC": abc, "ABC, ensemble-scored": at_budget(abc, 10).replace(neighbours="mode")}
    nsde = score_costs(attribution, budgets, EvalMode("NSDE", "ensemble", 4)).set_index("score")
    assert nsde.loc[MSP].tolist() == [4, 0] and nsde.loc[DISAGREEMENT].tolist() == [4, 0]
    assert nsde.loc["ABC"].tolist() == [4 + 5 * 3 + 7 * 1, 5 * 3]  # prediction, IG per noise draw, one pass per neighbour
    assert nsde.loc["ABC, ensemble-scored"].tolist() == [4 + 5 * 3 + 7 * 4, 5 * 3]
    convnext = score_costs(attribution, {"ABC": abc}, EvalMode("ConvNeXt", "off")).set_index("score")
    assert DISAGREEMENT not in convnext.index
    assert convnext.loc["ABC"].tolist() == [1 + 5 + 7, 5]


def test_cached_detector_scores_of_a_toy_under_input_noise(tmp_path, monkeypatch) -> None:
    from robustness_toys import toy_data, toy_noise_control, trained_toy

    from nsdelib.book.profiles import get_profile
    from nsdelib.claims import error_detection as detectors
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.evaluation.sweeps import SweepTarget
    from nsdelib.models.inference import EvalMode

    profile, store = get_profile("ci"), ArtifactStore(tmp_path)
    attribution, abc = profile.attribution, profile.abc
    model, (x, y) = trained_toy(sigma=0.3, steps=60), toy_data(30, seed=9)
    mode = EvalMode("NSDE, ensemble", "ensemble", 3)
    target = SweepTarget(model, x, y, (mode,), seed=2, noise_control=toy_noise_control)
    budgets = {"ABC as written": abc, "ABC, m = 8": abc.replace(mutation="expected_count", expected_mutations=8.0)}
    scores = detectors.cached_detector_scores(store, attribution, budgets, target, std=0.4)
    assert list(scores.columns) == ["example", "label", "predicted", "correct", MSP, ENTROPY, DISAGREEMENT,
                                    "ABC as written", "ABC, m = 8"]
    assert len(scores) == attribution.subset_size
    subset = target.subset(attribution)
    assert scores["example"].tolist() == subset.tolist() and scores["label"].tolist() == y[subset].tolist()
    assert scores[["ABC as written", "ABC, m = 8", MSP, DISAGREEMENT]].apply(lambda c: c.between(0, 1)).all().all()
    assert scores["ABC, m = 8"].mean() <= scores["ABC as written"].mean()
    clean = detectors.noisy_accuracy(store, attribution, target, (1e-6, 0.4))
    assert clean.columns.tolist() == ["std", "example", "correct"] and clean.index.tolist() == list(range(len(clean)))
    assert clean.groupby("std")["correct"].mean()[0.4] == pytest.approx(scores["correct"].mean(), abs=0.35)
    monkeypatch.setattr(detectors, "abc_in_mode", lambda *a, **k: pytest.fail("recomputed"))
    monkeypatch.setattr(detectors, "predict", lambda *a, **k: pytest.fail("recomputed"))
    assert detectors.cached_detector_scores(store, attribution, budgets, target, std=0.4).equals(scores)
    assert detectors.noisy_accuracy(store, attribution, target, (1e-6, 0.4)).equals(clean)
    for other in ({"std": 0.2}, {"budgets": {"ABC as written": abc}}):  # another noise or budget grid: computed anew
        with pytest.raises(pytest.fail.Exception, match="recomputed"):
            detectors.cached_detector_scores(store, attribution, other.get("budgets", budgets), target,
                                             std=other.get("std", 0.4))
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        detectors.noisy_accuracy(store, attribution, target, (1e-6, 0.2))


def test_detector_tables_orient_every_score_and_skip_undefined_ones() -> None:
    import pandas as pd

    from nsdelib.claims.c4_abc import DetectorConfig
    from nsdelib.claims.error_detection import detector_aurocs, risk_coverage_curves

    correct = np.array([True, True, True, False, False, False])
    scores = pd.concat([pd.DataFrame({
        "model": model, "example": range(6), "correct": correct,
        "ABC": np.where(correct, 0.9, 0.2), MSP: np.where(correct, 0.4, 0.8),  # MSP backwards: AUROC 0
        ENTROPY: np.where(correct, 0.1, 1.0), DISAGREEMENT: np.nan if model == "a" else np.where(correct, 0.0, 0.5),
    }) for model in ("a", "b")], ignore_index=True)
    table = detector_aurocs(scores, ["ABC"], DetectorConfig.build(noise_stds=(0.1,), bootstrap_resamples=100))
    aurocs = table.set_index(["model", "score"])["AUROC"]
    assert aurocs[("a", "ABC")] == 1.0 and aurocs[("a", MSP)] == 0.0 and aurocs[("a", ENTROPY)] == 1.0
    assert ("a", DISAGREEMENT) not in aurocs.index and aurocs[("b", DISAGREEMENT)] == 1.0
    assert table.set_index(["model", "score"]).loc[("b", "ABC"), ["wrong", "right"]].tolist() == [3, 3]
    curves = risk_coverage_curves(scores, ["ABC"])
    abc = curves[(curves["model"] == "a") & (curves["score"] == "ABC")]
    assert abc["risk"].tolist() == pytest.approx([0.0, 0.5])  # the three right ones first, then everything
    assert abc["threshold"].tolist() == [0.9, 0.2]  # the ABC values themselves, not rescaled
    assert curves.index.equals(pd.RangeIndex(len(curves)))  # one row label per row, for plotting
    assert set(curves.loc[curves["model"] == "a", "score"]) == {"ABC", MSP, ENTROPY}


def test_abc_is_compared_with_the_best_free_score_by_their_intervals() -> None:
    from nsdelib.claims.error_detection import MSP, SCORE_DIRECTIONS, abc_against_free_scores

    other = next(score for score in SCORE_DIRECTIONS if score != MSP)
    rows = [("a", "ABC", 0.90, 0.85, 0.95), ("a", MSP, 0.70, 0.65, 0.75), ("a", other, 0.75, 0.70, 0.80),
            ("b", "ABC", 0.60, 0.55, 0.65), ("b", MSP, 0.80, 0.75, 0.85),
            ("c", "ABC", 0.70, 0.60, 0.80), ("c", MSP, 0.72, 0.66, 0.78),
            ("d", "ABC", 0.80, 0.75, 0.85), ("d", MSP, 0.70, 0.65, 0.75),  # intervals that touch overlap
            ("e", "ABC", 0.60, 0.55, 0.65), ("e", MSP, 0.70, 0.65, 0.75)]
    aurocs = pd.DataFrame(rows, columns=["model", "score", "AUROC", "low", "high"]).assign(wrong=200, right=800)
    table = abc_against_free_scores(aurocs, "ABC").set_index("model")
    assert list(table["ABC is"]) == ["better", "worse"] + ["no clear difference"] * 3
    assert table.loc["a", "best free score"] == other and table.loc["a", "free"] == 0.75
    with pytest.raises(ValueError, match="model 'a' needs the AUROC of 'ABC at 5 %'"):
        abc_against_free_scores(aurocs, "ABC at 5 %")


def _bootstrap_by_repeating_rows(confidence: np.ndarray, correct: np.ndarray, resamples: int, seed: int,
                                 level: float) -> tuple[float, float, int]:
    """The percentile bootstrap of the AUROC computed independently: each resample's rows repeated, not weighted."""
    from sklearn.metrics import roc_auc_score

    draws = np.random.default_rng(seed).integers(0, len(confidence), size=(resamples, len(confidence)))
    values = [roc_auc_score(~correct[rows], -confidence[rows]) for rows in draws
              if (~correct[rows]).any() and correct[rows].any()]
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high), len(values)


@pytest.mark.parametrize("level", [0.95, 0.5])
@pytest.mark.parametrize("rare", [False, True])
def test_the_bootstrap_interval_equals_an_independent_resampling_of_the_rows(level: float, rare: bool) -> None:
    generator = np.random.default_rng(3)
    correct = np.array([not rare] * 9 + [rare] * 2)  # two of one outcome: many resamples hold one of them, some none
    confidence = np.round(generator.normal(size=11) + correct, 2)
    low, high, kept = _bootstrap_by_repeating_rows(confidence, correct, 1000, 0, level)
    assert kept < 1000  # some resamples lacked the rare outcome and were dropped
    interval = auroc_interval(confidence, correct.astype(int).tolist(), level=level)  # defaults: 1000 resamples, seed 0
    assert (interval.low, interval.high, interval.resamples) == (pytest.approx(low), pytest.approx(high), kept)
    assert interval.confidence == level


@pytest.mark.parametrize("level", [0.95, 0.5])
def test_the_bootstrap_quantiles_of_a_larger_sample_match_an_independent_resampling(level: float) -> None:
    generator = np.random.default_rng(5)
    correct = generator.random(60) < 0.7  # enough rows that neighbouring quantiles differ
    confidence = generator.normal(size=60) + correct
    low, high, kept = _bootstrap_by_repeating_rows(confidence, correct, 400, 2, level)
    interval = auroc_interval(confidence, correct, resamples=400, seed=2, level=level)
    assert (interval.low, interval.high, interval.resamples) == (pytest.approx(low), pytest.approx(high), kept)


def test_undefined_auroc_and_the_bootstrap_settings_it_accepts() -> None:
    undefined = auroc_interval([0.2, 0.7], [1, 1], level=0.9)
    assert all(math.isnan(v) for v in (undefined.auroc, undefined.low, undefined.high))
    assert (undefined.n_wrong, undefined.n_right, undefined.resamples, undefined.confidence) == (0, 2, 0, 0.9)
    assert auroc_interval(np.linspace(0, 1, 10), [False] * 5 + [True] * 5, resamples=1).resamples == 1


def test_reliability_bins_equal_an_independent_histogram_edges_and_zero_included() -> None:
    score = np.array([0.0, 0.05, 0.1, 0.35, 0.5, 0.5, 0.95, 1.0])
    correct = np.array([0, 1, 1, 0, 1, 1, 1, 1])
    table = reliability_bins(score, correct.tolist())
    counts, edges = np.histogram(score, bins=10, range=(0.0, 1.0))  # numpy's bins: [a, b), the last [a, b]
    assert list(table.columns) == ["low", "high", "count", "mean score", "accuracy"]
    assert table["count"].dtype.kind == "i" and table["count"].tolist() == counts.tolist()
    assert table["low"].tolist() == pytest.approx(edges[:-1]) and table["high"].tolist() == pytest.approx(edges[1:])
    which = np.minimum((score * 10).astype(int), 9)
    for b in range(10):
        in_bin = which == b
        expected = (correct[in_bin].mean(), score[in_bin].mean()) if in_bin.any() else (np.nan, np.nan)
        assert table.loc[b, ["accuracy", "mean score"]].tolist() == pytest.approx(expected, nan_ok=True)


def test_detector_tables_name_their_columns() -> None:
    from nsdelib.claims.c4_abc import DetectorConfig
    from nsdelib.claims.error_detection import abc_against_free_scores, detector_aurocs

    correct = np.array([True, True, False, False, True, False])
    scores = pd.DataFrame({"model": "a", "example": range(6), "correct": correct, "ABC": np.linspace(0, 1, 6),
                           MSP: np.linspace(1, 0, 6), ENTROPY: np.linspace(0, 1, 6)})
    aurocs = detector_aurocs(scores, ["ABC"], DetectorConfig.build(noise_stds=(0.1,), bootstrap_resamples=100))
    assert list(aurocs.columns) == ["model", "score", "AUROC", "low", "high", "wrong", "right"]
    table = abc_against_free_scores(aurocs, "ABC")
    assert list(table.columns) == ["model", "ABC", "ABC low", "ABC high", "best free score", "free", "free low",
                                   "free high", "ABC is", "wrong predictions"]
    assert table.loc[0, "wrong predictions"] == 3


def test_each_score_costs_what_its_method_and_ensemble_need() -> None:
    from nsdelib.book.profiles import get_profile
    from nsdelib.claims.error_detection import score_costs
    from nsdelib.models.inference import EvalMode

    profile = get_profile("ci")
    attribution = profile.attribution.replace(ig_steps=5, smoothgrad_samples=6, noise_draws=3)
    budgets = {method: profile.abc.replace(samples=7, method=method) for method in ("saliency", "smoothgrad")}
    pair = score_costs(attribution, budgets, EvalMode("NSDE, 2 passes", "ensemble", 2))
    assert pair.columns.tolist() == ["score", "forward passes", "backward passes"]
    costs = pair.set_index("score")
    assert costs.loc[ENTROPY].tolist() == [2, 0] and costs.loc[DISAGREEMENT].tolist() == [2, 0]  # K = 2 disagrees
    assert costs.loc["saliency"].tolist() == [2 + 1 * 3 + 7, 1 * 3]
    assert costs.loc["smoothgrad"].tolist() == [2 + 6 * 3 + 7, 6 * 3]


def test_noisy_copies_are_fixed_by_their_seed_alone() -> None:
    from nsdelib.claims.error_detection import noisy_copies

    x = torch.full((3, 1, 4, 4), 0.5)
    torch.manual_seed(1)
    first = noisy_copies(x, 0.1, seed=7)
    torch.manual_seed(2)  # the global generator, in another state, must not matter
    assert torch.equal(noisy_copies(x, 0.1, seed=7), first)
    assert not torch.equal(noisy_copies(x, 0.1, seed=8), first)


def test_detector_aurocs_bootstrap_images_with_the_configured_settings() -> None:
    from nsdelib.claims.c4_abc import DetectorConfig
    from nsdelib.claims.error_detection import detector_aurocs

    rng = np.random.default_rng(0)
    correct = rng.random(40) < 0.6
    scores = pd.DataFrame({"model": "m", "example": np.repeat(np.arange(20), 2), "correct": correct,
                           "ABC": correct + rng.normal(0, 0.8, 40), MSP: rng.random(40)})
    config = DetectorConfig.build(noise_stds=(0.1,), bootstrap_resamples=150, bootstrap_seed=4)
    table = detector_aurocs(scores, ["not scored", "ABC"], config).set_index("score")  # a missing column is skipped
    expected = auroc_interval(scores["ABC"].to_numpy(), correct, groups=scores["example"].to_numpy(), resamples=150,
                              seed=4)
    assert table.loc["ABC", ["AUROC", "low", "high"]].tolist() == [expected.auroc, expected.low, expected.high]
    assert list(table.index) == ["ABC", MSP]
