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


def test_gaussian_noise_curves_draw_every_mode_against_std_and_snr_with_the_paper_star() -> None:
    from nsdelib.report.plotting import gaussian_noise_curves

    rows = [{"noise": noise, "level": level, "image_snr_db": snr, "mode": mode, "seed": seed,
             "accuracy": 0.9 - level - 0.1 * (mode == "B") + 0.01 * seed}
            for noise in ("gaussian", "impulsive") for level, snr in ((0.0, np.inf), (0.1, 10.0), (0.5, 0.0))
            for mode in ("A", "B") for seed in range(3)]
    fig = gaussian_noise_curves(pd.DataFrame(rows), chance=0.125, paper_point=(0.05, 0.8), title="t")
    std_axis, snr_axis = fig.axes
    assert [line.get_label() for line in std_axis.get_lines()] == ["A", "B", "chance"]
    assert np.allclose(std_axis.get_lines()[0].get_ydata(), [0.91, 0.81, 0.41])  # mean over seeds, Gaussian only
    assert sorted(snr_axis.get_lines()[1].get_xdata()) == [0.0, 10.0], "the clean point (no finite SNR) is left out"
    assert std_axis.collections[-1].get_offsets().tolist() == [[0.05, 0.8]]
    plt.close(fig)


def test_robust_accuracy_curves_start_at_the_clean_accuracy_with_one_panel_per_norm() -> None:
    from nsdelib.report.plotting import robust_accuracy_curves

    rows = [{"protocol": protocol, "norm": norm, "model": model, "mode": model, "attack": attack, "eps": eps,
             "seed": seed, "accuracy": 0.9 if attack == "clean" else 0.5 - eps / 10}
            for protocol in ("sweep", "full") for norm in ("L2", "Linf") for model in ("M", "N") for seed in range(2)
            for attack, eps in (("clean", 0.0), ("APGD-CE", 1.0), ("APGD-CE", 2.0), ("random noise", 1.0))]
    fig = robust_accuracy_curves(pd.DataFrame(rows), title="t")
    assert [ax.get_title() for ax in fig.axes] == ["L2", "Linf"]
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"M: APGD-CE", "M: random noise", "N: APGD-CE", "N: random noise"}
    assert np.allclose(lines["M: APGD-CE"].get_xdata(), [0.0, 1.0, 2.0])
    assert np.allclose(lines["M: APGD-CE"].get_ydata(), [0.9, 0.4, 0.3])
    assert lines["N: random noise"].get_linestyle() == ":"
    plt.close(fig)


def test_training_curves_show_loss_and_validation_accuracy_per_model() -> None:
    from nsdelib.report.plotting import training_curves

    curves = pd.DataFrame([{"epoch": e, "train_loss": 1 / e, "val_accuracy": 1 - 1 / (e + 1), "model": m, "seed": s}
                           for e in range(1, 4) for m in ("ConvNeXt", "NSDE") for s in range(2)])
    fig = training_curves(curves, "t")
    assert [ax.get_ylabel() for ax in fig.axes] == ["training loss (cross-entropy)", "validation accuracy"]
    assert {t.get_text() for t in fig.axes[1].get_legend().get_texts()} == {"ConvNeXt", "NSDE"}
    plt.close(fig)


def test_the_frontier_figure_draws_the_control_line_from_convnext_at_std_0_in_std_order() -> None:
    from frontier_toys import frontier_seed

    from nsdelib.claims.c2_noise import control_line
    from nsdelib.report.plotting import clean_robust_frontier

    rows = frontier_seed(0, 0.88, 0.8, [(0.1, 0.91, 0.8), (0.4, 0.80, 0.85)])
    rows.append({"kind": "convnext", "seed": 0, "sigma": None, "input_noise_std": None, "clean": 0.90,
                 "clean_off": 0.90, "gaussian_0.05": 0.6, "apgd_l2_1": 0.05, "record": "frontier/convnext-seed0"})
    points = pd.DataFrame(rows)
    fig = clean_robust_frontier(points, ["gaussian_0.05"], control_line(points))
    control = next(bars.lines[0] for bars in fig.axes[0].containers
                   if bars.get_label().startswith("ConvNeXt + input noise"))
    assert np.allclose(control.get_xdata(), [0.90, 0.91, 0.80]) and np.allclose(control.get_ydata(), [0.6, 0.8, 0.85])
    assert [text.get_text() for text in fig.axes[0].texts][1:4] == ["0", "0.1", "0.4"]
    plt.close(fig)
