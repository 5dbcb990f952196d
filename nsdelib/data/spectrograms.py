"""From a recorded waveform to the image a classifier sees: STFT, decibels re noise power, a fixed scale to [0, 1]."""

from __future__ import annotations

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
        return 1 + (self.record_samples - self.n_fft) // self.hop

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
        """``[B, n_frames, n_fft/2]``, normalised by the window's energy (unit-power white noise reads 0 dB)."""
        window = torch.hann_window(self.n_fft, periodic=True, dtype=x.dtype)
        spectrum = torch.stft(x, self.n_fft, self.hop, window=window, center=False, return_complex=True).transpose(1, 2)
        return (spectrum.real.square() + spectrum.imag.square())[..., 1:] / window.square().sum()

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input ``[B, 1, rows, cols]`` in [0, 1]; row 0 is the lowest frequency."""
        low, high = self.level_range_db
        return ((self.levels_db(x) - low) / (high - low)).clamp(0.0, 1.0).unsqueeze(1).float()

    def freqs_hz(self) -> torch.Tensor:
        """Centre frequency ``[rows]`` of each image row (mean of the STFT bins it averages)."""
        bins = torch.arange(1, self.n_fft // 2 + 1, dtype=torch.float64) * self.sample_rate_hz / self.n_fft
        return bins.view(self.rows, -1).mean(1).float()

    def times_s(self) -> torch.Tensor:
        """Centre time ``[cols]`` of each image column (mean of the STFT frame centres it averages)."""
        centres = (torch.arange(self.n_frames, dtype=torch.float64) * self.hop + self.n_fft / 2) / self.sample_rate_hz
        return centres.view(self.cols, -1).mean(1).float()

    def describe(self) -> dict[str, str]:
        low, high = self.level_range_db
        rate = self.sample_rate_hz
        return {
            "sampling rate": f"{rate / 1e6:g} MHz",
            "record": f"{self.record_samples} samples = {self.record_samples / rate * 1e3:.2f} ms",
            "window": f"periodic Hann, {self.n_fft} samples = {self.n_fft / rate * 1e6:g} µs",
            "hop": f"{self.hop} samples = {self.hop / rate * 1e6:g} µs",
            "STFT grid": f"{self.n_fft // 2} bins × {self.n_frames} frames (DC bin dropped)",
            "bin spacing": f"{rate / self.n_fft / 1e3:.4g} kHz",
            "image": f"{self.rows} × {self.cols} (frequency × time), power averaged over "
            f"{self.n_fft // 2 // self.rows} × {self.n_frames // self.cols} blocks",
            "scale": f"[{low:g}, {high:g}] dB re noise power → [0, 1], clipped",
        }
