"""torchsde's Brownian motion and Euler–Maruyama behave as the theory in chapter 2 says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsdelib.models.sde_numerics import (
    GeometricBrownianMotion,
    brownian_paths,
    log_log_slope,
    strong_convergence,
    variance_growth_exponent,
)


def test_log_log_slope_recovers_a_power_law() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert log_log_slope(x, 3.0 * x**-1.5) == pytest.approx(-1.5)


def test_brownian_variance_grows_linearly_and_paths_are_seeded() -> None:
    times, paths = brownian_paths(n_paths=1000, n_steps=50, seed=0)
    assert paths.shape == (51, 1000) and torch.all(paths[0] == 0)
    assert variance_growth_exponent(times, paths) == pytest.approx(1.0, abs=0.1)
    assert paths[-1].var().item() == pytest.approx(1.0, abs=0.15)
    assert torch.equal(paths, brownian_paths(n_paths=1000, n_steps=50, seed=0)[1])
    assert not torch.equal(paths, brownian_paths(n_paths=1000, n_steps=50, seed=1)[1])


def test_gbm_drift_and_diffusion() -> None:
    sde = GeometricBrownianMotion(mu=2.0, sigma=0.5)
    y = torch.tensor([[1.0], [3.0]])
    torch.testing.assert_close(sde.f(0.0, y), 2.0 * y)
    torch.testing.assert_close(sde.g(0.0, y), 0.5 * y)


def test_euler_maruyama_converges_strongly_with_order_one_half() -> None:
    table = strong_convergence(step_counts=(16, 32, 64, 128, 256), n_paths=1000, seed=0)
    assert list(table.columns) == ["steps", "dt", "strong_error"]
    assert table["strong_error"].is_monotonic_decreasing
    assert log_log_slope(table["dt"], table["strong_error"]) == pytest.approx(0.5, abs=0.12)
