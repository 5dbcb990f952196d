"""Claim C1, the NSDE's clean-accuracy cost: per-image outcomes, the verdict and one pass's cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from ..evaluation.sweeps import per_image_outcomes
from ..models.inference import headline_mode
from ..models.nsde import SDEConfig
from ..report.claims import CONVNEXT, NSDE, two_model_claim
from ..report.stats import Interval, Verdict, mean_interval
from ..training.trainer import TrainedModel


def clean_outcomes(runs: Mapping[str, Sequence[TrainedModel]], x: torch.Tensor, y: torch.Tensor, sde: SDEConfig,
                   batch_size: int) -> pd.DataFrame:
    """Whether each model (in its headline mode) classifies each test image correctly, per kind and seed."""
    return pd.concat([per_image_outcomes(run.model, x, y, (headline_mode(kind, sde),), batch_size=batch_size,
                                         seed=run.seed).assign(model=kind, seed=run.seed)
                      for kind, kind_runs in runs.items() for run in kind_runs], ignore_index=True)


def clean_accuracy_claim(outcomes: pd.DataFrame, *, value: str = "correct", unit: str | None = "example"
                         ) -> tuple[pd.DataFrame, Verdict]:
    """C1: both models' clean accuracy against the paper's and the verdict on ConvNeXt − NSDE."""
    return two_model_claim(outcomes, "C1", "clean_accuracy", CONVNEXT, NSDE, value=value, unit=unit)


def single_pass_cost(runs_table: pd.DataFrame) -> Interval:
    """ConvNeXt's clean accuracy minus one stochastic pass of the NSDE's, over seeds (what σ was tuned to)."""
    by_seed = runs_table.set_index("seed")
    convnext, nsde = by_seed[by_seed["model"] == CONVNEXT], by_seed[by_seed["model"] == NSDE]
    return mean_interval(convnext["accuracy"] - nsde["accuracy, noise single"])
