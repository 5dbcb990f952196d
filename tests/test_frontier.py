"""Reading the calibration sweep: cost per doubling, the cliff, the setting at the paper's cost, the gains."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nsdelib.book.profiles import get_profile
from frontier_toys import frontier_outcomes, frontier_seed
from nsdelib.claims.c2_noise import (MATCHED_FAMILY, at_largest_level, at_max_sentence, c2_comparisons, design_cells, design_table,
                                     design_verdicts, frontier_seed_counts, frontier_training, matched_accuracy_effects,
                                     matched_accuracy_verdicts, matched_differences, recorded_level_rows,
                                     recorded_noise_findings,
                                     structured_versus_both)
from nsdelib.claims.sigma_tuning import (choice_origin, choice_sentence, fixed_choice, frontier_plan, frontier_points,
                                        frontier_reading, settings_at_cost, settings_at_cost_sentence, sweep_epochs,
                                        unrun_points)
from nsdelib.models.nsde import SDEConfig
from nsdelib.report.stats import effects_in_points

SDE = SDEConfig.build(ensemble_size=8)


def point(kind: str, clean: float, gaussian: float, sigma: float | None = None, std: float | None = None,
          form: str | None = None, shape: str | None = None) -> dict[str, object]:
    """One row as ``measure_point`` writes it (only the columns the reading uses)."""
    return {"kind": kind, "diffusion": form, "noise_shape": shape, "sigma": sigma, "input_noise_std": std,
            "clean_off": clean, "clean_single": clean if kind == "nsde" else None, "gaussian_0.2": gaussian,
            "apgd_l2_1": 0.1}


def sweep() -> pd.DataFrame:
    nsde = [point("nsde", acc, g, sigma=s, form="relative", shape="coloured")
            for s, acc, g in [(0.1, 0.89, 0.6), (0.2, 0.88, 0.65), (0.4, 0.87, 0.7), (0.8, 0.50, 0.4)]]
    rising = [point("nsde", acc, 0.6, sigma=s, form="relative", shape="white") for s, acc in [(0.1, 0.80), (0.2, 0.81)]]
    control = [point("convnext_noise", 0.91, 0.8, std=0.1)]
    return pd.DataFrame([point("convnext", 0.90, 0.6), *nsde, *rising, *control])


def test_cost_cliff_paper_setting_and_gains_of_a_line() -> None:
    row = frontier_reading(sweep(), target_cost=0.0432).loc["NSDE, relative, coloured"]
    assert row["points"] == 4 and row["setting"] == "σ"
    assert row["cost per doubling before the cliff (points)"] == pytest.approx(1.0)
    assert (row["cliff from"], row["cliff to"]) == (0.4, 0.8)
    assert row["cliff: fall (points)"] == pytest.approx(37.0)
    t = (0.0432 - 0.03) / (0.40 - 0.03)
    assert row["setting at the paper's cost"] == pytest.approx(np.exp(np.log(0.4) + t * np.log(2)))
    assert row["last setting before the cliff"] == 0.4 and row["clean cost there (points)"] == pytest.approx(3.0)
    assert row["gain there, gaussian_0.2 (points)"] == pytest.approx(10.0)
    assert row["gain there, apgd_l2_1 (points)"] == pytest.approx(0.0)


def test_a_line_that_never_falls_has_no_cliff_and_a_single_point_has_no_slope() -> None:
    table = frontier_reading(sweep(), target_cost=0.0432)
    rising = table.loc["NSDE, relative, white"]
    assert math.isnan(rising["cliff from"]) and math.isnan(rising["cliff: fall (points)"])
    assert rising["cost per doubling before the cliff (points)"] == pytest.approx(-1.0)
    assert math.isnan(rising["setting at the paper's cost"])
    control = table.loc["ConvNeXt + input noise"]
    assert control["setting"] == "input-noise std" and control["points"] == 1
    assert math.isnan(control["cost per doubling before the cliff (points)"])
    assert control["gain there, gaussian_0.2 (points)"] == pytest.approx(20.0)
    assert list(table.index) == ["NSDE, relative, coloured", "NSDE, relative, white", "ConvNeXt + input noise"]


def test_a_sweep_without_its_convnext_is_refused() -> None:
    points = sweep()
    with pytest.raises(ValueError, match="exactly one ConvNeXt point .* found 0"):
        frontier_reading(points[points["kind"] != "convnext"], target_cost=0.0432)


def test_matched_accuracy_interpolates_the_control_to_the_nsde_clean_accuracy_and_never_extrapolates() -> None:
    control = [(0.1, 0.90, 0.70), (0.2, 0.86, 0.78), (0.4, 0.80, 0.80)]
    points = pd.DataFrame(frontier_seed(0, 0.88, 0.80, control) + frontier_seed(1, 0.95, 0.9, control))
    effects = matched_accuracy_effects(points, 0.43, "gaussian_0.05")
    first = effects.iloc[0]
    assert first["matched clean accuracy"] == 0.88 and first["control at that clean accuracy"] == pytest.approx(0.74)
    assert first["NSDE − control"] == pytest.approx(0.06)
    assert (first["control below"], first["control above"]) == ("frontier/convnext_noise-std0.2-seed0",
                                                                "frontier/convnext_noise-std0.1-seed0")
    assert first["weight above"] == pytest.approx(0.5) and first["NSDE record"] == "frontier/nsde-sigma0.43-seed0"
    assert math.isnan(effects.iloc[1]["NSDE − control"]), "0.95 lies above every control point: no extrapolation"


def convnext_row(seed: int, clean: float, robust: float) -> dict[str, object]:
    """The seed's ConvNeXt as ``load_frontier`` gives it: no σ, no input-noise std."""
    return {"kind": "convnext", "seed": seed, "sigma": None, "input_noise_std": None, "clean": clean,
            "clean_off": clean, "gaussian_0.05": robust, "apgd_l2_1": 0.05, "record": f"frontier/convnext-seed{seed}"}


