"""The learning rate of each model kind: the first seed's best validation accuracy over the profile's grid picks the
rate for all seeds; test data are never looked at (chapter 3, "The training rule")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..models.registry import ModelKind


def choose_learning_rate(grid: Mapping[float, Mapping[str, Any]]) -> float:
    """The rate whose run (its metrics) reached the best validation accuracy; a tie goes to the smaller rate."""
    return min(grid, key=lambda lr: (-grid[lr]["best_val_accuracy"], lr))


def learning_rate_table(grids: Mapping[ModelKind, Mapping[float, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per kind and rate: best validation accuracy, its epoch, epochs run, and whether the rule chose it."""
    rows = []
    for kind, grid in grids.items():
        chosen = choose_learning_rate(grid)
        for lr, metrics in sorted(grid.items()):
            rows.append({"model": kind, "learning rate": lr, "best val accuracy": metrics["best_val_accuracy"],
                         "best epoch": metrics["best_epoch"], "epochs run": metrics["epochs"], "chosen": lr == chosen})
    return pd.DataFrame(rows)
