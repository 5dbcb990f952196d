"""Chapter 5's attack protocol on toy models whose answers are known: it attacks what is deployed, keeps the
strongest point, scores on fresh noise, and its checks pass on sound attacks and fail on broken ones."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from robustness_toys import ShatteredNoiseLinear, toy_data, toy_noise_control, trained_toy, within_norm_ball

from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.claims import c3_attacks
from nsdelib.claims.c3_attacks import (
    RANDOM,
    ROBUSTNESS_SWEEP,
    SQUARE,
    STRONG,
    TRANSFER,
    WORST,
    AttackConfig,
    SanityCheckFailed,
    accuracy_table,
    apgd,
    attack_plateau,
    attacked_as,
    cascade_attacks,
    check_attacks,
    convergence_study,
    expected_correct,
    headline_first,
    masking_gap,
    masking_gap_range,
    monotonicity_check,
    perturbation_norms,
    random_direction,
    random_perturbation,
    robustness_sweep,
    sanity_checks,
    square,
    uncollapsed_norms,
)
from nsdelib.common import ConfigError
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.evaluation.sweeps import SweepTarget, cached_subset_sweep
from nsdelib.models.inference import EvalMode, predict

DETERMINISTIC = (EvalMode("toy", "off"),)
ENSEMBLE, SINGLE, OFF = EvalMode("ensemble", "ensemble", 8), EvalMode("single pass", "single"), EvalMode("off", "off")
EPSILONS = {"L2": (0.25, 0.5, 1.0, 2.0, 4.0), "Linf": (0.02, 0.05, 0.1, 0.3)}


@pytest.fixture(scope="module")
def toy() -> torch.nn.Module:
    return trained_toy(sigma=0.0)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return toy_data(48, seed=7)


def config(**changes: object) -> AttackConfig:
    base = {"epsilons": EPSILONS, "headline_epsilons": {"L2": (1.0,)}, "sweep_steps": 5, "steps": 10, "eot_iter": 4,
            "score_draws": 4, "square_queries": 30, "square_subset": 12, "convergence_steps": (2, 10),
            "convergence_eot": (1, 4), "convergence_subset": 12, "batch_size": 64}
    return AttackConfig.build(**{**base, **changes})


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict(model, x, DETERMINISTIC[0], batch_size=64, seed=0, noise_control=toy_noise_control) == y).float().mean())


@pytest.mark.parametrize("norm", ["L2", "Linf"])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_keeps_the_strongest_point_inside_the_ball(toy, data, norm, loss) -> None:
    x, y = data
    eps = {"L2": 1.0, "Linf": 0.3}[norm]
    adversarial = apgd(toy, x, y, norm=norm, eps=eps, loss=loss, steps=10, seed=0)
    assert within_norm_ball(perturbation_norms(x, adversarial, norm), eps)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert (perturbation_norms(x, adversarial, norm) > 0).all(), "every image is attacked, fooled or not"
    assert accuracy(toy, adversarial, y) < accuracy(toy, x, y) - 0.3


def test_apgd_rejects_an_unknown_norm(toy, data) -> None:
    x, y = data
    with pytest.raises(ValueError, match="unknown norm 'L1'; allowed norms: L2, Linf"):
        apgd(toy, x, y, norm="L1", eps=1.0, loss="ce", steps=2, seed=0)  # type: ignore[arg-type]


def test_a_stochastic_mode_is_attacked_as_its_expected_softmax(data) -> None:
    """Shattered gradients: one noisy pass's gradient points anywhere; the EOT average finds the true direction."""
    x, y = data
    model = ShatteredNoiseLinear().eval()
    seen = []

    def recording_control(m, mode, ensemble_size):
        seen.append((mode, ensemble_size))
        return toy_noise_control(m, mode, ensemble_size)

    with attacked_as(model, SINGLE, 16, recording_control):
        eot = apgd(model, x, y, norm="L2", eps=1.25, loss="ce", steps=10, seed=0)
    with attacked_as(model, OFF, 16, recording_control):
        assert model.noise_mode == "off"
    assert seen == [("ensemble", 16), ("off", None)]
    with toy_noise_control(model, "single", None):
        one_draw = apgd(model, x, y, norm="L2", eps=1.25, loss="ce", steps=10, seed=0)
    scored = {name: float(expected_correct(model, adv, y, SINGLE, draws=8, seed=1, batch_size=64,
                                           noise_control=toy_noise_control).mean())
              for name, adv in (("eot", eot), ("one draw", one_draw))}
    assert scored["eot"] < scored["one draw"] - 0.25, f"noise did not mask one draw's gradient, or EOT did not help: {scored}"


