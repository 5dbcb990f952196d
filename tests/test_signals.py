"""The source classes: registry, parameter ranges, batched synthesis and the physics of each waveform."""

from __future__ import annotations

import pytest
import torch

from nsdelib.data.signals import (
    CLASS_NAMES,
    KHZ,
    SOURCE_CLASSES,
    ParamRange,
    Timebase,
    class_table,
    synthesise,
)
from nsdelib.data.wiring import draw_mains

RATE, LENGTH = 1e6, 4160


def timebase(n: int, seed: int = 0) -> Timebase:
    mains = draw_mains(n, torch.Generator().manual_seed(seed))
    return Timebase(RATE, LENGTH, mains.phase(LENGTH, RATE))


def spectrum_at(x: torch.Tensor, freqs_hz: list[float]) -> torch.Tensor:
    """Magnitude of the record's Hann-windowed spectrum at the bins nearest to ``freqs_hz``."""
    spectrum = torch.fft.rfft(x * torch.hann_window(x.shape[-1])).abs()
    return spectrum[..., [round(f * x.shape[-1] / RATE) for f in freqs_hz]]


def test_registry_has_at_least_six_documented_classes() -> None:
    assert len(CLASS_NAMES) >= 6 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    for source in SOURCE_CLASSES.values():
        assert source.stands_for and source.model and source.params
    table = class_table(overlap=0.5)
    assert list(table.index) == list(CLASS_NAMES)
    assert table.notna().all().all()


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_every_class_synthesises_a_finite_unit_power_batch_deterministically(name: str) -> None:
    tb = timebase(6)
    first = synthesise(name, tb, 0.5, torch.Generator().manual_seed(1))
    again = synthesise(name, tb, 0.5, torch.Generator().manual_seed(1))
    other = synthesise(name, tb, 0.5, torch.Generator().manual_seed(2))
    assert first.shape == (6, LENGTH) and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.allclose(first.square().mean(1), torch.ones(6), rtol=1e-4)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_overlap_slides_ranges_from_typical_to_extreme() -> None:
    p = ParamRange("f", "kHz", (50, 100), (20, 200), log=True)
    assert p.bounds(0.0) == (50, 100) and p.bounds(1.0) == (20, 200)
    low, high = p.bounds(0.5)
    assert (low, high) == (35, 150)
    draws = p.draw(2000, 0.5, torch.Generator().manual_seed(0))
    assert draws.min() >= low and draws.max() <= high
    assert draws.max() > 140 and draws.min() < 40


def test_integer_parameters_are_whole_numbers_within_bounds() -> None:
    p = ParamRange("bursts", "", (1, 3), (1, 6), integer=True)
    draws = p.draw(1000, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(draws, draws.floor())
    assert set(draws.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}


def params(**values: float) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([v]) for k, v in values.items()}


def test_square_wave_ballast_has_odd_harmonics_only() -> None:
    ballast = SOURCE_CLASSES["ballast"]
    x = ballast.synthesise(params(f_sw=50, duty=0.5, ripple=0.0, fm=0.0), timebase(1), torch.Generator())
    odd = spectrum_at(x, [50 * KHZ, 150 * KHZ, 250 * KHZ])[0]  # 50 kHz is a whole number of FFT bins
    even = spectrum_at(x, [100 * KHZ, 200 * KHZ])[0]
    assert odd[1] / odd[0] == pytest.approx(1 / 3, rel=0.05)
    assert even.max() < 1e-3 * odd[0]


def test_pulse_train_of_duty_one_quarter_lacks_its_fourth_harmonic() -> None:
    smps = SOURCE_CLASSES["smps"]
    flat = params(f_sw=50, duty=0.25, dither=0.0, f_dither=1.0, ripple=0.0)
    x = smps.synthesise(flat, timebase(1), torch.Generator())
    first, second, fourth = spectrum_at(x, [50 * KHZ, 100 * KHZ, 200 * KHZ])[0]
    assert second / first == pytest.approx(2**-0.5, rel=0.02)  # [sin(π·2/4)/2] / sin(π/4)
    assert fourth < 1e-3 * first


def test_dimmer_is_silent_before_it_fires() -> None:
    dimmer = SOURCE_CLASSES["dimmer"]
    x = dimmer.synthesise(params(t_fire=0.5, f_ring=50, tau_ring=200, step=1.0), timebase(1), torch.Generator())[0]
    assert x[: LENGTH // 2 - 1].abs().max() == 0
    assert x[LENGTH // 2 :].abs().max() > 0.5


def test_sweep_moves_its_frequency_at_the_drawn_rate() -> None:
    sweep = SOURCE_CLASSES["impedance_sweep"]
    x = sweep.synthesise(params(rate=50, f_centre=200, h2_db=-60, h3_db=-60), timebase(1), torch.Generator())[0]
    quarter = LENGTH // 4
    freqs = torch.fft.rfftfreq(quarter, 1 / RATE)
    peaks = [freqs[torch.fft.rfft(x[i * quarter : (i + 1) * quarter]).abs().argmax()] for i in (0, 3)]
    expected_change = 50 * KHZ / 1e-3 * 3 * quarter / RATE
    assert abs(abs(peaks[1] - peaks[0]) - expected_change) < 2 * RATE / quarter
