"""The claim functions the chapters call (C1–C5) on small tables with known answers, and the claims' references."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from nsdelib.claims.c1_clean_accuracy import clean_accuracy_claim, clean_outcomes, single_pass_cost
from nsdelib.claims.c2_noise import c2_comparisons, noise_claim, noise_level_verdicts
from nsdelib.claims.c3_attacks import TRANSFER, WORST, adversarial_claim
from nsdelib.claims.c4_abc import abc_claim
from nsdelib.claims.c5_stability import stability_claim
from nsdelib.models.nsde import SDEConfig
from nsdelib.report.paper import CLAIMS, PAPER_VALUES, claims_table, get_claim


def noise_sweep_rows(advantage: float) -> pd.DataFrame:
    """Three seeds of a Gaussian sweep (per-seed accuracy) in which the NSDE leads by ``advantage`` (± 0.01)."""
    rows = []
    for seed, wobble in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
        for level in (0.0, 0.05):
            rows.append({"noise": "gaussian", "level": level, "mode": "ConvNeXt", "seed": seed, "accuracy": 0.8})
            rows.append({"noise": "gaussian", "level": level, "mode": "NSDE", "seed": seed,
                         "accuracy": 0.8 + advantage + wobble})
    rows.append({"noise": "impulsive", "level": 0.05, "mode": "NSDE", "seed": 0, "accuracy": 0.0})
    return pd.DataFrame(rows)


def per_seed_verdicts(advantage: float) -> pd.DataFrame:
    return noise_level_verdicts(noise_sweep_rows(advantage), {"C2": ("NSDE", "ConvNeXt")}, value="accuracy",
                                unit=None).loc["C2"]


def test_c2_is_judged_per_gaussian_level_only() -> None:
    verdicts = per_seed_verdicts(0.1)
    assert list(verdicts.index) == [0.0, 0.05]
    assert math.isclose(verdicts.loc[0.05, "effect"], 0.1)
    assert (verdicts["label"] == "reproduced").all() and (verdicts["n_seeds"] == 3).all()
    assert (verdicts["reference"] == get_claim("C2").reference.value).all()
    assert (verdicts["reference_kind"] == "smallest effect of interest").all()
    assert (per_seed_verdicts(-0.1)["label"] == "opposite").all()
    assert (per_seed_verdicts(0.0)["label"] == "inconclusive").all()  # [−0.025, +0.025] reaches the 0.02


def outcomes(models: dict[str, np.ndarray], column: str = "model", value: str = "correct", **extra: object) -> pd.DataFrame:
    """A long table from per-model arrays of shape (seeds, images): one row per model, seed and example."""
    frames = []
    for name, values in models.items():
        seeds, images = np.indices(values.shape)
        frames.append(pd.DataFrame({column: name, "seed": seeds.ravel(), "example": images.ravel(),
                                    value: values.ravel(), **extra}))
    return pd.concat(frames, ignore_index=True)


def correct_with_accuracy(accuracies: list[float], n_images: int = 100) -> np.ndarray:
    """0/1 outcomes, one row per seed, with exactly the given accuracy in each."""
    return np.array([np.arange(n_images) < round(a * n_images) for a in accuracies])


def test_c1_judges_convnext_minus_nsde_against_the_paper() -> None:
    table = outcomes({"convnext": correct_with_accuracy([0.88, 0.87, 0.86]),
                      "nsde": correct_with_accuracy([0.84, 0.82, 0.83]),
                      "convnext_noise": correct_with_accuracy([0.1, 0.1, 0.1])})
    claim, verdict = clean_accuracy_claim(table)
    assert list(claim.index) == ["ConvNeXt", "NSDE-ConvNeXt"]
    assert list(claim.columns) == ["paper", "this book (mean)", "95 % low", "95 % high", "seeds"]
    assert (claim["seeds"] == 3).all()
    assert claim.loc["ConvNeXt", "95 % low"] < 0.87 < claim.loc["ConvNeXt", "95 % high"]
    assert claim.loc["ConvNeXt", "paper"] == PAPER_VALUES["C1.convnext_clean_accuracy"]
    assert claim.loc["NSDE-ConvNeXt", "this book (mean)"] == pytest.approx(0.83)
    assert verdict.effect == pytest.approx(0.04) and verdict.seed_effects == pytest.approx((0.04, 0.05, 0.03))
    assert verdict.reference == pytest.approx(0.0432) and verdict.reference_kind == "paper's figure"
    assert (verdict.label, verdict.n_seeds, verdict.n_pairs) == ("reproduced", 3, 300)
    assert verdict.comparison == "ConvNeXt − NSDE-ConvNeXt"
    assert verdict.design == "seeds × images, crossed" and verdict.paper_figure_in_prediction
    per_seed = clean_accuracy_claim(table.groupby(["model", "seed"], as_index=False)["correct"].mean(), unit=None)[1]
    assert per_seed.effect == pytest.approx(verdict.effect) and per_seed.design == "seeds"
    assert verdict.low < per_seed.low, "the same images in every seed: their variance widens the per-image interval"


def test_c1_outcomes_score_every_model_and_seed_in_its_headline_mode() -> None:
    x, y = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    runs = {"convnext": [SimpleNamespace(model=model, seed=0), SimpleNamespace(model=model, seed=3)]}
    table = clean_outcomes(runs, x, y, SDEConfig.build(), batch_size=4)
    assert len(table) == 12 and set(table["mode"]) == {"ConvNeXt"} and set(table["model"]) == {"convnext"}
    assert table["seed"].unique().tolist() == [0, 3]
    with torch.no_grad():
        expected = (model(x).argmax(dim=1) == y).int().tolist()
    assert table.loc[table["seed"] == 3, "correct"].tolist() == expected


def test_one_stochastic_pass_costs_convnext_minus_the_nsdes_single_pass_paired_by_seed() -> None:
    runs = pd.DataFrame({"model": ["nsde", "convnext", "convnext", "nsde"], "seed": [0, 0, 1, 1],
                         "accuracy": [0.88, 0.9, 0.8, 0.85], "accuracy, noise single": [0.85, None, None, 0.77]})
    cost = single_pass_cost(runs)
    assert cost.mean == pytest.approx(0.04) and cost.n == 2


def test_c2_comparisons_judge_the_ensemble_against_convnext_first() -> None:
    comparisons = c2_comparisons(SDEConfig.build(ensemble_size=8))
    assert next(iter(comparisons.items())) == ("NSDE ensemble − ConvNeXt (C2)", ("NSDE, 8-pass ensemble", "ConvNeXt"))
    assert comparisons["NSDE ensemble − ConvNeXt + input noise"] == ("NSDE, 8-pass ensemble", "ConvNeXt + input noise")
    assert comparisons["NSDE noise off − ConvNeXt"][0] == "NSDE, noise off"


def test_c2_is_judged_at_the_papers_noise_std() -> None:
    at = PAPER_VALUES["C2.noise_intensity"]
    sweep = pd.concat([
        outcomes({"ConvNeXt": correct_with_accuracy([0.7, 0.7, 0.7]), "NSDE": correct_with_accuracy([0.73, 0.74, 0.75])},
                 column="mode", noise="gaussian", level=at),
        outcomes({"ConvNeXt": correct_with_accuracy([0.9] * 3), "NSDE": correct_with_accuracy([0.1] * 3)},
                 column="mode", noise="gaussian", level=0.5),
    ])
    claim, verdict = noise_claim(sweep, "NSDE", "ConvNeXt")
    assert claim.loc["NSDE", "paper"] == PAPER_VALUES["C2.nsde_accuracy_at_noise"] and math.isnan(claim.loc["ConvNeXt", "paper"])
    assert verdict.effect == pytest.approx(0.04) and verdict.reference_kind == "smallest effect of interest"
    # +4 points, but 3 seeds of 100 images cannot show that it is at least the 2 points of interest
    assert verdict.label == "direction holds, size not shown" and verdict.low < 0.02 < verdict.effect
    with pytest.raises(ValueError, match="no Gaussian noise at the paper's std 0.05"):
        noise_claim(sweep[sweep["level"] != at], "NSDE", "ConvNeXt")
    per_seed = sweep.groupby(["noise", "level", "mode", "seed"], as_index=False)["correct"].mean()
    assert noise_claim(per_seed, "NSDE", "ConvNeXt", unit=None)[1].effect == pytest.approx(0.04)
    # every Gaussian level, per image with the default columns ("correct" per "example")
    levels = noise_level_verdicts(sweep, {"C2": ("NSDE", "ConvNeXt")}).loc["C2"]
    assert list(levels.index) == [at, 0.5] and (levels["n_pairs"] == 300).all()
    assert levels["effect"].tolist() == pytest.approx([0.04, -0.8])
    assert levels["label"].tolist() == ["direction holds, size not shown", "opposite"]
    assert levels["role"].tolist() == ["primary", "exploratory"], "C2 at the paper's std is the primary verdict"
    primary = levels.loc[at]
    assert (primary["label"], primary["low"], primary["high"]) == (verdict.label, verdict.low, verdict.high)
    assert levels.loc[0.5, "family"] == "C2 levels" and levels.loc[0.5, "p_holm"] < 0.05


def test_c2_levels_are_one_family_over_every_comparison() -> None:
    at = PAPER_VALUES["C2.noise_intensity"]
    sweep = pd.concat([outcomes({"ConvNeXt": correct_with_accuracy([0.7, 0.7, 0.7]),
                                 "NSDE": correct_with_accuracy([0.9, 0.91, 0.92]),
                                 "control": correct_with_accuracy([0.75, 0.77, 0.76])},
                                column="mode", noise="gaussian", level=level) for level in (0.0, at, 1.0)])
    verdicts = noise_level_verdicts(sweep, {"C2": ("NSDE", "ConvNeXt"), "control": ("NSDE", "control")})
    assert list(verdicts.index) == [(name, level) for name in ("C2", "control") for level in (0.0, at, 1.0)]
    assert (verdicts["role"] == "primary").sum() == 1 and verdicts.loc[("C2", at), "role"] == "primary"
    exploratory = verdicts[verdicts["role"] == "exploratory"]
    assert (exploratory["family"] == "C2 levels").all() and exploratory["p_holm"].notna().all()
    assert (exploratory["p_holm"] >= exploratory["p_value"]).all()


def attack_outcomes(nsde: dict[str, float], baseline_worst: float = 0.0) -> pd.DataFrame:
    """Per-image full-protocol rows at L2 ε = 1 and 2 for three seeds: the baseline's worst case falls to
    ``baseline_worst`` at ε = 2 (30 % at ε = 1); the NSDE keeps ``nsde[attack]`` of 200 images after each attack of
    the cascade at ε = 2 (20 points more at ε = 1)."""
    rows = []
    for seed, wobble in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
        for eps in (1.0, 2.0):
            floor = 0.3 if eps == 1.0 else baseline_worst
            lift = 0.2 if eps == 1.0 else 0.0
            rows.append(pd.DataFrame({"seed": seed, "norm": "L2", "eps": eps, "mode": "ConvNeXt", "attack": WORST,
                                      "protocol": "full", "example": range(200),
                                      "correct": correct_with_accuracy([floor], 200)[0]}))
            for attack, accuracy in nsde.items():
                rows.append(pd.DataFrame({"seed": seed, "norm": "L2", "eps": eps, "mode": "NSDE", "attack": attack,
                                          "protocol": "full" if attack == WORST else "cascade", "example": range(200),
                                          "correct": correct_with_accuracy([max(accuracy + lift + wobble, 0.0)],
                                                                           200)[0]}))
    return pd.concat(rows, ignore_index=True)


def test_c3_is_tested_where_the_baseline_collapses_against_the_worst_case() -> None:
    claim = adversarial_claim(attack_outcomes({WORST: 0.3, "APGD-CE": 0.5, "APGD-DLR": 0.35}), "NSDE", "ConvNeXt")
    assert claim.eps_star == 2.0
    assert claim.verdict.label == "reproduced" and claim.flags.startswith("reproduced") and claim.verdict is claim.verdicts[WORST]
    assert set(claim.verdicts) == {WORST, "APGD-CE", "APGD-DLR"} and "survives every attack" in claim.note
    assert list(claim.table.index) == [WORST, "APGD-CE", "APGD-DLR"]
    assert claim.note == "The NSDE's advantage survives every attack, the worst case per image included."
    assert claim.verdict.effect == pytest.approx(0.3)  # at ε = 2, where the NSDE keeps 30 % and the baseline none
    assert claim.verdicts["APGD-CE"].effect == pytest.approx(0.5)
    assert claim.verdict.comparison == "NSDE (worst case) − ConvNeXt"
    assert claim.verdicts["APGD-DLR"].comparison == "NSDE (APGD-DLR) − ConvNeXt"
    assert claim.verdict.role == "primary" and {v.family for a, v in claim.verdicts.items() if a != WORST} == {
        "C3 attacks"}


def test_c3_reads_only_the_full_protocol_at_l2() -> None:
    full = attack_outcomes({WORST: 0.3})
    baseline = full[(full["mode"] == "ConvNeXt") & (full["eps"] == 1.0)]
    # the baseline collapses at a smaller ε under another norm and in the sweep protocol: neither may count
    others = pd.concat([baseline.assign(norm="Linf", eps=0.5, correct=0),
                        baseline.assign(protocol="sweep", eps=0.25, correct=0)], ignore_index=True)
    claim = adversarial_claim(pd.concat([full, others], ignore_index=True), "NSDE", "ConvNeXt")
    assert claim.eps_star == 2.0 and claim.verdict.effect == pytest.approx(0.3)


def test_c3_counts_a_baseline_exactly_at_the_threshold_as_collapsed() -> None:
    claim = adversarial_claim(attack_outcomes({WORST: 0.3}), "NSDE", "ConvNeXt", threshold=0.0)
    assert claim.eps_star == 2.0  # the baseline keeps 0 % there: "at most" the threshold


def test_c3_flags_robustness_seen_only_against_a_weak_attack() -> None:
    claim = adversarial_claim(attack_outcomes({WORST: 0.0, "APGD-CE": 0.4}), "NSDE", "ConvNeXt")
    assert claim.verdict.label in {"not reproduced", "inconclusive"} and claim.verdicts["APGD-CE"].significant
    assert "the earlier attacks' weakness, not the model's robustness" in claim.note
    # the note names every attack with a significant advantage, and only those
    claim = adversarial_claim(attack_outcomes({WORST: 0.0, "APGD-CE": 0.4, "APGD-DLR": 0.3, TRANSFER: 0.0}),
                              "NSDE", "ConvNeXt")
    assert not claim.verdicts[TRANSFER].significant
    assert claim.note == ("The NSDE looks more robust after APGD-CE, APGD-DLR in the cascade, but not against the worst "
                          "case over all attacks: that advantage is the earlier attacks' weakness, not the model's "
                          "robustness.")


def test_c3_says_so_when_no_attack_shows_an_advantage() -> None:
    claim = adversarial_claim(attack_outcomes({WORST: 0.0, "APGD-CE": 0.0}), "NSDE", "ConvNeXt")
    assert not any(v.significant for v in claim.verdicts.values())
    assert claim.note == "No attack shows an advantage for the NSDE that the seeds can resolve at this ε."


def test_c3_has_no_test_point_when_the_baseline_never_collapses() -> None:
    claim = adversarial_claim(attack_outcomes({WORST: 0.3}, baseline_worst=0.2), "NSDE", "ConvNeXt")
    assert claim.eps_star is None and claim.flags == "inconclusive" and not claim.verdicts
    assert claim.note == ("The baseline kept more than 5% robust accuracy at every headline L2 ε, so the claim has "
                          "no test point here: add a larger headline ε.")


def test_c4_compares_abc_on_images_both_models_classify_correctly() -> None:
    abc = {"convnext": np.array([[0.5, 0.5, 0.0], [0.52, 0.48, 0.0], [0.49, 0.51, 0.0]]),
           "nsde": np.array([[0.6, 0.6, 1.0], [0.6, 0.62, 1.0], [0.64, 0.6, 1.0]])}
    correct = {"convnext": np.array([True, True, False]), "nsde": np.array([True, True, True])}
    scores = pd.concat([outcomes({kind: values}, value="abc").assign(correct=lambda t, k=kind: correct[k][t["example"]])
                        for kind, values in abc.items()])
    claim, verdict = abc_claim(scores)
    assert claim.loc["NSDE-ConvNeXt", "paper"] == PAPER_VALUES["C4.nsde_abc_correct"]
    assert claim.loc["ConvNeXt", "this book (mean)"] == pytest.approx(0.5)  # the third image is left out
    assert verdict.n_pairs == 6 and verdict.effect == pytest.approx(0.11)
    assert verdict.reference == pytest.approx(0.102) and verdict.label == "reproduced"
    assert verdict.comparison == "NSDE-ConvNeXt − ConvNeXt"
    renamed = abc_claim(scores.rename(columns={"example": "image", "correct": "right"}), unit="image", correct="right")
    assert renamed[1].n_pairs == 6 and renamed[1].effect == pytest.approx(0.11)
    per_seed = pd.DataFrame([{"model": kind, "seed": seed, "abc_correct": value + 0.01 * seed}
                             for seed in range(3) for kind, value in (("convnext", 0.5), ("nsde", 0.6))])
    claim, verdict = abc_claim(per_seed, value="abc_correct", unit=None)
    assert verdict.effect == pytest.approx(0.1) and claim.loc["ConvNeXt", "this book (mean)"] == pytest.approx(0.51)


def test_c5_judges_convnext_minus_nsde_log_change_per_level() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, (3, 20))
    stability = pd.concat([
        outcomes({"convnext": -1.0 + noise, "nsde": -2.0 + noise[::-1]}, value="log_change", level=0.05),
        outcomes({"convnext": -1.0 + noise, "nsde": -0.5 + noise[::-1]}, value="log_change", level=0.1),
    ])
    table, verdicts = stability_claim(stability)
    assert verdicts[0.05].label == "reproduced"  # far beyond the smallest effect of interest
    assert verdicts[0.05].effect == pytest.approx(1.0, abs=0.05) and verdicts[0.1].label == "opposite"
    assert verdicts[0.05].reference_kind == "smallest effect of interest"
    assert table.loc[(0.05, "nsde"), "mean log change"] == pytest.approx(-2.0 + noise.mean())
    assert table.loc[(0.1, "convnext"), "C5 (NSDE < ConvNeXt)"] == "opposite"
    assert verdicts[0.05].comparison == "ConvNeXt − NSDE-ConvNeXt"
    renamed = stability_claim(stability.rename(columns={"example": "image"}), unit="image")[1]
    assert renamed[0.05].n_pairs == 60 and renamed[0.05].effect == pytest.approx(verdicts[0.05].effect)


def test_every_claim_has_one_reference_and_smallest_effects_are_justified() -> None:
    for claim in CLAIMS:
        reference = claim.reference
        assert reference.value > 0
        assert (reference.kind == "smallest effect of interest") == bool(claim.reason)
    assert get_claim("C1").reference.value == pytest.approx(0.0432)
    assert {c.id: c.reference.value for c in CLAIMS if c.reason} == {"C2": 0.02, "C3": 0.05, "C5": 0.1}
    assert list(claims_table().index) == ["C1", "C2", "C3", "C4", "C5"]
    with pytest.raises(KeyError, match="no claim 'C9'"):
        get_claim("C9")