def test_scoring_uses_fresh_draws_and_averages_them() -> None:
    x, y = toy_data(60, seed=3)
    noisy = trained_toy(sigma=3.0)
    share = expected_correct(noisy, x, y, SINGLE, draws=12, seed=0, batch_size=64, noise_control=toy_noise_control)
    assert share.shape == (60,) and ((share * 12) % 1 == 0).all()
    assert ((share > 0) & (share < 1)).any(), "a noisy model's per-image score lies between the draws' outcomes"
    assert torch.equal(share, expected_correct(noisy, x, y, SINGLE, draws=12, seed=0, batch_size=64,
                                               noise_control=toy_noise_control))
    once = expected_correct(noisy, x, y, OFF, draws=12, seed=0, batch_size=64, noise_control=toy_noise_control)
    assert set(once.tolist()) <= {0.0, 1.0}, "a deterministic mode is evaluated once"


def test_robustness_sweep_runs_the_protocol_and_its_checks_pass(data) -> None:
    x, y = data
    cfg = config()
    model = trained_toy(sigma=0.3)
    table = robustness_sweep(SweepTarget(model, x, y, (ENSEMBLE, SINGLE, OFF), 0, toy_noise_control), cfg)
    sweep = table[table["protocol"] == "sweep"]
    assert set(sweep["attack"]) == {"clean", "APGD-CE", RANDOM}
    assert set(sweep.loc[sweep["eps"] > 0, "mode"]) == {ENSEMBLE.name}
    full = table[table["protocol"] == "full"]
    headline_attacks = set(full.loc[full["mode"] == ENSEMBLE.name, "attack"])
    assert headline_attacks <= {"APGD-CE", "APGD-DLR", SQUARE, TRANSFER, STRONG, WORST}
    assert {"APGD-CE", WORST} <= headline_attacks
    assert set(full.loc[full["mode"] == OFF.name, "attack"]) == {"APGD-CE", WORST}
    assert len(full[(full["attack"] == SQUARE)]) <= cfg.square_subset
    worst = full[(full["mode"] == ENSEMBLE.name) & (full["attack"] == WORST)].set_index("example")["correct"]
    assert len(worst) == len(y), "the worst case covers every image"
    each = full[(full["mode"] == ENSEMBLE.name) & ~full["attack"].isin([WORST])].groupby("example")["correct"].min()
    assert (worst.loc[each.index] <= each).all(), "robust only if it survives every attack"
    cascade = table[table["protocol"] == "cascade"].groupby("attack", sort=False)["correct"].mean()
    assert list(cascade.index) == [a for a in cascade_attacks(True) if a in cascade.index]
    assert (cascade.diff().dropna() <= 0).all(), "each attack of the cascade can only lower the worst case"
    assert within_norm_ball(torch.tensor(table.loc[table["eps"] > 0, "delta_norm"].to_numpy()) /
                            torch.tensor(table.loc[table["eps"] > 0, "eps"].to_numpy()), 1.0)
    checks = check_attacks(table.assign(model="toy", seed=0), baseline="toy", threshold=1.0)
    assert checks["within bound"].all() and checks["rises within noise"].all()
    gap = masking_gap(table.assign(model="toy", seed=0))
    assert set(gap["mode"]) == {ENSEMBLE.name} and gap["Square − gradient"].notna().all()


