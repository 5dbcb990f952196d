"""Attributions (captum wrappers, noise-draw averaging, seeding) and C5's stability measure with its controls."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from nsdelib.book.profiles import get_profile
from nsdelib.claims.c5_stability import attribution_change, change_table, perturbed_maps
from nsdelib.common import ConfigError
from nsdelib.evaluation.attributions import AttributionConfig, attribute, is_stochastic

SHAPE = (1, 4, 5)  # [channel, frequency, time] of the toy spectrograms


def config(**changes: object) -> AttributionConfig:
    values = dict(
        ig_steps=16,
        smoothgrad_samples=4,
        noise_draws=3,
        perturbation_levels=(0.05, 0.1),
        subset_size=4,
        batch_size=8,
    )
    return AttributionConfig.build(**{**values, **changes})


def linear_model(num_classes: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(20, num_classes)).eval()


class NoisyMLP(nn.Module):
    """A small non-linear classifier whose hidden layer gets fresh Gaussian noise in every forward pass."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.hidden = nn.Linear(20, 16)
        self.out = nn.Linear(16, 3)
        self.sigma = sigma

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden(x.flatten(1))
        return self.out(torch.tanh(h + self.sigma * torch.randn_like(h)))


class ScaledByNoise(nn.Module):
    """Linear logits multiplied by (1 + ξ), one ξ ~ N(0, 0.5²) per input and forward pass: E[logits] = W x."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = linear_model()

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x) * (1 + 0.5 * torch.randn(len(x), 1))


class CountingModel(nn.Module):
    """A deterministic model that counts its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = linear_model()
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.linear(x)


def inputs(n: int = 4) -> Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(3))


def attribution_stability(model: nn.Module, x: Tensor, target: int, cfg: AttributionConfig,
                          levels: tuple[float, ...] | None = None, seed: int = 0) -> pd.DataFrame:
    """The change table of the maps averaged over the model's noise draws (the NSDE's reported variant)."""
    levels = cfg.perturbation_levels if levels is None else levels
    return change_table(perturbed_maps(model, x, target, cfg, levels, seed=seed).mean(1), levels, cfg.normalisation)


def test_integrated_gradients_is_complete_on_a_linear_model() -> None:
    model, x = linear_model(), inputs()
    target = torch.tensor([0, 1, 2, 1])
    baseline = torch.full(SHAPE, 0.25)
    attributions = attribute(model, x, target, "integrated_gradients", config(), baseline=baseline)
    with torch.no_grad():
        gap = model(x) - model(baseline.unsqueeze(0))
    expected = gap.gather(1, target.view(-1, 1)).squeeze(1)
    assert attributions.shape == x.shape
    torch.testing.assert_close(attributions.flatten(1).sum(1), expected, rtol=1e-5, atol=1e-5)
    weight = model[1].weight[target].view(-1, *SHAPE)
    torch.testing.assert_close(attributions, weight * (x - baseline), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["saliency", "smoothgrad"])
def test_gradient_methods_give_the_absolute_weights_of_a_linear_model(method: str) -> None:
    model, x = linear_model(), inputs()
    attributions = attribute(model, x, 2, method, config())
    expected = model[1].weight[2].abs().view(1, *SHAPE).expand_as(x)
    torch.testing.assert_close(attributions, expected)


def test_stochasticity_is_detected() -> None:
    x = inputs()
    assert is_stochastic(NoisyMLP(sigma=0.5).eval(), x)
    assert not is_stochastic(NoisyMLP(sigma=0.0).eval(), x)


def test_same_seed_same_attributions_and_caller_rng_untouched() -> None:
    model, x = NoisyMLP(sigma=0.5).eval(), inputs()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for method in ("integrated_gradients", "smoothgrad"):
        first = attribute(model, x, 0, method, config(), seed=7)
        again = attribute(model, x, 0, method, config(), seed=7)
        other = attribute(model, x, 0, method, config(), seed=8)
        assert torch.equal(first, again)
        assert not torch.allclose(first, other)
    assert torch.equal(torch.get_rng_state(), state)


