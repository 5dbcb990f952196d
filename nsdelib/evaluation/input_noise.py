"""Accuracy under input noise: white Gaussian noise (claim C2) and two structured noises of power lines.

Every noise is added to the [0, 1] spectrogram as ``x + level · pattern`` and clipped back to [0, 1];
for Gaussian noise ``level`` is the standard deviation on that scale. Chapter 4.
"""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd
import torch
from pydantic import Field, field_validator
from torch import nn

from ..common.artifacts import ArtifactKind
from ..common.config import IncreasingPositive, Section
from .sweeps import SweepTarget, per_image_outcomes

#: Chapter 4's sweep table; bump when the sweep's numbers change.
NOISE_SWEEP = ArtifactKind("noise_sweep", 2, "table.json")

NoiseKind = Literal["gaussian", "impulsive", "narrowband"]
StructuredNoiseKind = Literal["impulsive", "narrowband"]
NOISE_KINDS: tuple[NoiseKind, ...] = ("gaussian", "impulsive", "narrowband")


class NoiseSweepConfig(Section):
    """The input-noise sweep of chapter 4: noise levels, the structured noises and the evaluated subset."""

    gaussian_stds: IncreasingPositive = Field(min_length=1, description="Gaussian noise std on the [0, 1] scale")
    structured_kinds: tuple[StructuredNoiseKind, ...] = Field(
        default=("impulsive", "narrowband"), description="structured noises swept besides the Gaussian one"
    )
    structured_levels: IncreasingPositive = Field(min_length=1, description="amplitudes added by the structured noises")
    impulse_probability: float = Field(default=0.05, gt=0, le=1, description="chance that a time frame carries an impulse")
    subset_size: int | None = Field(default=None, ge=1, description="stratified test subset size; None: the whole test set")
    subset_seed: int = Field(default=0, ge=0, description="seed of the subsets (each model seed draws its own)")
    batch_size: int = Field(default=256, ge=1, description="samples per forward pass")

    @field_validator("structured_kinds")
    @classmethod
    def _unique_kinds(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(values)) != len(values):
            raise ValueError(f"each structured noise may appear once, got {list(values)}")
        return values

    def levels(self, kind: NoiseKind) -> tuple[float, ...]:
        """The swept levels of one noise kind."""
        return self.gaussian_stds if kind == "gaussian" else self.structured_levels


def noise_pattern(
    shape: torch.Size | tuple[int, ...],
    kind: NoiseKind,
    generator: torch.Generator,
    impulse_probability: float = 0.05,
) -> torch.Tensor:
    """The unit-level random pattern of one noise for inputs of ``shape`` [N,1,F,T] (broadcastable to it)."""
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
    """``x + level · pattern``, clipped to [0, 1] (the input range of the models)."""
    return (x + level * pattern.to(x.device)).clamp(0.0, 1.0)


def image_snr_db(x: torch.Tensor, noisy: torch.Tensor) -> float:
    """SNR of the noisy spectrograms in dB: mean signal power over mean power of the noise actually added."""
    noise_power = float((noisy.double() - x.double()).pow(2).mean())
    signal_power = float(x.double().pow(2).mean())
    return math.inf if noise_power == 0 else 10 * math.log10(signal_power / noise_power)


def noise_sweep(target: SweepTarget, cfg: NoiseSweepConfig) -> pd.DataFrame:
    """Whether the target's model classifies each image correctly, in each mode, at every level of every noise.

    One row per (noise, level, mode, image): the image SNR in dB of the level, the image's index
    ``example`` in ``x`` and ``correct`` (0 or 1); level 0 is the clean inputs. Per-image rows let the
    verdicts pair the models image by image; ``sweep_accuracy`` gives the accuracies.
    """
    model, x, y, modes, seed = target.model, target.x, target.y, target.modes, target.seed
    outcome_kw = {"batch_size": cfg.batch_size, "seed": seed, "noise_control": target.noise_control}
    clean = per_image_outcomes(model, x, y, modes, **outcome_kw)
    tables = []
    for kind in ("gaussian", *cfg.structured_kinds):
        generator = torch.Generator().manual_seed(seed * len(NOISE_KINDS) + NOISE_KINDS.index(kind))
        pattern = noise_pattern(x.shape, kind, generator, cfg.impulse_probability)
        tables.append(clean.assign(noise=kind, level=0.0, image_snr_db=math.inf))
        for level in cfg.levels(kind):
            noisy = add_noise(x, pattern, level)
            outcomes = per_image_outcomes(model, noisy, y, modes, **outcome_kw)
            tables.append(outcomes.assign(noise=kind, level=level, image_snr_db=image_snr_db(x, noisy)))
    return pd.concat(tables, ignore_index=True)[["noise", "level", "image_snr_db", "mode", "example", "correct"]]


def sweep_accuracy(table: pd.DataFrame, by: tuple[str, ...] = ("noise", "level", "image_snr_db", "mode")) -> pd.DataFrame:
    """Accuracy and number of images per group of a per-image table (``noise_sweep``'s), other keys kept."""
    keys = [*by, *(k for k in ("model", "seed") if k in table.columns)]
    return table.groupby(keys, sort=False)["correct"].agg(accuracy="mean", n_samples="size").reset_index()