def test_the_sweep_is_cached_by_content(toy, data, tmp_path, monkeypatch) -> None:
    x, y = data
    cfg, store = config(epsilons={"L2": (1.0, 2.0)}, headline_epsilons={}, subset_size=24), ArtifactStore(tmp_path)
    first = cached_subset_sweep(store, ROBUSTNESS_SWEEP, cfg, robustness_sweep, SweepTarget(toy, x, y, DETERMINISTIC, 0, toy_noise_control))
    assert set(first["example"]) <= set(range(48)) and first.groupby(["norm", "eps", "attack"]).size().eq(24).all()
    monkeypatch.setattr(c3_attacks, "apgd", lambda *a, **k: pytest.fail("attacked again"))
    again = cached_subset_sweep(store, ROBUSTNESS_SWEEP, cfg, robustness_sweep, SweepTarget(toy, x, y, DETERMINISTIC, 0, toy_noise_control))
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(pytest.fail.Exception, match="attacked again"):
        cached_subset_sweep(store, ROBUSTNESS_SWEEP, cfg, robustness_sweep, SweepTarget(toy, x, y, DETERMINISTIC, 1, toy_noise_control))


def test_convergence_varies_steps_and_eot_around_the_headline_setting(data) -> None:
    x, y = data
    table = convergence_study(SweepTarget(trained_toy(sigma=0.3), x, y, (ENSEMBLE,), 0, toy_noise_control), config())
    assert table[["steps", "eot", "varied"]].values.tolist() == [[2, 4, "steps"], [10, 4, "steps"], [10, 1, "EOT draws"],
                                                                 [10, 4, "EOT draws"]]
    assert table["headline"].tolist() == [False, True, False, True]
    assert table["accuracy"].between(0, 1).all()


def outcome_rows(accuracies: dict[float, float], n: int = 100, attack: str = "APGD-CE") -> pd.DataFrame:
    """Per-image rows of a sweep curve with the given accuracy at each ε (the first images correct)."""
    return pd.concat([pd.DataFrame({"model": "m", "seed": 0, "norm": "L2", "eps": eps, "mode": "m", "protocol": "sweep",
                                    "attack": "clean" if eps == 0 else attack, "example": range(n),
                                    "correct": [1.0] * round(acc * n) + [0.0] * (n - round(acc * n)),
                                    "delta_norm": 0.5 * eps}) for eps, acc in accuracies.items()], ignore_index=True)


def test_accuracy_table_counts_each_curve_point_and_keeps_its_largest_perturbation() -> None:
    rows = outcome_rows({0.0: 0.9, 1.0: 0.4, 2.0: 0.25}, n=20)
    rows["delta_norm"] = rows["eps"] * (rows["example"] + 1) / 20  # the last image reaches ε exactly
    table = accuracy_table(pd.concat([rows, rows.assign(seed=1, correct=1.0)], ignore_index=True))
    assert table[["seed", "eps"]].values.tolist() == [[0, 0.0], [0, 1.0], [0, 2.0], [1, 0.0], [1, 1.0], [1, 2.0]]
    assert table["accuracy"].tolist() == pytest.approx([0.9, 0.4, 0.25, 1.0, 1.0, 1.0])
    assert table["n_samples"].tolist() == [20] * 6
    assert table["max_delta_norm"].tolist() == pytest.approx([0.0, 1.0, 2.0, 0.0, 1.0, 2.0])


def test_monotonicity_allows_sampling_noise_and_fails_beyond_it() -> None:
    falling = accuracy_table(outcome_rows({0.0: 0.9, 1.0: 0.5, 2.0: 0.52, 4.0: 0.1}))
    assert monotonicity_check(falling)["ok"].all(), "a 2-point rise on 100 images is sampling noise"
    rising = accuracy_table(outcome_rows({0.0: 0.9, 1.0: 0.3, 2.0: 0.6, 4.0: 0.1}))
    check = monotonicity_check(rising)
    assert not check["ok"].all() and check["largest rise"].iloc[0] == pytest.approx(0.3)


