"""Attribution-Based Confidence: Algorithm 1 against closed forms on toy models, seeding, validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from nsdelib.claims.c4_abc import ABCConfig, abc_from_attributions, mutation_probabilities
from nsdelib.common import ConfigError
from nsdelib.evaluation.attributions import AttributionConfig, attribute

SHAPE = (1, 2, 5)  # ten features
KEY = 3  # the only feature that decides the class
ZERO = 7  # a feature that is exactly zero in every input
A = 4.0  # the decisive feature's weight
C = torch.tensor([0.5, -1.0, 0.8, 0.2, 1.5, -0.6, 0.3, 5.0, -0.4, 0.9])  # shared weights of both logits


class OneFeatureDecides(nn.Module):
    """logit₀ = A·x_KEY + C·x, logit₁ = A/2 + C·x: class 0 iff x_KEY > 1/2; C·x shifts both logits alike."""

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)
        shared = flat @ C
        return torch.stack([A * flat[:, KEY] + shared, torch.full_like(shared, A / 2) + shared], dim=1)


def attribution_config() -> AttributionConfig:
    return AttributionConfig.build(
        ig_steps=8, smoothgrad_samples=2, noise_draws=1, perturbation_levels=(0.1,), subset_size=3, batch_size=16
    )


def abc_config(**changes: object) -> ABCConfig:
    return ABCConfig.build(**{"samples": 20_000, "batch_size": 4096, **changes})


def abc_score(model: nn.Module, x: Tensor, cfg: ABCConfig, baseline: float | Tensor = 0.0, seed: int = 0) -> Tensor:
    """Algorithm 1 end to end: the model's prediction, its attributions, then ABC."""
    predicted = model(x).argmax(1)
    maps = attribute(model, x, predicted, cfg.method, attribution_config(), baseline, seed)
    return abc_from_attributions(model, x, maps, predicted, cfg, baseline, seed)


def toy_inputs(key_values: list[float]) -> Tensor:
    x = torch.linspace(0.2, 1.0, 10).repeat(len(key_values), 1)
    x[:, KEY] = torch.tensor(key_values)
    x[:, ZERO] = 0.0
    return x.view(-1, *SHAPE)


def p_key_closed_form() -> float:
    """P(x_KEY) for class 0 with IG from a zero baseline: |A_j/x_j| is the weight, feature ZERO is excluded."""
    weights = C.abs().clone()
    weights[KEY] = abs(A + C[KEY])
    weights[ZERO] = 0.0
    return float(weights[KEY] / weights.sum())


@pytest.mark.parametrize(
    ("changes", "mutations"),
    [({}, 1.0), ({"mutation": "expected_count", "expected_mutations": 2.0}, 2.0)],
)
def test_abc_matches_its_closed_form_on_a_one_feature_model(changes: dict, mutations: float) -> None:
    x = toy_inputs([0.8, 0.9, 0.3])  # classes 0, 0, 1
    abc = abc_score(OneFeatureDecides(), x, abc_config(**changes), seed=0)
    expected = 1 - min(1.0, mutations * p_key_closed_form())  # class 0 survives unless x_KEY is mutated
    tolerance = 5 * math.sqrt(expected * (1 - expected) / 20_000)
    assert 0.1 < expected < 0.9  # neither trivial outcome
    assert abs(abc[0] - expected) < tolerance and abs(abc[1] - expected) < tolerance
    assert abc[2] == 1.0  # class 1 survives every mutation to the zero baseline


def test_mutation_probabilities_follow_step_three_with_the_zero_guard() -> None:
    x = toy_inputs([0.8])
    attributions = attribute(OneFeatureDecides(), x, 0, "integrated_gradients", attribution_config())
    p = mutation_probabilities(attributions, x, zero_guard=1e-6)
    assert p.shape == (1, 10)
    torch.testing.assert_close(p.sum(1), torch.ones(1))
    assert p[0, ZERO] == 0
    assert p[0, KEY] == pytest.approx(p_key_closed_form(), rel=1e-5)
    uniform = mutation_probabilities(torch.zeros_like(x), x, zero_guard=1e-6)
    torch.testing.assert_close(uniform[0], (x.flatten() != 0).float() / 9)


