"""What the claim modules share: the models compared, the families of exploratory verdicts, the models table."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .paper import PAPER_VALUES, get_claim
from .stats import Verdict, effect_verdict, mean_interval

#: The named families of exploratory rows: every verdict that is not a claim's primary comparison is in one.
C2_LEVELS, C2_STRUCTURED, C4_BUDGETS, C5_CONTROLS, SIZE_STUDY = (
    "C2 levels", "C2 structured noise", "C4 budgets", "C5 controls", "size study")

MODEL_LABELS = {"convnext": "ConvNeXt", "convnext_noise": "ConvNeXt + input noise", "nsde": "NSDE-ConvNeXt"}
#: The effect of C1, C4 and C5 compares these two models (values of the ``model`` column).
CONVNEXT, NSDE = "convnext", "nsde"


def models_table(outcomes: pd.DataFrame, rows: Mapping[str, tuple[str, float | None]], *, value: str,
                 model: str = "model") -> pd.DataFrame:
    """Per model (``rows``: model → label, paper's figure or None), the paper's figure beside the mean over seeds
    of per-seed means of ``value`` with its 95 % interval."""
    values = outcomes[value].astype(float)
    by_model = outcomes.assign(**{value: values}).groupby(["seed", model])[value].mean().unstack(model)
    table = [(label, paper, mean_interval(by_model[key].dropna())) for key, (label, paper) in rows.items()]
    return pd.DataFrame([{"model": label, "paper": paper, "this book (mean)": i.mean, "95 % low": i.low,
                          "95 % high": i.high, "seeds": i.n} for label, paper, i in table]).set_index("model")


def two_model_claim(outcomes: pd.DataFrame, claim_id: str, paper_key: str, claimed: str, other: str, *, value: str,
                    unit: str | None) -> tuple[pd.DataFrame, Verdict]:
    """A claim comparing ConvNeXt and the NSDE: each model's mean beside the paper's figure and the verdict on
    ``claimed − other``."""
    table = models_table(outcomes, {kind: (MODEL_LABELS[kind], PAPER_VALUES[f"{claim_id}.{kind}_{paper_key}"])
                                    for kind in (CONVNEXT, NSDE)}, value=value)
    verdict = effect_verdict(outcomes, claimed, other, get_claim(claim_id).reference, value=value, unit=unit,
                             comparison=f"{MODEL_LABELS[claimed]} − {MODEL_LABELS[other]}")
    return table, verdict
