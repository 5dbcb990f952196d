"""STFT images: a tone lands in its row, an impulse in its column, and the dB scale means what it says."""

from __future__ import annotations

import math

import pytest
import torch

from nsdelib.data.dataset import DataConfig

RATE, LENGTH = 1e6, 4160


def spec(rows: int = 64, cols: int = 64) -> DataConfig:
    return DataConfig.build(sample_rate_hz=RATE, record_samples=LENGTH, n_fft=128, hop=64, image_rows=rows,
                            image_cols=cols, level_range_db=(-30.0, 50.0))


def tone_row(spec: DataConfig, freq_hz: float) -> int:
    """The image row whose frequency band contains ``freq_hz`` (the row a pure tone should light up)."""
    bin_index = round(freq_hz * spec.n_fft / spec.sample_rate_hz)
    return max(0, min(spec.n_fft // 2, bin_index) - 1) // (spec.n_fft // 2 // spec.image_rows)


@pytest.mark.parametrize(("rows", "cols"), [(64, 64), (32, 32)])
@pytest.mark.parametrize("bin_index", [5, 20, 47])
def test_tone_peaks_in_its_expected_row(rows: int, cols: int, bin_index: int) -> None:
    s = spec(rows, cols)
    freq = bin_index * RATE / s.n_fft
    t = torch.arange(LENGTH) / RATE
    image = s.image(torch.sin(2 * math.pi * freq * t).unsqueeze(0))
    assert image.shape == (1, 1, rows, cols) and image.dtype == torch.float32
    peak_rows = image[0, 0].argmax(0)
    assert (peak_rows == tone_row(s, freq)).all()
    row_width_hz = RATE / 2 / rows
    assert abs(float(s.freqs_hz()[tone_row(s, freq)]) - freq) <= row_width_hz / 2


def test_impulse_lights_the_column_at_its_time() -> None:
    s = spec()
    x = torch.zeros(1, LENGTH)
    x[0, 2000] = 100.0
    column_energy = s.levels_db(x)[0].mean(0)
    assert int(column_energy.argmax()) == int((s.times_s() - 2000 / RATE).abs().argmin())


def test_unit_power_white_noise_reads_zero_db() -> None:
    s = spec()
    noise = torch.randn(16, LENGTH, generator=torch.Generator().manual_seed(0))
    mean_power = s.power(noise).mean()
    assert float(mean_power) == pytest.approx(1.0, rel=0.02)


def test_fixed_scale_maps_levels_to_unit_interval() -> None:
    s = spec()
    scales = torch.tensor([[1e-3], [1.0], [10.0], [1e3]])
    x = torch.randn(4, LENGTH, generator=torch.Generator().manual_seed(1)) * scales
    image = s.image(x)
    assert image.min() >= 0 and image.max() <= 1
    levels = s.levels_db(x).unsqueeze(1)
    inside = (levels > -30) & (levels < 50)
    low, high = s.level_range_db
    assert torch.allclose((low + image * (high - low))[inside], levels[inside], atol=1e-3)
    assert image[0].mean() < image[1].mean() < image[2].mean() < image[3].mean()


def test_axes_have_one_value_per_row_and_column() -> None:
    s = spec(32, 32)
    assert s.freqs_hz().shape == (32,) and s.times_s().shape == (32,)
    assert (s.freqs_hz().diff() > 0).all() and (s.times_s().diff() > 0).all()
    assert float(s.freqs_hz()[-1]) < RATE / 2 and float(s.times_s()[-1]) < LENGTH / RATE
