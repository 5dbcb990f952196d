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


def stability_claim(per_seed: pd.DataFrame) -> tuple[pd.DataFrame, dict[float, Verdict]]:
    """C5 per perturbation level: mean log change per model with intervals over seeds, and a verdict.

    ``per_seed`` has one row per model (``"convnext"`` / ``"nsde"``), seed and level with the mean
    ``log_change`` over the explained inputs. The verdict tests the paper's direction, NSDE < ConvNeXt,
    on the paired per-seed means.
    """
    rows, verdicts = [], {}
    for level, at_level in per_seed.groupby("level"):
        by_model = at_level.pivot(index="seed", columns="model", values="log_change")
        verdicts[float(level)] = paired_verdict(by_model["nsde"], by_model["convnext"], direction="less")
        for kind in ("convnext", "nsde"):
            interval = mean_interval(by_model[kind])
            rows.append({"level": level, "model": kind, "mean log change": interval.mean, "95 % low": interval.low,
                         "95 % high": interval.high, "seeds": interval.n})
    table = pd.DataFrame(rows).set_index(["level", "model"])
    table["C5 (NSDE < ConvNeXt)"] = [verdicts[float(level)].label for level, _ in table.index]
    return table, verdicts


def abc_claim(per_seed: pd.DataFrame) -> tuple[pd.DataFrame, Verdict]:
    """C4: mean ABC of correct predictions per model with intervals over seeds, beside the paper's figures.

    ``per_seed`` has one row per model (``"convnext"`` / ``"nsde"``) and seed with ``abc_correct``
    (see :func:`abc_seed_summary`). The verdict tests the paper's direction, NSDE > ConvNeXt, on the
    paired per-seed means.
    """
    by_model = per_seed.pivot(index="seed", columns="model", values="abc_correct")
    table = pd.DataFrame(
        [
            interval_row(MODEL_LABELS["convnext"], by_model["convnext"], PAPER_VALUES["C4.convnext_abc_correct"]),
            interval_row(MODEL_LABELS["nsde"], by_model["nsde"], PAPER_VALUES["C4.nsde_abc_correct"]),
        ]
    ).set_index("model")
    return table, paired_verdict(by_model["nsde"], by_model["convnext"], direction="greater")