def test_convnext_is_the_control_lines_std_0_end_and_matches_an_nsde_above_every_noisy_point() -> None:
    control = [(0.1, 0.90, 0.80), (0.2, 0.86, 0.84)]
    points = pd.DataFrame([*frontier_seed(0, 0.92, 0.85, control), convnext_row(0, 0.94, 0.60)])
    effects = matched_accuracy_effects(points, 0.43, "gaussian_0.05")
    row = effects.iloc[0]
    assert (row["control below"], row["control above"]) == ("frontier/convnext_noise-std0.1-seed0",
                                                            "frontier/convnext-seed0")
    assert row["weight above"] == pytest.approx(0.5) and row["control at that clean accuracy"] == pytest.approx(0.70)
    noisy_only = matched_accuracy_effects(points, 0.43, "gaussian_0.05", control_kinds=("convnext_noise",))
    assert math.isnan(noisy_only.iloc[0]["NSDE − control"]), "without its std-0 end the line stops at 0.90"


def test_where_the_control_line_reaches_the_accuracy_twice_the_noisier_crossing_counts() -> None:
    """A little input noise raised the clean accuracy above ConvNeXt's: the line crosses 0.895 before and after."""
    control = [(0.1, 0.91, 0.80), (0.2, 0.87, 0.84)]
    points = pd.DataFrame([*frontier_seed(0, 0.895, 0.85, control), convnext_row(0, 0.89, 0.60)])
    row = matched_accuracy_effects(points, 0.43, "gaussian_0.05").iloc[0]
    assert (row["control below"], row["control above"]) == ("frontier/convnext_noise-std0.2-seed0",
                                                            "frontier/convnext_noise-std0.1-seed0")
    assert row["weight above"] == pytest.approx(0.625)
    assert row["control at that clean accuracy"] == pytest.approx(0.815), "not 0.60 + …: ConvNeXt is passed over"