@pytest.mark.parametrize("changes", [{}, {"mutation": "expected_count", "expected_mutations": 10.0}])
def test_all_zero_input_is_never_mutated(changes: dict) -> None:
    # Mutating to baseline 1 would flip the class (x_KEY = 1 makes it 0), but every feature of an all-zero
    # input is under the zero guard: P = 0 everywhere, so no neighbour changes and ABC = 1.
    x = torch.zeros(2, *SHAPE)
    model = OneFeatureDecides()
    assert model(x).argmax(1).tolist() == [1, 1] and model(torch.ones(1, *SHAPE)).argmax(1).item() == 0
    abc = abc_score(model, x, abc_config(samples=400, **changes), baseline=1.0)
    assert torch.equal(abc, torch.ones(2))


def test_attributions_must_match_the_inputs() -> None:
    model, x = OneFeatureDecides(), toy_inputs([0.8, 0.3])
    attributions = attribute(model, x, 0, "integrated_gradients", attribution_config())
    predicted = model(x).argmax(1)
    # flattened maps would broadcast silently; cropped ones would fail somewhere deeper with a torch error
    for wrong, shape in ((attributions.flatten(1), r"\(2, 10\)"), (attributions[..., :4], r"\(2, 1, 2, 4\)")):
        with pytest.raises(ValueError, match=rf"attributions of shape {shape} do not match inputs \(2, 1, 2, 5\)"):
            abc_from_attributions(model, x, wrong, predicted, abc_config(samples=4))


def test_same_seed_same_abc() -> None:
    model, x = OneFeatureDecides(), toy_inputs([0.8] * 8)
    cfg = abc_config(samples=40)
    first = abc_score(model, x, cfg, seed=5)
    assert torch.equal(first, abc_score(model, x, cfg, seed=5))
    assert not torch.equal(first, abc_score(model, x, cfg, seed=6))


def test_invalid_parameters_fail_clearly() -> None:
    model, x = OneFeatureDecides(), toy_inputs([0.8])
    with pytest.raises(ConfigError, match="parameter 'samples' = 0"):
        abc_config(samples=0)
    with pytest.raises(ConfigError, match="parameter 'method' = 'deep_lift'"):
        abc_config(method="deep_lift")
    for changes in ({"mutation": "expected_count"}, {"expected_mutations": 3.0}):
        with pytest.raises(ConfigError, match="expected_mutations.*with mutation='expected_count' and only then"):
            abc_config(**changes)
    with pytest.raises(ConfigError, match="expected_mutations.*greater than 0"):
        abc_config(mutation="expected_count", expected_mutations=-1.0)
    maps = attribute(model, x, 0, "integrated_gradients", attribution_config())
    with pytest.raises(ConfigError, match=r"baseline of shape \(3,\).*expected"):
        abc_from_attributions(model, x, maps, model(x).argmax(1), abc_config(samples=4), baseline=torch.zeros(3))


