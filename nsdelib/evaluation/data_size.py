"""How much data each model needs (chapter 8): the three models trained on smaller training sets,
scored on the same test images, clean and under Gaussian input noise.

Each smaller set is its own data set (its own config and seed), so its models never share the key
of the models trained on the full set.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from pydantic import Field, field_validator

from ..common.artifacts import ArtifactStore
from ..common.config import IncreasingFractions, Section
from ..common.errors import ConfigError
from ..common.seeding import derive_seed, generator
from ..data.dataset import DataConfig, SpectrogramData, load_dataset, stratified_split
from ..models.inference import headline_mode, predict
from ..models.registry import ModelConfig, ModelKind
from ..training.trainer import TrainConfig, train_or_load
from .input_noise import add_noise, noise_pattern

#: Training-set sizes of the study, as fractions of the profile's full training split.
TRAINING_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
CLEAN = "clean"


class DataSizeConfig(Section):
    """Chapter 8's training-set-size study: the sizes, as fractions of the full training split, and its seeds."""

    fractions: IncreasingFractions = Field(
        default=TRAINING_FRACTIONS, description="training-set sizes as fractions of the profile's full training "
        "split, each in (0, 1], increasing, ending at 1 (the full split: chapter 3's models)")
    n_seeds: int | None = Field(default=None, ge=1, description="seeds of the study, the first of the profile's; "
                                "None: all of them")

    @field_validator("fractions")
    @classmethod
    def _ends_at_the_full_split(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if not values or values[-1] != 1.0:
            raise ValueError(f"training fractions must end at 1 (the full split), got {list(values)}")
        return values


def training_sizes(n_full: int, batch_size: int, fractions: Sequence[float] = TRAINING_FRACTIONS) -> tuple[int, ...]:
    """The training-set sizes: each fraction of ``n_full`` (rounded), but at least one mini-batch.

    The trainer refuses a training split smaller than its batch, so tiny profiles raise small sizes to
    ``batch_size``; sizes that coincide are kept once.
    """
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad or not fractions:
        raise ValueError(f"training fractions must lie in (0, 1], got {list(fractions)}")
    return tuple(sorted({min(n_full, max(batch_size, round(f * n_full))) for f in fractions}))


def training_count(per_class: int, fractions: tuple[float, float, float]) -> int:
    """The size of one class's training split when ``per_class`` samples are split by ``fractions``."""
    labels = torch.zeros(per_class, dtype=torch.long)
    return len(stratified_split(labels, fractions, torch.Generator())[0])


def _with_samples(config: DataConfig, per_class: int) -> DataConfig | None:
    """``config`` with ``per_class`` samples of every class, or None where that is too few to split."""
    try:
        return config.replace(n_samples=per_class * len(config.classes))
    except ConfigError:
        return None


def config_for_training_size(config: DataConfig, n_train: int) -> DataConfig:
    """``config`` with the fewest samples whose stratified training split holds at least ``n_train``.

    Only ``n_samples`` changes (a multiple of the classes, as ``DataConfig`` requires); the split
    fractions stay, so the validation split keeps its share, and sizes too small to give every class
    a validation and a test sample are skipped. A class's training split holds at most
    ``f_train · p + 1`` of its ``p`` samples, so the search starts just below ``n_train / f_train``.
    """
    if n_train < 1:
        raise ValueError(f"a training set needs at least one sample, got {n_train}")
    wanted = math.ceil(n_train / len(config.classes))
    start = max(1, math.floor((wanted - 1) / config.split_fractions[0]))
    candidates = (_with_samples(config, per_class) for per_class in itertools.count(start)
                  if training_count(per_class, config.split_fractions) >= wanted)
    return next(candidate for candidate in candidates if candidate is not None)


def size_seed(seed: int, n_train: int) -> int:
    """The seed of the independent data set of ``n_train`` training samples under the main seed ``seed``."""
    return derive_seed(seed, "training set size", n_train)


def data_for_size(data: SpectrogramData, n_train: int, store: ArtifactStore) -> SpectrogramData:
    """The main data set for its full training size; otherwise an independent one of at least ``n_train``."""
    if n_train == len(data.train):
        return data
    return load_dataset(config_for_training_size(data.config, n_train), size_seed(data.seed, n_train), store)


def data_size_study(
    data: SpectrogramData,
    kinds: Sequence[ModelKind],
    seeds: Sequence[int],
    model: ModelConfig,
    train: Callable[[ModelKind], TrainConfig],
    store: ArtifactStore,
    device: torch.device,
    noise_std: float,
    fractions: Sequence[float] = TRAINING_FRACTIONS,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Train every kind for every seed at every training size, and score each on ``data``'s test split.

    Returns one row per size, kind, seed and condition (``"clean"`` or Gaussian input noise of std
    ``noise_std``), with the training samples, the data set's seed, the test accuracy (each model in
    its headline mode) and the training wall time. ``log`` receives a line per training size.
    """
    test = data.test
    rows = []
    batch_size = train(kinds[0]).batch_size
    for n_train in training_sizes(len(data.train), batch_size, fractions):
        sized = data_for_size(data, n_train, store)
        if log is not None:
            log(f"training set of {len(sized.train)} samples (data seed {sized.seed}): "
                f"{len(kinds)} models × {len(seeds)} seeds")
        for kind in kinds:
            mode = headline_mode(kind, model.sde)
            for seed in seeds:
                run = train_or_load(sized, kind, seed, model, train(kind), store, device, progress=False)
                pattern = noise_pattern(test.x.shape, "gaussian", generator(seed, "data size", "gaussian"))
                inputs = {CLEAN: test.x, gaussian_condition(noise_std): add_noise(test.x, pattern, noise_std)}
                for condition, x in inputs.items():
                    predicted = predict(run.model, x, mode, batch_size=train(kind).eval_batch_size, seed=seed)
                    rows.append({
                        "training samples": len(sized.train),
                        "share of the full split": len(sized.train) / len(data.train), "data seed": sized.seed,
                        "model": kind, "seed": seed, "condition": condition,
                        "test images": len(test.y), "accuracy": float((predicted == test.y).float().mean()),
                        "training wall time (s)": run.metrics["wall_time_s"],
                        "weights sha256": run.metrics["weights_sha256"],
                    })
    return pd.DataFrame(rows)


def gaussian_condition(noise_std: float) -> str:
    """The name of the Gaussian-noise condition in the study's table."""
    return f"Gaussian noise, std {noise_std:g}"
