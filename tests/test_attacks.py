"""APGD-CE sweeps on toy models: norm bounds, monotone curves, attack vs random noise, EOT, caching, config."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from robustness_toys import (
    ROUNDING,
    ShatteredNoiseLinear,
    toy_data,
    toy_noise_control,
    trained_toy,
    within_norm_ball,
)

from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.common.errors import ConfigError
from nsdelib.evaluation import attacks
from nsdelib.evaluation.attacks import (
    AttackConfig,
    apgd_attack,
    attack_sweep,
    attack_sweeps,
    cached_attack_sweeps,
    perturbation_norms,
    random_direction,
    random_perturbation,
    within_bound,
)
from nsdelib.models.inference import EvalMode, predict

DETERMINISTIC = (EvalMode("toy", "off"),)
STOCHASTIC = (EvalMode("single pass", "single"), EvalMode("ensemble", "ensemble", 8))
EPSILONS = {"L2": (0.25, 0.5, 1.0, 2.0, 4.0), "Linf": (0.02, 0.05, 0.1, 0.3)}


@pytest.fixture(scope="module")
def toy() -> torch.nn.Module:
    return trained_toy(sigma=0.0)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return toy_data(48, seed=7)


def config(**changes: object) -> AttackConfig:
    return AttackConfig.build(**{"epsilons": EPSILONS, "steps": 10, "eot_iter": 8, "batch_size": 64, **changes})


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict(model, x, DETERMINISTIC[0], batch_size=64, seed=0, noise_control=toy_noise_control) == y).float().mean())


@pytest.mark.parametrize("norm", ["L2", "Linf"])
def test_every_adversarial_example_satisfies_its_norm_bound(toy, data, norm) -> None:
    x, y = data
    for eps in EPSILONS[norm]:
        adversarial = apgd_attack(toy, x, y, norm=norm, eps=eps, steps=10, batch_size=16)
        norms = perturbation_norms(x, adversarial, norm)
        assert adversarial.shape == x.shape and adversarial.dtype == x.dtype
        assert adversarial.min() >= 0 and adversarial.max() <= 1
        assert within_norm_ball(norms, eps), f"{norm} ε={eps}: max norm {norms.max():.6g}"
    assert norms.max() > 0.5 * eps, "the attack at the largest ε did not move the inputs at all"


@pytest.mark.parametrize("norm", ["L2", "Linf"])
def test_robust_accuracy_does_not_increase_with_eps(toy, data, norm) -> None:
    x, y = data
    table = attack_sweep(toy, x, y, config(), DETERMINISTIC, norm=norm, eot=False, seed=0, noise_control=toy_noise_control)
    curve = table["accuracy"].to_numpy()
    assert curve[0] == pytest.approx(accuracy(toy, x, y)) and curve[0] > 0.9
    assert (curve[1:] <= curve[:-1]).all()
    assert curve[-1] < curve[0] - 0.5, "the sweep never lowered accuracy: the check would be vacuous"
    assert table["within_bound"].all()
    attacked = table[table["eps"] > 0]
    assert (attacked["max_norm"] <= attacked["eps"] * (1 + ROUNDING) + ROUNDING).all()
    assert attacked["max_norm"].max() > 0, "no attack moved an input: the bound check would be vacuous"
    # The worst case over the sweep is never better than an independent attack at the same ε.
    for eps, swept in zip(EPSILONS[norm], curve[1:]):
        independent = accuracy(toy, apgd_attack(toy, x, y, norm=norm, eps=eps, steps=10, batch_size=64), y)
        assert swept <= independent


@pytest.mark.parametrize("norm", ["L2", "Linf"])
def test_attack_lowers_accuracy_more_than_random_noise_of_the_same_norm(toy, data, norm) -> None:
    x, y = data
    table = attack_sweeps(toy, x, y, config(epsilons={norm: EPSILONS[norm]}), DETERMINISTIC, seed=0,
                          noise_control=toy_noise_control)
    assert table["random_accuracy"].notna().all() and len(table) == 1 + len(EPSILONS[norm])
    assert (table["accuracy"] <= table["random_accuracy"]).all()
    assert (table["random_accuracy"] - table["accuracy"]).max() > 0.5


@pytest.mark.parametrize("norm", ["L2", "Linf"])
def test_random_perturbation_has_the_requested_norm_after_clipping(data, norm) -> None:
    x, _ = data
    direction = random_direction(x.shape, norm, torch.Generator().manual_seed(0))
    for eps in EPSILONS[norm]:
        noisy = random_perturbation(x, eps, norm, direction)
        assert noisy.min() >= 0 and noisy.max() <= 1
        assert perturbation_norms(x, noisy, norm) == pytest.approx(eps, rel=1e-3)


def test_baseline_is_near_zero_at_the_largest_eps(toy, data) -> None:
    x, y = data
    table = attack_sweeps(toy, x, y, config(), DETERMINISTIC, seed=0, noise_control=toy_noise_control)
    largest = table.loc[table.groupby("norm")["eps"].idxmax()]
    assert (largest["accuracy"] <= 0.05).all()
    assert set(table["attack"]) == {"APGD-CE"}, "a deterministic model needs no EOT attack"


def test_eot_attack_on_a_stochastic_model_is_at_least_as_strong(data) -> None:
    x, y = data
    model = ShatteredNoiseLinear().eval()
    cfg = config(epsilons={"L2": (0.75, 1.0, 1.25, 1.5)})
    table = attack_sweeps(model, x, y, cfg, STOCHASTIC, seed=0, noise_control=toy_noise_control)
    wide = table.pivot_table(index=["eps", "mode"], columns="attack", values="accuracy")
    assert set(wide.columns) == {"APGD-CE", "APGD-CE + EOT"}
    assert (wide["APGD-CE + EOT"] <= wide["APGD-CE"]).all()
    assert (wide["APGD-CE"] - wide["APGD-CE + EOT"]).max() >= 0.15, "noise did not mask the gradient: vacuous"
    assert table.loc[table["attack"] == "APGD-CE + EOT", "eot_iter"].eq(8).all()


def test_sweep_is_reproducible_and_leaves_the_callers_rng_alone(data) -> None:
    x, y = data
    model = ShatteredNoiseLinear().eval()
    cfg = config(epsilons={"L2": (1.0, 1.25)})
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = attack_sweep(model, x, y, cfg, STOCHASTIC, norm="L2", eot=True, seed=3, noise_control=toy_noise_control)
    assert torch.equal(torch.get_rng_state(), state)
    second = attack_sweep(model, x, y, cfg, STOCHASTIC, norm="L2", eot=True, seed=3, noise_control=toy_noise_control)
    columns = ["eps", "mode", "accuracy", "n_attacked", "max_norm"]
    pd.testing.assert_frame_equal(first[columns], second[columns])


def test_cached_sweep_reads_the_artifact_instead_of_attacking_again(toy, data, tmp_path) -> None:
    x, y = data
    calls = []

    def counting_control(model, mode, ensemble_size):
        calls.append(mode)
        return toy_noise_control(model, mode, ensemble_size)

    cfg = config(epsilons={"L2": (1.0, 2.0)}, subset_size=30)
    store = ArtifactStore(tmp_path)
    first = cached_attack_sweeps(store, cfg, toy, x, y, DETERMINISTIC, seed=0, noise_control=counting_control)
    assert calls and (first["n_samples"] == 30).all()
    calls.clear()
    second = cached_attack_sweeps(store, cfg, toy, x, y, DETERMINISTIC, seed=0, noise_control=counting_control)
    assert not calls
    pd.testing.assert_frame_equal(first, second)
    cached_attack_sweeps(store, cfg, toy, x, y, DETERMINISTIC, seed=1, noise_control=counting_control)
    assert calls, "another seed must not read the first seed's artifact"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epsilons": {"L2": (-0.5, 1.0)}}, r"epsilons.*finite and > 0"),
        ({"epsilons": {"L2": ()}}, r"epsilons.*sweep is empty"),
        ({"epsilons": {}}, r"epsilons.*no norm to attack"),
        ({"epsilons": {"L3": (1.0,)}}, r"epsilons.*'L2' or 'Linf'"),
        ({"epsilons": {"L2": (2.0, 1.0)}}, r"strictly increasing"),
        ({"epsilons": {"Linf": (0.1, 2.0)}}, r"Linf ε must be <= 1"),
        ({"steps": 0}, r"parameter 'steps'"),
        ({"eot_iter": 1}, r"parameter 'eot_iter'"),
        ({"subset_size": 0}, r"parameter 'subset_size'"),
        ({"restarts": 2}, r"unknown parameter 'restarts'"),
    ],
)
def test_invalid_attack_config_fails_clearly(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes)


def test_apgd_rejects_an_unknown_norm(toy, data) -> None:
    x, y = data
    with pytest.raises(ValueError, match="unknown norm 'L1'; allowed norms: L2, Linf"):
        apgd_attack(toy, x, y, norm="L1", eps=1.0, steps=2)  # type: ignore[arg-type]


def test_norm_bound_check_allows_float32_rounding_only() -> None:
    assert within_bound(torch.tensor([0.0, 0.5, 1.0]), 1.0)
    assert within_bound(torch.tensor([1.0 + 2e-7]), 1.0)  # two float32 ulps of 1
    assert within_bound(torch.zeros(0), 0.5)  # nothing attacked
    assert not within_bound(torch.tensor([0.5, 1.001]), 1.0)
    assert not within_bound(torch.tensor([0.05 * 1.01]), 0.05)


@pytest.mark.parametrize("norm", ["L2", "Linf"])
@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_sweep_reports_the_largest_perturbation_and_flags_one_beyond_eps(toy, data, monkeypatch, norm, scale) -> None:
    x, y = data
    epsilons = (0.1, 0.2)

    def one_pixel_attack(model, inputs, labels, cfg, *, eps, **_):
        """Move the (dim background) top-left pixel of every sample by scale·ε: that is its L2 and its L∞ norm."""
        moved = inputs.clone()
        moved[:, 0, 0, 0] += scale * eps
        return moved

    monkeypatch.setattr(attacks, "attack_inputs", one_pixel_attack)
    cfg = config(epsilons={norm: epsilons})
    table = attack_sweep(toy, x, y, cfg, DETERMINISTIC, norm=norm, eot=False, seed=0, noise_control=toy_noise_control)
    attacked = table[table["eps"] > 0]
    assert (attacked["n_attacked"] > 0).all()
    assert attacked["max_norm"].tolist() == pytest.approx([scale * eps for eps in epsilons], rel=1e-5)
    assert attacked["within_bound"].tolist() == [scale <= 1] * len(epsilons)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_attacks_in_both_norms(name) -> None:
    assert set(get_profile(name).attack.epsilons) == {"L2", "Linf"}