def test_per_image_matched_differences_average_to_each_seeds_effect_and_skip_seeds_without_outcomes() -> None:
    control = [(0.1, 0.90, 0.70), (0.2, 0.86, 0.78), (0.4, 0.80, 0.80)]
    points = pd.DataFrame(frontier_seed(0, 0.88, 0.80, control) + frontier_seed(1, 0.87, 0.75, control))
    outcomes = frontier_outcomes(points, np.random.default_rng(3))
    effects = matched_accuracy_effects(points, 0.43, "gaussian_0.05")
    differences = matched_differences(effects, outcomes)
    assert differences.shape == (2, 200)
    assert differences.mean(axis=1).tolist() == pytest.approx(effects["NSDE − control"].tolist())
    assert set(np.round(differences.loc[0].unique(), 6)) <= {-1.0, -0.5, 0.0, 0.5, 1.0}, "the mix of two controls"
    without_seed_1 = outcomes[~outcomes["record"].str.endswith("std0.2-seed1")]
    assert matched_differences(effects, without_seed_1).index.tolist() == [0]


def test_matched_accuracy_verdicts_find_a_control_ahead_and_name_the_primary_measure() -> None:
    rng = np.random.default_rng(0)
    control = [(0.1, 0.90, 0.80), (0.4, 0.80, 0.90)]
    points = pd.DataFrame([row for seed in range(5)
                           for row in frontier_seed(seed, 0.85, 0.70 + 0.005 * rng.standard_normal(), control)])
    verdicts = matched_accuracy_verdicts(points, frontier_outcomes(points, rng), 0.43)
    assert list(verdicts.index) == ["gaussian_0.05", "apgd_l2_1"]
    primary = verdicts.loc["gaussian_0.05"]
    assert primary["effect"] == pytest.approx(-0.15, abs=0.01) and primary["high"] < 0
    assert primary["label"] == "opposite" and primary["design"] == "seeds × images, crossed"
    assert primary["n_seeds"] == 5 and primary["n_pairs"] == 5 * 200
    assert primary["family"] != MATCHED_FAMILY and verdicts.loc["apgd_l2_1", "family"] == MATCHED_FAMILY


def design_sweep(sde_effect: float, weight_effect: float) -> pd.DataFrame:
    """A per-image sweep of the 2 × 2 design: 5 seeds × 200 images, the noise effects as shifts of P(correct)."""
    rng = np.random.default_rng(1)
    cells = design_cells(SDE)
    base = {cells["no", "no"]: 0.6, cells["no", "yes"]: 0.6, cells["yes", "no"]: 0.6 + weight_effect,
            cells["yes", "yes"]: 0.6 + weight_effect + sde_effect}
    rows = [{"noise": "gaussian", "level": level, "mode": mode, "seed": seed, "example": image,
             "correct": float(rng.random() < p - level)}
            for seed in range(5) for image in range(200) for level in (0.0, 0.2, 0.3) for mode, p in base.items()]
    return pd.DataFrame(rows)


def test_design_separates_what_the_weights_and_the_test_time_noise_each_do() -> None:
    sweep = design_sweep(sde_effect=0.0, weight_effect=0.3)
    table = design_table(sweep, SDE)
    assert table.loc[("yes", "no"), 0.0] - table.loc[("no", "no"), 0.0] == pytest.approx(0.3, abs=0.06)
    verdicts = design_verdicts(sweep, SDE)
    weights = verdicts.loc[("noise in training (test-time noise off)", 0.0)]
    assert weights["low"] > 0.02 and weights["label"] == "reproduced"
    assert 0.3 not in verdicts.index.get_level_values("Gaussian std"), "only the design's levels are judged"
    for effect in ("test-time noise, NSDE", "test-time noise, ConvNeXt"):
        assert verdicts.loc[(effect, 0.0), "low"] < 0 < verdicts.loc[(effect, 0.0), "high"]