def test_cached_abc_scores_the_explained_subset_shares_attributions_and_is_read_back(tmp_path, monkeypatch) -> None:
    from robustness_toys import toy_data, toy_noise_control, trained_toy

    from nsdelib.book.profiles import get_profile
    from nsdelib.claims import c4_abc as abc_module
    from nsdelib.claims.c5_stability import cached_attribution_stability
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.evaluation.sweeps import SweepTarget
    from nsdelib.models.inference import EvalMode

    profile, store = get_profile("ci"), ArtifactStore(tmp_path)
    attribution = profile.attribution
    cfg = profile.abc.replace(mutation="expected_count", expected_mutations=24.0)  # 24 of 64 toy pixels
    model, (x, y) = trained_toy(sigma=0.3, steps=60), toy_data(30, seed=9)
    mode = EvalMode("NSDE, single pass", "single")
    target = SweepTarget(model, x, y, (mode,), seed=1, noise_control=toy_noise_control)
    table = abc_module.cached_abc(store, cfg, attribution, target)
    assert list(table.columns) == ["example", "label", "predicted", "correct", "abc"]
    assert len(table) == attribution.subset_size
    assert table["label"].tolist() == y[table["example"]].tolist()
    assert table["abc"].between(0, 1).all() and table["abc"].nunique() > 1
    assert len(list((tmp_path / "attributions").iterdir())) == 1  # the noisy maps ABC averages
    cached_attribution_stability(store, attribution, target)
    assert len(list((tmp_path / "attributions").iterdir())) == 2  # stability reused them and added the noise-off maps
    monkeypatch.setattr(abc_module, "abc_from_attributions", lambda *a, **k: pytest.fail("recomputed"))
    again = abc_module.cached_abc(store, cfg, attribution, target)
    assert again.equals(table)


def test_rescaled_variants_are_labelled_deviations() -> None:
    from nsdelib.claims.c4_abc import abc_variants

    variants = abc_variants(abc_config(samples=4, rescaled_fractions=(0.01, 0.5)), n_features=200)
    assert list(variants) == ["as written", "m = 2 (1 % of features)", "m = 100 (50 % of features)"]
    assert variants["as written"].mutation == "as_written"
    assert [v.expected_mutations for v in variants.values()] == [None, 2.0, 100.0]
    for bad in ((0.5, 0.1), (0.1, 0.1), (0.5, 1.5), (0.0,)):
        with pytest.raises(ConfigError, match=r"rescaled_fractions.*(strictly increasing|lie in \(0, 1\]|finite and > 0)"):
            abc_config(rescaled_fractions=bad)


def test_abc_against_the_mutation_budget_follows_its_closed_form(tmp_path) -> None:
    # On the one-feature toy the class survives a neighbour unless x_KEY mutates, with probability min(1, m·P_KEY):
    # ABC(m) = 1 − min(1, m·P_KEY) at every budget of the grid, the algorithm as written (m = 1) included.
    from nsdelib.claims.c4_abc import abc_curve
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.evaluation.sweeps import SweepTarget
    from nsdelib.models.inference import EvalMode

    x = toy_inputs([0.8, 0.9, 0.85])
    target = SweepTarget(OneFeatureDecides(), x, torch.zeros(3, dtype=torch.long), (EvalMode("toy", "off"),), seed=0)
    cfg = abc_config(rescaled_fractions=(0.2, 0.3))  # m = 2 and 3 of the ten features
    curve = abc_curve(ArtifactStore(tmp_path), cfg, attribution_config(), target)
    assert sorted(curve["m"].unique()) == [1.0, 2.0, 3.0]
    labels = ["as written", "m = 2 (20 % of features)", "m = 3 (30 % of features)"]
    assert curve.drop_duplicates("m")["budget"].tolist() == labels and curve.index.tolist() == list(range(9))
    assert curve["correct"].all()
    for m, rows in curve.groupby("m"):
        expected = 1 - min(1.0, m * p_key_closed_form())
        tolerance = 5 * math.sqrt(max(expected * (1 - expected), 1e-12) / 20_000) + 1e-9
        assert (rows["abc"] - expected).abs().max() <= tolerance, (m, rows["abc"].tolist(), expected)
    assert (curve.loc[curve["m"] == 3.0, "abc"] == 0).all()  # 3·P_KEY > 1: the decisive feature always mutates


def test_log_crossing_interpolates_in_log_and_falls_back_to_the_nearest_end() -> None:
    from nsdelib.claims.c4_abc import log_crossing

    crossing = log_crossing([1, 10, 100], [0.9, 0.7, 0.3], 0.5)
    assert crossing.crossed and crossing.value == pytest.approx(10**1.5)
    assert log_crossing([1, 10, 100], [0.9, 0.5, 0.3], 0.5).value == pytest.approx(10)
    assert log_crossing([1, 10], [0.2, 0.8], 0.5).value == pytest.approx(10**0.5)  # rising curves cross too
    above = log_crossing([1, 10, 100], [0.99, 0.95, 0.9], 0.5)
    assert (above.value, above.crossed) == (100, False) and "never reaches 0.5" in above.note
    below = log_crossing([1, 10, 100], [0.3, 0.2, 0.1], 0.5)
    assert (below.value, below.crossed) == (1, False)


