"""The verdict rule on simulated outcomes with known answers: labels, monotonicity, coverage, power, scipy."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from nsdelib.report.paper import get_claim
from nsdelib.report.stats import (
    VERDICT_RULE,
    Reference,
    effect_verdict,
    effect_verdicts,
    mean_interval,
    minimum_detectable_effect,
    paired_seed_effects,
    seed_effects_verdict,
    seed_intervals,
    verdict_label,
    verdicts_frame,
)

C1 = get_claim("C1").reference  # the paper's ConvNeXt − NSDE difference, +4.32 points
SMALLEST = Reference(0.05, "smallest effect of interest")

#: The order along which a verdict may only move as the effect grows with the noise held fixed.
RANK = {"opposite": 0, "not reproduced": 1, "inconclusive": 1, "reproduced": 2, "direction holds, size differs": 2}


def simulate(effect: float, *, n_seeds: int, n_images: int, seed: int, seed_sd: float = 0.0,
             agreement: float = 0.8, base: float = 0.8) -> pd.DataFrame:
    """Per-image 0/1 outcomes of models "a" and "b" on the same images and seeds.

    Model b is right with probability ``base``; model a with ``base`` + ``effect`` + a normal seed effect
    of sd ``seed_sd``. On a share ``agreement`` of the images both read the same uniform draw (paired
    models mostly err on the same images), on the rest independent ones.
    """
    rng = np.random.default_rng(seed)
    shape = (n_seeds, n_images)
    u = rng.random(shape)
    v = np.where(rng.random(shape) < agreement, u, rng.random(shape))
    p_a = base + effect + rng.normal(0.0, seed_sd, (n_seeds, 1))
    seeds, images = np.indices(shape)
    frame = {"seed": seeds.ravel(), "example": images.ravel()}
    return pd.concat([pd.DataFrame({**frame, "model": "a", "correct": (u < p_a).ravel()}),
                      pd.DataFrame({**frame, "model": "b", "correct": (v < base).ravel()})], ignore_index=True)


def judge(table: pd.DataFrame, reference: Reference = C1, **kwargs: object):
    return effect_verdict(table, "a", "b", reference, value="correct", **kwargs)


@pytest.mark.parametrize(
    ("case", "effect", "n_seeds", "n_images", "agreement", "expected"),
    [
        ("real effect equal to the paper's", 0.0432, 5, 2000, 0.8, "reproduced"),
        ("real but much smaller effect, lots of data", 0.01, 10, 10000, 0.8, "direction holds, size differs"),
        ("no effect, enough data", 0.0, 10, 10000, 0.8, "not reproduced"),
        ("the opposite effect", -0.03, 5, 2000, 0.8, "opposite"),
        ("2 seeds of a few noisy images", 0.02, 2, 30, 0.0, "inconclusive"),
    ],
)
def test_simulated_outcomes_get_the_known_label(case: str, effect: float, n_seeds: int, n_images: int,
                                                agreement: float, expected: str) -> None:
    # One fixed draw per case. Each label is the expected one in about 95 % of draws or more (a true
    # reference or a zero effect falls outside the interval 5 % of the time; the coverage test measures it).
    verdict = judge(simulate(effect, n_seeds=n_seeds, n_images=n_images, seed=1, seed_sd=0.003, agreement=agreement))
    assert verdict.label == expected, f"{case}: {verdict}"
    assert (verdict.n_seeds, verdict.n_pairs) == (n_seeds, n_seeds * n_images)
    assert verdict.low < verdict.effect < verdict.high
    assert (verdict.reference, verdict.reference_kind) == (C1.value, "paper's figure")


def test_a_single_seed_is_inconclusive_and_says_why() -> None:
    verdict = judge(simulate(0.2, n_seeds=1, n_images=5000, seed=3))
    assert verdict.label == "inconclusive" and verdict.n_seeds == 1 and verdict.n_pairs == 5000
    assert all(math.isnan(x) for x in (verdict.low, verdict.high, verdict.p_value, verdict.mde))
    assert verdict.effect == pytest.approx(0.2, abs=0.02)
    assert "one seed: no between-seed replication" in verdict.note and verdict.note in str(verdict)


def test_two_seeds_already_give_an_interval_with_one_degree_of_freedom() -> None:
    verdict = seed_effects_verdict([0.1, 0.11], SMALLEST)
    assert (verdict.low, verdict.high) == pytest.approx(tuple(scipy_stats.ttest_1samp([0.1, 0.11], 0.0).confidence_interval()))
    assert verdict.label == "reproduced" and verdict.n_pairs == 2


def test_descriptive_intervals_are_scipys_t_intervals() -> None:
    values = [0.8, 0.83, 0.85, 0.9]
    interval = mean_interval(values)
    low, high = scipy_stats.t.interval(0.95, 3, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert (interval.mean, interval.low, interval.high, interval.n) == pytest.approx((np.mean(values), low, high, 4))
    single = mean_interval([0.8])
    assert single.n == 1 and math.isnan(single.low) and str(single) == "0.8 (n=1)"
    with pytest.raises(ValueError, match="at least one value"):
        mean_interval([])


def test_seeds_that_agree_exactly_give_no_interval() -> None:
    verdict = seed_effects_verdict([0.0, 0.0, 0.0], C1)
    assert verdict.label == "inconclusive" and "no variation between seeds" in verdict.note


def test_interval_p_value_and_quantile_are_scipys_on_the_per_seed_differences() -> None:
    table = simulate(0.03, n_seeds=3, n_images=500, seed=5, seed_sd=0.01)
    verdict = judge(table)
    wide = table.pivot(index=["seed", "example"], columns="model", values="correct").astype(float)
    differences = (wide["a"] - wide["b"]).groupby(level="seed").mean().to_numpy()
    test = scipy_stats.ttest_1samp(differences, 0.0)
    low, high = test.confidence_interval(0.95)
    assert (verdict.low, verdict.high) == pytest.approx((low, high), rel=1e-12)
    assert verdict.p_value == pytest.approx(scipy_stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue)
    standard_error = differences.std(ddof=1) / math.sqrt(3)
    assert (verdict.high - verdict.effect) / standard_error == pytest.approx(scipy_stats.t.ppf(0.975, 2), rel=1e-12)
    assert verdict.seed_effects == pytest.approx(tuple(differences))


def test_per_seed_values_go_through_the_same_function() -> None:
    table = simulate(0.03, n_seeds=4, n_images=300, seed=9, seed_sd=0.01)
    accuracy = table.groupby(["model", "seed"], as_index=False)["correct"].mean()
    per_image, per_seed = judge(table), judge(accuracy, unit=None)
    assert per_seed.n_pairs == 4 and per_image.n_pairs == 1200
    assert per_seed.label == per_image.label
    assert (per_seed.low, per_seed.high) == pytest.approx((per_image.low, per_image.high))


def test_pairs_must_be_complete_unique_and_finite() -> None:
    table = simulate(0.0, n_seeds=2, n_images=10, seed=1)
    with pytest.raises(ValueError, match=r"1 of 20 \('seed', 'example'\) have only one of 'a' and 'b'"):
        judge(table.iloc[1:])
    with pytest.raises(ValueError, match="more than one row per model"):
        judge(pd.concat([table, table.iloc[:1]]))
    with pytest.raises(ValueError, match="1 non-finite values in column 'score'"):
        effect_verdict(table.assign(score=[math.nan] + [0.0] * (len(table) - 1)), "a", "b", C1, value="score")
    with pytest.raises(ValueError, match="no rows with model = 'x' or 'y'"):
        effect_verdict(table, "x", "y", C1, value="correct")
    for value in (0.0, -0.1):
        with pytest.raises(ValueError, match="must be > 0"):
            Reference(value, "paper's figure")


@pytest.mark.parametrize(
    ("low", "high", "paper", "smallest"),
    [
        (-0.3, -0.1, "opposite", "opposite"),
        (-0.1, 0.0, "not reproduced", "not reproduced"),  # 0 on the boundary is not excluded
        (-0.1, 0.01, "not reproduced", "not reproduced"),
        (-0.1, 0.05, "inconclusive", "inconclusive"),  # the reference on the boundary is inside
        (-0.1, 0.2, "inconclusive", "inconclusive"),
        (0.0, 0.2, "inconclusive", "inconclusive"),  # 0 on the boundary is not excluded
        (0.01, 0.03, "direction holds, size differs", "direction holds, size differs"),
        (0.01, 0.05, "reproduced", "reproduced"),
        (0.01, 0.2, "reproduced", "reproduced"),
        (0.05, 0.2, "reproduced", "reproduced"),
        (0.06, 0.2, "direction holds, size differs", "reproduced"),  # larger than the paper, beyond the smallest
        (math.nan, math.nan, "inconclusive", "inconclusive"),
        (math.nan, 0.01, "inconclusive", "inconclusive"),  # one missing bound is no interval either
    ],
)
def test_labels_are_a_function_of_interval_and_reference(low: float, high: float, paper: str, smallest: str) -> None:
    assert verdict_label(low, high, Reference(0.05, "paper's figure")) == paper
    assert verdict_label(low, high, SMALLEST) == smallest


@settings(max_examples=200, deadline=None)
@given(low=st.floats(-1, 1), width=st.floats(0, 1), shifts=st.lists(st.floats(0, 1), min_size=1, max_size=8),
       kind=st.sampled_from(["paper's figure", "smallest effect of interest"]))
def test_label_rank_never_falls_as_a_fixed_interval_moves_up(low: float, width: float, shifts: list[float],
                                                            kind: str) -> None:
    reference = Reference(0.05, kind)
    ranks = [RANK[verdict_label(low + s, low + s + width, reference)] for s in sorted(shifts)]
    assert ranks == sorted(ranks)


@settings(max_examples=25, deadline=None)
@given(noise_seed=st.integers(0, 2**32 - 1), effects=st.lists(st.floats(-1, 1), min_size=2, max_size=5))
def test_label_rank_never_falls_as_a_simulated_effect_grows(noise_seed: int, effects: list[float]) -> None:
    """Per-image scores with fixed noise (seed effects + image noise); model a gets the effect added."""
    rng = np.random.default_rng(noise_seed)
    n_seeds, n_images = 3, 20
    seeds, images = np.indices((n_seeds, n_images))
    frame = {"seed": seeds.ravel(), "example": images.ravel()}
    noise_a = (rng.normal(0, 0.3, (n_seeds, n_images)) + rng.normal(0, 0.05, (n_seeds, 1))).ravel()
    noise_b = rng.normal(0, 0.3, n_seeds * n_images)
    labels = []
    for effect in sorted(effects):
        table = pd.concat([pd.DataFrame({**frame, "model": "a", "score": noise_a + effect}),
                           pd.DataFrame({**frame, "model": "b", "score": noise_b})])
        labels.append(effect_verdict(table, "a", "b", SMALLEST, value="score").label)
    assert [RANK[label] for label in labels] == sorted(RANK[label] for label in labels), labels


def seed_effects_with_image_noise(rng: np.random.Generator, n_sims: int, n_seeds: int, truth: float) -> np.ndarray:
    """Per-seed accuracy differences: normal seed effects around ``truth`` plus binomial noise of 400 images."""
    n_images, base, seed_sd = 400, 0.8, 0.02
    p_a = base + truth + rng.normal(0.0, seed_sd, (n_sims, n_seeds))
    assert ((p_a > 0) & (p_a < 1)).all()
    return (rng.binomial(n_images, p_a) - rng.binomial(n_images, base, (n_sims, n_seeds))) / n_images


@pytest.mark.parametrize("n_seeds", [3, 10])
def test_coverage_of_the_interval_over_2000_simulated_data_sets(n_seeds: int) -> None:
    n_sims, truth = 2000, 0.03
    effects = seed_effects_with_image_noise(np.random.default_rng(2024 + n_seeds), n_sims, n_seeds, truth)
    verdicts = [seed_effects_verdict(row, C1) for row in effects]
    coverage = float(np.mean([v.low <= truth <= v.high for v in verdicts]))
    print(f"coverage of the 95 % interval, {n_seeds} seeds: {coverage:.4f} over {n_sims} simulated data sets")
    assert 0.93 <= coverage <= 0.97, f"coverage {coverage:.4f} over {n_sims} data sets of {n_seeds} seeds"


def test_the_minimum_detectable_effect_is_detected_80_percent_of_the_time() -> None:
    n_sims, n_seeds, sd = 2000, 5, 0.02
    mde = minimum_detectable_effect(sd / math.sqrt(n_seeds), n_seeds - 1)
    effects = np.random.default_rng(7).normal(mde, sd, (n_sims, n_seeds))
    power = float(np.mean([seed_effects_verdict(row, C1).significant for row in effects]))
    print(f"power at the MDE ({mde:.4g}): {power:.4f} over {n_sims} simulated data sets")
    assert 0.75 <= power <= 0.85, f"power {power:.4f} at the MDE over {n_sims} data sets"
    verdict = seed_effects_verdict(effects[0], C1)
    standard_error = effects[0].std(ddof=1) / math.sqrt(n_seeds)
    assert verdict.mde == pytest.approx(minimum_detectable_effect(standard_error, n_seeds - 1))


def test_one_sided_p_value_agrees_with_the_interval() -> None:
    for row in seed_effects_with_image_noise(np.random.default_rng(1), 300, 4, 0.02):
        verdict = seed_effects_verdict(row, C1)
        assert verdict.significant == (verdict.p_value < 0.025)
        assert (verdict.label == "opposite") == (verdict.high < 0)


def test_to_dict_is_strict_json_and_str_is_one_line() -> None:
    for verdict in (judge(simulate(0.04, n_seeds=3, n_images=200, seed=2)),
                    judge(simulate(0.04, n_seeds=1, n_images=200, seed=2))):
        as_dict = verdict.to_dict()
        assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
        assert all(type(v) in (str, int, float, list, type(None)) for v in as_dict.values())
        assert "\n" not in str(verdict) and str(verdict).startswith(f"{verdict.label}: a − b = ")
    assert as_dict["low"] is None and as_dict["n_seeds"] == 1
    assert str(seed_effects_verdict([0.1, 0.11, 0.12], C1, n_pairs=300, comparison="A − B")) == (
        "direction holds, size differs: A − B = +0.11, 95 % CI [+0.0852, +0.135], one-sided p = 0.0014; "
        "paper's figure +0.0432; MDE 0.0326; 3 seeds, 300 pairs")
    assert str(seed_effects_verdict([0.1], SMALLEST, comparison="A − B")) == (
        "inconclusive: A − B = +0.1, one seed: no between-seed replication, so no interval and no test; "
        "smallest effect of interest +0.05; 1 seed, 1 pair")


def test_verdicts_per_group_as_a_table() -> None:
    table = pd.concat([simulate(0.04, n_seeds=3, n_images=100, seed=s).assign(level=level)
                       for s, level in enumerate((0.1, 0.2))])
    verdicts = effect_verdicts(table, "level", "a", "b", C1, value="correct")
    frame = verdicts_frame(verdicts, "level")
    assert list(frame.index) == [0.1, 0.2] and frame.index.name == "level"
    assert frame.loc[0.2, "label"] == verdicts[0.2].label and "seed_effects" not in frame
    effects, n_pairs = paired_seed_effects(table[table["level"] == 0.1], "a", "b", value="correct")
    assert n_pairs == 300 and effects.mean() == pytest.approx(verdicts[0.1].effect)
    assert "one-sided t-test, α = 0.025" in VERDICT_RULE


def test_verdicts_keep_the_groups_order_name_and_columns_given() -> None:
    table = pd.concat([simulate(0.04, n_seeds=3, n_images=60, seed=s).assign(noise=noise, level=level)
                       for s, (noise, level) in enumerate((("narrowband", 0.3), ("impulsive", 0.3), ("impulsive", 0.1)))])
    table = table.rename(columns={"seed": "run"})
    verdicts = effect_verdicts(table, ["noise", "level"], "a", "b", C1, value="correct", seed="run",
                               comparison="A over B")
    assert list(verdicts) == [("narrowband", 0.3), ("impulsive", 0.3), ("impulsive", 0.1)], "first-appearance order"
    assert {v.comparison for v in verdicts.values()} == {"A over B"} and {v.n_seeds for v in verdicts.values()} == {3}
    frame = verdicts_frame(verdicts, ["noise", "level"])
    assert list(frame.index.names) == ["noise", "level"] and list(frame.index) == list(verdicts)
    intervals = seed_intervals(table.assign(accuracy=table["correct"].astype(float)).rename(columns={"run": "seed"}),
                               ["noise", "level"])
    assert list(zip(intervals["noise"], intervals["level"])) == list(verdicts)


def test_a_single_value_has_its_mean_and_no_bounds() -> None:
    interval = mean_interval([0.7])
    assert (interval.mean, interval.n, interval.confidence) == (0.7, 1, 0.95)
    assert math.isnan(interval.low) and math.isnan(interval.high)
    with pytest.raises(ValueError, match="^mean_interval needs at least one value$"):
        mean_interval([])


def test_to_dict_turns_only_nan_into_none_and_keeps_the_seed_effects() -> None:
    as_dict = seed_effects_verdict([0.1, 0.11, 0.12], C1, n_pairs=300, comparison="A − B").to_dict()
    assert as_dict["seed_effects"] == pytest.approx([0.1, 0.11, 0.12])
    assert as_dict["low"] == pytest.approx(0.0852, abs=1e-4) and isinstance(as_dict["effect"], float)


def test_bad_per_seed_effects_are_refused_and_degenerate_ones_say_why() -> None:
    for bad in ([], [math.nan, 0.1], [0.1, math.inf]):
        with pytest.raises(ValueError, match=r"a verdict needs at least one per-seed effect, all finite; got \["):
            seed_effects_verdict(bad, C1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one seed computes no spread at all (no degrees-of-freedom warning)
        single = seed_effects_verdict([0.1], C1)
    assert single.note == "one seed: no between-seed replication, so no interval and no test"
    assert single.comparison == "effect"
    flat = seed_effects_verdict([0.1, 0.1], C1)
    assert flat.label == "inconclusive" and flat.note == (
        "no variation between seeds: the t-interval is undefined, so no test")


def test_intervals_keep_their_confidence() -> None:
    assert mean_interval([0.1, 0.2, 0.4], confidence=0.9).confidence == 0.9
    assert mean_interval([0.1], confidence=0.8).confidence == 0.8


def test_unpaired_rows_are_counted_and_duplicates_found_whatever_their_values() -> None:
    table = simulate(0.0, n_seeds=2, n_images=10, seed=1)
    with pytest.raises(ValueError, match=r"2 of 20 \('seed', 'example'\) have only one of 'a' and 'b'"):
        judge(table.iloc[2:])
    with pytest.raises(ValueError, match=r"20 of 20 \('seed', 'example'\) have only one of 'a' and 'b'"):
        judge(table[table["model"] == "a"])
    clash = table.iloc[:1].assign(correct=~table.iloc[:1]["correct"])
    with pytest.raises(ValueError, match="more than one row per model"):
        judge(pd.concat([table, clash]))
