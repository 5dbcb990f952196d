"""Attribution-Based Confidence: Algorithm 1 against closed forms on toy models, seeding, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from nsdelib.common.errors import ConfigError
from nsdelib.evaluation.abc import (
    ABCConfig,
    abc_by_correctness,
    abc_error_auroc,
    abc_from_attributions,
    abc_score,
    mutation_probabilities,
)
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
    abc = abc_score(OneFeatureDecides(), x, abc_config(**changes), attribution_config(), seed=0)
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
    abc = abc_score(model, x, abc_config(samples=400, **changes), attribution_config(), baseline=1.0)
    assert torch.equal(abc, torch.ones(2))


def test_attributions_must_match_the_inputs() -> None:
    model, x = OneFeatureDecides(), toy_inputs([0.8, 0.3])
    attributions = attribute(model, x, 0, "integrated_gradients", attribution_config())
    predicted = model(x).argmax(1)
    # flattened maps would broadcast silently; cropped ones would fail somewhere deeper with a torch error
    for wrong, shape in ((attributions.flatten(1), r"\(2, 10\)"), (attributions[..., :4], r"\(2, 1, 2, 4\)")):
        with pytest.raises(ValueError, match=rf"attributions of shape {shape} do not match inputs \(2, 1, 2, 5\)"):
            abc_from_attributions(model, x, wrong, predicted, abc_config(samples=4))


def test_same_seed_same_abc_and_precomputed_attributions_agree() -> None:
    model, x = OneFeatureDecides(), toy_inputs([0.8] * 8)
    cfg, attr_cfg = abc_config(samples=40), attribution_config()
    first = abc_score(model, x, cfg, attr_cfg, seed=5)
    assert torch.equal(first, abc_score(model, x, cfg, attr_cfg, seed=5))
    assert not torch.equal(first, abc_score(model, x, cfg, attr_cfg, seed=6))
    given = attribute(model, x, 0, "integrated_gradients", attr_cfg, seed=5)
    assert torch.equal(first, abc_score(model, x, cfg, attr_cfg, seed=5, attributions=given))


def test_invalid_parameters_fail_clearly() -> None:
    model, x = OneFeatureDecides(), toy_inputs([0.8])
    with pytest.raises(ConfigError, match="parameter 'samples' = 0"):
        abc_config(samples=0)
    with pytest.raises(ConfigError, match="parameter 'method' = 'deep_lift'"):
        abc_config(method="deep_lift")
    with pytest.raises(ConfigError, match="expected_mutations.*needs a positive"):
        abc_config(mutation="expected_count")
    with pytest.raises(ConfigError, match="expected_mutations.*only with"):
        abc_config(expected_mutations=3.0)
    with pytest.raises(ConfigError, match=r"baseline of shape \(3,\).*expected"):
        abc_score(model, x, abc_config(samples=4), attribution_config(), baseline=torch.zeros(3))


def test_abc_split_by_correctness_and_its_auroc() -> None:
    abc = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    correct = np.array([True, True, True, False, False])
    table = abc_by_correctness(abc, correct)
    assert table.loc["correct", "mean"] == pytest.approx(0.8)
    assert table.loc["incorrect", "mean"] == pytest.approx(0.15)
    assert table["count"].tolist() == [3, 2]
    assert abc_error_auroc(abc, correct) == 1.0
    assert abc_error_auroc(abc, ~correct) == 0.0
    assert abc_error_auroc(np.array([0.5, 0.6, 0.5, 0.6]), np.array([True, True, False, False])) == 0.5
    assert math.isnan(abc_error_auroc(abc, np.ones(5, dtype=bool)))


def test_cached_abc_scores_the_explained_subset_shares_attributions_and_is_read_back(tmp_path, monkeypatch) -> None:
    from robustness_toys import toy_data, toy_noise_control, trained_toy

    from nsdelib.book.profiles import get_profile
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.evaluation import abc as abc_module
    from nsdelib.evaluation.attributions import cached_attribution_stability
    from nsdelib.models.inference import EvalMode

    profile, store = get_profile("ci"), ArtifactStore(tmp_path)
    attribution = profile.attribution
    cfg = profile.abc.replace(mutation="expected_count", expected_mutations=24.0)  # 24 of 64 toy pixels
    model, (x, y) = trained_toy(sigma=0.3, steps=60), toy_data(30, seed=9)
    mode = EvalMode("NSDE, single pass", "single")
    table = abc_module.cached_abc(store, cfg, attribution, model, x, y, mode, seed=1, noise_control=toy_noise_control)
    assert list(table.columns) == ["example", "label", "predicted", "correct", "abc"]
    assert len(table) == attribution.subset_size
    assert table["label"].tolist() == y[table["example"]].tolist()
    assert table["abc"].between(0, 1).all() and table["abc"].nunique() > 1
    cached_attribution_stability(store, attribution, model, x, y, mode, seed=1, noise_control=toy_noise_control)
    assert len(list((tmp_path / "attributions").iterdir())) == 1  # ABC and stability explained the same inputs
    monkeypatch.setattr(abc_module, "abc_from_attributions", lambda *a, **k: pytest.fail("recomputed"))
    again = abc_module.cached_abc(store, cfg, attribution, model, x, y, mode, seed=1, noise_control=toy_noise_control)
    assert again.equals(table)


def test_abc_seed_summary_splits_by_correctness() -> None:
    import pandas as pd

    from nsdelib.evaluation.abc import abc_seed_summary

    table = pd.DataFrame({"abc": [0.9, 0.7, 0.2], "correct": [True, True, False]})
    summary = abc_seed_summary(table)
    assert summary["abc_correct"] == pytest.approx(0.8) and summary["abc_incorrect"] == pytest.approx(0.2)
    assert (summary["n_correct"], summary["n_incorrect"], summary["auroc_wrong"]) == (2, 1, 1.0)


def test_rescaled_variants_are_labelled_deviations() -> None:
    from nsdelib.evaluation.abc import abc_variants

    variants = abc_variants(abc_config(samples=4, rescaled_fractions=(0.01, 0.5)), n_features=200)
    assert list(variants) == ["as written", "m = 2 (1% of features)", "m = 100 (50% of features)"]
    assert variants["as written"].mutation == "as_written"
    assert [v.expected_mutations for v in variants.values()] == [None, 2.0, 100.0]
    for bad in ((0.5, 0.1), (0.1, 0.1), (0.5, 1.5), (0.0,)):
        with pytest.raises(ConfigError, match=r"rescaled_fractions.*strictly increasing values in \(0, 1\]"):
            abc_config(rescaled_fractions=bad)