def test_noise_draws_average_a_stochastic_model_and_are_skipped_for_a_deterministic_one() -> None:
    x = inputs()
    noiseless = attribute(linear_model(), x, 1, "integrated_gradients", config())
    error = {
        draws: (attribute(ScaledByNoise(), x, 1, "integrated_gradients", config(noise_draws=draws)) - noiseless)
        .abs()
        .sum()
        for draws in (1, 400)
    }
    assert error[400] < 0.1 * noiseless.abs().sum()
    assert error[400] < error[1] / 3
    calls = {}
    for draws in (1, 5):
        model = CountingModel()
        attribute(model, x, 1, "saliency", config(noise_draws=draws))
        calls[draws] = model.calls
    assert calls[1] == calls[5] > 0


def test_attribution_change_and_its_normalisation() -> None:
    a = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(4))
    b = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(5))
    assert torch.equal(attribution_change(a, a), torch.zeros(3))
    torch.testing.assert_close(attribution_change(a, 3 * a, "l1"), torch.zeros(3))
    torch.testing.assert_close(attribution_change(a, 3 * a, "none"), 2 * a.abs().flatten(1).sum(1))
    change = attribution_change(a, b, "l1")
    assert ((change > 0) & (change <= 2)).all()
    with pytest.raises(ValueError, match="differ in shape"):
        attribution_change(a, b[:2])


def test_stability_is_zero_without_perturbation_and_grows_with_it() -> None:
    model, x = NoisyMLP(sigma=0.5).eval(), inputs()
    table = attribution_stability(model, x, 0, config(), levels=(0.0, 0.02, 0.2), seed=3)
    assert list(table.columns) == ["example", "level", "change", "log_change", "raw_change", "log_raw_change"]
    assert len(table) == 3 * len(x)
    by_level = table.groupby("level")["change"]
    assert (table.loc[table.level == 0.0, "change"] == 0).all()
    assert (table.loc[table.level == 0.0, "log_change"] == float("-inf")).all()
    assert by_level.min()[0.02] > 0
    assert by_level.mean()[0.2] > by_level.mean()[0.02]


def test_stability_is_reproducible_by_seed() -> None:
    model, x = NoisyMLP(sigma=0.5).eval(), inputs()
    first = attribution_stability(model, x, 1, config(), seed=11)
    assert first.equals(attribution_stability(model, x, 1, config(), seed=11))
    assert not first.equals(attribution_stability(model, x, 1, config(), seed=12))


def test_invalid_parameters_fail_clearly() -> None:
    model, x = linear_model(), inputs()
    with pytest.raises(ConfigError, match="unknown attribution method 'occlusion'.*integrated_gradients"):
        attribute(model, x, 0, "occlusion", config())
    with pytest.raises(ConfigError, match=r"baseline of shape \(4, 5\).*\(4, 1, 4, 5\).*expected.*\(1, 4, 5\)"):
        attribute(model, x, 0, "integrated_gradients", config(), baseline=torch.zeros(4, 5))
    with pytest.raises(ConfigError, match="ig_steps"):
        config(ig_steps=1)
    with pytest.raises(ConfigError, match="perturbation_levels.*strictly increasing"):
        config(perturbation_levels=(0.1, 0.05))
    with pytest.raises(ConfigError, match="stability_method"):
        config(stability_method="lime")
    with pytest.raises(ConfigError, match="unknown parameter 'steps'"):
        config(steps=3)


def test_cached_stability_covers_the_subset_at_every_level_and_variant_and_is_read_back(tmp_path, monkeypatch) -> None:
    from robustness_toys import toy_data, toy_noise_control, trained_toy

    from nsdelib.claims import c5_stability
    from nsdelib.common.artifacts import ArtifactStore
    from nsdelib.evaluation.sweeps import SweepTarget
    from nsdelib.models.inference import EvalMode

    store, cfg = ArtifactStore(tmp_path), get_profile("ci").attribution
    model, (x, y) = trained_toy(sigma=0.3, steps=60), toy_data(30, seed=9)
    target = SweepTarget(model, x, y, (EvalMode("NSDE, ensemble", "ensemble", 4),), seed=1, noise_control=toy_noise_control)
    table = c5_stability.cached_attribution_stability(store, cfg, target)
    assert list(table.columns) == ["example", "label", "level", "change", "log_change", "raw_change", "log_raw_change",
                                   "variant", "reported"]
    assert len(table) == cfg.subset_size * len(cfg.perturbation_levels) * 3
    assert set(table["variant"]) == {"averaged over its noise", "one noise draw", "noise off"}
    assert set(table.loc[table["reported"], "variant"]) == {"averaged over its noise"}
    assert table["label"].tolist() == y[table["example"]].tolist()
    assert (table["change"] > 0).all() and (table["raw_change"] > 0).all()
    monkeypatch.setattr(c5_stability, "stability_controls", lambda *a, **k: pytest.fail("recomputed"))
    again = c5_stability.cached_attribution_stability(store, cfg, target)
    assert again.equals(table)


