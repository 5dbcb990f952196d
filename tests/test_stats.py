"""The verdict rule on simulated outcomes with known answers: labels and flags, the crossed seed × image design,
prediction intervals, Holm's adjustment, monotonicity, coverage, power, and agreement with scipy and statsmodels."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from scipy import stats as scipy_stats
from statsmodels.stats.anova import anova_lm

from nsdelib.report.outcomes import outcomes_frame, simulate_paired_outcomes
from nsdelib.report.paper import get_claim
from nsdelib.report.stats import (
    ALPHA_ONE_SIDED,
    NO_SEED_VARIATION,
    ONE_SEED,
    VERDICT_RULE,
    Reference,
    crossed_estimate,
    crossed_moments,
    effect_verdict,
    effect_verdicts,
    holm_family,
    mean_interval,
    minimum_detectable_effect,
    paired_differences,
    seed_effects_verdict,
    seed_intervals,
    verdict_from_dict,
    verdict_label,
    verdicts_frame,
)

C1 = get_claim("C1").reference  # the paper's ConvNeXt − NSDE difference, +4.32 points
C2 = get_claim("C2").reference  # a smallest effect of interest of 2 points
SMALLEST = Reference(0.05, "smallest effect of interest")
PAPER = Reference(0.05, "paper's figure")

#: The order along which a verdict may only move as the effect grows with the noise held fixed.
RANK_PAPER = {"opposite": 0, "not reproduced": 1, "inconclusive": 1, "reproduced": 2, "direction holds, size differs": 2}
RANK_SMALLEST = {"opposite": 0, "not reproduced": 1, "inconclusive": 2, "direction holds, size differs": 2,
                 "direction holds, size not shown": 3, "reproduced": 4}


def simulate(effect: float, *, n_seeds: int, n_images: int, seed: int, seed_sd: float = 0.0,
             agreement: float = 0.8, base: float = 0.8) -> pd.DataFrame:
    """Per-image 0/1 outcomes of models "a" and "b" on the same images and seeds, without image effects.

    Model b is right with probability ``base``; model a with ``base`` + ``effect`` + a normal seed effect
    of sd ``seed_sd``. On a share ``agreement`` of the images both read the same uniform draw (paired
    models mostly err on the same images), on the rest independent ones.
    """
    rng = np.random.default_rng(seed)
    shape = (n_seeds, n_images)
    u = rng.random(shape)
    v = np.where(rng.random(shape) < agreement, u, rng.random(shape))
    p_a = base + effect + rng.normal(0.0, seed_sd, (n_seeds, 1))
    return outcomes_frame(u < p_a, v < base)


def judge(table: pd.DataFrame, reference: Reference = C1, **kwargs: object):
    return effect_verdict(table, "a", "b", reference, value="correct", **kwargs)


def stored(effect: float, low: float, high: float, reference: Reference, n_seeds: int = 5,
           n_pairs: int = 7520) -> dict[str, object]:
    """A verdict as the records written before the crossed design store it (the t-interval over seeds)."""
    return {"label": "reproduced", "comparison": "A − B", "effect": effect, "low": low, "high": high,
            "p_value": 0.01, "reference": reference.value, "reference_kind": reference.kind, "mde": 0.01,
            "n_seeds": n_seeds, "n_pairs": n_pairs, "note": ""}


@pytest.mark.parametrize(
    ("case", "effect", "n_seeds", "n_images", "agreement", "reference", "expected"),
    [
        ("real effect equal to the paper's", 0.0432, 5, 2000, 0.8, C1, "reproduced"),
        ("real but much smaller effect, lots of data", 0.01, 10, 10000, 0.8, C1, "direction holds, size differs"),
        ("no effect, enough data", 0.0, 10, 10000, 0.8, C1, "not reproduced"),
        ("the opposite effect", -0.03, 5, 2000, 0.8, C1, "opposite"),
        ("2 seeds of a few noisy images", 0.02, 2, 30, 0.0, C1, "inconclusive"),
        ("well above the smallest effect of interest", 0.08, 5, 4000, 0.8, C2, "reproduced"),
        ("real, below the smallest effect of interest", 0.005, 10, 10000, 0.8, C2, "direction holds, size differs"),
        ("real, at the smallest effect of interest", 0.02, 5, 4000, 0.8, C2, "direction holds, size not shown"),
        ("no effect against a smallest effect of interest", 0.0, 10, 10000, 0.8, C2, "not reproduced"),
    ],
)
def test_simulated_outcomes_get_the_known_label(case: str, effect: float, n_seeds: int, n_images: int,
                                                agreement: float, reference: Reference, expected: str) -> None:
    # One fixed draw per case. Each label is the expected one in most draws (a true reference or a zero effect
    # falls outside the interval 5 % of the time; the coverage test measures it).
    verdict = judge(simulate(effect, n_seeds=n_seeds, n_images=n_images, seed=1, seed_sd=0.003, agreement=agreement),
                    reference)
    assert verdict.label == expected, f"{case}: {verdict}"
    assert (verdict.n_seeds, verdict.n_pairs) == (n_seeds, n_seeds * n_images)
    assert verdict.low < verdict.effect < verdict.high
    assert verdict.prediction_low < verdict.low and verdict.high < verdict.prediction_high
    assert (verdict.reference, verdict.reference_kind) == (reference.value, reference.kind)
    assert verdict.role == "primary" and verdict.design == "seeds × images, crossed"


def test_a_single_seed_is_inconclusive_and_says_why() -> None:
    verdict = judge(simulate(0.2, n_seeds=1, n_images=5000, seed=3))
    assert verdict.label == "inconclusive" and verdict.n_seeds == 1 and verdict.n_pairs == 5000
    assert all(math.isnan(x) for x in (verdict.low, verdict.high, verdict.p_value, verdict.mde, verdict.prediction_low))
    assert verdict.effect == pytest.approx(0.2, abs=0.02) and not verdict.underpowered
    assert "one seed: no between-seed replication" in verdict.note and verdict.note in str(verdict)


def test_two_seeds_already_give_an_interval_with_one_degree_of_freedom() -> None:
    verdict = seed_effects_verdict([0.1, 0.11], SMALLEST)
    assert (verdict.low, verdict.high) == pytest.approx(tuple(scipy_stats.ttest_1samp([0.1, 0.11], 0.0).confidence_interval()))
    # [+0.042, +0.168]: significant, but its lower bound is below the smallest effect of interest 0.05
    assert verdict.label == "direction holds, size not shown" and verdict.n_pairs == 2 and verdict.df == 1


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
    flat = judge(outcomes_frame(np.ones((3, 10), bool), np.ones((3, 10), bool)))
    assert flat.label == "inconclusive" and flat.note == "no variation between seeds: the t-interval is undefined, so no test"


def test_per_seed_values_give_scipys_interval_p_value_and_prediction_interval() -> None:
    table = simulate(0.03, n_seeds=3, n_images=500, seed=5, seed_sd=0.01)
    accuracy = table.groupby(["model", "seed"], as_index=False)["correct"].mean()
    verdict = judge(accuracy, unit=None)
    wide = table.pivot(index=["seed", "example"], columns="model", values="correct").astype(float)
    differences = (wide["a"] - wide["b"]).groupby(level="seed").mean().to_numpy()
    low, high = scipy_stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert (verdict.low, verdict.high) == pytest.approx((low, high), rel=1e-12)
    assert verdict.p_value == pytest.approx(scipy_stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue)
    standard_error = differences.std(ddof=1) / math.sqrt(3)
    assert (verdict.high - verdict.effect) / standard_error == pytest.approx(scipy_stats.t.ppf(0.975, 2), rel=1e-12)
    one_run = scipy_stats.t.ppf(0.975, 2) * differences.std(ddof=1) * math.sqrt(1 + 1 / 3)
    assert (verdict.prediction_low, verdict.prediction_high) == pytest.approx(
        (differences.mean() - one_run, differences.mean() + one_run), rel=1e-12)
    assert verdict.seed_effects == pytest.approx(tuple(differences)) and verdict.n_pairs == 3
    assert verdict.design == "seeds" and verdict.df == 2


@pytest.mark.parametrize(("n_seeds", "n_images", "draw"), [(4, 30, 11), (4, 2, 2), (2, 2, 2)])  # the smallest designs
def test_the_crossed_design_is_the_two_way_anova_of_statsmodels(n_seeds: int, n_images: int, draw: int) -> None:
    rng = np.random.default_rng(draw)
    d = 0.03 + rng.normal(0, 0.02, (n_seeds, 1)) + rng.normal(0, 0.2, (1, n_images)) + rng.normal(0, 0.3, (n_seeds, n_images))
    seeds, images = np.indices(d.shape)
    anova = anova_lm(smf.ols("d ~ C(seed) + C(image)", pd.DataFrame(
        {"d": d.ravel(), "seed": seeds.ravel(), "image": images.ravel()})).fit())
    seed_square, image_square, residual_square = anova["mean_sq"]
    terms = np.array([seed_square, image_square, -residual_square]) / (n_seeds * n_images)
    dfs = np.array([n_seeds - 1, n_images - 1, (n_seeds - 1) * (n_images - 1)])
    assert image_square > residual_square, "this draw has an image variance to estimate"
    moments = crossed_moments(d)
    assert moments.effect == pytest.approx(d.mean())
    assert moments.variance == pytest.approx(terms.sum(), rel=1e-10)
    assert moments.df == pytest.approx(terms.sum() ** 2 / (terms**2 / dfs).sum(), rel=1e-10)
    assert moments.prediction_variance == pytest.approx(
        seed_square / n_images * (1 + 1 / n_seeds) + 2 * (image_square - residual_square) / (n_seeds * n_images))
    assert moments.image_weight == pytest.approx(1 / n_images)


def test_images_nested_in_seeds_give_the_t_interval_over_seeds_and_shared_ones_widen_it() -> None:
    rng = np.random.default_rng(3)
    a, b = simulate_paired_outcomes(0.03, n_seeds=4, n_images=200, rng=rng)
    crossed = outcomes_frame(a[0], b[0])
    nested = crossed.assign(example=crossed["example"] + 1000 * crossed["seed"])  # every seed its own images
    per_seed = crossed.groupby(["model", "seed"], as_index=False)["correct"].mean()
    on_seeds, on_nested, on_crossed = judge(per_seed, unit=None), judge(nested), judge(crossed)
    assert on_nested.design == "images nested in seeds" and on_crossed.design == "seeds × images, crossed"
    assert (on_nested.low, on_nested.high, on_nested.df) == pytest.approx((on_seeds.low, on_seeds.high, 3))
    assert on_crossed.effect == pytest.approx(on_seeds.effect)
    assert on_crossed.standard_error > on_seeds.standard_error, "the image variance is added, not ignored"
    partly = crossed[~((crossed["seed"] == 0) & (crossed["example"] < 50))]
    assert judge(partly).design == "seeds × images, partly crossed" and judge(partly).n_pairs == 800 - 50


def test_partly_crossed_variance_matches_its_definition() -> None:
    rng = np.random.default_rng(8)
    d = rng.normal(0.05, 0.3, (3, 6)) + rng.normal(0, 0.3, (1, 6))
    d[0, :2] = d[2, 4:] = np.nan
    moments = crossed_moments(d)
    present = ~np.isnan(d)
    counts = present.sum(1)
    seed_means = np.nanmean(d, axis=1)
    residuals = np.where(present, d - seed_means[:, None], 0.0)
    cross = weight = 0.0
    for s in range(3):
        for t in range(s + 1, 3):
            shared = present[s] & present[t]
            cross += (residuals[s] * residuals[t])[shared].sum()
            weight += shared.sum() * (1 - 1 / counts[s] - 1 / counts[t] + shared.sum() / (counts[s] * counts[t]))
    image_variance = max(cross / weight, 0.0)
    overlap = present.astype(float) @ present.T.astype(float)
    q, r = (overlap / np.outer(counts, counts)).sum() / 9, (1 / counts).mean()
    assert moments.variance == pytest.approx(seed_means.var(ddof=1) / 3 + (3 * q - r) / 2 * image_variance)


def test_a_batch_of_designs_gives_each_designs_own_moments() -> None:
    rng = np.random.default_rng(5)
    designs = rng.normal(0.05, 0.3, (2, 3, 6)) + rng.normal(0, 0.3, (2, 1, 6))
    designs[0, 0, :2] = designs[1, 2, 3:] = np.nan  # the two designs miss different images
    batch = crossed_moments(designs)
    for index, design in enumerate(designs):
        alone = crossed_moments(design)
        assert [field[index] for field in batch] == pytest.approx(list(alone), rel=1e-12)


@pytest.mark.filterwarnings("error")
def test_seeds_and_images_without_any_variation_give_no_df_and_no_warning() -> None:
    for d in (np.full((3, 4), 0.25), np.array([[0.25, np.nan], [np.nan, 0.25]])):  # crossed; nested, no shared image
        moments = crossed_moments(d)
        assert moments.variance == 0.0 and math.isnan(moments.df) and math.isnan(moments.prediction_df)


def test_crossed_moments_needs_two_seeds_with_images() -> None:
    with pytest.raises(ValueError, match="at least 2 seeds, each with an image"):
        crossed_moments(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="at least 2 seeds, each with an image"):
        crossed_moments(np.array([[0.0, 1.0], [np.nan, np.nan]]))


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
    ("low", "high", "label"),
    [
        (-0.3, -0.1, "opposite"),
        (-0.1, 0.0, "not reproduced"),  # 0 on the boundary is not excluded
        (-0.1, 0.05, "inconclusive"),  # the smallest effect of interest on the boundary is reached
        (-0.1, 0.2, "inconclusive"),
        (0.0, 0.2, "inconclusive"),  # 0 on the boundary is not excluded
        (0.01, 0.03, "direction holds, size differs"),
        (0.01, 0.05, "direction holds, size not shown"),
        (0.01, 0.2, "direction holds, size not shown"),  # reaching the smallest effect is not showing it
        (0.05, 0.2, "reproduced"),  # the lower bound at the smallest effect of interest shows it
        (0.06, 0.2, "reproduced"),
        (math.nan, math.nan, "inconclusive"),
        (math.nan, 0.01, "inconclusive"),  # one missing bound is no interval either
    ],
)
def test_against_a_smallest_effect_labels_are_a_minimum_effect_test(low: float, high: float, label: str) -> None:
    assert verdict_label(low, high, SMALLEST) == label


@pytest.mark.parametrize(
    ("low", "high", "prediction", "label"),
    [
        (-0.3, -0.1, (-0.5, 0.1), "opposite"),  # the figure inside one run's interval does not rescue an opposite mean
        (-0.1, 0.0, (-0.2, 0.04), "not reproduced"),  # not significant, the figure above one run's interval
        (-0.1, 0.0, (-0.2, 0.05), "inconclusive"),  # the figure on a prediction bound is inside
        (0.01, 0.03, (-0.02, 0.06), "reproduced"),  # the mean's interval below the figure, one run's around it
        (0.01, 0.03, (0.0, 0.04), "direction holds, size differs"),
        (0.06, 0.2, (0.055, 0.3), "direction holds, size differs"),  # larger than the paper's run could be
        (0.0, 0.03, (-0.1, 0.1), "inconclusive"),
        (math.nan, math.nan, (math.nan, math.nan), "inconclusive"),
    ],
)
def test_against_a_papers_figure_the_size_is_judged_by_one_runs_prediction_interval(
        low: float, high: float, prediction: tuple[float, float], label: str) -> None:
    assert verdict_label(low, high, PAPER, *prediction) == label


@settings(max_examples=200, deadline=None)
@given(low=st.floats(-1, 1), width=st.floats(0, 1), widen=st.floats(0, 1),
       shifts=st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_label_rank_never_falls_as_a_fixed_interval_moves_up(low: float, width: float, widen: float,
                                                            shifts: list[float]) -> None:
    for reference, rank in ((PAPER, RANK_PAPER), (SMALLEST, RANK_SMALLEST)):
        labels = [verdict_label(low + s, low + s + width, reference, low + s - widen, low + s + width + widen)
                  for s in sorted(shifts)]
        assert [rank[label] for label in labels] == sorted(rank[label] for label in labels), labels


@settings(max_examples=25, deadline=None)
@given(noise_seed=st.integers(0, 2**32 - 1), effects=st.lists(st.floats(-1, 1), min_size=2, max_size=5))
def test_label_rank_never_falls_as_a_simulated_effect_grows(noise_seed: int, effects: list[float]) -> None:
    """Per-image scores with fixed noise (seed and image effects + noise); model a gets the effect added."""
    rng = np.random.default_rng(noise_seed)
    n_seeds, n_images = 3, 20
    seeds, images = np.indices((n_seeds, n_images))
    frame = {"seed": seeds.ravel(), "example": images.ravel()}
    noise_a = (rng.normal(0, 0.3, (n_seeds, n_images)) + rng.normal(0, 0.05, (n_seeds, 1))
               + rng.normal(0, 0.1, (1, n_images))).ravel()
    noise_b = rng.normal(0, 0.3, n_seeds * n_images)
    labels = []
    for effect in sorted(effects):
        table = pd.concat([pd.DataFrame({**frame, "model": "a", "score": noise_a + effect}),
                           pd.DataFrame({**frame, "model": "b", "score": noise_b})])
        labels.append(effect_verdict(table, "a", "b", SMALLEST, value="score").label)
    assert [RANK_SMALLEST[label] for label in labels] == sorted(RANK_SMALLEST[label] for label in labels), labels


def test_the_two_recorded_cases_that_only_reached_the_smallest_effect_are_not_reproduced() -> None:
    # NSDE ensemble − the input-noise control on clean images, and C2 at noise std 1.0 (results/paper, old rule)
    for effect, low, high in ((0.01795, 0.00635, 0.02955), (0.02354, 0.00223, 0.04485)):
        verdict = verdict_from_dict(stored(effect, low, high, C2))
        assert verdict.label == "direction holds, size not shown", verdict
        assert (verdict.low, verdict.high) == pytest.approx((low, high))
        assert verdict.design == "seeds, images held fixed" and verdict.paper_figure_in_prediction is None
        assert verdict.one_run == "the paper gives no figure for this effect"


def test_the_papers_single_figure_is_judged_against_one_run_of_this_setup() -> None:
    # C1 as recorded: +2.03 [+0.94, +3.13] points over 5 seeds; the paper's single run gave 4.32
    verdict = verdict_from_dict(stored(0.020346, 0.009384, 0.031308, C1))
    assert (verdict.prediction_low, verdict.prediction_high) == pytest.approx((-0.0065, 0.0472), abs=1e-4)
    spread = (0.031308 - 0.009384) / 2 / scipy_stats.t.ppf(0.975, 4) * math.sqrt(5)
    half = scipy_stats.t.ppf(0.975, 4) * spread * math.sqrt(1 + 1 / 5)
    assert verdict.prediction_high - verdict.effect == pytest.approx(half)
    assert verdict.high < C1.value and verdict.paper_figure_in_prediction
    assert verdict.label == "reproduced" and not verdict.underpowered
    assert verdict.one_run == "yes: the paper's +0.0432 is inside [-0.00651, +0.0472]"
    narrow = verdict_from_dict(stored(0.020346, 0.018, 0.0227, C1))
    assert narrow.label == "direction holds, size differs" and narrow.one_run.startswith("no: the paper's +0.0432 is outside")


@pytest.mark.filterwarnings("error")
def test_a_test_on_too_few_degrees_of_freedom_detects_no_effect() -> None:
    assert minimum_detectable_effect(0.01, 0.3) == math.inf  # its power stays below 80 % even 1,000 errors away
    assert minimum_detectable_effect(0.01, 0.5) == pytest.approx(
        0.01 * optimize.brentq(lambda nc: scipy_stats.nct.sf(scipy_stats.t.ppf(0.975, 0.5), 0.5, nc) - 0.8, 0, 1e3))


def test_an_mde_above_the_reference_is_flagged_underpowered() -> None:
    # C4 as recorded: −0.037 [−0.128, +0.054] against the paper's 0.102, MDE 0.123
    c4 = verdict_from_dict(stored(-0.03733, -0.12835, 0.05370, get_claim("C4").reference, n_pairs=1085))
    assert c4.mde == pytest.approx(0.1233, abs=1e-3) and c4.underpowered
    assert c4.label == "inconclusive" and c4.flags == "inconclusive · underpowered"
    small = judge(simulate(0.02, n_seeds=3, n_images=50, seed=2, seed_sd=0.01), SMALLEST)
    assert small.underpowered and small.mde > SMALLEST.value and "underpowered" in str(small)
    large = judge(simulate(0.02, n_seeds=5, n_images=5000, seed=2, seed_sd=0.002), SMALLEST)
    assert not large.underpowered and large.mde < SMALLEST.value


def test_holm_adjusts_every_test_of_a_family_together() -> None:
    # one real effect among nulls, each on per-seed values: significant alone, not after Holm's adjustment
    rng = np.random.default_rng(4)
    members = {f"null {i}": seed_effects_verdict(rng.normal(0.0, 0.02, 5), SMALLEST) for i in range(7)}
    members["real"] = seed_effects_verdict([0.055, 0.01, 0.04, 0.025, 0.045], SMALLEST)
    assert members["real"].label == "direction holds, size not shown"
    family = holm_family(members, "levels")
    assert family["real"].label == "inconclusive" and family["real"].flags.endswith("exploratory (Holm within levels)")
    assert all(v.role == "exploratory" and v.family == "levels" for v in family.values())
    assert (family["real"].low, family["real"].high) == (members["real"].low, members["real"].high)
    # Holm by hand over the 16 two-sided tests (against 0 and against the smallest effect of interest)
    raw = {(key, at): 2 * scipy_stats.t.sf(abs(v.effect - at) / v.standard_error, v.df)
           for key, v in members.items() for at in (0.0, SMALLEST.value)}
    order = sorted(raw, key=raw.get)
    adjusted, running = {}, 0.0
    for rank, test in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * raw[test]))
        adjusted[test] = running
    for key, v in family.items():
        assert v.p_holm == pytest.approx(adjusted[key, 0.0]) and v.p_holm_reference == pytest.approx(adjusted[key, 0.05])
    assert raw["real", 0.0] < 0.05 < adjusted["real", 0.0]


def test_holm_keeps_strong_effects_and_judges_a_papers_figure_by_its_prediction_interval() -> None:
    members = {"strong": seed_effects_verdict([0.30, 0.31, 0.29, 0.30], SMALLEST),
               "below": seed_effects_verdict([0.011, 0.012, 0.010, 0.011], SMALLEST),
               "paper": seed_effects_verdict([0.03, 0.05, 0.04, 0.045], PAPER),
               "single": seed_effects_verdict([0.3], SMALLEST)}
    family = holm_family(members, "f")
    assert family["strong"].label == "reproduced" and family["below"].label == "direction holds, size differs"
    assert family["paper"].label == "reproduced" and math.isnan(family["paper"].p_holm_reference)
    assert family["single"].label == "inconclusive" and math.isnan(family["single"].p_holm)
    assert holm_family({}, "f") == {}


def test_holm_in_a_mixed_family_tests_a_papers_figure_only_against_zero() -> None:
    members = {"strong": seed_effects_verdict([0.30, 0.31, 0.29, 0.30], SMALLEST),
               "paper": seed_effects_verdict([0.03, 0.05, 0.04, 0.045], PAPER),
               "single": seed_effects_verdict([0.3], SMALLEST)}
    family = holm_family(members, "f")
    tests = [("strong", 0.0), ("strong", SMALLEST.value), ("paper", 0.0)]  # 3 tests: none for the single seed
    raw = [2 * scipy_stats.t.sf(abs(members[key].effect - at) / members[key].standard_error, members[key].df)
           for key, at in tests]
    adjusted = np.maximum.accumulate(np.minimum(1.0, (3 - np.arange(3)) * np.sort(raw)))[np.argsort(np.argsort(raw))]
    assert [family["strong"].p_holm, family["strong"].p_holm_reference, family["paper"].p_holm] == pytest.approx(
        list(adjusted))
    assert math.isnan(family["single"].p_holm_reference) and family["single"].family == "f"
    again = holm_family({"single": replace(members["single"], p_holm=0.01, p_holm_reference=0.01)}, "g")
    assert math.isnan(again["single"].p_holm) and math.isnan(again["single"].p_holm_reference), "no test, no p"


def test_stored_verdicts_of_the_old_format_are_read_back_whole() -> None:
    per_seed = verdict_from_dict(stored(0.02, 0.01, 0.03, C1, n_seeds=5, n_pairs=5))
    assert per_seed.design == "seeds" and per_seed.n_seeds == 5 and per_seed.df == 4
    unpaired = {**stored(0.02, 0.01, 0.03, C1), "low": None}
    for n_seeds, n_pairs, note, design in ((1, 1, ONE_SEED, "seeds"), (2, 2, NO_SEED_VARIATION, "seeds"),
                                          (2, 300, NO_SEED_VARIATION, "seeds, images held fixed")):
        verdict = verdict_from_dict({**unpaired, "n_seeds": n_seeds, "n_pairs": n_pairs})
        assert (verdict.label, verdict.note, verdict.design, verdict.n_seeds) == ("inconclusive", note, design, n_seeds)
    assert verdict_from_dict({**unpaired, "comparison": None}).comparison == "effect"
    assert verdict_from_dict({**stored(0.02, 0.01, 0.03, C1, n_seeds=5, n_pairs=5), "note": "kept"}).note == "kept"
    oldest = {key: value for key, value in unpaired.items() if key != "n_pairs"}  # before pairs were counted
    assert verdict_from_dict({**oldest, "n_seeds": 2}).n_pairs == 2
    assert verdict_from_dict({**unpaired, "note": "kept"}).note == "kept"
    crossed = judge(simulate(0.03, n_seeds=3, n_images=100, seed=4, seed_sd=0.01), C2)
    assert verdict_from_dict({**crossed.to_dict(), "note": "kept"}).note == "kept"


def test_coverage_of_the_interval_over_2000_simulated_data_sets_per_seed() -> None:
    rng = np.random.default_rng(2024)
    for n_seeds in (3, 10):
        effects = 0.03 + rng.normal(0, 0.02, (2000, n_seeds)) + rng.normal(0, 0.02, (2000, n_seeds))
        verdicts = [seed_effects_verdict(row, C1) for row in effects]
        coverage = float(np.mean([v.low <= 0.03 <= v.high for v in verdicts]))
        print(f"coverage of the 95 % interval over seeds, {n_seeds} seeds: {coverage:.4f} over 2000 data sets")
        assert 0.93 <= coverage <= 0.97, f"coverage {coverage:.4f} over 2000 data sets of {n_seeds} seeds"


def crossed_draws(effect: float, n_sims: int, rng: np.random.Generator) -> np.ndarray:
    """Per-image differences of ``n_sims`` simulated data sets of 5 seeds × 256 images with seed effects, image
    effects and binomial noise (``simulate_paired_outcomes``)."""
    a, b = simulate_paired_outcomes(effect, n_seeds=5, n_images=256, n_sims=n_sims, rng=rng, image_spread=0.2)
    return a.astype(float) - b


def test_coverage_of_the_crossed_interval_at_5_seeds_and_256_images() -> None:
    n_sims, truth = 4000, 0.03
    d = crossed_draws(truth, n_sims, np.random.default_rng(27))
    moments = crossed_moments(d)
    half = scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, moments.df) * np.sqrt(moments.variance)
    coverage = float(np.mean(np.abs(moments.effect - truth) <= half))
    seed_means = d.mean(-1)
    fixed = scipy_stats.t.ppf(0.975, 4) * seed_means.std(-1, ddof=1) / math.sqrt(5)
    images_fixed = float(np.mean(np.abs(seed_means.mean(-1) - truth) <= fixed))
    print(f"crossed design, 5 seeds × 256 images: coverage {coverage:.4f} over {n_sims} data sets "
          f"(the t-interval over seeds, images held fixed: {images_fixed:.4f})")
    assert 0.93 <= coverage <= 0.97, f"coverage {coverage:.4f} over {n_sims} data sets"
    assert images_fixed < coverage - 0.01, "with image effects the interval over seeds alone is too narrow"


def test_the_crossed_design_detects_its_mde_80_percent_of_the_time() -> None:
    rng = np.random.default_rng(28)
    null = crossed_moments(crossed_draws(0.0, 2000, rng))
    mde = minimum_detectable_effect(float(np.sqrt(null.variance.mean())), float(np.median(null.df)))
    at_mde = crossed_moments(crossed_draws(mde, 2000, rng))
    low = at_mde.effect - scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, at_mde.df) * np.sqrt(at_mde.variance)
    power = float(np.mean(low > 0))
    print(f"crossed design, 5 seeds × 256 images: power at the MDE ({mde:.4g}) {power:.4f} over 2000 data sets")
    assert 0.72 <= power <= 0.88, f"power {power:.4f} at the MDE"


def test_the_minimum_detectable_effect_is_detected_80_percent_of_the_time() -> None:
    n_sims, n_seeds, sd = 2000, 5, 0.02
    mde = minimum_detectable_effect(sd / math.sqrt(n_seeds), n_seeds - 1)
    effects = np.random.default_rng(7).normal(mde, sd, (n_sims, n_seeds))
    power = float(np.mean([seed_effects_verdict(row, C1).low > 0 for row in effects]))
    print(f"power at the MDE over seeds ({mde:.4g}): {power:.4f} over {n_sims} simulated data sets")
    assert 0.75 <= power <= 0.85, f"power {power:.4f} at the MDE over {n_sims} data sets"
    verdict = seed_effects_verdict(effects[0], C1)
    standard_error = effects[0].std(ddof=1) / math.sqrt(n_seeds)
    assert verdict.mde == pytest.approx(minimum_detectable_effect(standard_error, n_seeds - 1))


def test_one_sided_p_value_agrees_with_the_interval() -> None:
    rng = np.random.default_rng(1)
    for row in 0.02 + rng.normal(0, 0.02, (300, 4)):
        verdict = seed_effects_verdict(row, C1)
        assert (verdict.low > 0) == (verdict.p_value < 0.025) == verdict.significant
        assert (verdict.label == "opposite") == (verdict.high < 0)


def test_to_dict_is_strict_json_and_str_is_one_line() -> None:
    for verdict in (judge(simulate(0.04, n_seeds=3, n_images=200, seed=2)),
                    judge(simulate(0.04, n_seeds=1, n_images=200, seed=2))):
        as_dict = verdict.to_dict()
        assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
        assert all(type(v) in (str, int, float, list, bool, type(None)) for v in as_dict.values())
        assert "\n" not in str(verdict) and " a − b = " in str(verdict)
    assert as_dict["low"] is None and as_dict["n_seeds"] == 1 and as_dict["paper_figure_in_prediction"] is None
    assert str(seed_effects_verdict([0.1, 0.11, 0.12], C1, n_pairs=300, comparison="A − B")) == (
        "direction holds, size differs: A − B = +0.11, 95 % CI [+0.0852, +0.135], one-sided p = 0.0014; "
        "paper's figure +0.0432; one run [+0.0603, +0.16]; MDE 0.0326; 3 seeds, 300 pairs")
    assert str(seed_effects_verdict([0.1], SMALLEST, comparison="A − B")) == (
        "inconclusive: A − B = +0.1, one seed: no between-seed replication, so no interval and no test; "
        "smallest effect of interest +0.05; 1 seed, 1 pair")


def test_a_stored_verdict_judged_again_is_the_verdict_it_stores() -> None:
    verdict = judge(simulate(0.03, n_seeds=4, n_images=300, seed=6, seed_sd=0.01), C2)
    again = verdict_from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict
    single = verdict_from_dict(seed_effects_verdict([0.1], C1).to_dict())
    assert single.label == "inconclusive" and single.note.startswith("one seed")
    flat = verdict_from_dict({**stored(0.0, None, None, C1), "low": None, "high": None})
    assert flat.note.startswith("no variation between seeds")


def test_verdicts_per_group_as_a_table() -> None:
    table = pd.concat([simulate(0.04, n_seeds=3, n_images=100, seed=s).assign(level=level)
                       for s, level in enumerate((0.1, 0.2))])
    verdicts = effect_verdicts(table, "level", "a", "b", C1, value="correct")
    frame = verdicts_frame(verdicts, "level")
    assert list(frame.index) == [0.1, 0.2] and frame.index.name == "level"
    assert frame.loc[0.2, "label"] == verdicts[0.2].label and "seed_effects" not in frame
    assert frame.loc[0.2, "verdict"] == verdicts[0.2].flags
    assert frame.loc[0.2, "paper's figure in one run"] == verdicts[0.2].one_run
    differences = paired_differences(table[table["level"] == 0.1], "a", "b", value="correct")
    assert len(differences) == 300
    assert differences.groupby(level="seed").mean().mean() == pytest.approx(verdicts[0.1].effect)
    assert "one-sided test, α = 0.025" in VERDICT_RULE and "Holm-adjusted" in VERDICT_RULE


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


def test_to_dict_turns_only_non_finite_values_into_none_and_keeps_the_seed_effects() -> None:
    verdict = seed_effects_verdict([0.1, 0.11, 0.12], C1, n_pairs=300, comparison="A − B")
    assert replace(verdict, mde=math.inf).to_dict()["mde"] is None and verdict.to_dict()["mde"] == verdict.mde
    as_dict = verdict.to_dict()
    assert as_dict["seed_effects"] == pytest.approx([0.1, 0.11, 0.12])
    assert as_dict["low"] == pytest.approx(0.0852, abs=1e-4) and isinstance(as_dict["effect"], float)
    assert as_dict["underpowered"] is False and as_dict["p_holm"] is None and as_dict["role"] == "primary"


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


def test_a_crossed_estimate_counts_pairs_and_per_seed_effects() -> None:
    differences = pd.DataFrame([[1.0, 0.0, np.nan], [0.0, 1.0, 1.0]])
    estimate = crossed_estimate(differences)
    assert estimate.n_pairs == 5 and estimate.seed_effects == pytest.approx((0.5, 2 / 3))
    assert estimate.design == "seeds × images, partly crossed"
    single = crossed_estimate(differences.iloc[:1])
    assert single.note.startswith("one seed") and single.effect == 0.5
