"""C4 across the mutation budget (the rule that fixes its budget, the curves, the verdict per budget), C5's matched
controls and the order of their arms, the rule that fixes the input noise of the detector test, the thinning of
risk–coverage curves for the record and the per-image outcomes recorded beside it, on small tables with known
answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nsdelib.claims.c4_abc import abc_budget_curves, abc_budget_verdicts, abc_claim, both_correct, c4_budget
from nsdelib.claims.c5_stability import (C5_COMPARISONS, STABILITY_OUTCOME_KEYS, arm_order, stability_by_arm,
                                         stability_claim, stability_controls_claim, stability_outcomes,
                                         stability_record)
from nsdelib.claims.error_detection import (ABC_OUTCOME_KEYS, C4_ENSEMBLE, C4_ONE_DRAW, DETECTOR_ACCURACY, DETECTORS,
                                            DISAGREEMENT, ENTROPY, MSP, abc_outcomes, detector_noise_level,
                                            risk_coverage, thin_risk_coverage)
from nsdelib.report.outcomes import read_outcomes, write_outcomes
from nsdelib.report.paper import PAPER_VALUES

BUDGETS = {"as written": 1.0, "m = 10": 10.0, "m = 100": 100.0}


def abc_curve_rows(convnext: dict[float, float], nsde: dict[float, float], wrong_nsde: int | None = 3) -> pd.DataFrame:
    """Three seeds × four images at every budget: ABC by model and m (± 0.01 per seed); the NSDE gets image
    ``wrong_nsde`` wrong, and ConvNeXt's ABC there is 0 at every budget (it must not count)."""
    rows = []
    for seed, wobble in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
        for budget, m in BUDGETS.items():
            for example in range(4):
                left_out = example == wrong_nsde
                for model, values in (("convnext", convnext), ("nsde", nsde), ("convnext_noise", convnext)):
                    correct = not (left_out and model == "nsde")
                    abc = 0.0 if left_out and model == "convnext" else values[m] + wobble
                    rows.append({"model": model, "seed": seed, "example": example, "budget": budget, "m": m,
                                 "correct": correct, "abc": abc})
    return pd.DataFrame(rows)


def test_both_correct_keeps_every_model_on_the_images_convnext_and_the_nsde_get_right() -> None:
    rows = both_correct(abc_curve_rows({1: 0.9, 10: 0.6, 100: 0.3}, {1: 0.9, 10: 0.7, 100: 0.4}))
    assert sorted(rows["example"].unique()) == [0, 1, 2]
    assert set(rows["model"]) == {"convnext", "nsde", "convnext_noise"} and len(rows) == 3 * 3 * 3 * 3
    # without NSDE rows no image is known to be classified correctly by both
    assert both_correct(abc_curve_rows({1: 0.9, 10: 0.6, 100: 0.3}, {1: 0.9, 10: 0.7, 100: 0.4}, wrong_nsde=None)
                        .query("model != 'nsde'")).empty


def test_c4_budget_is_where_convnext_reaches_the_papers_value_whatever_the_nsde_does() -> None:
    convnext = {1: 0.99, 10: 0.6, 100: 0.3}
    crossing = c4_budget(abc_curve_rows(convnext, {1: 0.99, 10: 0.9, 100: 0.8}))
    target = PAPER_VALUES["C4.convnext_abc_correct"]
    share = (0.6 - target) / (0.6 - 0.3)
    assert crossing.crossed and crossing.value == pytest.approx(10 ** (1 + share))
    # the NSDE's ABC never enters the rule
    assert c4_budget(abc_curve_rows(convnext, {1: 0.1, 10: 0.1, 100: 0.1})).value == pytest.approx(crossing.value)
    flat = c4_budget(abc_curve_rows({1: 0.99, 10: 0.95, 100: 0.9}, {1: 0.9, 10: 0.9, 100: 0.9}))
    assert (flat.value, flat.crossed) == (100.0, False) and "never reaches" in flat.note
    with pytest.raises(ValueError,
                       match=r"^no ConvNeXt rows on images both models classify correctly: C4's budget is undefined$"):
        c4_budget(abc_curve_rows(convnext, convnext).query("model != 'convnext'"))


