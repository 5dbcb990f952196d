"""The rule that sets the NSDE's σ and the control's input-noise std from the σ sweep, fixed before the outcome."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nsdelib.book.profiles import get_profile
from nsdelib.book.provenance import load_recorded
from nsdelib.claims.sigma_tuning import (TARGET_COST, CalibrationConfig, choose_settings, interpolate_setting, priority,
                                         sweep_record)
from nsdelib.models.registry import ModelConfig

CFG = CalibrationConfig(sigmas=(0.1, 0.2, 0.4, 0.8), input_noise_stds=(0.05, 0.1, 0.2))


def sweep() -> pd.DataFrame:
    """A sweep whose right answer is known: ConvNeXt at 0.90, the chosen NSDE line crossing a 5-point cost
    between σ = 0.4 (3 points) and 0.8 (10 points), the control between std 0.1 (4) and 0.2 (6)."""
    rows = [{"kind": "convnext", "clean_off": 0.90}]
    rows += [{"kind": "nsde", "diffusion": "relative", "noise_shape": "coloured", "sigma": sigma, "clean_single": 0.90 - cost}
             for sigma, cost in zip(CFG.sigmas, (0.01, 0.02, 0.03, 0.10))]
    rows += [{"kind": "nsde", "diffusion": "multiplicative", "noise_shape": "coloured", "sigma": sigma,
              "clean_single": 0.90 - cost} for sigma, cost in zip(CFG.sigmas, (0.0, 0.06, 0.2, 0.5))]
    rows += [{"kind": "convnext_noise", "input_noise_std": std, "clean_off": 0.90 - cost}
             for std, cost in zip(CFG.input_noise_stds, (0.0, 0.04, 0.06))]
    return pd.DataFrame(rows)


def test_the_rule_interpolates_in_log_setting_where_the_cost_crosses_the_target() -> None:
    sigma = 0.4 * 2 ** ((0.05 - 0.03) / (0.10 - 0.03))
    std = 0.1 * 2 ** 0.5
    choice = choose_settings(sweep(), CFG, 0.05)
    assert choice == {"sigma": float(f"{sigma:.2g}"), "input_noise_std": float(f"{std:.2g}"), "convnext_accuracy": 0.90}
    assert choice["sigma"] == 0.49 and choice["input_noise_std"] == 0.14


def test_the_rule_reads_only_the_chosen_form_and_shape_and_says_none_when_nothing_brackets() -> None:
    other = CFG.model_copy(update={"chosen_form": "multiplicative"})
    assert choose_settings(sweep(), other, 0.05)["sigma"] == float(f"{0.1 * 2 ** (0.05 / 0.06):.2g}")
    assert choose_settings(sweep(), CFG, 0.5) == {"sigma": None, "input_noise_std": None, "convnext_accuracy": 0.90}
    assert interpolate_setting([0.1, 0.2], [0.02, 0.02], 0.02) is None


def test_a_target_met_exactly_at_a_measured_point_is_that_point() -> None:
    assert interpolate_setting([0.1, 0.2, 0.4], [0.01, 0.03, 0.09], 0.01) == pytest.approx(0.1)
    assert interpolate_setting([0.1, 0.2, 0.4], [0.01, 0.03, 0.09], 0.03) == pytest.approx(0.2)
    assert interpolate_setting([0.1, 0.2, 0.4], [0.01, 0.03, 0.09], 0.09) == pytest.approx(0.4)


def test_the_recorded_sweep_holds_the_choice_the_rule_makes_from_its_points() -> None:
    """The rule, run again on the recorded points, makes the recorded choice (the profile's σ is the fixed choice a
    record carries: tests/test_profiles.py)."""
    recorded = load_recorded("calibration")
    if recorded is None:
        pytest.skip("no paper-profile σ sweep recorded")
    result = recorded["result"]
    choice = choose_settings(pd.DataFrame(result["points"]), get_profile("paper").calibration, result["target_cost"])
    assert choice.keys() == result["choice"].keys()
    assert all(math.isclose(choice[key], value) for key, value in result["choice"].items() if value is not None)
    assert math.isclose(result["target_cost"], TARGET_COST), "the sweep aims at C1's cost, 87.20 % − 82.88 %"


def test_the_target_is_c1s_cost() -> None:
    assert TARGET_COST == pytest.approx(0.8720 - 0.8288)


def test_the_sweep_measures_first_what_the_rule_needs() -> None:
    points = priority(CFG, ModelConfig.build())
    order = [(kind, config.sde.noise_shape if kind == "nsde" else None) for kind, config in points]
    assert order == ([("convnext", None)] + [("nsde", "coloured")] * 4 + [("convnext_noise", None)] * 3
                     + [("nsde", "white")] * 4)
    paper = get_profile("paper")
    white = [config.sde.sigma for kind, config in priority(paper.calibration, paper.model)
             if kind == "nsde" and config.sde.noise_shape == "white"]
    assert white == [0.4, 0.8, 0.2, 1.6, 0.1, 0.05], "nearest the book's σ = 0.43 first, in log"


def test_the_record_holds_the_points_the_rules_choice_and_the_models_it_cites() -> None:
    table = sweep().assign(weights_sha256=lambda t: [f"{i:064x}" for i in range(len(t))])
    result, models = sweep_record(table, 2, CFG)
    assert result["choice"] == choose_settings(table, CFG, TARGET_COST) and result["target_cost"] == TARGET_COST
    assert result["missing_points"] == 2 and result["points"]["kind"] == table["kind"].tolist()
    assert CalibrationConfig(**result["config"]) == CFG
    assert [model["sha256"] for model in models] == table["weights_sha256"].tolist()
    assert models[1]["setting"]["sigma"] == 0.1 and models[1]["seed"] == CFG.seed
    empty, cited = sweep_record(pd.DataFrame(), 5, CFG)
    assert (empty["points"], empty["choice"], empty["missing_points"], cited) == ({}, {}, 5, [])
