"""From a recorded waveform to the image a classifier sees: STFT, decibels, a fixed scale to [0, 1].

The short-time Fourier transform uses a periodic Hann window of ``n_fft`` samples moved by ``hop``
samples (no padding: every column sees only recorded samples). The power of each bin is normalised
by the window's energy, so white noise of unit power reads 0 dB in every bin and the decibel scale
is *relative to the record's noise power* (which the wiring fixes at 1). The DC row is dropped (the
coupler blocks DC), leaving ``n_fft / 2`` rows from f_s/n_fft to f_s/2; rows and
columns are then averaged in power by whole factors down to the image size.

The image is ``(level_dB − low) / (high − low)`` clipped to [0, 1] with one *fixed* range for
every sample. A fixed range keeps the meaning of a pixel value across the whole data set (0.5 is
the same level in dB in every image), so that noise of standard deviation σ added to the image
later is a perturbation of σ·(high − low) dB everywhere; per-image min–max scaling would make the
same σ mean something different in every image and would itself react to the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpectrogramSpec:
    """Everything that fixes the image: sampling, STFT window and hop, image size and dB range."""

    sample_rate_hz: float
    record_samples: int
    n_fft: int
    hop: int
    rows: int
    cols: int
    level_range_db: tuple[float, float]

    @property
    def n_frames(self) -> int:
        """Whole STFT frames in a record (trailing samples that do not fill a frame are unused)."""
        return frames_for(self.record_samples, self.n_fft, self.hop)

    def power(self, x: torch.Tensor) -> torch.Tensor:
        """Per-bin mean power ``[B, n_fft/2, n_frames]`` of records ``[B, L]`` (DC row dropped)."""
        return self._frame_power(x).transpose(1, 2)

    def levels_db(self, x: torch.Tensor) -> torch.Tensor:
        """Image-sized levels in dB ``[B, rows, cols]``: power averaged over whole blocks, then 10·log10."""
        power = self._frame_power(x)
        frames, bins = power.shape[1:]
        blocks = power.view(len(x), self.cols, frames // self.cols, self.rows, bins // self.rows).mean(dim=(2, 4))
        return 10.0 * torch.log10(blocks.transpose(1, 2).clamp_min(1e-12))

    def _frame_power(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, n_frames, n_fft/2]``: torch.stft lays its result out frame by frame, so work along that."""
        window = torch.hann_window(self.n_fft, periodic=True, dtype=x.dtype)
        spectrum = torch.stft(x, self.n_fft, self.hop, window=window, center=False, return_complex=True).transpose(1, 2)
        return (spectrum.real.square() + spectrum.imag.square())[..., 1:] / window.square().sum()

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input ``[B, 1, rows, cols]`` in [0, 1]; row 0 is the lowest frequency."""
        low, high = self.level_range_db
        return ((self.levels_db(x) - low) / (high - low)).clamp(0.0, 1.0).unsqueeze(1).float()

    def to_db(self, image: torch.Tensor) -> torch.Tensor:
        """The level in dB that an image value stands for (exact inside the range, clipped outside)."""
        low, high = self.level_range_db
        return low + image * (high - low)

    def freqs_hz(self) -> torch.Tensor:
        """Centre frequency ``[rows]`` of each image row (mean of the STFT bins it averages)."""
        bins = torch.arange(1, self.n_fft // 2 + 1, dtype=torch.float64) * self.sample_rate_hz / self.n_fft
        return bins.view(self.rows, -1).mean(1).float()

    def times_s(self) -> torch.Tensor:
        """Centre time ``[cols]`` of each image column (mean of the STFT frame centres it averages)."""
        centres = (torch.arange(self.n_frames, dtype=torch.float64) * self.hop + self.n_fft / 2) / self.sample_rate_hz
        return centres.view(self.cols, -1).mean(1).float()

    def describe(self) -> dict[str, str]:
        """The spectrogram settings in words and units, for a table in the book."""
        low, high = self.level_range_db
        return {
            "sampling rate": f"{self.sample_rate_hz / 1e6:g} MHz",
            "record": f"{self.record_samples} samples = {self.record_samples / self.sample_rate_hz * 1e3:.2f} ms",
            "window": f"periodic Hann, {self.n_fft} samples = {self.n_fft / self.sample_rate_hz * 1e6:g} µs",
            "hop": f"{self.hop} samples = {self.hop / self.sample_rate_hz * 1e6:g} µs",
            "STFT grid": f"{self.n_fft // 2} bins × {self.n_frames} frames (DC bin dropped)",
            "bin spacing": f"{self.sample_rate_hz / self.n_fft / 1e3:.4g} kHz",
            "image": f"{self.rows} × {self.cols} (frequency × time), power averaged over "
            f"{self.n_fft // 2 // self.rows} × {self.n_frames // self.cols} blocks",
            "scale": f"[{low:g}, {high:g}] dB re noise power → [0, 1], clipped",
        }


def tone_row(spec: SpectrogramSpec, freq_hz: float) -> int:
    """The image row whose frequency band contains ``freq_hz`` (the row a pure tone should light up)."""
    bin_index = round(freq_hz * spec.n_fft / spec.sample_rate_hz)
    return max(0, min(spec.n_fft // 2, bin_index) - 1) // (spec.n_fft // 2 // spec.rows)


def frames_for(record_samples: int, n_fft: int, hop: int) -> int:
    """Number of whole STFT frames of ``n_fft`` samples, ``hop`` apart, that fit in a record."""
    return 1 + math.floor((record_samples - n_fft) / hop)