def test_budgets_must_grow_beyond_the_algorithm_as_written() -> None:
    from nsdelib.claims.c4_abc import abc_variants, at_budget, nominal_mutations

    with pytest.raises(ConfigError, match=r"rescaled fraction 0.001 of 200 features is m = 0.2 mutations"):
        abc_variants(abc_config(samples=4, rescaled_fractions=(0.001, 0.5)), n_features=200)
    rescaled = at_budget(abc_config(samples=4, rescaled_fractions=(0.5,)), 7.5)
    assert (rescaled.mutation, nominal_mutations(rescaled)) == ("expected_count", 7.5)
    assert nominal_mutations(abc_config(samples=4)) == 1.0


def test_one_draw_neighbours_are_scored_by_one_pass_of_a_stochastic_mode_only() -> None:
    from nsdelib.claims.c4_abc import neighbour_mode
    from nsdelib.models.inference import EvalMode

    ensemble, off = EvalMode("NSDE, ensemble", "ensemble", 8), EvalMode("ConvNeXt", "off")
    assert neighbour_mode(abc_config(neighbours="one_draw"), ensemble).noise == "single"
    assert neighbour_mode(abc_config(), ensemble) == ensemble
    assert neighbour_mode(abc_config(neighbours="one_draw"), off) == off
    with pytest.raises(ConfigError, match="parameter 'neighbours' = 'two_draws'"):
        abc_config(neighbours="two_draws")


def test_detector_settings_are_validated() -> None:
    from nsdelib.claims.c4_abc import DetectorConfig

    assert DetectorConfig.build(noise_stds=(0.1, 0.3)).bootstrap_resamples == 1000
    for stds in ((0.3, 0.1), (0.0, 0.1), (0.5, 1.5)):
        with pytest.raises(ConfigError, match="noise_stds"):
            DetectorConfig.build(noise_stds=stds)
    with pytest.raises(ConfigError, match="bootstrap_resamples"):
        DetectorConfig.build(noise_stds=(0.1,), bootstrap_resamples=10)


def test_log_crossing_hits_grid_points_exactly_and_says_where() -> None:
    from nsdelib.claims.c4_abc import Crossing, log_crossing

    first = Crossing(1.0, True, "the curve reaches 0.5 at the grid point 1")
    assert log_crossing([1, 10, 100], [0.5, 0.3, 0.1], 0.5) == first
    assert log_crossing([3], [0.5], 0.5) == Crossing(3.0, True, "the curve reaches 0.5 at the grid point 3")
    interior = log_crossing([1, 10, 100], [0.9, 0.5, 0.3], 0.5)  # the first pair that brackets it, from the left
    assert interior.value == pytest.approx(10) and interior.note == "the curve crosses 0.5 between 1 and 10"
    assert log_crossing([1, 10, 100], [0.9, 0.7, 0.3], 0.5).note == "the curve crosses 0.5 between 10 and 100"
    assert log_crossing([0.1, 0.2, 0.4], [0.9, 0.7, 0.3], 0.5).value == pytest.approx(0.2 * 2**0.5)  # small steps
    never = "the curve never reaches 0.5 on the grid [3, 3]: the grid end nearest to it, 3 (value 0.7), is used instead"
    assert log_crossing([3], [0.7], 0.5) == Crossing(3.0, False, never)


