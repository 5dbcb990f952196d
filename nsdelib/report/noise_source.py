"""Where the NSDE's robustness comes from: noise in training × noise at test time (chapter 4).

A 2 × 2 design on the same images, seeds and input noise: ConvNeXt (no internal noise anywhere),
ConvNeXt with the NSDE's noise injected at test time only (``models.registry.with_injected_noise``),
the NSDE with its noise switched off (noise in training only), and the NSDE as reported (both).
Three effects, each paired per image within seed and judged by the book's rule against C2's
smallest effect of interest, at every Gaussian std of the sweep (level 0: clean inputs):

* the weights: what noisy training did, test-time noise off in both (NSDE off − ConvNeXt);
* test-time noise on the NSDE (NSDE ensemble − NSDE off);
* test-time noise on ConvNeXt (ConvNeXt + test-time noise − ConvNeXt).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..models.inference import DETERMINISTIC_LABELS, injected_noise_modes, nsde_mode
from ..models.nsde import SDEConfig
from .paper import get_claim
from .stats import effect_verdicts, holm_family, verdicts_frame

#: The Holm family of the design's verdicts (exploratory: not a claim of the paper).
DESIGN_FAMILY = "internal noise 2 × 2"
#: The input conditions judged: clean, and the Gaussian stds of the frontier (C2's 0.05, then 0.2 and 0.5).
DESIGN_LEVELS = (0.0, 0.05, 0.2, 0.5)


def design_cells(sde: SDEConfig) -> dict[tuple[str, str], str]:
    """The evaluation-mode label of each cell, by (noise in training, noise at test time)."""
    ensemble = nsde_mode("ensemble", sde.ensemble_size).name
    return {("no", "no"): DETERMINISTIC_LABELS["convnext"], ("no", "yes"): injected_noise_modes(sde)[1].name,
            ("yes", "no"): nsde_mode("off", sde.ensemble_size).name, ("yes", "yes"): ensemble}


def design_effects(sde: SDEConfig) -> dict[str, tuple[str, str]]:
    """Each effect of the design by name: (the cell with the noise, the cell without)."""
    cells = design_cells(sde)
    return {"noise in training (test-time noise off)": (cells["yes", "no"], cells["no", "no"]),
            "test-time noise, NSDE": (cells["yes", "yes"], cells["yes", "no"]),
            "test-time noise, ConvNeXt": (cells["no", "yes"], cells["no", "no"])}


def design_table(sweep: pd.DataFrame, sde: SDEConfig) -> pd.DataFrame:
    """Mean accuracy of each cell under clean inputs and every Gaussian std: rows (training, test time), columns std.

    ``sweep`` is the noise sweep's per-image table of the design's models (columns ``noise``, ``level``,
    ``mode``, ``seed``, ``example``, ``correct``).
    """
    gaussian = sweep[sweep["noise"] == "gaussian"]
    rows = {}
    for (training, test), mode in design_cells(sde).items():
        cell = gaussian[gaussian["mode"] == mode]
        rows[(training, test)] = cell.groupby("level")["correct"].mean()
    table = pd.DataFrame(rows).T
    table.index.names = ["noise in training", "noise at test time"]
    table.columns.name = "Gaussian std (0: clean)"
    return table


def design_verdicts(sweep: pd.DataFrame, sde: SDEConfig, levels: Sequence[float] = DESIGN_LEVELS) -> pd.DataFrame:
    """Every effect of the design at each of ``levels`` (Gaussian stds; 0: clean), one Holm family
    (:data:`DESIGN_FAMILY`)."""
    gaussian = sweep[(sweep["noise"] == "gaussian") & sweep["level"].isin(levels)]
    reference = get_claim("C2").reference
    verdicts = {(name, level): verdict for name, (a, b) in design_effects(sde).items()
                for level, verdict in effect_verdicts(gaussian, "level", a, b, reference, value="correct",
                                                      model="mode").items()}
    return verdicts_frame(holm_family(verdicts, DESIGN_FAMILY), ["effect of", "Gaussian std"])
