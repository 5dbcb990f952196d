"""Measuring the NSDE's noise: noise-to-signal ratios inside the network and the flip rate at its output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import pytest
import torch
from torch import nn

from nsdelib.models.diagnostics import flip_rate, noise_to_signal
from nsdelib.models.registry import ModelConfig, build_model


class CoinFlip(nn.Module):
    """Two classes; with noise on, each pass picks one at random (P = 1/2): two passes disagree half the time."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.noisy = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = torch.randn(len(x)) if self.noisy else torch.ones(len(x))
        return torch.stack([score, torch.zeros(len(x))], dim=1) + 0 * self.weight


@contextmanager
def coin_control(model: CoinFlip, mode: str, ensemble_size: int | None) -> Iterator[None]:
    model.noisy = mode != "off"
    try:
        yield
    finally:
        model.noisy = True


def test_flip_rate_of_a_fair_coin_is_one_half_and_of_a_deterministic_model_zero() -> None:
    x = torch.zeros(4000, 1, 2, 2)
    rate = flip_rate(CoinFlip(), x, batch_size=1000, seed=0, noise_control=coin_control)
    assert rate == pytest.approx(0.5, abs=0.03)  # binomial s.d. at n = 4000 is 0.008
    assert flip_rate(CoinFlip(), x, batch_size=1000, seed=0, noise_control=coin_control) == rate
    deterministic = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    assert flip_rate(deterministic, x, batch_size=1000, seed=0, noise_control=lambda *_: nullcontext()) == 0.0


def nsde(sigma: float, diffusion: str) -> nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig.build(sde={"sigma": sigma, "diffusion": diffusion})
    return build_model("nsde", cfg, num_classes=3).eval()


def test_noise_to_signal_is_sigma_for_multiplicative_noise_and_grows_with_sigma() -> None:
    x = torch.rand(2, 1, 32, 32)
    torch.manual_seed(1)
    table = noise_to_signal(nsde(0.2, "multiplicative"), x, first_only=False)
    assert list(table.index.names) == ["stage", "block"] and len(table) == 2 + 2 + 6 + 2  # convnext_atto's blocks
    ratios = table["multiplicative: std(gΔW)/std(h)"]
    assert ratios.between(0.15, 0.25).all(), "σ·h·ξ has about σ times the spread of h"
    torch.manual_seed(1)
    small = noise_to_signal(nsde(0.1, "additive"), x)["additive: std(gΔW)/std(h)"]
    torch.manual_seed(1)
    large = noise_to_signal(nsde(0.4, "additive"), x)["additive: std(gΔW)/std(h)"]
    assert list(small.index) == [(s, 0) for s in range(4)]
    assert torch.allclose(torch.tensor(large.to_numpy()), 4 * torch.tensor(small.to_numpy()), rtol=1e-5)


def test_relative_noise_keeps_its_size_when_the_stream_is_scaled_up() -> None:
    from nsdelib.models.nsde import diffusion

    torch.manual_seed(0)
    h, dw = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    for form in ("relative", "multiplicative"):
        small = (diffusion(form, 0.3, h) * dw).std() / h.std()
        large = (diffusion(form, 0.3, 10 * h) * dw).std() / (10 * h).std()
        assert torch.isclose(small, large, rtol=1e-5), form
    fixed = (diffusion("additive", 0.3, h) * dw).std()
    assert torch.isclose(fixed / (10 * h).std(), fixed / h.std() / 10), "fixed additive noise shrinks relative to h"
    rms = diffusion("relative", 1.0, h)
    assert rms.shape == (3, 1, 1, 1) and torch.allclose(rms.flatten(), h.square().mean(dim=(1, 2, 3)).sqrt())
    h.requires_grad_(True)
    assert not diffusion("relative", 0.3, h).requires_grad, "no gradient flows through the RMS"


def test_the_noise_augmented_control_is_noisy_in_training_only() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig.build(input_noise_std=0.2)
    control, baseline = build_model("convnext_noise", cfg, 3), build_model("convnext", cfg, 3)
    baseline.load_state_dict(control.state_dict())
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(control.eval()(x), baseline.eval()(x))
    assert not torch.equal(control.train()(x), baseline.train()(x))
    quiet = build_model("convnext_noise", cfg.replace(input_noise_std=0.0), 3)
    quiet.load_state_dict(control.state_dict())
    assert torch.equal(quiet.train()(x), baseline.train()(x))


def test_a_rescaled_stream_computes_the_same_function_but_drowns_fixed_noise() -> None:
    from nsdelib.models.diagnostics import rescaled_stream

    model = nsde(0.2, "additive")
    for _, _, block in model.blocks():
        block.gamma.data.fill_(0.5)  # wake the residual branches up, as training does
    x = torch.rand(2, 1, 32, 32)
    scaled = rescaled_stream(model, 8.0)
    with torch.no_grad():
        assert torch.allclose(scaled.logits(x, noisy=False), model.logits(x, noisy=False), atol=3e-3)  # LayerNorm's ε
        assert torch.allclose(scaled.block_input(x, 2, 1), 8 * model.block_input(x, 2, 1), rtol=1e-2, atol=1e-2)
    torch.manual_seed(3)
    before = noise_to_signal(model, x, forms=("additive", "relative"))
    torch.manual_seed(3)
    after = noise_to_signal(scaled, x, forms=("additive", "relative"))
    additive, relative = "additive: std(gΔW)/std(h)", "relative: std(gΔW)/std(h)"
    assert torch.allclose(torch.tensor(after[additive].to_numpy()), torch.tensor(before[additive].to_numpy()) / 8, rtol=2e-2)
    assert torch.allclose(torch.tensor(after[relative].to_numpy()), torch.tensor(before[relative].to_numpy()), rtol=2e-2)


def test_stage_noise_to_signal_averages_the_models_own_form_per_stage() -> None:
    from nsdelib.models.diagnostics import stage_noise_to_signal

    x = torch.rand(2, 1, 32, 32)
    torch.manual_seed(4)
    per_stage = stage_noise_to_signal(nsde(0.3, "relative"), x)
    assert list(per_stage) == [f"noise/signal, stage {s}" for s in range(4)]
    assert all(0.25 < ratio < 0.35 for ratio in per_stage.values()), per_stage  # σ·RMS(h) over std(h), h ≈ centred


def test_the_sweeps_convnext_and_controls_are_the_models_of_chapter_3_and_the_frontier() -> None:
    from nsdelib.claims.sigma_tuning import CalibrationConfig, frontier_points, sweep_points

    cfg = CalibrationConfig.build(sigmas=(0.1, 0.4), input_noise_stds=(0.1, 0.3), frontier_input_noise_stds=(0.1, 0.23))
    chosen = ModelConfig.build(sde={"sigma": 0.43}, input_noise_std=0.23)
    points = sweep_points(cfg, chosen)
    kinds = [kind for kind, _ in points]
    assert kinds == ["convnext", "convnext_noise", "convnext_noise"] + ["nsde"] * len(cfg.forms) * len(cfg.shapes) * 2
    assert points[0] == ("convnext", chosen) == frontier_points(cfg, chosen)[0], "chapter 3's ConvNeXt, trained once"
    assert points[1] == frontier_points(cfg, chosen)[1] == ("convnext_noise", chosen.replace(input_noise_std=0.1))
    assert all(config.replace(sde=chosen.sde) == chosen for kind, config in points if kind == "nsde"), (
        "an NSDE point differs from the chosen model in its noise only")
