"""The batched signal-processing blocks agree with their textbook definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nsdelib.data.dsp import (
    cosine_series,
    fft_convolve,
    normalise_power,
    phase_from_frequency,
    scatter_events,
    smooth_gate,
)


def test_cosine_series_matches_the_direct_sum() -> None:
    phase = torch.rand(3, 500, generator=torch.Generator().manual_seed(0)) * 2 * math.pi
    coeffs = torch.rand(3, 12, 1, generator=torch.Generator().manual_seed(1))
    direct = sum(coeffs[:, n] * torch.cos((n + 1) * phase) for n in range(12))
    assert torch.allclose(cosine_series(phase, coeffs), direct, atol=1e-4)


def test_fft_convolution_is_the_causal_linear_convolution() -> None:
    x = torch.randn(2, 300, generator=torch.Generator().manual_seed(2))
    kernel = torch.randn(2, 40, generator=torch.Generator().manual_seed(3))
    expected = np.stack([np.convolve(x[i].numpy(), kernel[i].numpy())[:300] for i in range(2)])
    assert np.allclose(fft_convolve(x, kernel).numpy(), expected, atol=1e-4)


def test_phase_of_a_constant_frequency_advances_linearly() -> None:
    rate, freq = 1e6, 12_345.0
    phase = phase_from_frequency(torch.full((1, 5000), freq), rate)
    expected = np.mod(2 * np.pi * freq * np.arange(1, 5001) / rate, 2 * np.pi)
    error = np.angle(np.exp(1j * (phase[0].numpy() - expected)))
    assert np.abs(error).max() < 1e-4


def test_events_land_on_their_samples_and_outside_ones_vanish() -> None:
    train = scatter_events(torch.tensor([[1e-6, 3e-6, 9e-3]]), torch.tensor([[2.0, -1.0, 5.0]]), 10, 1e6)
    assert train[0].tolist() == [0, 2, 0, -1, 0, 0, 0, 0, 0, 0]


def test_gate_and_power_normalisation() -> None:
    t = torch.arange(100) / 100.0
    gate = smooth_gate(t, torch.tensor([0.2]), torch.tensor([0.6]), ramp_s=0.05)[0]
    assert gate[:20].max() == 0 and gate[30:55].min() == 1 and gate[61:].max() == 0
    x = normalise_power(torch.stack([torch.randn(100), torch.zeros(100)]), torch.tensor([4.0, 4.0]))
    assert math.isclose(float(x[0].square().mean()), 4.0, rel_tol=1e-5) and x[1].abs().max() == 0


def test_strongest_window_finds_the_burst() -> None:
    from nsdelib.data.dsp import strongest_window

    record = torch.zeros(1000)
    record[600:650] = torch.tensor([1.0, -1.0]).repeat(25)
    assert strongest_window(record, 50) == 600
    assert strongest_window(record, 1000) == 0
    with pytest.raises(ValueError, match="window of 1001 samples does not fit a record of 1000"):
        strongest_window(record, 1001)