def test_abc_curves_over_seeds_and_verdicts_per_budget() -> None:
    curve = abc_curve_rows({1: 0.99, 10: 0.5, 100: 0.2}, {1: 0.99, 10: 0.6, 100: 0.2})
    table = abc_budget_curves(curve)
    assert table.index.equals(pd.RangeIndex(len(table)))
    curves = table.set_index(["images", "model", "m"])
    assert curves.loc[("both correct", "convnext", 10.0), "mean"] == pytest.approx(0.5)
    assert curves.loc[("both correct", "convnext", 10.0), "n"] == 3
    assert curves.loc[("own wrong", "nsde", 10.0), "mean"] == pytest.approx(0.6)
    assert ("own wrong", "convnext", 10.0) not in curves.index  # ConvNeXt made no mistake
    verdicts = abc_budget_verdicts(curve)
    assert list(verdicts.index) == ["as written", "m = 10", "m = 100"] and verdicts["m"].tolist() == [1, 10, 100]
    assert verdicts.index.name == "budget" and verdicts.columns[0] == "m"
    assert verdicts.loc["m = 10", "effect"] == pytest.approx(0.1) and verdicts.loc["m = 10", "n_pairs"] == 9
    assert verdicts.loc["m = 100", "label"] == "inconclusive"  # no difference at all: no interval
    assert (verdicts["role"] == "exploratory").all() and (verdicts["family"] == "C4 budgets").all()


def test_abc_curves_without_an_image_both_models_get_right_give_the_wrong_ones() -> None:
    curve = abc_curve_rows({1: 0.99, 10: 0.5, 100: 0.2}, {1: 0.99, 10: 0.6, 100: 0.2})
    curve["correct"] &= curve["model"] != "convnext"  # ConvNeXt gets every image wrong
    curves = abc_budget_curves(curve)
    assert set(curves["images"]) == {"own wrong"}
    at = curves.set_index(["model", "m"])
    assert at.loc[("convnext", 10.0), "mean"] == pytest.approx(3 * 0.5 / 4)  # its ABC is 0 on the fourth image
    assert at.loc[("nsde", 10.0), "mean"] == pytest.approx(0.6)


