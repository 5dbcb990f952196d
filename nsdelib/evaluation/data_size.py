"""How much data each model needs (chapter 8): the models trained on smaller training sets, each its own data set
with its own seed, scored image by image on the main test split, clean and under Gaussian input noise."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from pydantic import Field, field_validator

from ..common import ConfigError, IncreasingFractions, Section, derive_seed, generator
from ..common.artifacts import ArtifactStore
from ..data.dataset import DataConfig, SpectrogramData, load_dataset, stratified_split
from ..models.inference import headline_mode
from ..models.registry import ModelConfig, ModelKind
from ..training.trainer import TrainConfig, train_or_load
from .input_noise import add_noise, noise_pattern
from .sweeps import per_image_outcomes

#: Training-set sizes of the study, as fractions of the profile's full training split.
TRAINING_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
CLEAN = "clean"
#: What one scoring of the study is: a model of a size and seed in a condition; its outcomes hold one row per image.
OUTCOME_KEYS: tuple[str, ...] = ("training samples", "model", "seed", "condition")


class DataSizeConfig(Section):
    """The sizes (ending at 1, the full split: chapter 3's models) and the study's seeds (None: the profile's)."""

    fractions: IncreasingFractions = TRAINING_FRACTIONS
    n_seeds: int | None = Field(default=None, ge=1)

    @field_validator("fractions")
    @classmethod
    def _ends_at_the_full_split(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if not values or values[-1] != 1.0:
            raise ValueError(f"training fractions must end at 1 (the full split), got {list(values)}")
        return values


def training_sizes(n_full: int, batch_size: int, fractions: Sequence[float] = TRAINING_FRACTIONS) -> tuple[int, ...]:
    """Each fraction of ``n_full``, at least one mini-batch (the trainer's minimum); coinciding sizes kept once."""
    return tuple(sorted({min(n_full, max(batch_size, round(f * n_full))) for f in fractions}))


def training_count(per_class: int, fractions: tuple[float, float, float]) -> int:
    """The size of one class's training split when ``per_class`` samples are split by ``fractions``."""
    return len(stratified_split(torch.zeros(per_class, dtype=torch.long), fractions, torch.Generator())[0])


def config_for_training_size(config: DataConfig, n_train: int) -> DataConfig:
    """``config`` with the fewest ``n_samples`` whose stratified training split holds at least ``n_train`` (a class's
    split holds at most ``f_train · p + 1`` of its ``p`` samples, so the search starts just below that)."""
    if n_train < 1:
        raise ValueError(f"a training set needs at least one sample, got {n_train}")
    wanted = math.ceil(n_train / len(config.classes))
    for per_class in itertools.count(max(1, math.floor((wanted - 1) / config.split_fractions[0]))):
        if training_count(per_class, config.split_fractions) >= wanted:
            try:
                return config.replace(n_samples=per_class * len(config.classes))
            except ConfigError:  # too few to give every class a validation and a test sample
                continue
    raise AssertionError("unreachable")  # itertools.count never ends


def size_seed(seed: int, n_train: int) -> int:
    return derive_seed(seed, "training set size", n_train)


def data_for_size(data: SpectrogramData, n_train: int, store: ArtifactStore) -> SpectrogramData:
    """The main data set for its full training size; otherwise an independent one of at least ``n_train``."""
    if n_train == len(data.train):
        return data
    return load_dataset(config_for_training_size(data.config, n_train), size_seed(data.seed, n_train), store)


def gaussian_condition(noise_std: float) -> str:
    return f"Gaussian noise, std {noise_std:g}"


def data_size_study(data: SpectrogramData, kinds: Sequence[ModelKind], seeds: Sequence[int], model: ModelConfig,
                    train: Callable[[ModelKind], TrainConfig], store: ArtifactStore, device: torch.device,
                    noise_std: float, fractions: Sequence[float] = TRAINING_FRACTIONS,
                    log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Every kind and seed trained at every size, scored on ``data``'s test split clean and under Gaussian noise:
    one row per size, kind, seed, condition and test image (``example``, its index in the split) with ``correct``.
    Every seed is scored on the same images, so images are crossed with seeds in the verdicts."""
    test = data.test
    frames = []
    for n_train in training_sizes(len(data.train), train(kinds[0]).batch_size, fractions):
        sized = data_for_size(data, n_train, store)
        if log is not None:
            log(f"training set of {len(sized.train)} samples (data seed {sized.seed}): "
                f"{len(kinds)} models × {len(seeds)} seeds")
        for kind, seed in itertools.product(kinds, seeds):
            run = train_or_load(sized, kind, seed, model, train(kind), store, device, progress=False)
            pattern = noise_pattern(test.x.shape, "gaussian", generator(seed, "data size", "gaussian"))
            inputs = {CLEAN: test.x, gaussian_condition(noise_std): add_noise(test.x, pattern, noise_std)}
            for condition, x in inputs.items():
                scored = per_image_outcomes(run.model, x, test.y, (headline_mode(kind, model.sde),),
                                            batch_size=train(kind).eval_batch_size, seed=seed)
                columns = {
                    "training samples": len(sized.train), "share of the full split": len(sized.train) / len(data.train),
                    "data seed": sized.seed, "model": kind, "seed": seed, "condition": condition,
                    "test images": len(test.y), "training wall time (s)": run.metrics["wall_time_s"],
                    "weights sha256": run.metrics["weights_sha256"],
                }
                frames.append(pd.DataFrame(columns, index=scored.index).join(scored.astype({"correct": bool})))
    return pd.concat(frames, ignore_index=True)


def seed_accuracies(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The study's per-seed table, for display and intervals over seeds: each scoring's share of correct test images
    (``accuracy``) with its run's columns, one row per size, kind, seed and condition."""
    per_run = [column for column in outcomes.columns if column not in ("example", "correct")]
    return outcomes.groupby(per_run, sort=False)["correct"].mean().rename("accuracy").reset_index()
