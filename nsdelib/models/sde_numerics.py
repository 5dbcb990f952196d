"""The Wiener process in numbers (chapter 2): noise with a power spectrum 1/|k|^β in 1-D or 2-D and a torchsde
Brownian motion coloured the same way (so the fast forward pass and ``torchsde.sdeint`` see the same noise), and
checks of the machinery: Var W(t) grows linearly, Euler–Maruyama converges strongly with order ½ on GBM."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import torch
import torchsde
from torch import nn


@lru_cache(maxsize=64)
def spectral_gain(sizes: tuple[int, ...], exponent: float, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Amplitude filter |k|^(-β/2) in ``rfftn`` layout over ``sizes``, with mean square 1 (σ keeps its meaning)."""
    full = torch.meshgrid(*[torch.fft.fftfreq(n, dtype=torch.float64) for n in sizes], indexing="ij")
    radius = torch.sqrt(sum(k**2 for k in full))
    lowest = 1.0 / max(sizes)
    # the zero frequency gets the lowest non-zero one's gain: β = 0 is exactly white, a 1×1 field unchanged
    gain = radius.clamp(min=lowest) ** (-exponent / 2)
    gain = gain / torch.sqrt((gain**2).mean())
    return gain[..., : sizes[-1] // 2 + 1].to(device=device, dtype=dtype)


def colour(white: torch.Tensor, exponent: float, ndim: int) -> torch.Tensor:
    """Filter ``white`` along its last ``ndim`` axes so its power spectrum falls as 1/|k|^exponent."""
    if exponent == 0:
        return white
    dims = tuple(range(-ndim, 0))
    sizes = tuple(white.shape[-ndim:])
    gain = spectral_gain(sizes, exponent, white.device, white.dtype)
    spectrum = torch.fft.rfftn(white, dim=dims, norm="ortho") * gain
    return torch.fft.irfftn(spectrum, s=sizes, dim=dims, norm="ortho")


def white_noise_like(h: torch.Tensor) -> torch.Tensor:
    """Standard normal noise with the shape and memory layout of ``h`` (``randn_like`` is 8× slower channels-last)."""
    order = sorted(range(h.dim()), key=lambda d: h.stride(d), reverse=True)
    noise = torch.randn([h.shape[d] for d in order], dtype=h.dtype, device=h.device)
    return noise.permute(*[order.index(d) for d in range(h.dim())])


def coloured_noise(shape: tuple[int, ...], exponent: float, ndim: int = 1,
                   generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Unit-variance Gaussian noise of ``shape`` whose last ``ndim`` axes have spectrum 1/|k|^exponent."""
    white = torch.randn(shape, generator=generator, dtype=dtype)
    return colour(white, exponent, ndim)


def brownian_noise(shape: tuple[int, ...], generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random walk along the last axis (cumulative sum of white noise): the discrete Wiener process."""
    return torch.randn(shape, generator=generator, dtype=dtype).cumsum(dim=-1)


def power_spectrum(x: torch.Tensor, ndim: int = 1, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum over the last ``ndim`` axes as (cycles/sample, power); in 2-D averaged over rings."""
    dims = tuple(range(-ndim, 0))
    sizes = tuple(x.shape[-ndim:])
    power = torch.fft.rfftn(x.double(), dim=dims, norm="ortho").abs() ** 2
    power = power.reshape(-1, *power.shape[-ndim:]).mean(dim=0)
    freqs = [torch.fft.fftfreq(n, dtype=torch.float64) for n in sizes]
    freqs[-1] = freqs[-1][: sizes[-1] // 2 + 1]
    radius = torch.sqrt(sum(k**2 for k in torch.meshgrid(*freqs, indexing="ij")))
    if ndim == 1:
        return radius.numpy(), power.numpy()
    n_bins = n_bins or min(sizes) // 2
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    index = np.digitize(radius.numpy().ravel(), edges) - 1
    flat = power.numpy().ravel()
    keep = (index >= 0) & (index < n_bins)
    counts = np.bincount(index[keep], minlength=n_bins)
    totals = np.bincount(index[keep], weights=flat[keep], minlength=n_bins)
    radii = np.bincount(index[keep], weights=radius.numpy().ravel()[keep], minlength=n_bins)
    filled = counts > 0
    return radii[filled] / counts[filled], totals[filled] / counts[filled]


def spectral_slope(freqs: np.ndarray, power: np.ndarray, band: tuple[float, float] = (0.0, 0.5)) -> float:
    """Least-squares slope of log power against log frequency over ``band`` (zero frequency excluded)."""
    low, high = band
    keep = (freqs > max(low, 0.0)) & (freqs <= high) & (power > 0)
    return log_log_slope(freqs[keep], power[keep])


class ColouredBrownian(torchsde.BaseBrownian):
    """A torchsde Brownian motion on flattened feature maps ``[N, C·H·W]``, increments coloured over (H, W)."""

    __slots__ = ("base", "feature_shape", "exponent")

    def __init__(self, base: torchsde.BaseBrownian, feature_shape: tuple[int, int, int], exponent: float) -> None:
        self.base = base
        self.feature_shape = feature_shape
        self.exponent = exponent

    def __call__(self, ta, tb=None, return_U=False, return_A=False):  # noqa: N803 - torchsde's signature
        if return_U or return_A:
            raise NotImplementedError("ColouredBrownian provides increments only (methods 'euler' and 'heun')")
        increment = self.base(ta, tb)
        shaped = increment.reshape(increment.shape[0], *self.feature_shape)
        return colour(shaped, self.exponent, ndim=2).reshape(increment.shape)

    def __repr__(self) -> str:
        return f"ColouredBrownian(base={self.base!r}, feature_shape={self.feature_shape}, exponent={self.exponent})"

    dtype = property(lambda self: self.base.dtype)
    device = property(lambda self: self.base.device)
    shape = property(lambda self: self.base.shape)
    levy_area_approximation = property(lambda self: self.base.levy_area_approximation)


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