def sound_outcomes() -> pd.DataFrame:
    curve = {0.0: 0.9, 1.0: 0.4, 2.0: 0.0}
    noise = {eps: 0.85 for eps in curve if eps > 0}
    return pd.concat([outcome_rows(curve), outcome_rows(noise, attack=RANDOM)], ignore_index=True)


def test_sound_outcomes_pass_every_check() -> None:
    checks = check_attacks(sound_outcomes(), baseline="m")
    assert checks.loc[("m", "L2"), "accuracy at largest ε"] == 0.0
    assert checks.loc[("m", "L2"), "attack ≤ random noise"] == 1.0


def test_a_perturbation_outside_its_ball_fails() -> None:
    table = sound_outcomes()
    table.loc[(table["eps"] == 2.0) & (table["example"] == 5), "delta_norm"] = 2.01
    with pytest.raises(SanityCheckFailed, match=r"exceed their norm bound: \[\('m', 'L2'\)\]"):
        check_attacks(table, baseline="m")


def test_accuracy_rising_with_eps_fails() -> None:
    table = pd.concat([outcome_rows({0.0: 0.9, 1.0: 0.2, 2.0: 0.6}), outcome_rows({1.0: 0.85, 2.0: 0.85}, attack=RANDOM)])
    with pytest.raises(SanityCheckFailed, match="rose with ε beyond sampling noise"):
        check_attacks(table, baseline="m", threshold=1.0)


def test_random_noise_beating_the_attack_fails() -> None:
    table = pd.concat([outcome_rows({0.0: 0.9, 1.0: 0.4, 2.0: 0.0}), outcome_rows({1.0: 0.3, 2.0: 0.6}, attack=RANDOM)])
    with pytest.raises(SanityCheckFailed, match=r"random noise beat the attack on average at \[\('m', 'L2', 1.0\)\]"):
        check_attacks(table, baseline="m")


def test_a_baseline_that_does_not_collapse_fails() -> None:
    table = pd.concat([outcome_rows({0.0: 0.9, 1.0: 0.4, 2.0: 0.2}), outcome_rows({1.0: 0.85, 2.0: 0.85}, attack=RANDOM)])
    with pytest.raises(SanityCheckFailed, match=r"m keeps 20.0% accuracy at the largest ε \(more than 5%\)"):
        check_attacks(table, baseline="m")
    assert check_attacks(table, baseline="m", threshold=0.25) is not None


def test_collapse_is_demanded_only_in_the_norms_where_c3_is_sought() -> None:
    """A norm without a headline ε may end its sweep above the threshold: it is shown, not enforced."""
    linf = pd.concat([outcome_rows({0.0: 0.9, 0.01: 0.5, 0.02: 0.2}), outcome_rows({0.01: 0.85, 0.02: 0.85},
                                                                                   attack=RANDOM)]).assign(norm="Linf")
    table = pd.concat([sound_outcomes(), linf], ignore_index=True)
    checks = check_attacks(table, baseline="m", collapse_norms=("L2",))
    assert uncollapsed_norms(checks, "m").to_dict() == pytest.approx({"Linf": 0.2}), "L2 reaches 0: only L∞ stops short"
    with pytest.raises(SanityCheckFailed, match=r"m keeps 20.0% accuracy at the largest ε"):
        check_attacks(table, baseline="m", collapse_norms=("L2", "Linf"))


def test_recorded_outcomes_without_perturbation_norms_leave_the_bound_check_open() -> None:
    checks = sanity_checks(sound_outcomes().drop(columns="delta_norm"))
    assert pd.isna(checks.loc[("m", "L2"), "within bound"])
    assert checks.loc[("m", "L2"), "accuracy at largest ε"] == 0.0


