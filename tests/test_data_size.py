"""The training-set-size study: smaller sizes are independent data sets with keys of their own, every model is
scored image by image on the main data set's test split, and its verdicts cross images with seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nsdelib.claims.size_study import CLEAN_CLAIM, NOISE_CLAIM, size_study_verdicts
from nsdelib.common import ConfigError
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.data.dataset import DataConfig, load_dataset
from nsdelib.evaluation.data_size import (
    CLEAN,
    OUTCOME_KEYS,
    DataSizeConfig,
    config_for_training_size,
    data_size_study,
    gaussian_condition,
    seed_accuracies,
    size_seed,
    training_count,
    training_sizes,
)
from nsdelib.models.inference import headline_mode, predict
from nsdelib.models.registry import ModelConfig
from nsdelib.report.claims import SIZE_STUDY
from nsdelib.report.outcomes import read_outcomes, write_outcomes
from nsdelib.training.trainer import TrainConfig, train_or_load

CPU = torch.device("cpu")
TINY_DATA = DataConfig.build(classes=("smps", "dimmer"), n_samples=40, image_rows=32, image_cols=32)
TINY_MODEL = ModelConfig.build(sde={"sigma": 0.1, "eval_noise": "ensemble", "ensemble_size": 2})
TINY_TRAIN = TrainConfig.build(max_epochs=1, patience=1, batch_size=8, lr=2e-3, weight_decay=0.05, warmup_epochs=0, eval_batch_size=64)


def test_sizes_are_fractions_of_the_full_split_but_at_least_one_batch() -> None:
    assert training_sizes(7000, 64) == (700, 1750, 3500, 7000)
    assert training_sizes(160, 32) == (32, 40, 80, 160)
    assert training_sizes(100, 64, (0.1, 0.2, 1.0)) == (64, 100)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [((), r"must end at 1 \(the full split\), got \[\]"), ((0.0, 1.0), r"finite and > 0"), ((0.5,), "end at 1"),
     ((0.5, 0.25, 1.0), "strictly increasing"), ((0.25, 1.0, 1.0), "strictly increasing"), ((0.5, 1.5), r"in \(0, 1\]")],
)
def test_a_study_needs_increasing_fractions_that_end_at_the_full_split(fractions: tuple[float, ...], message: str
                                                                      ) -> None:
    with pytest.raises(ConfigError, match=message):
        DataSizeConfig.build(fractions=fractions)
    assert DataSizeConfig.build(fractions=(0.25, 1.0)).fractions == (0.25, 1.0)


@pytest.mark.parametrize("n_train", [1, 2, 7, 14, 32, 139, 700])
def test_the_config_for_a_size_is_the_smallest_that_holds_it(n_train: int) -> None:
    config = DataConfig.build(n_samples=2000)
    sized = config_for_training_size(config, n_train)
    assert sized.model_dump(exclude={"n_samples"}) == config.model_dump(exclude={"n_samples"})
    classes = len(config.classes)
    wanted = -(-n_train // classes)
    assert training_count(sized.samples_per_class, config.split_fractions) >= wanted
    for fewer in range(1, sized.samples_per_class):
        too_few = training_count(fewer, config.split_fractions) < wanted
        unsplittable = min(config.split_fractions) * fewer < 0.5
        assert too_few or unsplittable, f"{fewer} samples per class would have done for {n_train}"


def test_an_empty_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample, got 0"):
        config_for_training_size(TINY_DATA, 0)


def test_each_size_has_its_own_seed() -> None:
    seeds = {size_seed(0, n) for n in (32, 40, 80)} | {size_seed(1, 32)}
    assert len(seeds) == 4 and not seeds & {0, 1}
    assert size_seed(0, 32) == size_seed(0, 32)


def test_study_trains_distinct_data_sets_and_scores_every_model_on_the_main_test_split(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    main = load_dataset(TINY_DATA, 0, store)
    full = train_or_load(main, "convnext", 0, TINY_MODEL, TINY_TRAIN, store, CPU, progress=False)
    lines: list[str] = []
    outcomes = data_size_study(main, ("convnext", "nsde"), (0,), TINY_MODEL, lambda kind: TINY_TRAIN, store, CPU,
                               noise_std=0.05, fractions=(0.5, 1.0), log=lines.append)
    table = seed_accuracies(outcomes)

    per_scoring = outcomes.groupby(list(OUTCOME_KEYS))["example"]
    assert (per_scoring.size() == len(main.test)).all() and (per_scoring.nunique() == len(main.test)).all()
    assert outcomes["example"].between(0, len(main.test) - 1).all() and outcomes["correct"].dtype == bool
    stored = read_outcomes(write_outcomes(tmp_path / "outcomes.json", outcomes, keys=OUTCOME_KEYS))
    assert stored.equals(outcomes[[*OUTCOME_KEYS, "example", "correct"]]), "the outcomes record as they are"

    sizes = sorted(table["training samples"].unique())
    assert sizes[-1] == len(main.train) and sizes[0] >= len(main.train) // 2 and len(sizes) == 2
    assert len(table) == 2 * 2 * 1 * 2 and set(table["condition"]) == {CLEAN, gaussian_condition(0.05)}
    assert (table["test images"] == len(main.test)).all()
    assert table["accuracy"].between(0, 1).all()
    assert len(table) == per_scoring.ngroups, "one per-seed row per scoring"
    assert len(lines) == 2 and "data seed" in lines[0]

    seeds = dict(zip(table["training samples"], table["data seed"]))
    assert seeds[len(main.train)] == main.seed and seeds[sizes[0]] == size_seed(main.seed, sizes[0])
    assert len(list((tmp_path / "dataset").iterdir())) == 2, "one data set per size, none shared"
    assert len(list((tmp_path / "trained").iterdir())) == 2 * 2, "one trained model per size and kind"
    full_rows = table[(table["training samples"] == len(main.train)) & (table["model"] == "convnext")]
    assert (full_rows["training wall time (s)"] == full.metrics["wall_time_s"]).all(), "the full model is reused"
    predicted = predict(full.model, main.test.x, headline_mode("convnext", TINY_MODEL.sde), batch_size=64, seed=0)
    clean = full_rows.set_index("condition").loc[CLEAN]
    assert clean["accuracy"] == pytest.approx(float((predicted == main.test.y).float().mean())), "the share correct"

    smaller = load_dataset(config_for_training_size(TINY_DATA, sizes[0]), size_seed(main.seed, sizes[0]), store)
    shared = (smaller.train.x.flatten(1)[:, None] == main.test.x.flatten(1)[None]).all(-1)
    assert not shared.any(), "a test image of the main data set was trained on"


def synthetic_outcomes() -> pd.DataFrame:
    """Per-image outcomes of two sizes, both models, three seeds and both conditions, every seed on the same images."""
    rng = np.random.default_rng(0)
    rows = [{"training samples": n, "model": kind, "seed": seed, "condition": condition, "example": image,
             "correct": bool(rng.random() < (0.8 if kind == "nsde" else 0.6))}
            for n in (16, 32) for kind in ("convnext", "nsde") for seed in (0, 1, 2)
            for condition in (CLEAN, gaussian_condition(0.05)) for image in range(30)]
    return pd.DataFrame(rows)


def test_size_study_verdicts_cross_images_with_seeds_in_one_holm_family() -> None:
    outcomes = synthetic_outcomes()
    verdicts = size_study_verdicts(outcomes, gaussian_condition(0.05))

    assert set(verdicts.index) == {(claim, n) for claim in (NOISE_CLAIM, CLEAN_CLAIM) for n in (16, 32)}
    assert (verdicts["design"] == "seeds × images, crossed").all()
    assert (verdicts["n_seeds"] == 3).all() and (verdicts["family"] == SIZE_STUDY).all()
    assert (verdicts["role"] == "exploratory").all() and verdicts["p_holm"].notna().all()
    noisy = outcomes[(outcomes["condition"] == gaussian_condition(0.05)) & (outcomes["training samples"] == 16)]
    means = noisy.groupby("model")["correct"].mean()
    assert verdicts.loc[(NOISE_CLAIM, 16), "effect"] == pytest.approx(means["nsde"] - means["convnext"])
