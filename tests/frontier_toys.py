"""Recorded frontier points for the matched-accuracy tests: rows as ``load_frontier`` gives them, each named by its
record, and per-image outcomes whose means are the rows' figures (``n_images`` images, the same for every point)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MEASURES = ("gaussian_0.05", "apgd_l2_1")


def frontier_seed(seed: int, nsde_clean: float, nsde_gauss: float, control: list[tuple[float, float, float]]
                  ) -> list[dict[str, object]]:
    """One seed's frontier rows: the NSDE at σ 0.43 (clean = its ensemble) and the control at (std, clean, robust)."""
    rows = [{"kind": "nsde", "seed": seed, "sigma": 0.43, "input_noise_std": None, "clean": nsde_clean,
             "clean_off": nsde_clean + 0.01, "gaussian_0.05": nsde_gauss, "apgd_l2_1": 0.2,
             "record": f"frontier/nsde-sigma0.43-seed{seed}"}]
    rows += [{"kind": "convnext_noise", "seed": seed, "sigma": None, "input_noise_std": std, "clean": clean,
              "clean_off": clean, "gaussian_0.05": robust, "apgd_l2_1": 0.1,
              "record": f"frontier/convnext_noise-std{std:g}-seed{seed}"} for std, clean, robust in control]
    return rows


def frontier_outcomes(points: pd.DataFrame, rng: np.random.Generator, n_images: int = 200) -> pd.DataFrame:
    """Per record and measure, ``round(value · n_images)`` correct images placed at random."""
    frames = []
    for row in points.to_dict(orient="records"):
        for measure in MEASURES:
            correct = np.zeros(n_images, dtype=bool)
            correct[rng.permutation(n_images)[: round(row[measure] * n_images)]] = True
            frames.append(pd.DataFrame({"record": row["record"], "measure": measure, "example": range(n_images),
                                        "correct": correct}))
    return pd.concat(frames, ignore_index=True)
