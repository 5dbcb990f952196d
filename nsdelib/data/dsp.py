"""Batched signal-processing blocks on records ``[B, L]``; randomness only from the ``torch.Generator`` given."""

from __future__ import annotations

import math

import torch

TWO_PI = 2.0 * math.pi


def mean_power(x: torch.Tensor) -> torch.Tensor:
    """Mean square of each record ``[B, L] -> [B]``."""
    return torch.linalg.vector_norm(x, dim=-1).square() / x.shape[-1]


def normalise_power(x: torch.Tensor, power: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Scale each record to the given mean power; all-zero records stay zero."""
    current = mean_power(x)
    scale = torch.where(current > 0, torch.as_tensor(power, dtype=x.dtype) / current.clamp_min(1e-30), 0.0)
    return x * scale.sqrt().unsqueeze(-1)


def time_axis(n_samples: int, sample_rate_hz: float) -> torch.Tensor:
    """Sample times ``[1, L]`` in seconds (float32): the clock every waveform of a record shares."""
    return (torch.arange(n_samples, dtype=torch.float32) / sample_rate_hz).unsqueeze(0)


def phase_from_frequency(freq_hz: torch.Tensor, sample_rate_hz: float) -> torch.Tensor:
    """Phase ``2π ∫ f dt`` of a frequency ``[B, L]``, wrapped to ``[0, 2π)`` (summed in float64)."""
    cycles = torch.cumsum(freq_hz.double(), dim=-1).div_(sample_rate_hz)
    return torch.remainder(cycles, 1.0).float().mul_(TWO_PI)


def cosine_series(phase: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """``Σ_n c_n cos(n·phase)``, n = 1..H (``coeffs [B, H, 1 or L]``), by the Chebyshev recurrence in place."""
    current = torch.cos(phase)
    twice = 2.0 * current
    previous = torch.ones_like(current)
    total = coeffs[:, 0] * current
    for n in range(1, coeffs.shape[1]):
        previous.neg_().addcmul_(twice, current)
        previous, current = current, previous
        total.addcmul_(coeffs[:, n], current)
    return total


def fft_convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Causal linear convolution of ``x [B, L]`` with per-record kernels ``[B, K]``, cut to ``[B, L]``."""
    length = x.shape[-1] + kernel.shape[-1]
    spectrum = torch.fft.rfft(x, n=length) * torch.fft.rfft(kernel, n=length)
    return torch.fft.irfft(spectrum, n=length)[..., : x.shape[-1]]


def damped_ringing(t_s: torch.Tensor, freq_hz: torch.Tensor, tau_s: torch.Tensor) -> torch.Tensor:
    """``sin(2π f t) e^{-t/τ}`` for t ≥ 0 (zero before): the response of a struck LC resonance."""
    t = t_s.clamp_min(0.0)
    return torch.where(t_s >= 0, torch.sin(TWO_PI * freq_hz * t) * torch.exp(-t / tau_s), 0.0)


def shaped_noise(amplitude: torch.Tensor, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise ``[B, L]`` drawn per ``rfft`` bin with amplitude spectrum ``amplitude [B, L//2+1]``."""
    real = torch.randn(amplitude.shape, generator=generator)
    imag = torch.randn(amplitude.shape, generator=generator)
    return torch.fft.irfft(torch.complex(real, imag) * amplitude, n=n_samples)


def smooth_gate(t_s: torch.Tensor, start_s: torch.Tensor, stop_s: torch.Tensor, ramp_s: float) -> torch.Tensor:
    """1 between ``start`` and ``stop`` (``[B]``), 0 outside, with raised-cosine ramps (no click of a hard switch)."""
    rise = ((t_s - start_s.unsqueeze(-1)) / ramp_s).clamp(0.0, 1.0)
    fall = ((stop_s.unsqueeze(-1) - t_s) / ramp_s).clamp(0.0, 1.0)
    return 0.5 - 0.5 * torch.cos(math.pi * torch.minimum(rise, fall))


def scatter_events(times_s: torch.Tensor, amplitudes: torch.Tensor, n_samples: int, sample_rate_hz: float
                   ) -> torch.Tensor:
    """An impulse train ``[B, L]``: each event ``[B, K]`` adds its amplitude at its nearest sample (none outside)."""
    index = torch.round(times_s * sample_rate_hz).long()
    inside = (index >= 0) & (index < n_samples)
    train = torch.zeros(times_s.shape[0], n_samples, dtype=torch.float32)
    return train.scatter_add_(1, index.clamp(0, n_samples - 1), torch.where(inside, amplitudes, 0.0))


def uniform(n: int, low: float | torch.Tensor, high: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``n`` float32 draws, uniform between ``low`` and ``high`` (scalars or ``[n]`` tensors)."""
    return low + (high - low) * torch.rand(n, generator=generator)


def strongest_window(x: torch.Tensor, span: int) -> int:
    """Start of the ``span`` consecutive samples of one record ``[L]`` with the most energy."""
    if not 1 <= span <= x.shape[-1]:
        raise ValueError(f"window of {span} samples does not fit a record of {x.shape[-1]}")
    energy = torch.nn.functional.conv1d(x.double().square().view(1, 1, -1), torch.ones(1, 1, span, dtype=torch.float64))
    return int(energy.argmax())
