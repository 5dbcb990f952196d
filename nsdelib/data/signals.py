"""The injected sources: eight kinds of emitters on a building's wiring, each a class (chapter 1, "The sources").

A class is data: what it stands for, its waveform model and randomised parameters whose ranges ``class_overlap``
widens from typical to extreme. Waveforms are synthesised a batch at a time with unit mean power."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from .dsp import (TWO_PI, cosine_series, damped_ringing, fft_convolve, normalise_power, phase_from_frequency,
                  scatter_events, shaped_noise, smooth_gate, time_axis, uniform)

KHZ, MS, US = 1e3, 1e-3, 1e-6
#: Harmonics above this fraction of the sampling rate are left out (band-limited synthesis, no aliasing).
BAND_EDGE = 0.45


@dataclass(frozen=True)
class ParamRange:
    """One randomised parameter: drawn uniformly (log-uniformly if ``log``) within bounds set by the overlap."""

    name: str
    unit: str
    typical: tuple[float, float]
    extreme: tuple[float, float]
    log: bool = False
    integer: bool = False

    def bounds(self, overlap: float) -> tuple[float, float]:
        """The typical range at ``overlap`` 0, widened linearly to the extreme range at 1."""
        (a, b), (c, d) = self.typical, self.extreme
        return a + overlap * (c - a), b + overlap * (d - b)

    def draw(self, n: int, overlap: float, generator: torch.Generator) -> torch.Tensor:
        low, high = self.bounds(overlap)
        if self.log:
            return torch.exp(uniform(n, math.log(low), math.log(high), generator))
        if self.integer:
            return uniform(n, low, high + 1.0, generator).floor().clamp_max(math.floor(high))
        return uniform(n, low, high, generator)


@dataclass(frozen=True)
class Timebase:
    """Sampling of one record: rate, length, and the instantaneous mains phase θ(t) of each sample."""

    sample_rate_hz: float
    n_samples: int
    mains_phase: torch.Tensor  # [B, L] float32, radians

    @property
    def t(self) -> torch.Tensor:
        return time_axis(self.n_samples, self.sample_rate_hz)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate_hz

    @property
    def band_edge_hz(self) -> float:
        return BAND_EDGE * self.sample_rate_hz


Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SourceClass:
    """A class of injected waveform: what it stands for, how it is made, and what is random in it."""

    name: str
    stands_for: str
    model: str
    params: tuple[ParamRange, ...]
    synthesise: Callable[[Params, Timebase, torch.Generator], torch.Tensor]


def _col(values: torch.Tensor) -> torch.Tensor:
    return values.unsqueeze(-1)


def _harmonic_mask(n_harmonics: int, top_freq_hz: torch.Tensor, edge_hz: float) -> torch.Tensor:
    """``[B, H, 1]`` = 1 for harmonics n whose frequency n·f stays below the band edge."""
    orders = torch.arange(1, n_harmonics + 1)
    return (orders * _col(top_freq_hz) < edge_hz).unsqueeze(-1).float()


def _pulse_train(phase: torch.Tensor, duty: torch.Tensor, n_harmonics: int, top_freq_hz: torch.Tensor,
                 edge_hz: float) -> torch.Tensor:
    """A rectangular pulse train of duty ``d``: harmonics sin(πnd)/(πn), band-limited (no DC)."""
    orders = torch.arange(1, n_harmonics + 1)
    coeffs = (torch.sin(math.pi * orders * _col(duty)) / (math.pi * orders)).unsqueeze(-1)
    centred = phase - math.pi * _col(duty)
    return cosine_series(centred, coeffs * _harmonic_mask(n_harmonics, top_freq_hz, edge_hz))


def _smps(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    n = p["f_sw"].shape[0]
    dither_phase = TWO_PI * _col(p["f_dither"]) * KHZ * tb.t + _col(uniform(n, 0.0, TWO_PI, g))
    triangle = (2.0 / math.pi) * torch.asin(torch.sin(dither_phase))
    freq = _col(p["f_sw"]) * KHZ * (1.0 + _col(p["dither"]) / 100.0 * triangle)
    top = p["f_sw"] * KHZ * (1.0 + p["dither"] / 100.0)
    comb = _pulse_train(phase_from_frequency(freq, tb.sample_rate_hz), p["duty"], 16, top, tb.band_edge_hz)
    envelope = 1.0 + _col(p["ripple"]) * torch.cos(2.0 * tb.mains_phase)
    return comb * envelope


def _pfc(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    line = torch.abs(torch.sin(tb.mains_phase))
    freq = _col(p["f_max"]) * KHZ * (1.0 - _col(p["depth"]) * line)
    # triangular inductor current rising for a fraction D = 1 − v/V_out: harmonics sin(πnD)/(πn)²
    duty = (1.0 - _col(p["depth"]) * line.mean(-1, keepdim=True)).clamp(0.05, 0.95)
    orders = torch.arange(1, 9)
    coeffs = (torch.sin(math.pi * orders * duty) / (math.pi * orders) ** 2).unsqueeze(-1)
    phase = phase_from_frequency(freq, tb.sample_rate_hz) - math.pi * duty
    return cosine_series(phase, coeffs * _harmonic_mask(8, p["f_max"] * KHZ, tb.band_edge_hz))


def _ballast(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    bus = torch.abs(torch.sin(tb.mains_phase))
    freq = _col(p["f_sw"]) * KHZ * (1.0 + _col(p["fm"]) / 100.0 * (2.0 * bus - 1.0))
    top = p["f_sw"] * KHZ * (1.0 + p["fm"] / 100.0)
    square = _pulse_train(phase_from_frequency(freq, tb.sample_rate_hz), p["duty"], 16, top, tb.band_edge_hz)
    envelope = 1.0 - _col(p["ripple"]) * (1.0 - bus)
    return square * envelope


def _motor_drive(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    n = p["f_carrier"].shape[0]
    carrier = _col(p["f_carrier"]) * KHZ
    periods = int(math.ceil(tb.duration_s * float(carrier.max()))) + 2
    k = torch.arange(periods).unsqueeze(0)
    centres = (k - _col(uniform(n, 0.0, 1.0, g))) / carrier
    reference = _col(p["m"]) * torch.sin(TWO_PI * _col(p["f_out"]) * centres + _col(uniform(n, 0.0, TWO_PI, g)))
    half_width = 0.25 * (1.0 + reference) / carrier
    edges = torch.cat([centres - half_width, centres + half_width], dim=1)
    signs = torch.cat([torch.ones(n, periods), -torch.ones(n, periods)], dim=1)
    train = scatter_events(edges, signs, tb.n_samples, tb.sample_rate_hz)
    taps = torch.arange(256).unsqueeze(0) / tb.sample_rate_hz
    ring = damped_ringing(taps, _col(p["f_ring"]) * KHZ, _col(p["tau_ring"]) * US)
    kernel = ring + 0.3 * torch.exp(-taps / (20 * US))
    return fft_convolve(train, kernel)


def _dimmer(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    since = tb.t - _col(p["t_fire"]) * tb.duration_s
    ring = damped_ringing(since, _col(p["f_ring"]) * KHZ, _col(p["tau_ring"]) * US)
    step = torch.where(since >= 0, torch.exp(-since.clamp_min(0.0) / (30 * US)), 0.0)
    return ring + _col(p["step"]) * step


def _arc_fault(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    n, max_bursts = p["bursts"].shape[0], 6
    starts = uniform(n * max_bursts, 0.0, tb.duration_s, g).view(n, max_bursts)
    lengths = _col(p["burst_ms"]) * MS * uniform(n * max_bursts, 0.5, 1.5, g).view(n, max_bursts)
    present = (torch.arange(max_bursts).unsqueeze(0) < _col(p["bursts"])).float()
    # +1 where a burst starts, −1 where it stops: the running sum counts the bursts alight
    switches = scatter_events(torch.cat([starts, starts + lengths], 1), torch.cat([present, -present], 1),
                              tb.n_samples, tb.sample_rate_hz)
    burning = torch.cumsum(switches, dim=-1) > 0.5
    freqs = torch.fft.rfftfreq(tb.n_samples, 1.0 / tb.sample_rate_hz).clamp_min(KHZ).unsqueeze(0)
    tilt = (freqs / (10 * KHZ)) ** (-0.5 * _col(p["tilt"]))
    noise = normalise_power(shaped_noise(tilt, tb.n_samples, g))
    max_impulses = int(math.ceil(float(p["impulse_rate"].max()) * tb.duration_s / MS)) + 1
    times = uniform(n * max_impulses, 0.0, tb.duration_s, g).view(n, max_impulses)
    count = torch.poisson(p["impulse_rate"] * tb.duration_s / MS, generator=g)
    heights = 4.0 * torch.exp(0.5 * torch.randn(n, max_impulses, generator=g))
    heights = heights * torch.sign(torch.randn(n, max_impulses, generator=g))
    heights = torch.where(torch.arange(max_impulses).unsqueeze(0) < _col(count), heights, 0.0)
    impulses = scatter_events(times, heights, tb.n_samples, tb.sample_rate_hz)
    return (noise + impulses) * burning.float()


PLC_BANDS_KHZ = {"CENELEC-A (G3-PLC)": (35.9, 90.6), "ARIB": (154.7, 403.1), "FCC": (154.7, 487.5)}


def _plc_ofdm(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    n = p["frame_ms"].shape[0]
    bands = torch.tensor(list(PLC_BANDS_KHZ.values())) * KHZ
    choice = bands[torch.randint(len(bands), (n,), generator=g)]
    low = (choice[:, 0] + p["shift_low"] * KHZ).clamp(10 * KHZ, tb.band_edge_hz - 30 * KHZ)
    high = torch.maximum(choice[:, 1] + p["shift_high"] * KHZ, low + 20 * KHZ).clamp_max(tb.band_edge_hz)
    freqs = torch.fft.rfftfreq(tb.n_samples, 1.0 / tb.sample_rate_hz).unsqueeze(0)
    in_band = ((freqs - _col(low)) / (2 * KHZ)).clamp(0, 1) * ((_col(high) - freqs) / (2 * KHZ)).clamp(0, 1)
    carriers = shaped_noise(in_band, tb.n_samples, g)
    length = p["frame_ms"] * MS
    start = uniform(n, 0.0, 1.0, g) * (tb.duration_s - length).clamp_min(0.0)
    return carriers * smooth_gate(tb.t, start, start + length, 20 * US)


def _sweep(p: Params, tb: Timebase, g: torch.Generator) -> torch.Tensor:
    n = p["rate"].shape[0]
    span = p["rate"] * KHZ / MS * tb.duration_s
    lowest, highest = 10 * KHZ, tb.band_edge_hz
    centre = torch.minimum(torch.maximum(p["f_centre"] * KHZ, lowest + span / 2), highest - span / 2)
    direction = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    freq = _col(centre) + _col(direction * p["rate"] * KHZ / MS) * (tb.t - tb.duration_s / 2)
    gains = torch.stack([torch.ones(n), 10 ** (p["h2_db"] / 20), 10 ** (p["h3_db"] / 20)], 1)
    orders = torch.arange(1, 4).view(1, -1, 1)
    coeffs = gains.unsqueeze(-1) * (orders * freq.unsqueeze(1) < tb.band_edge_hz)
    return cosine_series(phase_from_frequency(freq, tb.sample_rate_hz), coeffs)


SOURCE_CLASSES: dict[str, SourceClass] = {c.name: c for c in (
    SourceClass("smps", "switch-mode power supply (chargers, PCs, TVs)",
                "fixed-frequency pulse train with spread-spectrum dither; comb of all harmonics, mains ripple",
                (ParamRange("f_sw", "kHz", (50, 130), (25, 200), log=True),
                 ParamRange("duty", "", (0.15, 0.35), (0.08, 0.5)),
                 ParamRange("dither", "%", (2, 5), (0, 8)),
                 ParamRange("f_dither", "kHz", (0.5, 1.5), (0.2, 3)),
                 ParamRange("ripple", "", (0, 0.15), (0, 0.6))),
                _smps),
    SourceClass("pfc_led_driver", "critical-conduction PFC stage of an LED driver or lamp",
                "triangular current whose switching frequency falls as the mains voltage rises: curved comb",
                (ParamRange("f_max", "kHz", (120, 220), (60, 320), log=True),
                 ParamRange("depth", "", (0.6, 0.85), (0.2, 0.9))),
                _pfc),
    SourceClass("ballast", "electronic ballast or induction hob (resonant half bridge)",
                "square wave: odd harmonics, amplitude and frequency rippling with the rectified mains",
                (ParamRange("f_sw", "kHz", (25, 55), (20, 130), log=True),
                 ParamRange("duty", "", (0.47, 0.5), (0.3, 0.5)),
                 ParamRange("ripple", "", (0.4, 0.8), (0, 0.9)),
                 ParamRange("fm", "%", (2, 6), (0, 8))),
                _ballast),
    SourceClass("motor_drive", "variable-frequency motor drive (sine-PWM inverter)",
                "switching edges at twice the carrier, each ringing in the cable's LC resonance",
                (ParamRange("f_carrier", "kHz", (4, 10), (2, 16), log=True),
                 ParamRange("f_ring", "kHz", (100, 300), (50, 450), log=True),
                 ParamRange("tau_ring", "µs", (5, 15), (2, 40), log=True),
                 ParamRange("m", "", (0.6, 0.95), (0.1, 1.0)),
                 ParamRange("f_out", "Hz", (20, 60), (5, 100))),
                _motor_drive),
    SourceClass("dimmer", "phase-control (TRIAC) light dimmer firing once per half cycle",
                "one switching step at the firing instant, ringing in the dimmer's EMI filter",
                (ParamRange("t_fire", "of record", (0.15, 0.5), (0.02, 0.85)),
                 ParamRange("f_ring", "kHz", (30, 100), (15, 300), log=True),
                 ParamRange("tau_ring", "µs", (100, 400), (30, 1000), log=True),
                 ParamRange("step", "", (0.5, 1.0), (0, 1.5))),
                _dimmer),
    SourceClass("arc_fault", "series arc fault (loose contact, damaged cable)",
                "bursts of broadband 1/f-tilted noise with sharp ignition impulses",
                (ParamRange("bursts", "", (1, 3), (1, 6), integer=True),
                 ParamRange("burst_ms", "ms", (0.3, 1.2), (0.1, 3)),
                 ParamRange("impulse_rate", "/ms", (5, 20), (1, 40)),
                 ParamRange("tilt", "", (0.5, 1.0), (0, 1.5))),
                _arc_fault),
    SourceClass("plc_ofdm", "narrowband power-line communication (G3-PLC / PRIME smart meters)",
                "an OFDM frame filling a standard band (CENELEC-A 36–91, ARIB 155–403, FCC 155–488 kHz)",
                (ParamRange("frame_ms", "ms", (1.0, 2.5), (0.3, 4)),
                 ParamRange("shift_low", "kHz", (0, 0), (-60, 60)),
                 ParamRange("shift_high", "kHz", (0, 0), (-60, 60))),
                _plc_ofdm),
    SourceClass("impedance_sweep", "grid-impedance analyser injecting a swept sine",
                "linear chirp with the injection amplifier's 2nd and 3rd harmonics",
                (ParamRange("rate", "kHz/ms", (40, 100), (0, 105)),
                 ParamRange("f_centre", "kHz", (100, 300), (20, 430)),
                 ParamRange("h2_db", "dB", (-30, -20), (-45, -6)),
                 ParamRange("h3_db", "dB", (-35, -25), (-50, -10))),
                _sweep),
)}
CLASS_NAMES: tuple[str, ...] = tuple(SOURCE_CLASSES)


def synthesise(name: str, timebase: Timebase, overlap: float, generator: torch.Generator) -> torch.Tensor:
    """A batch ``[B, L]`` of class-``name`` waveforms with unit mean power (B = rows of the mains phase)."""
    source = SOURCE_CLASSES[name]
    n = timebase.mains_phase.shape[0]
    params = {p.name: p.draw(n, overlap, generator) for p in source.params}
    return normalise_power(source.synthesise(params, timebase, generator))


def class_table(overlap: float | None = None) -> pd.DataFrame:
    """One row per class: what it stands for, its model, its ranges ``name typical (extreme) unit`` (and the range
    drawn at ``overlap``)."""
    rows = []
    for c in SOURCE_CLASSES.values():
        ranges = [f"{p.name} {p.typical[0]:g}–{p.typical[1]:g} ({p.extreme[0]:g}–{p.extreme[1]:g}) {p.unit}".rstrip()
                  for p in c.params]
        row = {"class": c.name, "stands for": c.stands_for, "waveform model": c.model,
               "parameters: typical (extreme)": "; ".join(ranges)}
        if overlap is not None:
            row[f"drawn at overlap {overlap:g}"] = "; ".join(
                f"{p.name} {lo:.3g}–{hi:.3g}" for p in c.params for lo, hi in [p.bounds(overlap)]
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("class")
