"""The reference classifier: pooled features, a deterministic fit that beats chance, accuracy per SNR bin."""

from __future__ import annotations

import numpy as np
import torch

from nsdelib.data.dataset import DataConfig, build_dataset
from nsdelib.data.reference import accuracy_by_snr, logistic_baseline, pooled_features


def test_pooled_features_are_row_means_then_row_deviations() -> None:
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 1, 3, 4)
    features = pooled_features(x)
    assert features.shape == (2, 6)
    assert np.allclose(features[0, :3], [1.5, 5.5, 9.5])
    assert np.allclose(features[0, 3:], np.std([0, 1, 2, 3], ddof=1))


def test_reference_classifier_is_deterministic_and_beats_chance_on_clean_data() -> None:
    config = DataConfig.build(n_samples=320, image_rows=32, image_cols=32, snr_db_range=(15.0, 20.0))
    data = build_dataset(config, seed=0, progress=False)
    first, second = logistic_baseline(data), logistic_baseline(data)
    assert np.array_equal(first.predictions, second.predictions)
    assert first.accuracy > 3 / len(data.class_names)
    assert int(first.confusion.to_numpy().sum()) == len(data.test)
    assert first.accuracy == np.trace(first.confusion.to_numpy()) / len(data.test)


def test_accuracy_by_snr_groups_into_bins() -> None:
    snr = torch.tensor([-7.0, -6.0, 1.0, 3.0, 4.0])
    table = accuracy_by_snr(snr, np.array([1, 0, 1, 1, 0]), width_db=5.0)
    assert table["snr_db"].tolist() == [-7.5, 2.5]
    assert table["accuracy"].tolist() == [0.5, 2 / 3]
    assert table["samples"].tolist() == [2, 3]