def test_frontier_points_at_the_profile_settings_are_chapter_3s_models() -> None:
    profile = get_profile("paper")
    points = frontier_points(profile.calibration, profile.model)
    own = [point for kind, point in points if point == profile.model]
    assert len(own) == 3, "ConvNeXt, the control at its std and the NSDE at its σ reuse chapter 3's models"
    assert {kind for kind, _ in points} == {"convnext", "convnext_noise", "nsde"}


def test_the_plan_runs_every_frontier_point_on_the_first_frontier_seeds() -> None:
    profile = get_profile("paper")
    cfg = profile.calibration
    plan = frontier_plan(cfg, profile.model, range(profile.n_seeds))
    assert profile.n_seeds > cfg.frontier_seeds
    assert len(plan) == len(frontier_points(cfg, profile.model)) * cfg.frontier_seeds
    assert sorted({seed for *_, seed in plan}) == list(range(cfg.frontier_seeds))
    assert len(frontier_plan(cfg, profile.model, [7])) == len(frontier_points(cfg, profile.model)), "fewer seeds"


def test_seed_counts_name_each_point_of_the_frontier() -> None:
    control = [(0.1, 0.90, 0.70), (0.2, 0.86, 0.78)]
    points = pd.DataFrame(frontier_seed(0, 0.88, 0.8, control) + frontier_seed(1, 0.88, 0.8, control[:1]))
    assert frontier_seed_counts(points).to_dict() == {"NSDE σ 0.43": 2, "control std 0.1": 2, "control std 0.2": 1}


def test_a_partial_frontier_gives_inconclusive_verdicts_instead_of_failing() -> None:
    """A frontier recorded point by point may hold ConvNeXt alone, or the NSDE without enough control points."""
    convnext_only = pd.DataFrame([{"kind": "convnext", "seed": 0, "sigma": None, "input_noise_std": None,
                                   "clean": 0.9, "clean_off": 0.9, "gaussian_0.05": 0.8, "apgd_l2_1": 0.1}])
    convnext_only["record"] = "frontier/convnext-seed0"
    nsde_and_one_control = pd.DataFrame(frontier_seed(0, 0.88, 0.8, [(0.1, 0.9, 0.7)]))
    for points in (convnext_only, nsde_and_one_control):
        assert matched_accuracy_effects(points, 0.43, "gaussian_0.05").empty
        assert matched_accuracy_verdicts(points, frontier_outcomes(points, np.random.default_rng(0)), 0.43) is None
    complete = pd.DataFrame(frontier_seed(0, 0.88, 0.8, [(0.1, 0.9, 0.7), (0.2, 0.85, 0.75)]))
    without_outcomes = frontier_outcomes(complete, np.random.default_rng(0)).iloc[:0]
    assert matched_accuracy_verdicts(complete, without_outcomes, 0.43) is None, "records without per-image outcomes"


def test_sweep_epochs_says_how_long_the_points_trained() -> None:
    assert sweep_epochs(pd.DataFrame({"epochs": [12, 12, 12]})) == "12 epochs each"
    assert sweep_epochs(pd.DataFrame({"epochs": [12, 8, 10]})) == "8 to 12 epochs"


