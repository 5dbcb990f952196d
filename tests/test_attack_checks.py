"""The sanity checks of chapter 5's attack sweeps: each passes on a sound sweep and fails on a broken one."""

from __future__ import annotations

import pandas as pd
import pytest

from nsdelib.evaluation.attacks import SanityCheckFailed, check_attacks, norm_bound_check, sanity_checks


def sweep(**changes: object) -> pd.DataFrame:
    """A sound two-seed sweep of a baseline and an NSDE in L2: accuracy falls, the attack beats random noise."""
    rows = []
    for seed in (0, 1):
        for model, attack, mode in (("ConvNeXt", "APGD-CE", "ConvNeXt"), ("NSDE", "APGD-CE + EOT", "NSDE, ensemble")):
            for eps, accuracy, random_accuracy in ((0.0, 0.9, 0.9), (1.0, 0.3, 0.85), (4.0, 0.0, 0.6)):
                rows.append({"model": model, "attack": attack, "norm": "L2", "eps": eps, "mode": mode, "seed": seed,
                             "accuracy": accuracy, "random_accuracy": random_accuracy,
                             "n_attacked": 0 if eps == 0 else 10, "max_norm": 0.999 * eps, "within_bound": True})
    table = pd.DataFrame(rows)
    for column, value in changes.items():
        table[column] = value
    return table


def test_a_sound_sweep_passes_every_check() -> None:
    checks = check_attacks(sweep(), baseline="ConvNeXt")
    assert checks["within bound"].all()
    assert checks.loc[("ConvNeXt", "APGD-CE", "L2"), "largest norm / ε"] == pytest.approx(0.999)
    assert checks.loc[("NSDE", "APGD-CE + EOT", "L2"), "accuracy at largest ε"] == 0.0
    assert (checks["attack ≤ random noise"] == 1.0).all()


def test_a_perturbation_outside_its_ball_fails() -> None:
    table = sweep()
    table.loc[(table["model"] == "NSDE") & (table["eps"] == 4.0) & (table["seed"] == 1), "within_bound"] = False
    with pytest.raises(SanityCheckFailed, match=r"exceed their norm bound: \[\('NSDE', 'APGD-CE \+ EOT', 'L2'\)\]"):
        check_attacks(table, baseline="ConvNeXt")


def test_a_budget_where_nothing_was_attacked_is_no_evidence() -> None:
    table = sweep(n_attacked=0)
    assert not norm_bound_check(table).any()
    with pytest.raises(SanityCheckFailed, match="norm bound"):
        check_attacks(table, baseline="ConvNeXt")
    partly = sweep()
    partly.loc[partly["eps"] == 1.0, ["n_attacked", "within_bound"]] = (0, False)  # unattacked rows do not count
    assert norm_bound_check(partly).all()


def test_random_noise_beating_the_attack_fails() -> None:
    table = sweep()
    table.loc[(table["model"] == "NSDE") & (table["eps"] == 1.0), "random_accuracy"] = 0.1
    assert sanity_checks(table).loc[("NSDE", "APGD-CE + EOT", "L2"), "attack ≤ random noise"] == 0.5
    with pytest.raises(SanityCheckFailed, match=r"random noise beat the attack on average at \[\('APGD-CE \+ EOT'"):
        check_attacks(table, baseline="ConvNeXt")


def test_a_baseline_that_does_not_collapse_fails() -> None:
    table = sweep()
    table.loc[(table["model"] == "ConvNeXt") & (table["eps"] == 4.0), "accuracy"] = 0.2
    with pytest.raises(SanityCheckFailed, match=r"ConvNeXt keeps 20.0% accuracy at the largest ε \(more than 5%\)"):
        check_attacks(table, baseline="ConvNeXt")
    assert check_attacks(table, baseline="ConvNeXt", threshold=0.25) is not None
