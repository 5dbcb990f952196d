"""What the paper (Brogan et al., MLSP 2024, arXiv 2409.01532) claims: the only numbers the book does not compute."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .stats import Reference

#: The paper's numbers, as fractions, for the verdicts the chapters compute.
PAPER_VALUES: dict[str, float] = {
    "C1.convnext_clean_accuracy": 0.8720,
    "C1.nsde_clean_accuracy": 0.8288,
    "C2.nsde_accuracy_at_noise": 0.8750,
    "C2.noise_intensity": 0.05,
    "C4.nsde_abc_correct": 0.599,
    "C4.convnext_abc_correct": 0.497,
}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, its figure, the effect judged (positive = claimed) and the reference it is judged
    against: the paper's figure where it gives one, else a smallest effect of interest (why: ``reason``)."""

    id: str
    statement: str
    paper_figure: str
    chapter: str
    effect: str
    reference: Reference
    reason: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "NSDE-ConvNeXt is slightly less accurate on clean data than ConvNeXt", "82.88 % vs 87.20 %", "3",
          "ConvNeXt − NSDE clean test accuracy (fraction)",
          Reference(PAPER_VALUES["C1.convnext_clean_accuracy"] - PAPER_VALUES["C1.nsde_clean_accuracy"],
                    "paper's figure")),
    Claim("C2", "NSDE keeps higher accuracy under Gaussian input noise", "up to 87.50 % at noise intensity 0.05", "4",
          "NSDE − ConvNeXt test accuracy under Gaussian noise of std 0.05 (fraction)",
          Reference(0.02, "smallest effect of interest"),
          "The paper gives no ConvNeXt accuracy at std 0.05. An advantage under noise of less than 2 points is under "
          "half of the 4.32 points of clean accuracy the NSDE costs (C1), too little to pay for it."),
    Claim("C3", "NSDE keeps some accuracy under high-L2-norm APGD-CE attacks where ConvNeXt collapses", "curve only",
          "5", "NSDE − ConvNeXt robust accuracy (APGD-CE + EOT, L2) at the ε where ConvNeXt collapses (fraction)",
          Reference(0.05, "smallest effect of interest"),
          "The paper shows only a curve. The test point is where ConvNeXt falls to 5 % robust accuracy and counts as "
          "collapsed; an NSDE ahead by less than that same margin is not clearly keeping \"some accuracy\"."),
    Claim("C4", "Attribution-Based Confidence (ABC) is higher for NSDE's correct predictions", "0.599 vs 0.497", "7",
          "NSDE − ConvNeXt mean ABC on test images both models classify correctly",
          Reference(PAPER_VALUES["C4.nsde_abc_correct"] - PAPER_VALUES["C4.convnext_abc_correct"], "paper's figure")),
    Claim("C5", "The log of the summed change of attributions under perturbation is smaller for NSDEs", "figure only",
          "6", "ConvNeXt − NSDE mean log summed attribution change (natural log), per perturbation level",
          Reference(0.1, "smallest effect of interest"),
          "The paper shows only a figure. 0.1 in natural log is a change of the attributions about 10 % smaller "
          "(e^−0.1 ≈ 0.90); a smaller difference would not make an explanation noticeably more stable for a reader."),
)


def get_claim(claim_id: str) -> Claim:
    """The claim with id ``claim_id``."""
    for claim in CLAIMS:
        if claim.id == claim_id:
            return claim
    raise KeyError(f"no claim {claim_id!r}; the claims are {[c.id for c in CLAIMS]}")


def claims_table() -> pd.DataFrame:
    """The claims as a table indexed by id, for the introduction."""
    return pd.DataFrame([
        {"id": c.id, "claim": c.statement, "paper's figure": c.paper_figure, "tested in chapter": c.chapter,
         "effect judged (positive = claimed)": c.effect, "reference": f"{c.reference.value:+.4g} ({c.reference.kind})",
         "why this reference": c.reason or "the paper's own figures"}
        for c in CLAIMS
    ]).set_index("id")

#: The clean-accuracy band, around the paper's ConvNeXt, that the ``paper`` profile's data difficulty aims at.
CALIBRATION_BAND: tuple[float, float] = (0.80, 0.92)

#: The paper's side of the setup (arXiv 2409.01532): what it reports, "not reported" for what it leaves open.
PAPER_SETUP: dict[str, str] = {
    "data": "private NILM data set: simulated harmonic signals injected into a real building, 10,000 STFT "
            "spectrograms; classes, sampling rate and STFT settings not reported",
    "image size": "not reported",
    "architecture": "ConvNeXt (variant not reported); the NSDE injects noise into its residual connections",
    "training": "not reported",
    "σ and noise shape": "σ not reported; \"appropriately shaped Brownian noise\"",
    "test-time ensemble": "not reported",
    "control model": "none",
    "attack protocol": "APGD-CE in the L2 norm, accuracy against ε; iterations, restarts and EOT not reported",
    "sample sizes": "not reported",
    "seeds": "a single run per model",
}
