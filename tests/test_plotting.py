"""The shared figure helpers draw what they are given, in a fixed order."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nsdelib.report.plotting import accuracy_curves  # noqa: E402


def test_accuracy_curves_draw_one_line_per_mode_in_order_with_clipped_bands() -> None:
    curves = pd.DataFrame({
        "mode": ["B", "B", "A", "A"], "level": [0.1, 0.0, 0.0, 0.1],
        "mean": [0.5, 0.9, 0.8, 0.4], "low": [0.3, 0.7, 0.6, -0.2], "high": [0.7, 1.3, 1.0, 0.6],
    })
    fig, ax = plt.subplots()
    accuracy_curves(ax, curves, "level", order=["A", "B"], chance=0.25)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["A", "B", "chance"]
    assert np.allclose(lines[0].get_ydata(), [0.8, 0.4]) and np.allclose(lines[1].get_xdata(), [0.0, 0.1])
    bands = [c.get_paths()[0].vertices[:, 1] for c in ax.collections]
    assert all(b.min() >= 0 and b.max() <= 1 for b in bands)
    assert lines[2].get_ydata()[0] == 0.25
    plt.close(fig)