@pytest.mark.parametrize(("ys", "end"), [([0.45, 0.2, 0.3], 1.0), ([0.3, 0.1, 0.45], 100.0), ([0.7, 0.8, 0.7], 100.0)])
def test_a_curve_that_never_reaches_the_target_falls_back_to_its_nearer_end(ys: list[float], end: float) -> None:
    from nsdelib.claims.c4_abc import log_crossing

    crossing = log_crossing([1, 10, 100], ys, 0.5)  # a tie between the two ends goes to the larger budget
    nearest = ys[0] if end == 1.0 else ys[-1]
    assert (crossing.value, crossing.crossed) == (end, False)
    assert crossing.note == (f"the curve never reaches 0.5 on the grid [1, 100]: the grid end nearest to it, {end:g} "
                             f"(value {nearest:.3g}), is used instead")


def test_the_abc_key_ignores_the_budget_grid_and_detector_settings_only() -> None:
    from nsdelib.claims.c4_abc import DetectorConfig, abc_key

    base = abc_config(samples=4)
    key = abc_key(base)
    assert "rescaled_fractions" not in key and "detectors" not in key
    assert abc_key(base.replace(rescaled_fractions=(0.1, 0.2))) == key
    detectors = DetectorConfig.model_construct()
    assert abc_key(base.model_copy(update={"detectors": detectors})) == key
    assert abc_key(base.replace(samples=5)) != key and abc_key(base.replace(method="saliency")) != key


def test_a_rescaled_config_labels_its_own_budget_and_a_grid_point_must_exceed_it() -> None:
    from nsdelib.claims.c4_abc import abc_variants

    rescaled = abc_config(samples=4, mutation="expected_count", expected_mutations=3.0, rescaled_fractions=(0.5,))
    assert list(abc_variants(rescaled, n_features=200)) == ["m = 3", "m = 100 (50 % of features)"]
    with pytest.raises(ConfigError, match=r"rescaled fraction 0.01 of 100 features is m = 1 mutations, no more than "
                                          r"as written \(1\)"):
        abc_variants(abc_config(samples=4, rescaled_fractions=(0.01, 0.5)), n_features=100)  # m = 1 is no growth


def test_abc_in_mode_mutates_towards_the_attribution_baseline_under_the_targets_seed() -> None:
    from nsdelib.claims.c4_abc import abc_in_mode
    from nsdelib.evaluation.sweeps import SweepTarget
    from nsdelib.models.inference import EvalMode

    model, x = OneFeatureDecides(), toy_inputs([0.8, 0.9, 0.3])
    cfg, attribution = abc_config(samples=64, batch_size=64), attribution_config()
    predicted = model(x).argmax(1)
    maps = attribute(model, x, predicted, cfg.method, attribution)
    target = SweepTarget(model, x, torch.zeros(3, dtype=torch.long), (EvalMode("toy", "off"),), seed=2)
    scored = abc_in_mode(target, x, maps, predicted, cfg, attribution)
    assert torch.equal(scored, abc_from_attributions(model, x, maps, predicted, cfg, attribution.baseline, 2))
    assert not torch.equal(scored, abc_from_attributions(model, x, maps, predicted, cfg, attribution.baseline, 0))


def test_mutation_probabilities_guard_and_fall_back_per_input() -> None:
    x = torch.tensor([[0.25, 0.5, 0.5, 1.0], [0.25, 0.5, 0.5, 1.0]]).view(2, 1, 1, 4)
    small = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.05, 0.01, 0.02, 0.01]]).view(2, 1, 1, 4)  # eligible Σ|A/x| < 1
    p = mutation_probabilities(small, x, zero_guard=0.25)  # |x| = 0.25 is not above the guard: never mutated
    torch.testing.assert_close(p[0], torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3]))  # no attribution: uniform on eligible
    torch.testing.assert_close(p[1], torch.tensor([0.0, 2 / 7, 4 / 7, 1 / 7]))


def test_one_draw_neighbours_name_their_mode() -> None:
    from nsdelib.claims.c4_abc import neighbour_mode
    from nsdelib.models.inference import EvalMode

    one_draw = neighbour_mode(abc_config(neighbours="one_draw"), EvalMode("NSDE, ensemble", "ensemble", 8))
    assert one_draw.name == "NSDE, ensemble, one draw per neighbour"
