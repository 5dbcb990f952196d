"""A reference classifier: logistic regression on each row's mean and spread in time (chapter 1, "How hard is it?")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .dataset import SpectrogramData


def pooled_features(x: torch.Tensor) -> np.ndarray:
    """``[N, 1, F, T] -> [N, 2F]``: per frequency row, the mean and standard deviation over time."""
    rows = x.flatten(1, 2)
    return torch.cat([rows.mean(-1), rows.std(-1)], dim=1).numpy()


@dataclass(frozen=True)
class BaselineResult:
    """Test-set outcome of the reference classifier, with the fitted pipeline."""

    accuracy: float
    predictions: np.ndarray
    confusion: pd.DataFrame
    model: Pipeline


def logistic_baseline(data: SpectrogramData, inverse_regularisation: float = 0.1) -> BaselineResult:
    """Fit on the training split and score on the test split, on one BLAS thread (deterministic)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=inverse_regularisation, max_iter=2000))
    with threadpool_limits(limits=1):
        model.fit(pooled_features(data.train.x), data.train.y.numpy())
        predictions = model.predict(pooled_features(data.test.x))
    truth = data.test.y.numpy()
    labels = list(range(len(data.class_names)))
    confusion = pd.DataFrame(confusion_matrix(truth, predictions, labels=labels), index=data.class_names,
                             columns=data.class_names)
    return BaselineResult(float((predictions == truth).mean()), predictions, confusion, model)


def accuracy_by_snr(snr_db: torch.Tensor, correct: np.ndarray | torch.Tensor, width_db: float = 5.0) -> pd.DataFrame:
    """Accuracy within SNR bins of ``width_db``: one row per bin with its centre, accuracy and sample count."""
    snr = np.asarray(snr_db, dtype=float)
    hits = np.asarray(correct, dtype=float)
    lower = np.floor(snr / width_db) * width_db
    frame = pd.DataFrame({"snr_db": lower + width_db / 2, "correct": hits})
    return frame.groupby("snr_db")["correct"].agg(accuracy="mean", samples="size").reset_index()