def test_masking_gap_is_negative_when_the_gradient_free_attack_is_stronger() -> None:
    rows = []
    for attack, correct in (("APGD-CE", 1.0), ("APGD-DLR", 1.0), (SQUARE, 0.0)):
        rows.append(pd.DataFrame({"model": "m", "seed": 0, "norm": "L2", "eps": 1.0, "mode": "m", "protocol": "full",
                                  "attack": attack, "example": range(4), "correct": correct, "delta_norm": 0.5}))
    gap = masking_gap(pd.concat(rows))
    assert gap["Square − gradient"].tolist() == [-1.0]


@pytest.mark.parametrize("norm", ["L2", "Linf"])
def test_random_perturbation_has_the_requested_norm_after_clipping(data, norm) -> None:
    x, _ = data
    direction = random_direction(x.shape, norm, torch.Generator().manual_seed(0))
    for eps in EPSILONS[norm]:
        noisy = random_perturbation(x, eps, norm, direction)
        assert noisy.min() >= 0 and noisy.max() <= 1
        assert perturbation_norms(x, noisy, norm) == pytest.approx(eps, rel=1e-3)


def within_bound(delta: float, eps: float = 1.0) -> bool:
    """The sanity checks' norm-bound verdict on a sweep whose attacked images all moved by ``delta``."""
    rows = pd.concat([outcome_rows({0.0: 0.9, eps: 0.4}), outcome_rows({eps: 0.85}, attack=RANDOM)], ignore_index=True)
    rows.loc[rows["eps"] > 0, "delta_norm"] = delta
    return bool(c3_attacks.sanity_checks(rows).loc[("m", "L2"), "within bound"])


