"""What the paper claims: the only numbers in the book that are not computed by it.

Brogan et al. (MLSP 2024, arXiv 2409.01532) report single runs on a private data set. These
claims are what every chapter compares its freshly computed results against.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, with the figure the paper gives for it (if any)."""

    id: str
    statement: str
    paper_figure: str
    chapter: str


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "NSDE-ConvNeXt is slightly less accurate on clean data than ConvNeXt", "82.88 % vs 87.20 %", "3"),
    Claim("C2", "NSDE keeps higher accuracy under Gaussian input noise", "up to 87.50 % at noise intensity 0.05", "4"),
    Claim("C3", "NSDE keeps some accuracy under high-L2-norm APGD-CE attacks where ConvNeXt collapses", "curve only", "5"),
    Claim("C4", "Attribution-Based Confidence (ABC) is higher for NSDE's correct predictions", "0.599 vs 0.497", "7"),
    Claim("C5", "The log of the summed change of attributions under perturbation is smaller for NSDEs", "figure only", "6"),
)

#: The paper's numbers, as fractions, for the verdicts the chapters compute.
PAPER_VALUES: dict[str, float] = {
    "C1.convnext_clean_accuracy": 0.8720,
    "C1.nsde_clean_accuracy": 0.8288,
    "C2.nsde_accuracy_at_noise": 0.8750,
    "C2.noise_intensity": 0.05,
    "C4.nsde_abc_correct": 0.599,
    "C4.convnext_abc_correct": 0.497,
}


def claims_table() -> pd.DataFrame:
    """The claims as a table indexed by id, for display in the book."""
    return pd.DataFrame([c.__dict__ for c in CLAIMS]).set_index("id").rename(
        columns={"statement": "claim", "paper_figure": "paper's figure", "chapter": "tested in chapter"}
    )

#: Clean-accuracy band of the paper's ConvNeXt (87.20 %) that our data's difficulty is calibrated to
#: at the ``paper`` profile: a task both models solve perfectly cannot show a robustness difference.
CALIBRATION_BAND: tuple[float, float] = (0.80, 0.92)
