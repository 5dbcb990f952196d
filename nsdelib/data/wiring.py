"""The building's wiring (chapter 1): r = h ∗ s + mains + background + impulses, with h Zimmermann and Dostert's
multipath channel; the noise has unit power (the dB reference) and the source is scaled to the sample's SNR."""

from __future__ import annotations

import math
from dataclasses import dataclass

import scipy.fft
import torch
import torch.nn.functional as F

from .dsp import (TWO_PI, cosine_series, damped_ringing, fft_convolve, mean_power, normalise_power, scatter_events,
                  time_axis, uniform)

#: Propagation speed on installation cable, c0/√εr with εr ≈ 4 (PVC insulation).
PROPAGATION_SPEED_M_S = 1.5e8
#: Transmission and reflection factors of a T-junction of three equal lines.
JUNCTION_TRANSMISSION, JUNCTION_REFLECTION = 2.0 / 3.0, -1.0 / 3.0
MAX_BRANCHES, ECHOES_PER_BRANCH = 4, 3
#: Injection point to coupler, and cable behind a branch (up to a distant sub-board of a large building).
DIRECT_LENGTH_M, BRANCH_LENGTH_M = (10.0, 200.0), (3.0, 300.0)
#: Cable loss a0 + a1·f^k: a0 in 1/m, the loss at 500 kHz in 1/m (Zimmermann–Dostert fit: 3.9e-4), k.
LOSS_A0, LOSS_AT_500KHZ, LOSS_EXPONENT = (0.0, 1e-3), (3e-4, 3e-3), (0.5, 1.0)
MAINS_FREQUENCIES_HZ, MAINS_LEVEL_DB, MAINS_HARMONICS = (50.0, 60.0), (20.0, 40.0), (3, 5, 7, 9, 11, 13)
MAINS_DECIMATION, RESPONSE_POINTS = 16, 513
#: Background noise PSD N_inf + N_0·exp(−f/f_1): N_0/N_inf in dB and f_1 in Hz.
BACKGROUND_SLOPE_DB, BACKGROUND_CORNER_HZ = (25.0, 45.0), (10e3, 60e3)
BROADCAST_LINES, BROADCAST_LEVEL_DB, BROADCAST_BAND_HZ = 3, (-20.0, -10.0), (20e3, 450e3)
IMPULSE_RATE_PER_MS, IMPULSE_RING_HZ, IMPULSE_TAU_S = (0.5, 3.0), (50e3, 450e3), (2e-6, 20e-6)