def test_norm_bound_check_allows_float32_rounding_only() -> None:
    assert within_bound(0.5) and within_bound(1.0)
    assert within_bound(1.0 + 2e-7)  # two float32 ulps of 1
    assert not within_bound(1.001)
    assert not within_bound(0.05 * 1.01, eps=0.05)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epsilons": {"L2": (-0.5, 1.0)}}, r"epsilons.*finite and > 0"),
        ({"epsilons": {"L2": ()}}, r"epsilons.*at least 1 item"),
        ({"epsilons": {}}, r"epsilons.*at least 1 item"),
        ({"epsilons": {"L3": (1.0,)}}, r"epsilons.*'L2' or 'Linf'"),
        ({"epsilons": {"L2": (2.0, 1.0)}}, r"strictly increasing"),
        ({"epsilons": {"Linf": (0.1, 2.0)}}, r"Linf ε must be <= 1"),
        ({"steps": 0}, r"parameter 'steps'"),
        ({"eot_iter": 0}, r"parameter 'eot_iter'"),
        ({"headline_epsilons": {"L2": (3.0,)}}, r"headline L2 ε \[3.0\] must be part of the L2 grid"),
        ({"subset_size": 0}, r"parameter 'subset_size'"),
        ({"restarts": 2}, r"unknown parameter 'restarts'"),
    ],
)
def test_invalid_attack_config_fails_clearly(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_attacks_in_both_norms_with_headline_budgets_in_the_grid(name) -> None:
    attack = get_profile(name).attack
    assert set(attack.epsilons) == {"L2", "Linf"} and set(attack.headline_epsilons) == {"L2", "Linf"}
    assert "L2" in attack.headline_norms, "C3 is an L2 claim: its ε is sought in L2 at every profile"


def test_headline_first_puts_the_reported_mode_first_and_keeps_the_others_once() -> None:
    sde = get_profile("ci").model.sde
    for eval_noise in ("ensemble", "single", "off"):
        modes = headline_first("nsde", sde.replace(eval_noise=eval_noise))
        assert modes[0].noise == eval_noise
        assert sorted(m.noise for m in modes) == ["ensemble", "off", "single"]
    assert [m.noise for m in headline_first("convnext", sde)] == ["off"]


@pytest.mark.parametrize(("headline", "norm", "eps"), [({"L2": (1.0, 2.0)}, "L2", 1.0),
                                                        ({"Linf": (0.05,), "L2": (1.0,)}, "L2", 1.0),
                                                        ({"L2": (), "Linf": (0.05,)}, "Linf", 0.05)])
def test_convergence_study_attacks_the_first_mode_at_the_first_headline_epsilon(data, headline, norm, eps) -> None:
    x, y = data
    target = SweepTarget(trained_toy(sigma=0.3), x, y, (ENSEMBLE, OFF), 0, toy_noise_control)
    study = convergence_study(target, config(headline_epsilons=headline))
    assert study.equals(convergence_study(target, config(headline_epsilons={norm: (eps,)})))
    assert (study["norm"] == norm).all() and (study["eps"] == eps).all() and (study["mode"] == ENSEMBLE.name).all()


def test_convergence_attacks_each_setting_as_deployed_on_its_subset(data, monkeypatch) -> None:
    x, y = data
    seen: list[tuple[int, object]] = []
    real = c3_attacks.attacked_as

    def recording(model, mode, eot_iter, noise_control=None):  # type: ignore[no-untyped-def]
        seen.append((eot_iter, noise_control))
        return real(model, mode, eot_iter, noise_control)

    monkeypatch.setattr(c3_attacks, "attacked_as", recording)
    cfg = config(convergence_subset=6)
    table = convergence_study(SweepTarget(trained_toy(sigma=0.3), x, y, (ENSEMBLE,), 0, toy_noise_control), cfg)
    assert seen == [(4, toy_noise_control), (4, toy_noise_control), (1, toy_noise_control), (4, toy_noise_control)]
    assert table["n_samples"].tolist() == [6] * 4
    seen.clear()
    deterministic = convergence_study(SweepTarget(trained_toy(sigma=0.0), x, y, (OFF,), 0, toy_noise_control), cfg)
    assert deterministic["varied"].tolist() == ["steps", "steps"], "no EOT axis without noise"
    assert len(seen) == 2


def test_square_builds_torchattacks_square_with_the_given_budget(data, monkeypatch) -> None:
    built: dict[str, object] = {}
    real = c3_attacks.torchattacks.Square

    def recording(model, **kwargs):  # type: ignore[no-untyped-def]
        built.update(kwargs)
        return real(model, **kwargs)

    monkeypatch.setattr(c3_attacks.torchattacks, "Square", recording)
    x, y = data
    adversarial = square(trained_toy(sigma=0.0), x[:4], y[:4], norm="Linf", eps=0.2, n_queries=3, seed=5)
    assert built == {"norm": "Linf", "eps": 0.2, "n_queries": 3, "seed": 5}
    assert adversarial.shape == x[:4].shape


def test_masking_gap_pairs_images_within_each_seed_and_epsilon() -> None:
    rows = []
    for seed, eps, square_correct in ((0, 1.0, 0.0), (1, 1.0, 1.0), (0, 2.0, 1.0)):
        for attack, correct in (("APGD-CE", 0.5), (SQUARE, square_correct)):
            rows.append(pd.DataFrame({"model": "m", "seed": seed, "norm": "L2", "eps": eps, "mode": "m",
                                      "protocol": "full", "attack": attack, "example": range(4),
                                      "correct": [correct, correct, 1.0, 0.0] if attack == SQUARE else 1.0,
                                      "delta_norm": 0.5}))
    gap = masking_gap(pd.concat(rows, ignore_index=True))
    assert gap[["seed", "eps"]].values.tolist() == [[0, 1.0], [0, 2.0], [1, 1.0]]
    assert gap["Square"].tolist() == [0.25, 0.75, 0.75] and gap["gradient attacks"].tolist() == [1.0, 1.0, 1.0]
    assert gap["images"].tolist() == [4, 4, 4]
    assert masking_gap_range(gap) == ("ranges from -75.0 to -25.0 points, with Square run on 4 to 4 images per model, "
                                      "seed and budget")
    assert masking_gap_range(gap.iloc[:0]) == "is not measured (the gradient attacks left no image for Square)"


def test_sanity_checks_cover_every_attacked_epsilon_however_small() -> None:
    curve = {0.0: 0.9, 0.25: 0.6, 0.5: 0.3}
    rows = pd.concat([outcome_rows(curve), outcome_rows({0.25: 0.8, 0.5: 0.7}, attack=RANDOM)], ignore_index=True)
    checks = c3_attacks.sanity_checks(rows).loc[("m", "L2")]
    assert checks["within bound"] and checks["attack ≤ random noise"] == 1.0
    assert checks["mean attack − random"] == pytest.approx(-0.2)
    rows.loc[(rows["eps"] == 0.25) & (rows["example"] == 3), "delta_norm"] = 0.3  # one image left its 0.25-ball
    assert not c3_attacks.sanity_checks(rows).loc[("m", "L2"), "within bound"]


def test_monotonicity_tolerance_is_two_standard_errors_of_the_difference() -> None:
    # 0.50 -> 0.67 on 100 images: a rise of 0.17 against 2·sqrt(0.5·0.5/100 + 0.67·0.33/100) = 0.137
    check = monotonicity_check(accuracy_table(outcome_rows({0.0: 0.9, 1.0: 0.5, 2.0: 0.67})))
    assert not check["ok"].all() and check["largest rise"].iloc[0] == pytest.approx(0.17)
    assert monotonicity_check(accuracy_table(outcome_rows({0.0: 0.9, 1.0: 0.5, 2.0: 0.63})))["ok"].all()


def test_attacking_no_images_returns_no_images(data) -> None:
    x, y = data
    adversarial = apgd(trained_toy(sigma=0.0), x[:0], y[:0], norm="L2", eps=1.0, loss="ce", steps=2, seed=0)
    assert adversarial.shape == x[:0].shape


def test_monotonicity_is_judged_within_each_seed() -> None:
    # two falling curves at different levels: pooled across seeds, 0.5 (seed 0) -> 0.8 (seed 1) would look like a rise
    rows = pd.concat([outcome_rows({0.0: 0.9, 1.0: 0.5, 2.0: 0.1}),
                      outcome_rows({0.0: 0.95, 1.0: 0.8, 2.0: 0.6}).assign(seed=1)], ignore_index=True)
    check = monotonicity_check(accuracy_table(rows))
    assert check["ok"].all() and len(check) == 2


def fake_outcome(x: torch.Tensor, salt: float) -> torch.Tensor:
    """A per-image value in {0, 1/4, …, 1} that depends on the image alone (and on ``salt``), never on its batch."""
    return ((x.flatten(1).sum(1) * 7.3 + salt).sin().abs() * 5).floor().clamp(max=4) / 4


@pytest.mark.parametrize("profile", ["toy", "ci"])
@pytest.mark.parametrize("modes", [(ENSEMBLE, SINGLE, OFF), DETERMINISTIC])
def test_the_cascade_finds_the_same_worst_case_as_every_attack_on_every_image(data, monkeypatch, modes, profile) -> None:
    """Attacks and scores that depend on each image alone: the cascade's bookkeeping is then all that differs.
    ``profile``: this file's toy budgets, or the ci profile's (its grids, headline ε and cascade budgets)."""
    x, y = data
    salts = {"ce": 1.0, "dlr": 2.0, "square": 3.0}

    def fake_apgd(model, x, y, *, loss, steps, eps, **_):  # type: ignore[no-untyped-def]
        salt = salts[loss] + steps / 7 + eps
        return (x + 1e-3 * fake_outcome(x, salt).view(-1, 1, 1, 1)).clamp(0, 1)

    def fake_square(model, x, y, *, eps, **_):  # type: ignore[no-untyped-def]
        return (x + 1e-3 * fake_outcome(x, salts["square"] + eps).view(-1, 1, 1, 1)).clamp(0, 1)

    def fake_score(model, x, y, mode, **_):  # type: ignore[no-untyped-def]
        return fake_outcome(x, 0.1 * len(mode.name))

    monkeypatch.setattr(c3_attacks, "apgd", fake_apgd)
    monkeypatch.setattr(c3_attacks, "square", fake_square)
    monkeypatch.setattr(c3_attacks, "expected_correct", fake_score)
    cfg = config(square_subset=len(y)) if profile == "toy" else get_profile("ci").attack.replace(square_subset=len(y))
    eps = cfg.headline_epsilons["L2"][0]
    table = robustness_sweep(SweepTarget(trained_toy(sigma=0.3), x, y, modes, 0, toy_noise_control), cfg)
    headline = modes[0]
    at = table[(table["norm"] == "L2") & (table["mode"] == headline.name) & (table["eps"] == eps)]
    worst = at[(at["attack"] == WORST)].set_index("example")["correct"].sort_index()
    # every attack on every image: the clean score, the sweep at ε ≤ 1 and each attack of the full protocol
    candidates = [fake_score(None, x, y, headline)]
    candidates += [fake_score(None, fake_apgd(None, x, y, loss="ce", steps=cfg.sweep_steps, eps=smaller), y, headline)
                   for smaller in cfg.epsilons["L2"] if smaller <= eps]
    for name in cascade_attacks(headline.stochastic):
        if name == SQUARE:
            adversarial = fake_square(None, x, y, eps=eps)
        else:
            adversarial = fake_apgd(None, x, y, loss="dlr" if name == "APGD-DLR" else "ce", eps=eps,
                                    steps=cfg.strong_steps if name == STRONG else cfg.steps)
        candidates.append(fake_score(None, adversarial, y, headline))
    expected = torch.stack(candidates).min(0).values
    assert torch.equal(torch.tensor(worst.to_numpy(), dtype=expected.dtype), expected)
    attacked = at[(at["protocol"] == "full") & ~at["attack"].isin([WORST])]
    assert len(attacked) < len(cascade_attacks(headline.stochastic)) * len(y), "the cascade skipped broken images"


def test_monte_carlo_error_comes_from_the_draws_and_vanishes_for_a_deterministic_mode() -> None:
    rows = pd.DataFrame({"norm": "L2", "eps": 1.0, "mode": "m", "attack": WORST, "protocol": "full",
                         "example": range(100), "correct": [0.5, 0.25, 1.0, 0.0] * 25, "delta_norm": 0.9, "draws": 4})
    table = accuracy_table(rows)
    variance = 25 * (0.25 / 3 + 0.1875 / 3)  # p(1−p)/(draws−1) per image: 0 where every draw agrees
    assert table["mc_se"].iloc[0] == pytest.approx(variance ** 0.5 / 100)
    assert accuracy_table(rows.assign(draws=1))["mc_se"].iloc[0] == 0.0


def test_plateau_is_flat_within_monte_carlo_error_and_not_beyond() -> None:
    study = pd.DataFrame({"model": "m", "varied": "steps", "steps": [10, 50, 100], "eot": 5,
                          "accuracy": [0.5, 0.40, 0.38], "mc_se": [0.01, 0.01, 0.01], "n_samples": 256})
    assert attack_plateau(study)["flat"].tolist() == [True]  # 0.02 ≤ 2 × √2 × 0.01
    falling = study.assign(accuracy=[0.5, 0.40, 0.30])
    row = attack_plateau(falling).iloc[0]
    assert not row["flat"] and row["change"] == pytest.approx(-0.10) and row["budgets"] == "50 → 100"
