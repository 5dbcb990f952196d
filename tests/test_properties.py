"""Property-based tests: invariants that must hold for every input, checked on inputs hypothesis draws.

Perturbations (random noise and APGD, through the wrapper the sweeps use) never leave their norm
ball, up to float32 rounding; the NSDE with σ = 0 is bit for bit the ConvNeXt with the same weights,
whatever the input's shape, noise form and mode. Examples are few and small (ConvNeXt is slow on the
CPU); conftest makes them the same on every run.
"""

from __future__ import annotations

from typing import get_args

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from robustness_toys import ToyNet, toy_data, toy_noise_control, trained_toy, within_norm_ball

from nsdelib.claims.c3_attacks import (
    apgd,
    attacked_as,
    perturbation_norms,
    random_direction,
    random_perturbation,
)
from nsdelib.models.inference import EvalMode
from nsdelib.models.nsde import DiffusionForm, EvalNoise, NSDEConvNeXt, SDEConfig
from nsdelib.models.registry import ConvNeXtClassifier, ModelConfig, build_model

#: The largest ε drawn per norm: beyond the profiles' sweeps (L2 up to 8, L∞ up to 0.3).
LARGEST_EPS = {"L2": 10.0, "Linf": 1.0}

norm_names = st.sampled_from(["L2", "Linf"])
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def images(n: int, rows: int, cols: int, seed: int, saturated: float) -> torch.Tensor:
    """Random images in [0, 1], a ``saturated`` share of pixels exactly 0 or 1 (where clipping bites)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, rows, cols, generator=generator)
    edge = torch.rand(x.shape, generator=generator) < saturated
    return torch.where(edge, x.round(), x)


@settings(max_examples=60)
@given(
    norm=norm_names,
    eps_share=st.floats(min_value=1e-3, max_value=1.0),
    n=st.integers(1, 4),
    rows=st.integers(1, 12),
    cols=st.integers(1, 12),
    saturated=st.sampled_from([0.0, 0.5, 0.95]),
    seed=seeds,
)
def test_random_perturbation_stays_in_its_norm_ball_and_in_range(
    norm: str, eps_share: float, n: int, rows: int, cols: int, saturated: float, seed: int
) -> None:
    eps = eps_share * LARGEST_EPS[norm]
    x = images(n, rows, cols, seed, saturated)
    direction = random_direction(x.shape, norm, torch.Generator().manual_seed(seed + 1))  # type: ignore[arg-type]
    noisy = random_perturbation(x, eps, norm, direction)  # type: ignore[arg-type]
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    assert noisy.min() >= 0 and noisy.max() <= 1
    norms = perturbation_norms(x, noisy, norm)  # type: ignore[arg-type]
    assert within_norm_ball(norms, eps), f"{norm} ε={eps}: largest norm {norms.max().item():.9g}"


@pytest.fixture(scope="module")
def noisy_toy() -> ToyNet:
    """A trained toy CNN with hidden-layer noise: the attack sees one stochastic pass per forward."""
    return trained_toy(sigma=0.3)


@settings(max_examples=25)
@given(
    norm=norm_names,
    eps_share=st.floats(min_value=0.005, max_value=0.5),
    n=st.integers(1, 12),
    steps=st.integers(1, 4),
    batch_size=st.integers(1, 8),
    eot=st.integers(1, 3),
    loss=st.sampled_from(["ce", "dlr"]),
    seed=seeds,
)
def test_apgd_on_the_attacked_classifier_stays_in_its_norm_ball(
    noisy_toy: ToyNet, norm: str, eps_share: float, n: int, steps: int, batch_size: int, eot: int, loss: str, seed: int
) -> None:
    eps = eps_share * LARGEST_EPS[norm]
    x, y = toy_data(n, seed=seed % 1000)
    with attacked_as(noisy_toy, EvalMode("single pass", "single"), eot, toy_noise_control):
        adversarial = apgd(noisy_toy, x, y, norm=norm, eps=eps, loss=loss, steps=steps, seed=seed,  # type: ignore[arg-type]
                           batch_size=batch_size)
    assert adversarial.shape == x.shape and adversarial.dtype == x.dtype
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    norms = perturbation_norms(x, adversarial, norm)  # type: ignore[arg-type]
    assert within_norm_ball(norms, eps), f"{norm} ε={eps}: largest norm {norms.max().item():.9g}"


@pytest.fixture(scope="module")
def same_weights() -> tuple[ConvNeXtClassifier, NSDEConvNeXt]:
    """A ConvNeXt and an NSDE with the same weights, layer scale woken up so every block's f(h) matters."""
    cfg = ModelConfig.build()
    torch.manual_seed(0)
    nsde = build_model("nsde", cfg, 3)
    with torch.no_grad():
        for _, _, block in nsde.blocks():
            block.gamma.uniform_(0.2, 1.0)
    baseline = build_model("convnext", cfg, 3)
    baseline.load_state_dict(nsde.state_dict())
    return baseline, nsde


@settings(max_examples=10)
@given(
    n=st.integers(1, 2),
    rows=st.integers(32, 64),
    cols=st.integers(32, 64),
    diffusion=st.sampled_from(get_args(DiffusionForm)),
    noise_shape=st.sampled_from(["white", "coloured"]),
    mode=st.sampled_from(get_args(EvalNoise)),
    training=st.booleans(),
    seed=seeds,
)
def test_sigma_zero_nsde_is_exactly_the_convnext(
    same_weights: tuple[ConvNeXtClassifier, NSDEConvNeXt], n: int, rows: int, cols: int, diffusion: str,
    noise_shape: str, mode: str, training: bool, seed: int,
) -> None:
    baseline, nsde = same_weights
    nsde.sde = SDEConfig.build(sigma=0.0, diffusion=diffusion, noise_shape=noise_shape, eval_noise=mode,
                               ensemble_size=2)
    x = images(n, rows, cols, seed, saturated=0.1)
    with torch.no_grad():
        assert torch.equal(baseline.train(training)(x), nsde.train(training)(x))
