"""Paper-versus-book tables and computed verdicts for the paper's claims (``nsdelib.paper``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .paper import PAPER_VALUES
from .stats import Verdict, mean_interval, paired_verdict, paired_verdicts

MODEL_LABELS = {"convnext": "ConvNeXt", "convnext_noise": "ConvNeXt + input noise", "nsde": "NSDE-ConvNeXt"}


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


def gaussian_noise_verdicts(sweep: pd.DataFrame, nsde_mode: str, baseline_mode: str) -> pd.DataFrame:
    """C2 at every Gaussian noise level: the paired per-seed verdict on "NSDE more accurate than ConvNeXt".

    ``sweep`` holds the rows of ``evaluation.input_noise.noise_sweep`` for both models with a ``seed``
    column; one row per level with the mean difference, its interval and the verdict.
    """
    return paired_verdicts(sweep[sweep["noise"] == "gaussian"], ["level"], a=nsde_mode, b=baseline_mode)


@dataclass(frozen=True)
class AdversarialClaim:
    """C3 at the L2 budget where the baseline collapses: verdicts against each attack and what they mean."""

    eps_star: float | None
    verdicts: dict[str, pd.DataFrame]
    label: str
    label_without_eot: str
    note: str


def adversarial_claim(
    table: pd.DataFrame, curves: pd.DataFrame, nsde_mode: str, baseline_mode: str, threshold: float = 0.05
) -> AdversarialClaim:
    """C3: is the NSDE more accurate than the collapsed baseline at the smallest L2 ε where the baseline's
    mean robust accuracy is at most ``threshold``? Judged per attack (with and without EOT) on paired seeds.

    ``table`` is the attack sweeps of both models with a ``seed`` column, ``curves`` their
    ``seed_intervals`` over ``["norm", "attack", "mode", "eps"]``. The headline is the EOT attack.
    """
    l2 = curves[curves["norm"] == "L2"]
    eps_star = collapse_eps(l2[l2["mode"] == baseline_mode], threshold)
    if eps_star is None:
        note = (f"The baseline never fell to {threshold:.0%} within this L2 sweep, so the claim has no test point "
                "here: extend the sweep to larger ε.")
        return AdversarialClaim(None, {}, "inconclusive", "inconclusive", note)
    at_star = table[(table["norm"] == "L2") & (table["eps"] == eps_star)]
    verdicts = {
        attack: paired_verdicts(at_star[(at_star["mode"] == baseline_mode) | (at_star["attack"] == attack)], ["eps"],
                                a=nsde_mode, b=baseline_mode)
        for attack in ("APGD-CE + EOT", "APGD-CE")
    }
    label, without = (verdicts[a].iloc[0]["verdict"] for a in ("APGD-CE + EOT", "APGD-CE"))
    if without == "holds" and label != "holds":
        note = ("The NSDE looks robust only without EOT. Against the EOT attack its advantage is not resolved, so the "
                "robustness seen without EOT is the noise masking the gradient, not robustness.")
    elif label == "holds":
        note = "The NSDE's advantage survives the EOT attack: it is not an artefact of masked gradients."
    else:
        note = "Neither attack shows an advantage for the NSDE that the seeds can resolve at this ε."
    return AdversarialClaim(eps_star, verdicts, label, without, note)


def collapse_eps(curve: pd.DataFrame, threshold: float = 0.05) -> float | None:
    """The smallest ε > 0 at which a robust-accuracy curve (columns ``eps``, ``mean``) is at most ``threshold``.

    None if the model never collapses within the sweep.
    """
    collapsed = curve[(curve["eps"] > 0) & (curve["mean"] <= threshold)]
    return float(collapsed["eps"].min()) if len(collapsed) else None


ABC_QUANTITIES = {"abc_correct": "mean ABC, correct", "abc_incorrect": "mean ABC, wrong",
                  "auroc_wrong": "AUROC, wrong vs right"}


def abc_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds with 95 % intervals of ABC's per-seed summaries, per variant, model and quantity.

    ``per_seed`` has ``variant``, ``model`` and ``seed`` columns and the columns of ``ABC_QUANTITIES``
    (``evaluation.abc.abc_seed_summary``); seeds where a quantity is undefined (no wrong prediction)
    are left out of it, and a quantity undefined for every seed gets NaN with 0 seeds.
    """
    rows = []
    for (variant, kind), group in per_seed.groupby(["variant", "model"], sort=False):
        for column, quantity in ABC_QUANTITIES.items():
            values = group[column].dropna()
            interval = mean_interval(values) if len(values) else None
            rows.append({"variant": variant, "model": MODEL_LABELS[kind], "quantity": quantity,
                         "mean": interval.mean if interval else np.nan, "95 % low": interval.low if interval else np.nan,
                         "95 % high": interval.high if interval else np.nan, "seeds": interval.n if interval else 0})
    return pd.DataFrame(rows).set_index(["variant", "model", "quantity"])
