"""Input noise (chapter 4): white Gaussian (claim C2) and two structured noises of power lines, each added to the
[0, 1] spectrogram as ``x + level · pattern`` and clipped back to [0, 1]."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

NoiseKind = Literal["gaussian", "impulsive", "narrowband"]
NOISE_KINDS: tuple[NoiseKind, ...] = get_args(NoiseKind)


def noise_pattern(shape: torch.Size | tuple[int, ...], kind: NoiseKind, generator: torch.Generator,
                  impulse_probability: float = 0.05) -> torch.Tensor:
    """The unit-level pattern of one noise for inputs of ``shape`` [N,1,F,T] (broadcastable to it)."""
    n, _, n_freqs, n_times = shape
    if kind == "gaussian":
        return torch.randn(tuple(shape), generator=generator)
    if kind == "impulsive":
        return (torch.rand((n, 1, 1, n_times), generator=generator) < impulse_probability).float()
    if kind == "narrowband":
        bins = torch.randint(n_freqs, (n,), generator=generator)
        return nn.functional.one_hot(bins, n_freqs).float().view(n, 1, n_freqs, 1)
    raise ValueError(f"unknown noise kind {kind!r}; allowed kinds: {', '.join(NOISE_KINDS)}")


def add_noise(x: torch.Tensor, pattern: torch.Tensor, level: float) -> torch.Tensor:
    return (x + level * pattern.to(x.device)).clamp(0.0, 1.0)


def image_snr_db(x: torch.Tensor, noisy: torch.Tensor) -> float:
    """Mean signal power over mean power of the noise actually added, in dB."""
    noise_power = float((noisy.double() - x.double()).pow(2).mean())
    signal_power = float(x.double().pow(2).mean())
    return math.inf if noise_power == 0 else 10 * math.log10(signal_power / noise_power)
