"""The figures of chapters 6 and 7 draw what they are given: C5's arms, ABC against the budget, the detectors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from nsdelib.report.plotting import (
    abc_budget_figure,
    detector_figure,
    stability_arms_figure,
)


def test_stability_arms_figure_draws_every_arm_per_measure_and_marks_the_reported_ones() -> None:
    rows = [{"measure": measure, "level": level, "arm": arm, "reported": arm == "A", "mean": -1.0 - level,
             "low": -1.2, "high": -0.8}
            for measure in ("normalised", "literal") for level in (0.02, 0.1) for arm in ("A", "B")]
    fig = stability_arms_figure(pd.DataFrame(rows), ["A", "B", "absent"])
    assert [ax.get_title() for ax in fig.axes] == ["normalised measure", "literal measure"]
    labels = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert labels == ["A (reported)", "B"]
    plt.close(fig)


def test_abc_budget_figure_draws_curves_paper_lines_and_the_budget() -> None:
    rows = [{"images": images, "model": model, "m": m, "mean": value, "low": value - 0.1, "high": value + 0.2}
            for images in ("both correct", "own wrong") for model in ("a", "b")
            for m, value in ((1.0, 0.95), (10.0, 0.6), (100.0, 0.2))]
    fig = abc_budget_figure(pd.DataFrame(rows), ["a", "b"], {"a": "A", "b": "B"}, {"paper": 0.497}, 31.6, 1000)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:4] == ["A, both correct", "A, own wrong", "B, both correct", "B, own wrong"]
    assert "paper" in labels and "C4's budget, m = 31.6" in labels
    assert ax.get_xscale() == "log"
    assert np.allclose(ax.get_lines()[0].get_ydata(), [0.95, 0.6, 0.2])
    assert all(band.get_paths()[0].vertices[:, 1].max() <= 1 for band in ax.collections)  # bands clipped to [0, 1]
    plt.close(fig)


def test_detector_figure_has_a_column_per_model_and_a_line_per_score() -> None:
    coverage = pd.DataFrame([{"model": model, "score": score, "coverage": c, "risk": 0.1 * c}
                             for model in ("a", "b") for score in ("s1", "s2") for c in (0.5, 1.0)])
    reliability = pd.DataFrame([{"model": model, "score": "s1", "low": low, "high": low + 0.5, "count": 3,
                                 "accuracy": low + 0.2} for model in ("a", "b") for low in (0.0, 0.5)])
    fig = detector_figure(coverage, reliability, ["a", "b"], {"a": "A", "b": "B"})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["A", "B"]  # top row: risk–coverage, one column per model
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["s1", "s2"]
    assert np.allclose(fig.axes[2].get_lines()[0].get_ydata(), [0.2, 0.7])
    plt.close(fig)
