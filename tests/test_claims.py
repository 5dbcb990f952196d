"""The claim functions the chapters call: C2 per noise level, C3 at the baseline's collapse, the ABC summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nsdelib.report.claims import abc_summary, adversarial_claim, collapse_eps, gaussian_noise_verdicts
from nsdelib.report.stats import seed_intervals


def test_collapse_eps_is_the_first_eps_at_or_below_the_threshold() -> None:
    curve = pd.DataFrame({"eps": [0.0, 0.5, 1.0, 2.0], "mean": [0.9, 0.3, 0.04, 0.0]})
    assert collapse_eps(curve) == 1.0
    assert collapse_eps(curve, threshold=0.5) == 0.5
    assert collapse_eps(curve.assign(mean=0.5)) is None


def noise_sweep_rows(advantage: float) -> pd.DataFrame:
    """Three seeds of a Gaussian sweep in which the NSDE leads by ``advantage`` (± 0.01 across seeds)."""
    rows = []
    for seed, wobble in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
        for level in (0.0, 0.05):
            rows.append({"noise": "gaussian", "level": level, "mode": "ConvNeXt", "seed": seed, "accuracy": 0.8})
            rows.append({"noise": "gaussian", "level": level, "mode": "NSDE", "seed": seed,
                         "accuracy": 0.8 + advantage + wobble})
    rows.append({"noise": "impulsive", "level": 0.05, "mode": "NSDE", "seed": 0, "accuracy": 0.0})
    return pd.DataFrame(rows)


def test_c2_is_judged_per_gaussian_level_only() -> None:
    verdicts = gaussian_noise_verdicts(noise_sweep_rows(0.1), "NSDE", "ConvNeXt").set_index("level")
    assert list(verdicts.index) == [0.0, 0.05]
    assert math.isclose(verdicts.loc[0.05, "difference"], 0.1)
    assert (verdicts["verdict"] == "holds").all()
    assert (gaussian_noise_verdicts(noise_sweep_rows(-0.1), "NSDE", "ConvNeXt")["verdict"] == "does not hold").all()


def attack_table(nsde_at_collapse: float, nsde_without_eot: float, baseline_floor: float = 0.0) -> pd.DataFrame:
    """Three seeds of L2 sweeps: the baseline collapses at ε = 2; the NSDE keeps the given accuracies there."""
    rows = []
    for seed, wobble in zip((0, 1, 2), (-0.01, 0.0, 0.01)):
        for eps, base in ((0.0, 0.9), (1.0, 0.4), (2.0, baseline_floor)):
            rows.append({"norm": "L2", "attack": "APGD-CE", "mode": "ConvNeXt", "eps": eps, "seed": seed, "accuracy": base})
            for attack, value in (("APGD-CE + EOT", nsde_at_collapse), ("APGD-CE", nsde_without_eot)):
                accuracy = 0.9 if eps == 0 else value + wobble
                rows.append({"norm": "L2", "attack": attack, "mode": "NSDE", "eps": eps, "seed": seed, "accuracy": accuracy})
    return pd.DataFrame(rows)


def claim_of(table: pd.DataFrame):
    curves = seed_intervals(table, ["norm", "attack", "mode", "eps"])
    return adversarial_claim(table, curves, "NSDE", "ConvNeXt")


def test_c3_is_tested_where_the_baseline_collapses() -> None:
    claim = claim_of(attack_table(0.3, 0.5))
    assert claim.eps_star == 2.0
    assert (claim.label, claim.label_without_eot) == ("holds", "holds")
    assert "survives the EOT attack" in claim.note
    assert set(claim.verdicts) == {"APGD-CE + EOT", "APGD-CE"}


def test_c3_flags_robustness_seen_only_without_eot() -> None:
    claim = claim_of(attack_table(0.0, 0.5))
    assert (claim.label, claim.label_without_eot) == ("inconclusive", "holds")
    assert "masking the gradient" in claim.note


def test_c3_has_no_test_point_when_the_baseline_never_collapses() -> None:
    claim = claim_of(attack_table(0.3, 0.5, baseline_floor=0.2))
    assert claim.eps_star is None and claim.label == "inconclusive" and not claim.verdicts
    assert "never fell to 5%" in claim.note


def test_abc_summary_leaves_out_undefined_seeds() -> None:
    per_seed = pd.DataFrame({
        "variant": "as written", "model": ["convnext"] * 3, "seed": [0, 1, 2],
        "abc_correct": [0.5, 0.6, 0.7], "abc_incorrect": [np.nan] * 3, "auroc_wrong": [0.8, np.nan, 0.6],
    })
    summary = abc_summary(per_seed).loc["as written", "ConvNeXt"]
    assert summary.loc["mean ABC, correct", "mean"] == 0.6 and summary.loc["mean ABC, correct", "seeds"] == 3
    assert summary.loc["AUROC, wrong vs right", "mean"] == 0.7 and summary.loc["AUROC, wrong vs right", "seeds"] == 2
    assert math.isnan(summary.loc["mean ABC, wrong", "mean"]) and summary.loc["mean ABC, wrong", "seeds"] == 0
