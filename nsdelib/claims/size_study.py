"""The training-set-size study's verdicts (chapter 8): claims C1 and C2 judged again at every training-set size."""

from __future__ import annotations

import pandas as pd

from ..evaluation.data_size import CLEAN
from ..report.claims import CONVNEXT, NSDE, SIZE_STUDY
from ..report.paper import get_claim
from ..report.stats import effect_verdicts, holm_family, verdicts_frame

NOISE_CLAIM, CLEAN_CLAIM = "C2: NSDE − ConvNeXt under noise", "C1: ConvNeXt − NSDE, clean"


def size_study_verdicts(outcomes: pd.DataFrame, noisy: str) -> pd.DataFrame:
    """The verdict per claim and training-set size from ``data_size_study``'s per-image outcomes, Holm-adjusted in the
    size-study family; images are crossed with seeds, since every seed is scored on the same test split."""
    by_claim = {
        NOISE_CLAIM: effect_verdicts(outcomes[outcomes["condition"] == noisy], "training samples", NSDE, CONVNEXT,
                                     get_claim("C2").reference, value="correct", unit="example",
                                     comparison="NSDE − ConvNeXt"),
        CLEAN_CLAIM: effect_verdicts(outcomes[outcomes["condition"] == CLEAN], "training samples", CONVNEXT, NSDE,
                                     get_claim("C1").reference, value="correct", unit="example",
                                     comparison="ConvNeXt − NSDE"),
    }
    verdicts = {(claim, n): verdict for claim, by_size in by_claim.items() for n, verdict in by_size.items()}
    return verdicts_frame(holm_family(verdicts, SIZE_STUDY), ["claim", "training samples"])