@dataclass(frozen=True)
class Channel:
    """One Zimmermann–Dostert multipath channel per sample (parameters ``[B, P]`` and ``[B]``)."""

    lengths_m: torch.Tensor
    weights: torch.Tensor
    a0: torch.Tensor
    a1: torch.Tensor
    k: torch.Tensor

    def response(self, freqs_hz: torch.Tensor) -> torch.Tensor:
        """Complex frequency response ``H(f)`` ``[B, F]`` at the frequencies ``[F]`` (Hz)."""
        f = freqs_hz.float().view(1, 1, -1)
        d = self.lengths_m.unsqueeze(-1)
        loss_per_m = self.a0.view(-1, 1, 1) + self.a1.view(-1, 1, 1) * f ** self.k.view(-1, 1, 1)
        magnitude = self.weights.unsqueeze(-1) * torch.exp(-loss_per_m * d)
        delay = (-TWO_PI / PROPAGATION_SPEED_M_S) * f * d
        return torch.complex((magnitude * torch.cos(delay)).sum(1), (magnitude * torch.sin(delay)).sum(1))

    def apply(self, x: torch.Tensor, sample_rate_hz: float) -> torch.Tensor:
        """Pass records ``[B, L]`` through the channel, zero-padded so no echo wraps around (H evaluated on
        ``RESPONSE_POINTS`` frequencies and interpolated: it ripples no faster than every 75 kHz)."""
        length = x.shape[-1]
        longest = float(self.lengths_m.max()) / PROPAGATION_SPEED_M_S * sample_rate_hz
        padded = scipy.fft.next_fast_len(length + math.ceil(longest) + 32, real=True)
        grid = self.response(torch.linspace(0.0, sample_rate_hz / 2, RESPONSE_POINTS))
        parts = torch.stack([grid.real, grid.imag], 1)
        fine = F.interpolate(parts, size=padded // 2 + 1, mode="linear", align_corners=True)
        spectrum = torch.fft.rfft(x, n=padded) * torch.complex(fine[:, 0], fine[:, 1])
        return torch.fft.irfft(spectrum, n=padded)[..., :length]


def draw_channel(n: int, variability: float, generator: torch.Generator) -> Channel:
    """``n`` random channels: a direct path and three echoes per branch (1–4), echoes scaled by ``variability``."""
    direct = uniform(n, *DIRECT_LENGTH_M, generator)
    branches = torch.randint(1, MAX_BRANCHES + 1, (n,), generator=generator)
    branch_length = uniform(n * MAX_BRANCHES, *BRANCH_LENGTH_M, generator).view(n, MAX_BRANCHES)
    end_reflection = uniform(n * MAX_BRANCHES, -1.0, 1.0, generator).view(n, MAX_BRANCHES)
    present = (torch.arange(MAX_BRANCHES).unsqueeze(0) < branches.unsqueeze(1)).float()
    round_trips = torch.arange(1, ECHOES_PER_BRANCH + 1, dtype=torch.float32).view(1, 1, -1)
    echo_length = direct.view(-1, 1, 1) + 2.0 * round_trips * branch_length.unsqueeze(-1)
    bounce = (end_reflection * JUNCTION_REFLECTION).unsqueeze(-1) ** (round_trips - 1)
    echo_weight = variability * JUNCTION_TRANSMISSION**2 * end_reflection.unsqueeze(-1) * bounce * present.unsqueeze(-1)
    direct_weight = JUNCTION_TRANSMISSION ** branches.float()
    weights = torch.cat([direct_weight.unsqueeze(1), echo_weight.flatten(1)], dim=1)
    weights = weights / weights.abs().sum(1, keepdim=True).clamp_min(1.0)
    lengths = torch.cat([direct.unsqueeze(1), echo_length.flatten(1)], dim=1)
    k = uniform(n, *LOSS_EXPONENT, generator)
    a1 = uniform(n, *LOSS_AT_500KHZ, generator) / 500e3**k
    return Channel(lengths, weights, uniform(n, *LOSS_A0, generator), a1, k)


@dataclass(frozen=True)
class Mains:
    """The 50/60 Hz mains of each sample: frequency, phase at t = 0, harmonic content and level."""

    freq_hz: torch.Tensor
    phase0: torch.Tensor
    harmonics: torch.Tensor
    level_db: torch.Tensor

    def phase(self, n_samples: int, sample_rate_hz: float) -> torch.Tensor:
        """Instantaneous phase θ(t) ``[B, L]`` in radians, the clock of mains-synchronous sources."""
        t = time_axis(n_samples, sample_rate_hz)
        return TWO_PI * self.freq_hz.unsqueeze(1) * t + self.phase0.unsqueeze(1)

    def waveform(self, n_samples: int, sample_rate_hz: float) -> torch.Tensor:
        """The mains voltage ``[B, L]`` at ``level_db`` above unit power (every 16th sample, interpolated)."""
        coarse = (n_samples - 1) // MAINS_DECIMATION + 2
        theta = self.phase(coarse, sample_rate_hz / MAINS_DECIMATION)
        coeffs = torch.zeros(len(self.freq_hz), max(MAINS_HARMONICS), 1)
        coeffs[:, 0] = 1.0
        coeffs[:, [order - 1 for order in MAINS_HARMONICS], 0] = self.harmonics
        wave = cosine_series(theta, coeffs).unsqueeze(1)
        fine = F.interpolate(wave, size=(coarse - 1) * MAINS_DECIMATION + 1, mode="linear", align_corners=True)
        return normalise_power(fine[:, 0, :n_samples], 10 ** (self.level_db / 10))


def draw_mains(n: int, generator: torch.Generator) -> Mains:
    """Mains of ``n`` buildings: 50 or 60 Hz, random phase, harmonics from other loads (≤ 12 %·3/n)."""
    freq = torch.tensor(MAINS_FREQUENCIES_HZ)[torch.randint(2, (n,), generator=generator)]
    orders = torch.tensor(MAINS_HARMONICS, dtype=torch.float32)
    harmonics = uniform(n * len(orders), 0.0, 0.12, generator).view(n, -1) * 3.0 / orders
    return Mains(freq, uniform(n, 0.0, TWO_PI, generator), harmonics, uniform(n, *MAINS_LEVEL_DB, generator))


def background_noise(n: int, n_samples: int, sample_rate_hz: float, generator: torch.Generator) -> torch.Tensor:
    """Unit-power background noise ``[B, L]``: PSD N_inf + N_0·exp(−f/f_1) plus a few AM broadcast lines."""
    freqs = torch.fft.rfftfreq(n_samples, 1.0 / sample_rate_hz).unsqueeze(0)
    slope = 10 ** (uniform(n, *BACKGROUND_SLOPE_DB, generator) / 10).unsqueeze(1)
    corner = torch.exp(uniform(n, *map(math.log, BACKGROUND_CORNER_HZ), generator)).unsqueeze(1)
    psd = 1.0 + slope * torch.exp(-freqs / corner)
    psd[:, 0] = 0.0
    # bin amplitudes for unit expected power: P = (2/L²) Σ_k E|X_k|²
    scale = (psd / psd.sum(1, keepdim=True)).sqrt() * (n_samples / 2)
    spectrum = torch.complex(scale * torch.randn(psd.shape, generator=generator),
                             scale * torch.randn(psd.shape, generator=generator))
    bin_hz = sample_rate_hz / n_samples
    lines = torch.randint(0, BROADCAST_LINES + 1, (n,), generator=generator)
    present = torch.arange(BROADCAST_LINES).unsqueeze(0) < lines.unsqueeze(1)
    carrier = torch.round(uniform(n * BROADCAST_LINES, *BROADCAST_BAND_HZ, generator) / bin_hz).long().view(n, -1)
    audio = torch.round(uniform(n * BROADCAST_LINES, 0.3e3, 4.5e3, generator) / bin_hz).long().clamp_min(1).view(n, -1)
    level_db = uniform(n * BROADCAST_LINES, *BROADCAST_LEVEL_DB, generator).view(n, -1)
    level = torch.where(present, 10 ** (level_db / 20), 0.0)
    for offset, weight in ((0, 1.0), (-1, 0.25), (1, 0.25)):
        index = carrier + offset * audio
        phase = uniform(n * BROADCAST_LINES, 0.0, TWO_PI, generator).view(n, -1)
        line = torch.polar(weight * level * n_samples / math.sqrt(2 * 1.125), phase)
        spectrum = spectrum.scatter_add(1, index, line)
    return normalise_power(torch.fft.irfft(spectrum, n=n_samples))


def impulsive_noise(n: int, n_samples: int, sample_rate_hz: float, generator: torch.Generator) -> torch.Tensor:
    """Asynchronous impulsive noise ``[B, L]``: Poisson-timed ringing bursts, unit power (0 if none occurred)."""
    duration_ms = n_samples / sample_rate_hz * 1e3
    rate = uniform(n, *IMPULSE_RATE_PER_MS, generator)
    count = torch.poisson(rate * duration_ms, generator=generator)
    most = int(math.ceil(IMPULSE_RATE_PER_MS[1] * duration_ms * 3)) + 1
    times = uniform(n * most, 0.0, n_samples / sample_rate_hz, generator).view(n, most)
    heights = torch.exp(0.7 * torch.randn(n, most, generator=generator))
    heights = heights * torch.sign(torch.randn(n, most, generator=generator))
    heights = torch.where(torch.arange(most).unsqueeze(0) < count.unsqueeze(1), heights, 0.0)
    ring_hz = torch.exp(uniform(n, *map(math.log, IMPULSE_RING_HZ), generator)).unsqueeze(1)
    tau_s = torch.exp(uniform(n, *map(math.log, IMPULSE_TAU_S), generator)).unsqueeze(1)
    taps = torch.arange(128, dtype=torch.float32).unsqueeze(0) / sample_rate_hz
    kernel = damped_ringing(taps, ring_hz, tau_s)
    return normalise_power(fft_convolve(scatter_events(times, heights, n_samples, sample_rate_hz), kernel))


@dataclass(frozen=True)
class Reception:
    """What the coupler records, with its parts: ``received = signal + noise + mains`` (all ``[B, L]``)."""

    source: torch.Tensor
    received: torch.Tensor
    signal: torch.Tensor
    noise: torch.Tensor
    mains: torch.Tensor
    snr_db: torch.Tensor
    channel: Channel


def inject_into_wiring(source: torch.Tensor, mains: Mains, rate_hz: float, snr_db_range: tuple[float, float],
                       variability: float, share: float, generator: torch.Generator) -> Reception:
    """Inject the sources ``[B, L]`` into freshly drawn wiring (echo ``variability``, impulsive ``share`` of the noise
    power, SNR drawn in ``snr_db_range``) and return what the coupler records."""
    n, length = source.shape
    channel = draw_channel(n, variability, generator)
    through = channel.apply(source, rate_hz)
    noise = math.sqrt(1.0 - share) * background_noise(n, length, rate_hz, generator)
    noise = normalise_power(noise + math.sqrt(share) * impulsive_noise(n, length, rate_hz, generator))
    snr_db = uniform(n, *snr_db_range, generator)
    signal = normalise_power(through, 10 ** (snr_db / 10) * mean_power(noise))
    mains_wave = mains.waveform(length, rate_hz)
    return Reception(source, signal + noise + mains_wave, signal, noise, mains_wave, snr_db, channel)