def test_the_frontier_finds_each_seeds_setting_at_the_paper_cost_and_never_extrapolates() -> None:
    def seed_rows(seed: int, convnext: float, nsde: list[tuple[float, float]], control: list[tuple[float, float]]):
        return ([{"kind": "convnext", "seed": seed, "clean_off": convnext, "sigma": None, "input_noise_std": None}]
                + [{"kind": "nsde", "seed": seed, "sigma": s, "clean_single": c, "input_noise_std": None}
                   for s, c in nsde]
                + [{"kind": "convnext_noise", "seed": seed, "input_noise_std": s, "clean_off": c, "sigma": None}
                   for s, c in control])

    points = pd.DataFrame(seed_rows(0, 0.90, [(0.3, 0.89), (0.6, 0.85)], [(0.1, 0.89), (0.4, 0.88)])
                          + seed_rows(1, 0.90, [(0.3, 0.80), (0.6, 0.70)], [(0.1, 0.88), (0.4, 0.84)])
                          + [{"kind": "nsde", "seed": 2, "sigma": 0.3, "clean_single": 0.8}])
    table = settings_at_cost(points, target_cost=0.03)
    assert table.index.tolist() == [0, 1], "a seed without its ConvNeXt has no reference"
    t = (0.03 - 0.01) / (0.05 - 0.01)
    assert table.loc[0, "NSDE σ (one pass)"] == pytest.approx(math.exp(math.log(0.3) + t * math.log(2)))
    assert math.isnan(table.loc[0, "control std"]), "costs of 1 and 2 points do not reach 3: no std"
    assert math.isnan(table.loc[1, "NSDE σ (one pass)"]), "costs 10 to 20 points lie beyond the target: no σ"
    assert table.loc[1, "control std"] == pytest.approx(0.1 * 4 ** 0.25), "a quarter of the way from 2 to 6 points"


def test_the_settings_at_the_paper_cost_are_said_over_the_seeds_that_bracket_it() -> None:
    table = pd.DataFrame({"NSDE σ (one pass)": [0.6, 0.7, math.nan], "control std": [math.nan] * 3})
    sentence = settings_at_cost_sentence(table, {"NSDE σ (one pass)": 0.43, "control std": 0.23})
    assert sentence.startswith("the NSDE σ (one pass) is 0.65 [0.01, 1.29] over 2 of 3 seeds (the book uses 0.43); ")
    assert sentence.endswith("for the control std no recorded seed's frontier brackets the cost yet (the book uses 0.23)")
    one = settings_at_cost_sentence(table.iloc[:1], {"NSDE σ (one pass)": 0.43})
    assert one == "the NSDE σ (one pass) is 0.60 over 1 of 1 seeds (the book uses 0.43)"


def test_a_sweep_says_which_of_its_points_were_not_run() -> None:
    config = {"forms": ["relative", "multiplicative"], "shapes": ["white", "coloured"], "sigmas": [0.1, 0.2],
              "input_noise_stds": [0.1, 0.4]}
    points = pd.DataFrame([point("convnext", 0.9, 0.6), point("convnext_noise", 0.9, 0.6, std=0.1)]
                          + [point("nsde", 0.9, 0.6, sigma=s, form="relative", shape=shape)
                             for shape in ("white", "coloured") for s in (0.1, 0.2) if (shape, s) != ("coloured", 0.2)])
    assert unrun_points(points, config) == ("the relative diffusion at σ 0.2 with coloured noise; the whole "
                                            "multiplicative diffusion (4 points); the control at std 0.4")
    complete = {**config, "forms": ["relative"], "input_noise_stds": [0.1]}
    assert unrun_points(points[points["sigma"].ne(0.2) | points["noise_shape"].ne("coloured")], complete) == (
        "the relative diffusion at σ 0.2 with coloured noise")
    assert unrun_points(pd.concat([points, pd.DataFrame([point("nsde", 0.9, 0.6, sigma=0.2, form="relative",
                                                               shape="coloured")])]), complete) == ""
    assert unrun_points(points[points["kind"] != "convnext"], complete).endswith("ConvNeXt")


