"""The wiring: a passive multipath channel, mains, noise, and an SNR that is exactly what was asked for."""

from __future__ import annotations

import torch

from nsdelib.data.wiring import (
    PROPAGATION_SPEED_M_S,
    Channel,
    background_noise,
    draw_channel,
    draw_mains,
    impulsive_noise,
    inject_into_wiring,
)

RATE, LENGTH = 1e6, 4160


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_channel_attenuates_and_never_amplifies() -> None:
    channel = draw_channel(300, variability=1.0, generator=rng())
    gain = channel.response(torch.linspace(0, RATE / 2, 1001)).abs()
    assert gain.max() <= 1.0 + 1e-6
    assert (gain[:, -1] < 1.0).all()
    assert (channel.weights.abs().sum(1) <= 1.0 + 1e-6).all()


def test_echoes_make_the_channel_frequency_selective_only_when_variability_is_up() -> None:
    freqs = torch.linspace(0, RATE / 2, 1001)
    direct = draw_channel(50, variability=0.0, generator=rng()).response(freqs).abs()
    assert (direct.diff(dim=1) <= 1e-7).all()  # one path: a smooth low-pass
    echoes = draw_channel(50, variability=1.0, generator=rng()).response(freqs).abs()
    assert (echoes.diff(dim=1) > 1e-4).any(dim=1).float().mean() > 0.5  # most ripple: rise as well as fall


def test_passive_channel_output_has_at_most_the_input_energy() -> None:
    x = torch.randn(64, LENGTH, generator=rng(1))
    y = draw_channel(64, variability=1.0, generator=rng(2)).apply(x, RATE)
    assert y.shape == x.shape
    assert (y.square().sum(1) <= x.square().sum(1) * (1 + 1e-4)).all()


def test_lossless_single_path_is_a_pure_delay() -> None:
    delay_samples = 3
    length_m = delay_samples / RATE * PROPAGATION_SPEED_M_S
    zero = torch.zeros(2)
    channel = Channel(torch.full((2, 1), length_m), torch.ones(2, 1), zero, zero, torch.ones(2))
    x = torch.randn(2, LENGTH, generator=rng(3))
    y = channel.apply(x, RATE)
    assert torch.allclose(y[:, delay_samples:], x[:, :-delay_samples], atol=1e-3)


def test_injection_hits_the_drawn_snr_within_the_configured_range() -> None:
    source = torch.randn(40, LENGTH, generator=rng(4))
    mains = draw_mains(40, rng(5))
    rx = inject_into_wiring(source, mains, RATE, (-10.0, 15.0), 0.7, 0.3, rng(6))
    realised = 10 * torch.log10(rx.signal.square().mean(1) / rx.noise.square().mean(1))
    assert torch.allclose(realised, rx.snr_db, atol=1e-3)
    assert rx.snr_db.min() >= -10.0 and rx.snr_db.max() <= 15.0
    assert rx.snr_db.max() - rx.snr_db.min() > 10.0
    assert torch.allclose(rx.noise.square().mean(1), torch.ones(40), rtol=1e-4)
    assert torch.allclose(rx.received, rx.signal + rx.noise + rx.mains)


def test_zero_span_fixes_the_snr() -> None:
    rx = inject_into_wiring(torch.randn(8, LENGTH, generator=rng(7)), draw_mains(8, rng(8)), RATE, (5.0, 5.0), 0.7, 0.3,
                            rng(9))
    assert torch.allclose(rx.snr_db, torch.full((8,), 5.0))


def test_mains_is_50_or_60_hz_with_its_level_above_the_noise() -> None:
    mains = draw_mains(20, rng(10))
    assert set(mains.freq_hz.tolist()) <= {50.0, 60.0}
    rate, length = 6000.0, 6000  # one second: the fundamental falls on its own FFT bin
    wave = mains.waveform(length, rate)
    peak_hz = torch.fft.rfft(wave).abs().argmax(1).float() * rate / length
    assert torch.equal(peak_hz, mains.freq_hz.float())
    level = 10 * torch.log10(wave.square().mean(1))
    assert torch.allclose(level, mains.level_db, atol=1e-3)


def test_background_noise_is_coloured_towards_low_frequencies() -> None:
    noise = background_noise(32, LENGTH, RATE, rng(11))
    psd = torch.fft.rfft(noise).abs().square().mean(0)
    freqs = torch.fft.rfftfreq(LENGTH, 1 / RATE)
    assert psd[(freqs > 2e3) & (freqs < 20e3)].mean() > 10 * psd[freqs > 300e3].mean()


def test_impulsive_noise_is_heavy_tailed() -> None:
    impulses = impulsive_noise(32, LENGTH, RATE, rng(12))
    gaussian = background_noise(32, LENGTH, RATE, rng(13))

    def kurtosis(x: torch.Tensor) -> float:
        return float((x**4).mean() / (x**2).mean() ** 2)

    assert kurtosis(impulses) > 3 * kurtosis(gaussian)
