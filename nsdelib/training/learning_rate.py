"""The learning rate of each model kind: the first seed trains at every rate of the profile's grid and the best
validation accuracy picks the rate for all seeds; test data are never looked at (chapter 3, "The training rule").
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..models.registry import ModelKind
from .trainer import TrainedModel


def choose_learning_rate(runs: Mapping[float, TrainedModel]) -> float:
    """The rate whose run reached the best validation accuracy; a tie goes to the smaller rate."""
    return min(runs, key=lambda lr: (-runs[lr].metrics["best_val_accuracy"], lr))


def learning_rate_table(grids: Mapping[ModelKind, Mapping[float, TrainedModel]]) -> pd.DataFrame:
    """One row per kind and rate: best validation accuracy, its epoch, epochs run, and whether the rule chose it."""
    rows = []
    for kind, runs in grids.items():
        chosen = choose_learning_rate(runs)
        for lr, run in sorted(runs.items()):
            rows.append({"model": kind, "learning rate": lr, "best val accuracy": run.metrics["best_val_accuracy"],
                         "best epoch": run.metrics["best_epoch"], "epochs run": run.metrics["epochs"],
                         "chosen": lr == chosen})
    return pd.DataFrame(rows)
