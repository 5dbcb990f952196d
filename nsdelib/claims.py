"""Paper-versus-book tables and computed verdicts for the paper's claims (``nsdelib.paper``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from .paper import PAPER_VALUES
from .stats import Verdict, mean_interval, paired_verdict

MODEL_LABELS = {"convnext": "ConvNeXt", "nsde": "NSDE-ConvNeXt"}


def interval_row(label: str, values: Sequence[float], paper: float | None) -> dict[str, object]:
    """One table row: the paper's figure and this book's mean with its 95 % interval over seeds."""
    interval = mean_interval(values)
    return {
        "model": label,
        "paper": paper,
        "this book (mean)": interval.mean,
        "95 % low": interval.low,
        "95 % high": interval.high,
        "seeds": interval.n,
    }


def clean_accuracy_claim(accuracy: Mapping[str, Sequence[float]]) -> tuple[pd.DataFrame, Verdict]:
    """C1: clean test accuracy per model (per-seed lists) against the paper, and whether NSDE is below ConvNeXt.

    The verdict tests the paper's direction, ConvNeXt > NSDE, on paired per-seed accuracies.
    """
    table = pd.DataFrame(
        [
            interval_row(MODEL_LABELS["convnext"], accuracy["convnext"], PAPER_VALUES["C1.convnext_clean_accuracy"]),
            interval_row(MODEL_LABELS["nsde"], accuracy["nsde"], PAPER_VALUES["C1.nsde_clean_accuracy"]),
        ]
    ).set_index("model")
    return table, paired_verdict(accuracy["convnext"], accuracy["nsde"], direction="greater")