def test_the_choice_in_use_is_carried_forward_and_a_rerun_never_moves_it() -> None:
    used = {"sigma": 0.43, "input_noise_std": 0.23}
    first = {"choice": {**used, "convnext_accuracy": 0.9}, "points": {"epochs": [12, 12]}}
    assert fixed_choice(None, first, used) == {**first["choice"], "recorded_by": "this record"}
    previous = {"result": {**first, "fixed_choice": fixed_choice(None, first, used)},
                "provenance": {"commit": "297dfd5c" + "0" * 32, "date": "2026-11-22T08:22:03+00:00"}}
    rerun = {"choice": {"sigma": 0.66, "input_noise_std": 0.3, "convnext_accuracy": 0.91}, "points": {"epochs": [25]}}
    carried = fixed_choice(previous, rerun, used)
    assert carried == {**first["choice"], "recorded_by": "the sweep recorded at commit 297dfd5 on 2026-11-22, "
                                                         "12 epochs each"}
    again = {"result": {**rerun, "fixed_choice": carried}, "provenance": {"commit": "abc", "date": "2026-12-07"}}
    assert fixed_choice(again, rerun, used) == carried, "carried through every later re-run"
    assert fixed_choice(None, rerun, used) == {}, "no record backs settings that no sweep chose"
    assert fixed_choice(again, rerun, {"sigma": 0.66, "input_noise_std": 0.3})["recorded_by"].startswith(
        "the sweep recorded at commit abc"), "a profile moved to the re-run's choice is backed by the re-run"


def test_the_origin_of_the_choice_in_use_is_said_from_the_record() -> None:
    points = {"epochs": [12, 12]}
    assert choice_origin({"points": points, "choice": {}}) == "one seed per point, 12 epochs each"
    own = {"points": points, "fixed_choice": {"sigma": 0.4, "recorded_by": "this record"}}
    assert choice_origin(own) == "one seed per point, 12 epochs each"
    carried = {"points": {"epochs": [25, 18]}, "fixed_choice": {"recorded_by": "the sweep recorded at commit abc"}}
    assert choice_origin(carried) == "the sweep recorded at commit abc"


def test_a_choice_is_said_in_words_and_an_open_setting_is_not_printed_as_a_number() -> None:
    made = {"sigma": 0.43, "input_noise_std": 0.23, "convnext_accuracy": 0.909}
    assert choice_sentence(made) == ("the rule chooses σ 0.43 and control std 0.23, against the sweep's ConvNeXt "
                                     "at 90.9 % clean accuracy")
    open_sigma = choice_sentence({**made, "sigma": None})
    assert open_sigma.startswith("the rule chooses no σ yet (its measured points do not bracket the cost) and "
                                 "control std 0.23")
    assert choice_sentence({}) == "the rule chooses nothing yet: the sweep's ConvNeXt is not measured"


def test_frontier_training_counts_the_models_still_improving_at_the_budget() -> None:
    points = pd.DataFrame([{"kind": "nsde", "sigma": 0.55, "input_noise_std": None, "seed": s, "best_epoch": e}
                           for s, e in ((1, 25), (0, 21), (2, 25))]
                          + [{"kind": "convnext", "sigma": None, "input_noise_std": None, "seed": 0, "best_epoch": 16}])
    table = frontier_training(points, max_epochs=25)
    assert table.loc["NSDE σ 0.55"].tolist() == [3, "21, 25, 25", 2]
    assert table.loc["ConvNeXt", "best at the maximum"] == 0


def structured_sweep(ensemble_gain: float) -> pd.DataFrame:
    """Per-image outcomes under two structured noises at two levels, 5 seeds × 200 images: the NSDE ensemble is right
    ``ensemble_gain`` more often than ConvNeXt and the control at the largest level, as often below it."""
    rng = np.random.default_rng(2)
    cells = design_cells(SDE)
    control = c2_comparisons(SDE)["NSDE ensemble − ConvNeXt + input noise"][1]
    modes = {cells["no", "no"]: 0.0, control: 0.0, cells["yes", "yes"]: ensemble_gain}
    rows = [{"noise": noise, "level": level, "mode": mode, "seed": seed, "example": image,
             "correct": float(rng.random() < 0.6 + (gain if level == 1.0 else 0.0))}
            for noise in ("impulsive", "narrowband") for level in (0.0, 0.3, 1.0) for mode, gain in modes.items()
            for seed in range(5) for image in range(200)]
    return pd.DataFrame(rows)