def c5_rows(change: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Stability rows of three seeds × five images at two levels, log change per arm (± seeded noise)."""
    rng = np.random.default_rng(1)
    rows = []
    for (model, variant), value in change.items():
        for seed in range(3):
            for example in range(5):
                for level in (0.02, 0.1):
                    log_change = value + level + rng.normal(0, 0.02)
                    rows.append({"model": model, "variant": variant, "seed": seed, "example": example, "level": level,
                                 "log_change": log_change, "log_raw_change": 2 * log_change,
                                 "reported": variant in ("one map", "averaged over its noise")})
    return pd.DataFrame(rows)


ARMS = {("convnext", "one map"): -1.0, ("convnext", "averaged over input noise"): -1.5,
        ("nsde", "averaged over its noise"): -1.5, ("nsde", "one noise draw"): -1.0, ("nsde", "noise off"): -1.0}


def test_c5_controls_separate_averaging_from_the_model() -> None:
    # Here the NSDE is steadier only because its maps are averaged: equal averaging and single maps show no effect.
    verdicts = stability_controls_claim(c5_rows(ARMS))
    names = [name for name, *_ in C5_COMPARISONS]
    assert list(dict.fromkeys(verdicts.index.get_level_values("control"))) == [
        names[0], names[1], names[2], names[3], names[6]]  # the noise-trained control is absent
    at = verdicts.xs(0.1, level="level")
    assert at.loc[names[0], "effect"] == pytest.approx(0.5, abs=0.03) and at.loc[names[0], "label"] == "reproduced"
    for name in (names[1], names[2], names[3]):
        assert abs(at.loc[name, "effect"]) < 0.03 and at.loc[name, "label"] == "not reproduced"
    assert at.loc[names[6], "effect"] == pytest.approx(0.5, abs=0.03)
    assert at.loc[names[0], "comparison"] == "ConvNeXt, one map − NSDE-ConvNeXt, averaged over its noise"
    literal = stability_controls_claim(c5_rows(ARMS), value="log_raw_change").xs(0.1, level="level")
    assert literal.loc[names[0], "effect"] == pytest.approx(1.0, abs=0.06)
    renamed = stability_controls_claim(c5_rows(ARMS).rename(columns={"example": "image"}), unit="image")
    assert renamed["effect"].tolist() == pytest.approx(verdicts["effect"].tolist())
    assert (renamed["n_pairs"] == 15).all()
    # C5's primary verdict is the claim as reported at the largest level; every other row is one Holm family
    assert verdicts.loc[(names[0], 0.1), "role"] == "primary" and (verdicts["role"] == "primary").sum() == 1
    assert set(verdicts.loc[verdicts["role"] == "exploratory", "family"]) == {"C5 controls"}
    assert (stability_controls_claim(c5_rows(ARMS), primary=False)["role"] == "exploratory").all()


def test_c5_controls_judge_a_comparison_whose_arms_are_the_only_ones() -> None:
    names = [name for name, *_ in C5_COMPARISONS]
    verdicts = stability_controls_claim(c5_rows({("convnext", "one map"): -1.0,
                                                 ("nsde", "averaged over its noise"): -1.5}))
    assert verdicts.index.tolist() == [(names[0], 0.02), (names[0], 0.1)]


def test_stability_by_arm_gives_both_measures_per_level() -> None:
    raw = stability_by_arm(c5_rows(ARMS))
    assert raw.index.equals(pd.RangeIndex(len(raw))) and len(raw) == 2 * 2 * len(ARMS)
    table = raw.set_index(["measure", "level", "arm"])
    normalised = table.loc[("normalised", 0.1, "ConvNeXt, one map")]
    assert normalised["mean"] == pytest.approx(-0.9, abs=0.03) and normalised["n"] == 3 and normalised["reported"]
    assert table.loc[("literal", 0.1, "ConvNeXt, one map"), "mean"] == pytest.approx(-1.8, abs=0.06)
    assert not table.loc[("normalised", 0.02, "NSDE-ConvNeXt, noise off"), "reported"]


def test_arm_order_is_by_model_then_variant_whatever_the_row_order() -> None:
    by_arm = stability_by_arm(c5_rows(ARMS)).sample(frac=1.0, random_state=0)
    assert arm_order(by_arm) == ["ConvNeXt, one map", "ConvNeXt, averaged over input noise",
                                 "NSDE-ConvNeXt, averaged over its noise", "NSDE-ConvNeXt, one noise draw",
                                 "NSDE-ConvNeXt, noise off"]
    assert arm_order(by_arm[by_arm["model"] == "nsde"]) == ["NSDE-ConvNeXt, averaged over its noise",
                                                            "NSDE-ConvNeXt, one noise draw", "NSDE-ConvNeXt, noise off"]
    with pytest.raises(ValueError, match="unknown model or map variant"):
        arm_order(by_arm.assign(variant="two maps"))


def test_the_c5_record_holds_both_measures_and_the_controls() -> None:
    shares = pd.DataFrame({"model": ["nsde"], "seed": [0], "share": [0.5]})
    record = stability_record(c5_rows(ARMS), shares)
    assert set(record) == {"per_seed", "by_arm", "c5", "c5_literal", "verdicts", "verdicts_literal", "controls",
                           "controls_literal", "share_on_brightest"}
    assert record["verdicts"]["0.1"]["effect"] == pytest.approx(0.5, abs=0.03)
    assert record["verdicts_literal"]["0.1"]["effect"] == pytest.approx(1.0, abs=0.06)
    assert record["controls"]["role"].count("primary") == 1 and "primary" not in record["controls_literal"]["role"]
    assert len(record["per_seed"]["seed"]) == len(ARMS) * 3 * 2 and record["share_on_brightest"]["share"] == [0.5]


def recorded_back(outcomes: pd.DataFrame, keys: tuple[str, ...], path: Path) -> pd.DataFrame:
    """``outcomes`` written as a record's per-image outcomes and read back, checked equal, in wide form again (one
    column per measure, the keys but ``measure`` as columns)."""
    back = read_outcomes(write_outcomes(path, outcomes, keys=keys, value="value"))
    order = [*keys, "example"]
    pd.testing.assert_frame_equal(back.sort_values(order).reset_index(drop=True),
                                  outcomes.sort_values(order).reset_index(drop=True))
    return back.pivot(index=[*keys[:-1], "example"], columns="measure", values="value").reset_index()


def test_c5s_recorded_outcomes_round_trip_and_give_its_verdicts_again(tmp_path: Path) -> None:
    stability = c5_rows(ARMS).astype({"log_change": np.float32, "log_raw_change": np.float32})  # as computed
    outcomes = stability_outcomes(stability)
    assert len(outcomes) == 2 * len(stability) and set(outcomes["measure"]) == {"log_change", "log_raw_change"}
    wide = recorded_back(outcomes, STABILITY_OUTCOME_KEYS, tmp_path / "attribution_stability.json")
    for value in ("log_change", "log_raw_change"):
        _, fresh = stability_claim(stability[stability["reported"]], value=value)
        _, again = stability_claim(wide[wide["reported"]], value=value)
        assert {level: v.label for level, v in again.items()} == {level: v.label for level, v in fresh.items()}
        assert [v.effect for v in again.values()] == pytest.approx([v.effect for v in fresh.values()])
    controls = stability_controls_claim(wide)["effect"]
    assert controls.tolist() == pytest.approx(stability_controls_claim(stability)["effect"].tolist(), abs=1e-6)


def detector_rows(seeds: int = 3, images: int = 4) -> pd.DataFrame:
    """Detector scores of ConvNeXt (no disagreement of passes) and the NSDE under noise, with one ABC column."""
    rng = np.random.default_rng(2)
    rows = [{"model": model, "seed": seed, "example": example, "label": 1, "predicted": 1,
             "correct": bool(rng.random() < 0.7), MSP: rng.random(), ENTROPY: rng.random(),
             DISAGREEMENT: rng.random() if model == "nsde" else np.nan, "ABC at C4's budget": rng.random()}
            for model in ("convnext", "nsde") for seed in range(seeds) for example in range(images)]
    return pd.DataFrame(rows)


def test_c4s_recorded_outcomes_round_trip_and_give_both_verdicts_again(tmp_path: Path) -> None:
    # ABC is stored as float32, as the chapter computes it; per-image noise keeps the seeds' effects apart
    rng = np.random.default_rng(3)
    one_draw = abc_curve_rows({1: 0.9, 10: 0.6, 100: 0.3}, {1: 0.9, 10: 0.7, 100: 0.4}).query("m == 10").assign(
        abc=lambda t: (t["abc"] + rng.normal(0, 0.05, len(t))).astype(np.float32))
    ensemble = pd.concat([one_draw[one_draw["model"] == "convnext"],
                          one_draw[one_draw["model"] == "nsde"].assign(abc=lambda t: t["abc"] + np.float32(0.05))])
    outcomes = abc_outcomes(one_draw, ensemble, detector_rows(), ["ABC at C4's budget"])
    measures = outcomes.groupby(["source", "model"])["measure"].unique().map(sorted)
    assert measures[C4_ONE_DRAW, "convnext_noise"] == ["abc", "correct"]
    assert measures[DETECTORS, "convnext"] == sorted(["correct", MSP, ENTROPY, "ABC at C4's budget"])
    assert DISAGREEMENT in measures[DETECTORS, "nsde"]
    wide = recorded_back(outcomes, ABC_OUTCOME_KEYS, tmp_path / "abc.json")
    for source, rows in ((C4_ONE_DRAW, one_draw), (C4_ENSEMBLE, ensemble)):
        fresh, again = abc_claim(rows)[1], abc_claim(wide[wide["source"] == source])[1]
        assert (again.label, again.effect, again.n_pairs) == (fresh.label, pytest.approx(fresh.effect), fresh.n_pairs)


def test_thin_risk_coverage_keeps_at_most_the_asked_rows_of_each_curve_with_its_ends() -> None:
    rng = np.random.default_rng(0)
    curves = pd.concat([risk_coverage(rng.random(500), rng.random(500) < 0.8).assign(model=model, score="msp")
                        for model in ("a", "b")], ignore_index=True)
    thin = thin_risk_coverage(curves, points=11)
    for model, curve in curves.groupby("model"):
        kept = thin[thin["model"] == model]
        assert 2 <= len(kept) <= 11
        assert kept["coverage"].iloc[0] == curve["coverage"].min() and kept["coverage"].iloc[-1] == 1.0
        assert kept["coverage"].is_monotonic_increasing
        assert set(kept["risk"]) <= set(curve["risk"])  # rows of the curve, not interpolated
        assert (np.diff(kept["coverage"]) < 0.1 + 1 / 500).all()  # no gap wider than the grid's step
    short = curves[curves["model"] == "a"].head(3)  # as few rows as points or fewer: kept whole
    assert thin_risk_coverage(short, points=3).equals(short.reset_index(drop=True))
    ends = thin_risk_coverage(curves, points=2)
    assert ends.groupby("model")["coverage"].agg(list).to_dict() == {
        model: [curve["coverage"].min(), 1.0] for model, curve in curves.groupby("model")}


def even_curve(n: int, model: str = "a", top: float = 1.0) -> pd.DataFrame:
    """A risk–coverage curve of ``n`` rows at evenly spaced coverages up to ``top``, the risk naming the row."""
    return pd.DataFrame({"coverage": np.arange(1, n + 1) * top / n, "risk": np.arange(n) / n, "model": model,
                         "score": "msp"})


def test_thin_risk_coverage_defaults_to_101_points_in_the_order_of_the_curves() -> None:
    thin = thin_risk_coverage(pd.concat([even_curve(1000, "b"), even_curve(1000, "a")], ignore_index=True))
    assert thin["model"].value_counts().to_dict() == {"b": 101, "a": 101}
    assert thin["model"].iloc[0] == "b" and thin["model"].iloc[-1] == "a"  # curves in the order they come


def test_thin_risk_coverage_keeps_the_last_row_of_a_curve_that_ends_below_full_coverage() -> None:
    thin = thin_risk_coverage(even_curve(100, top=0.5), points=11)
    # grid points 0, 0.1, …, 0.5 each keep a row; those above 0.5 all fall on the last one
    assert len(thin) == 6 and thin["coverage"].iloc[0] == 0.005 and thin["coverage"].iloc[-1] == 0.5


def test_thin_risk_coverage_keeps_the_first_listed_of_rows_at_equal_coverage() -> None:
    rng = np.random.default_rng(0)
    curve = pd.DataFrame({"coverage": rng.integers(0, 5, 60) / 4, "risk": np.arange(60) / 60, "model": "a",
                          "score": "msp"})
    thin = thin_risk_coverage(curve, points=3)
    first = curve.groupby("coverage")["risk"].first()  # first in the order the rows come
    assert thin["coverage"].tolist() == [0.0, 0.5, 1.0]
    assert thin["risk"].tolist() == [first[0.0], first[0.5], first[1.0]]


def test_detector_noise_level_reads_only_the_plain_convnext() -> None:
    rows = []
    for std, convnext, nsde in ((0.1, 0.9, 0.2), (0.2, 0.7, 0.2), (0.4, 0.5, 0.2)):
        for seed in range(2):
            for example in range(10):
                rows.append({"model": "convnext", "seed": seed, "std": std, "example": example,
                             "correct": example < 10 * convnext})
                rows.append({"model": "nsde", "seed": seed, "std": std, "example": example,
                             "correct": example < 10 * nsde})
    crossing = detector_noise_level(pd.DataFrame(rows))
    share = (0.7 - DETECTOR_ACCURACY) / (0.7 - 0.5)
    assert crossing.crossed and crossing.value == pytest.approx(0.2 * 2**share)
    with pytest.raises(ValueError, match=r"^the detector noise rule reads the plain ConvNeXt's accuracy, and there are "
                                         r"no ConvNeXt rows$"):
        detector_noise_level(pd.DataFrame(rows).query("model == 'nsde'"))