def test_physical_summaries_of_attribution_maps() -> None:
    from nsdelib.evaluation.attributions import frequency_profile, share_on_brightest

    x = torch.zeros(2, 1, 4, 5)
    x[:, 0, 2, :] = 1.0  # a bright harmonic line in row 2: 5 of 20 pixels
    on_line, uniform = x.clone(), torch.ones_like(x)
    assert share_on_brightest(on_line, x, fraction=0.25).tolist() == [1.0, 1.0]
    torch.testing.assert_close(share_on_brightest(uniform, x, fraction=0.25), torch.full((2,), 0.25))
    assert frequency_profile(on_line)[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(frequency_profile(uniform).sum(1), torch.ones(2))


def test_models_are_explained_in_their_headline_mode() -> None:
    from nsdelib.evaluation.attributions import attribution_noise
    from nsdelib.models.inference import headline_mode
    from nsdelib.models.nsde import SDEConfig

    convnext = headline_mode("convnext", SDEConfig.build())
    ensemble = headline_mode("nsde", SDEConfig.build(eval_noise="ensemble", ensemble_size=6))
    assert (convnext.noise, attribution_noise(convnext)) == ("off", "off")
    assert (ensemble.noise, ensemble.ensemble_size, attribution_noise(ensemble)) == ("ensemble", 6, "single")
    assert headline_mode("nsde", SDEConfig.build(eval_noise="off")).noise == "off"


def test_class_means_average_the_rows_of_each_class() -> None:
    import numpy as np

    from nsdelib.evaluation.attributions import class_means

    values = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    means = class_means(values, torch.tensor([0, 0, 2]), n_classes=3)
    assert np.allclose(means[0], [2.0, 1.0]) and np.allclose(means[2], [5.0, 5.0])
    assert np.isnan(means[1]).all()


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency"])
def test_matched_averaging_of_a_linear_model_gives_its_analytic_map(method: str) -> None:
    # A linear model's IG map of x + ε is W ⊙ (x + ε − 0); averaged over D input-noise copies the noise term is
    # W ⊙ ε̄ with ε̄ ~ N(0, s²/D): within 5 standard errors of the analytic W ⊙ x. Saliency is |W| for every copy.
    model, x = linear_model(), inputs()
    draws, stdev = 4000, 0.1
    averaged = attribute(model, x, 2, method, config(smoothgrad_stdev=stdev, batch_size=4096), input_draws=draws)
    weight = model[1].weight[2].view(1, *SHAPE)
    expected = weight * x if method == "integrated_gradients" else weight.abs().expand_as(x)
    tolerance = 5 * stdev / draws**0.5 * weight.abs().expand_as(x) + 1e-6
    assert ((averaged - expected).abs() <= tolerance).all()
    single = attribute(model, x, 2, method, config(smoothgrad_stdev=stdev), input_draws=1)
    if method == "integrated_gradients":  # one noisy copy is visibly off the analytic map: the averaging did the work
        assert (single - expected).abs().max() > 10 * (averaged - expected).abs().max()


def test_averaging_n_noise_draws_shrinks_the_change_by_root_n() -> None:
    # ScaledByNoise's IG map of one draw is W ⊙ x · (1 + Gaussian): with fresh noise at x and at x + 0·z the
    # change is |W ⊙ x| times the absolute difference of two independent means of N Gaussian draws, whose
    # expectation falls exactly as 1/√N. 16 times the draws: a quarter of the change (up to sampling error).
    model, x = ScaledByNoise(), inputs(400)
    change = {}
    for draws in (1, 16):
        cfg = config(noise_draws=draws, normalisation="none", common_noise=False, batch_size=512)
        change[draws] = attribution_stability(model, x, 1, cfg, levels=(0.0,), seed=5)["change"].mean()
    assert 3.4 < change[1] / change[16] < 4.7


def test_the_change_of_an_average_is_at_most_the_average_change_of_its_draws() -> None:
    model, x = NoisyMLP(sigma=0.5).eval(), inputs(8)
    maps = perturbed_maps(model, x, 0, config(noise_draws=6), (0.1,), seed=2)  # [clean + 1 level, 6 draws, N, ...]
    assert maps.shape == (2, 6, *x.shape)
    of_mean = attribution_change(maps[0].mean(0), maps[1].mean(0), "none")
    mean_of = torch.stack([attribution_change(maps[0, d], maps[1, d], "none") for d in range(6)]).mean(0)
    assert (of_mean <= mean_of + 1e-6).all() and (of_mean < mean_of).any()


def test_stability_controls_match_the_averaging_of_each_model() -> None:
    from robustness_toys import toy_data, toy_noise_control, trained_toy

    from nsdelib.claims.c5_stability import stability_controls
    from nsdelib.models.inference import EvalMode

    (x, _), cfg = toy_data(6, seed=3), config(noise_draws=3, perturbation_levels=(0.1,))
    nsde, plain = trained_toy(sigma=0.3, steps=30), trained_toy(sigma=0.0, steps=30)
    target = torch.zeros(len(x), dtype=torch.long)
    ensemble = EvalMode("NSDE, ensemble", "ensemble", 3)
    noisy = stability_controls(nsde, x, target, cfg, ensemble, seed=4, noise_control=toy_noise_control)
    assert list(dict.fromkeys(noisy["variant"])) == ["averaged over its noise", "one noise draw", "noise off"]
    assert noisy.groupby("variant")["reported"].first().to_dict() == {
        "averaged over its noise": True, "one noise draw": False, "noise off": False}
    one_draw = config(noise_draws=1, perturbation_levels=(0.1,))
    single = stability_controls(nsde, x, target, one_draw, ensemble, seed=4, noise_control=toy_noise_control)
    by_variant = single.set_index(["variant", "example"])["raw_change"]
    # one draw averaged is that draw; the first of three draws is the same draw (same seed, same noise)
    torch.testing.assert_close(torch.tensor(by_variant["averaged over its noise"].to_numpy()),
                               torch.tensor(by_variant["one noise draw"].to_numpy()))
    torch.testing.assert_close(torch.tensor(by_variant["one noise draw"].to_numpy()),
                               torch.tensor(noisy.set_index(["variant", "example"])["raw_change"]["one noise draw"].to_numpy()))
    off = stability_controls(nsde, x, target, cfg, EvalMode("NSDE, off", "off"), seed=4, noise_control=toy_noise_control)
    assert set(off.loc[off["reported"], "variant"]) == {"noise off"}
    deterministic = stability_controls(plain, x, target, cfg, EvalMode("ConvNeXt", "off"), seed=4,
                                       noise_control=toy_noise_control)
    assert list(dict.fromkeys(deterministic["variant"])) == ["one map", "averaged over input noise"]
    assert set(deterministic.loc[deterministic["reported"], "variant"]) == {"one map"}
    maps = deterministic.set_index(["variant", "example"])["raw_change"]
    assert not torch.allclose(torch.tensor(maps["one map"].to_numpy()),
                              torch.tensor(maps["averaged over input noise"].to_numpy()))


def test_change_table_needs_one_state_per_level_and_the_clean_one() -> None:
    maps = torch.rand(2, 3, *SHAPE, generator=torch.Generator().manual_seed(0))
    table = change_table(maps, (0.1,), "l1")
    torch.testing.assert_close(torch.tensor(table["raw_change"].to_numpy()), attribution_change(maps[0], maps[1], "none"))
    with pytest.raises(ValueError, match="zip"):
        change_table(maps, (0.1, 0.2), "l1")