def test_structured_noise_is_judged_against_both_baselines_and_read_at_each_noises_largest_level() -> None:
    verdicts = structured_versus_both(structured_sweep(0.3), SDE)
    assert set(verdicts.index.get_level_values("against")) == {"ConvNeXt", "control"}
    assert 0.0 not in verdicts.index.get_level_values("level"), "the clean column is not structured noise"
    largest = at_largest_level(verdicts)
    assert list(largest.index) == [(against, noise, 1.0) for against in ("ConvNeXt", "control")
                                   for noise in ("impulsive", "narrowband")]
    assert (largest["effect"] > 0.2).all() and (verdicts.xs(0.3, level="level")["effect"].abs() < 0.1).all()
    sentence = effects_in_points(largest.loc["ConvNeXt"], lambda at: f"under {at[0]} noise at level {at[1]:g}")
    assert sentence.count(" points (") == 2 and sentence.startswith("+") and "under narrowband noise at level 1" in sentence
    assert "95 % interval" in sentence and "points" in sentence


def test_a_records_level_rows_are_those_of_the_comparison_at_the_asked_levels() -> None:
    better, other = c2_comparisons(SDE)["NSDE ensemble − ConvNeXt + input noise"]
    by_level = pd.DataFrame({"comparison": [f"{better} − {other}"] * 3 + [f"{better} − ConvNeXt"],
                             "level": [0.05, 0.2, 0.5, 0.2], "effect": [0.04, -0.12, -0.2, 0.02],
                             "low": [-0.01, -0.15, -0.25, 0.0], "high": [0.08, -0.09, -0.15, 0.05],
                             "label": ["inconclusive", "opposite", "opposite", "inconclusive"],
                             "underpowered": [True, False, False, False]})
    rows = recorded_level_rows(by_level, (better, other), (0.2000000001, 0.5))
    assert list(rows.index) == [0.2, 0.5] and rows["effect"].tolist() == [-0.12, -0.2]
    assert effects_in_points(rows, lambda level: f"at std {level:g}") == (
        "-12.0 points (95 % interval -15.0 to -9.0; opposite) at std 0.2; "
        "-20.0 points (95 % interval -25.0 to -15.0; opposite) at std 0.5")
    weak = recorded_level_rows(by_level, (better, other), (0.05,))
    assert effects_in_points(weak, lambda level: "").endswith("inconclusive, underpowered) ")


def test_the_at_max_sentence_counts_models_that_kept_their_last_allowed_epoch() -> None:
    points = pd.DataFrame({"kind": ["nsde"] * 3, "sigma": [0.43] * 3, "input_noise_std": [None] * 3,
                           "seed": [0, 1, 2], "best_epoch": [25, 21, 25]})
    training = frontier_training(points, 25)
    assert at_max_sentence(training, 25).startswith("2 of the 3 recorded frontier models had their best epoch at the "
                                                    "last of the 25")
    assert at_max_sentence(frontier_training(points.assign(best_epoch=20), 25), 25) == (
        "none of the 3 recorded frontier models had its best epoch at the last of the 25")


def test_the_recorded_findings_are_the_control_rows_and_each_noises_largest_level() -> None:
    better, other = c2_comparisons(SDE)["NSDE ensemble − ConvNeXt + input noise"]
    by_level = pd.DataFrame({"comparison": [f"{better} − {other}"] * 2, "level": [0.2, 0.5], "effect": [-0.12, -0.2],
                             "low": [-0.15, -0.25], "high": [-0.09, -0.15], "label": ["opposite"] * 2,
                             "underpowered": [False, False]})
    sweep = structured_sweep(0.3)
    table, sentences = recorded_noise_findings(by_level, sweep, SDE, (0.2,))
    assert table.equals(structured_versus_both(sweep, SDE))
    assert sentences["versus_control"] == "-12.0 points (95 % interval -15.0 to -9.0; opposite) at std 0.2"
    assert set(sentences) == {"versus_control", "structured_convnext", "structured_control"}
    assert sentences["structured_control"].count(" at level 1") == 2
