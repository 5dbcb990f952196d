"""Numerical checks of the SDE machinery with torchsde: Var W(t) grows linearly, and Euler–Maruyama converges
strongly with order ½ on geometric Brownian motion (chapter 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torchsde
from torch import nn


def brownian_paths(n_paths: int, n_steps: int, t_end: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Times ``[n_steps + 1]`` and Wiener paths ``[n_steps + 1, n_paths]`` from a seeded ``BrownianInterval``."""
    bm = torchsde.BrownianInterval(t0=0.0, t1=t_end, size=(n_paths, 1), dtype=torch.float64, entropy=seed)
    times = torch.linspace(0.0, t_end, n_steps + 1, dtype=torch.float64)
    increments = torch.stack([bm(float(a), float(b))[:, 0] for a, b in zip(times[:-1], times[1:])])
    paths = torch.cat([torch.zeros(1, n_paths, dtype=torch.float64), increments.cumsum(dim=0)])
    return times, paths


def log_log_slope(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Least-squares slope of log y against log x: the exponent p of a power law y ∝ x^p."""
    slope, _ = np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), deg=1)
    return float(slope)


def variance_growth_exponent(times: torch.Tensor, paths: torch.Tensor) -> float:
    """Measured exponent p of Var[W(t)] ∝ t^p across paths (theory: p = 1); t = 0 is left out."""
    return log_log_slope(times[1:], paths[1:].var(dim=1))


class GeometricBrownianMotion(nn.Module):
    """dX = μ X dt + σ X dW, a torchsde SDE with diagonal multiplicative noise."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, mu: float, sigma: float) -> None:
        super().__init__()
        self.mu = mu
        self.sigma = sigma

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.mu * y

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.sigma * y


def strong_convergence(step_counts: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024), mu: float = 2.0,
                       sigma: float = 1.0, x0: float = 1.0, t_end: float = 1.0, n_paths: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """Strong error E|X_N − X(T)| of ``torchsde.sdeint`` (Euler) on GBM, every step size on the same paths
    (defaults: Higham's 2001 example)."""
    sde = GeometricBrownianMotion(mu, sigma)
    y0 = torch.full((n_paths, 1), x0, dtype=torch.float64)
    bm = torchsde.BrownianInterval(t0=0.0, t1=t_end, size=(n_paths, 1), dtype=torch.float64, entropy=seed)
    exact = x0 * torch.exp((mu - sigma**2 / 2) * t_end + sigma * bm(0.0, t_end))
    rows = []
    for n in step_counts:
        dt = t_end / n
        with torch.no_grad():
            numeric = torchsde.sdeint(sde, y0, torch.tensor([0.0, t_end], dtype=torch.float64), bm=bm,
                                      method="euler", dt=dt)[-1]
        rows.append({"steps": n, "dt": dt, "strong_error": (numeric - exact).abs().mean().item()})
    return pd.DataFrame(rows)
