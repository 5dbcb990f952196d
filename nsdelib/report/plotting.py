"""The chapters' figures: spectrograms on their physical axes (time in ms, frequency in kHz) and result curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from .stats import seed_intervals


def _edges(centres: np.ndarray) -> tuple[float, float]:
    """Outer edges of evenly spaced cells given their centres."""
    step = (centres[-1] - centres[0]) / max(len(centres) - 1, 1)
    return float(centres[0] - step / 2), float(centres[-1] + step / 2)


def _mean_line(ax: Axes, line: pd.DataFrame, x: str, colour: Any, style: str = "-", band: float = 0.2,
               **plot_kw: Any) -> None:
    """An accuracy-like curve's ``mean`` against ``x`` with its 95 % band (``low``, ``high``, clipped to [0, 1]) of
    opacity ``band`` (0: none)."""
    ax.plot(line[x], line["mean"], style, color=colour, **plot_kw)
    if band:
        ax.fill_between(line[x], line["low"].clip(0, 1), line["high"].clip(0, 1), color=colour, alpha=band, linewidth=0)


def _legend_outside(ax: Axes) -> None:
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5))


def show_spectrogram(ax: Axes, image: torch.Tensor | np.ndarray, freqs_hz: torch.Tensor | np.ndarray,
                     times_s: torch.Tensor | np.ndarray, title: str | None = None, **imshow_kw: Any) -> AxesImage:
    """Draw one ``[F, T]`` (or ``[1, F, T]``) image on ``ax`` (``magma`` on [0, 1] unless ``imshow_kw`` says)."""
    data = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=float)
    extent = (*_edges(np.asarray(times_s, dtype=float) * 1e3), *_edges(np.asarray(freqs_hz, dtype=float) / 1e3))
    scale = {} if "norm" in imshow_kw else {"vmin": 0.0, "vmax": 1.0}
    drawn = ax.imshow(data.reshape(data.shape[-2:]), origin="lower", extent=extent,
                      **{"cmap": "magma", "interpolation": "nearest", "aspect": "auto", **scale, **imshow_kw})
    ax.grid(False)
    ax.set(xlabel="time (ms)", ylabel="frequency (kHz)")
    if title is not None:
        ax.set_title(title)
    return drawn


def spectrogram_grid(images: Sequence[Sequence[torch.Tensor]], freqs_hz: torch.Tensor, times_s: torch.Tensor,
                     row_labels: Sequence[str], titles: Sequence[Sequence[str]] | None = None,
                     colorbar_label: str = "image value", panel_size: float = 1.7, **imshow_kw: Any) -> Figure:
    """A grid of images, one row per label, with shared axes and one colorbar (laid out by hand: matplotlib's
    layout engines take seconds for a few dozen panels)."""
    n_rows, n_cols = len(images), max(len(row) for row in images)
    width, height = panel_size * n_cols + 2.2, panel_size * n_rows + 0.8
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(width, height), sharex=True, sharey=True, squeeze=False,
        gridspec_kw={"left": 1.6 / width, "right": 1 - 0.9 / width, "bottom": 0.6 / height, "top": 1 - 0.3 / height,
                     "wspace": 0.08, "hspace": 0.35},
    )
    drawn = None
    for r, row in enumerate(images):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(row):
                ax.set_axis_off()
                continue
            drawn = show_spectrogram(ax, row[c], freqs_hz, times_s, title=titles[r][c] if titles else None, **imshow_kw)
            ax.set(xlabel="time (ms)" if r == n_rows - 1 else "",
                   ylabel=f"{row_labels[r]}\nfrequency (kHz)" if c == 0 else "")
            ax.title.set_fontsize("small")
    if drawn is not None:
        bar = fig.add_axes((1 - 0.7 / width, 0.3, 0.15 / width, 0.4))
        fig.colorbar(drawn, cax=bar, label=colorbar_label)
    return fig


def accuracy_curves(ax: Axes, curves: pd.DataFrame, x: str, order: Sequence[str], chance: float | None = None) -> None:
    """Mean accuracy (``seed_intervals`` rows) with its 95 % band against ``x``, one line per ``mode`` in ``order``."""
    for name, colour in zip(order, sns.color_palette(n_colors=len(order))):
        line = curves[curves["mode"] == name].sort_values(x)
        _mean_line(ax, line, x, colour, marker="o", label=name)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", label="chance")


def calibration_frontier(points: pd.DataFrame, target_cost: float, chosen: dict[str, float | None]) -> Figure:
    """The σ sweep's points: clean accuracy, flip rate and robustness against σ per diffusion and noise shape."""
    nsde = points[points["kind"] == "nsde"].assign(noise=lambda d: d["diffusion"] + ", " + d["noise_shape"])
    reference = float(points.loc[points["kind"] == "convnext", "clean_off"].iloc[0])
    robust = [c for c in points.columns if c.startswith(("gaussian_", "apgd_"))]
    titles = {"gaussian": "accuracy, Gaussian input noise std", "apgd_l2": "robust accuracy, APGD-L2 ε ="}
    panels = [("clean_single", "clean accuracy, one pass"), ("clean_ensemble", "clean accuracy, ensemble"),
              ("flip_rate", "flip rate (two passes disagree)")]
    panels += [(c, f"{titles[c.rsplit('_', 1)[0]]} {c.rsplit('_', 1)[1]}") for c in robust]
    rows = -(-len(panels) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(4.2 * 3, 3.3 * rows), sharex=True, squeeze=False)
    sigmas = sorted(nsde["sigma"].unique())
    for ax, (column, title) in zip(axes.flat, panels):
        sns.lineplot(data=nsde, x="sigma", y=column, hue="noise", marker="o", ax=ax, legend=ax is axes.flat[0])
        if column.startswith("clean"):
            ax.axhline(reference, color="black", linewidth=1, label="ConvNeXt")
            ax.axhline(reference - target_cost, color="grey", linestyle="--", linewidth=1, label="paper's cost")
        if chosen.get("sigma") is not None:
            ax.axvline(chosen["sigma"], color="grey", linestyle=":", linewidth=1)
        ax.set(xscale="log", xlabel="σ", ylabel="", title=title)
        ax.set_xticks(sigmas, [f"{sigma:g}" for sigma in sigmas], minor=False)
        ax.minorticks_off()
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def training_curves(curves: pd.DataFrame, title: str) -> Figure:
    """Training loss and validation accuracy per epoch, mean ± s.d. over seeds, one line per ``model``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(data=curves, x="epoch", y="train_loss", hue="model", errorbar="sd", ax=axes[0])
    sns.lineplot(data=curves, x="epoch", y="val_accuracy", hue="model", errorbar="sd", ax=axes[1])
    axes[0].set(ylabel="training loss (cross-entropy)", title="Training loss")
    axes[1].set(ylabel="validation accuracy", title="Validation accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def gaussian_noise_curves(accuracy: pd.DataFrame, chance: float, paper_point: tuple[float, float], title: str
                          ) -> Figure:
    """C2's figure: accuracy per mode against the Gaussian noise std and the image SNR, the paper's point a star."""
    gaussian = accuracy[accuracy["noise"] == "gaussian"]
    curves = seed_intervals(gaussian, ["level", "mode"]).merge(
        gaussian.groupby("level", as_index=False)["image_snr_db"].mean(), on="level")
    order = list(dict.fromkeys(gaussian["mode"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    accuracy_curves(axes[0], curves, "level", order, chance)
    axes[0].scatter([paper_point[0]], [paper_point[1]], marker="*", s=160, color="black", zorder=5, label="paper, NSDE")
    axes[0].set(xlabel="Gaussian noise std (spectrogram scale [0, 1])", ylabel="test accuracy",
                title="Accuracy against noise std", ylim=(0, 1.02))
    axes[0].set_xscale("symlog", linthresh=float(curves.loc[curves["level"] > 0, "level"].min()))
    accuracy_curves(axes[1], curves[curves["level"] > 0], "image_snr_db", order, chance)
    axes[1].invert_xaxis()
    axes[1].set(xlabel="image SNR (dB), noise growing to the right", ylabel="test accuracy",
                title="The same, against SNR", ylim=(0, 1.02))
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def stability_arms_figure(by_arm: pd.DataFrame, order: Sequence[str]) -> Figure:
    """C5 with its controls: mean log attribution change per arm and level, one panel per measure (controls hollow)."""
    measures = list(dict.fromkeys(by_arm["measure"]))
    levels = sorted(by_arm["level"].unique())
    fig, axes = plt.subplots(1, len(measures), figsize=(6.2 * len(measures), 4.2), squeeze=False)
    width = 0.8 / max(len(order), 1)
    colours = dict(zip(order, sns.color_palette("tab10", n_colors=len(order))))
    for ax, measure in zip(axes[0], measures):
        rows = by_arm[by_arm["measure"] == measure]
        for index, arm in enumerate(order):
            line = rows[rows["arm"] == arm].set_index("level").reindex(levels)
            if line["mean"].isna().all():
                continue
            x = np.arange(len(levels)) - 0.4 + width * (index + 0.5)
            reported = bool(line["reported"].fillna(False).any())
            ax.errorbar(x, line["mean"], yerr=[line["mean"] - line["low"], line["high"] - line["mean"]], fmt="o",
                        color=colours[arm], markerfacecolor=colours[arm] if reported else "white", capsize=2,
                        label=arm + (" (reported)" if reported else ""))
        ax.set_xticks(range(len(levels)), [f"ζ = {level:g}" for level in levels])
        ax.set(ylabel="mean log Δ (natural log)", title=f"{measure} measure")
    _legend_outside(axes[0, -1])
    fig.tight_layout()
    return fig


def abc_budget_figure(curves: pd.DataFrame, order: Sequence[str], labels: dict[str, str], paper: dict[str, float],
                      budget: float | None, n_features: int) -> Figure:
    """ABC against the mutation budget m per model: solid on the images both classify correctly, dashed on its
    own errors, the paper's values and C4's ``budget`` as lines."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    colours = dict(zip(order, sns.color_palette(n_colors=len(order))))
    for model in order:
        for images, style in (("both correct", "-"), ("own wrong", "--")):
            line = curves[(curves["model"] == model) & (curves["images"] == images)].sort_values("m")
            if line.empty:
                continue
            _mean_line(ax, line, "m", colours[model], style, 0.2 if images == "both correct" else 0, marker="o",
                       label=f"{labels[model]}, {images}")
    for (label, value), style in zip(paper.items(), (":", "-.")):
        ax.axhline(value, color="black", linestyle=style, linewidth=1, label=label)
    if budget is not None:
        ax.axvline(budget, color="grey", linewidth=1, label=f"C4's budget, m = {budget:.3g}")
    ax.set(xscale="log", xlabel="expected mutated features per neighbour, m (log scale; 1 = as written)",
           ylabel="mean ABC", ylim=(0, 1.02))
    top = ax.secondary_xaxis("top", functions=(lambda m: 100 * m / n_features, lambda p: p * n_features / 100))
    top.set_xlabel("% of the features")
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def detector_figure(coverage: pd.DataFrame, reliability: pd.DataFrame, order: Sequence[str], labels: dict[str, str]
                    ) -> Figure:
    """Per model, risk–coverage curves of every score above its accuracy per score bin (markers sized by count)."""
    fig, axes = plt.subplots(2, len(order), figsize=(4.4 * len(order), 7.6), squeeze=False, sharey="row")
    scores = list(dict.fromkeys(coverage["score"]))
    colours = dict(zip(scores, sns.color_palette("colorblind", n_colors=len(scores))))
    for column, model in enumerate(order):
        top, bottom = axes[0, column], axes[1, column]
        for score, line in coverage[coverage["model"] == model].groupby("score", sort=False):
            top.plot(line["coverage"], line["risk"], color=colours[score], label=score)
        top.set(title=labels[model], xlabel="coverage (share of predictions kept)", xlim=(0, 1))
        for score, bins in reliability[reliability["model"] == model].groupby("score", sort=False):
            centre = (bins["low"] + bins["high"]) / 2
            bottom.plot(centre, bins["accuracy"], color=colours[score], linewidth=1)
            bottom.scatter(centre, bins["accuracy"], s=10 + 200 * bins["count"] / max(bins["count"].sum(), 1),
                           color=colours[score], label=score)
        bottom.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        bottom.set(xlabel="score bin (ABC)", xlim=(0, 1), ylim=(-0.02, 1.02))
    axes[0, 0].set_ylabel("risk (error rate of the kept)")
    axes[1, 0].set_ylabel("accuracy in the bin")
    _legend_outside(axes[0, -1])
    _legend_outside(axes[1, -1])
    fig.tight_layout()
    return fig


def robust_accuracy_curves(accuracy: pd.DataFrame, title: str) -> Figure:
    """Chapter 5's sweep: robust accuracy against ε per norm, APGD-CE solid with a 95 % band, random noise dotted."""
    sweep = accuracy[accuracy["protocol"] == "sweep"]
    curves = seed_intervals(sweep, ["norm", "model", "mode", "attack", "eps"])
    norms = list(dict.fromkeys(sweep["norm"]))
    models = list(dict.fromkeys(sweep["model"]))
    colours = dict(zip(models, sns.color_palette(n_colors=len(models))))
    fig, axes = plt.subplots(1, len(norms), figsize=(6.5 * len(norms), 4.4), squeeze=False)
    for ax, norm in zip(axes.flat, norms):
        at_norm = curves[curves["norm"] == norm]
        for (model, attack), line in at_norm[at_norm["attack"] != "clean"].groupby(["model", "attack"], sort=False):
            clean = at_norm[(at_norm["model"] == model) & (at_norm["attack"] == "clean")]
            line = pd.concat([clean, line]).sort_values("eps")
            solid = attack == "APGD-CE"
            _mean_line(ax, line, "eps", colours[model], "-" if solid else ":", 0.15 if solid else 0,
                       marker="o" if solid else None, label=f"{model}: {attack}")
        ax.set_xscale("symlog", linthresh=float(at_norm.loc[at_norm["eps"] > 0, "eps"].min()))
        ax.set(xlabel=f"ε ({norm} norm, spectrogram scale [0, 1])", ylabel="robust accuracy", title=norm,
               ylim=(-0.02, 1.02))
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def clean_robust_frontier(points: pd.DataFrame, measures: Sequence[str], control: pd.DataFrame) -> Figure:
    """Clean against robust accuracy (mean ± s.d. over seeds): the NSDE per σ, the ``control`` line per its ``std``
    (ConvNeXt at std 0 among them, as the matched comparison reads it) and ConvNeXt marked."""
    kinds = points["kind"]
    lines = {"NSDE (σ)": (points[kinds == "nsde"], "sigma", "clean"),
             "ConvNeXt + input noise (std)": (control, "std", "clean_off"),
             "ConvNeXt": (points[kinds == "convnext"].assign(setting=0.0), "setting", "clean_off")}
    fig, axes = plt.subplots(1, len(measures), figsize=(4.4 * len(measures), 3.8), squeeze=False)
    for ax, measure in zip(axes.flat, measures):
        for (label, (line, setting, clean)), colour in zip(lines.items(), sns.color_palette(n_colors=len(lines))):
            if line.empty:
                continue
            means = line.groupby(setting)[[clean, measure]].agg(["mean", "std"]).sort_index()
            ax.errorbar(means[(clean, "mean")], means[(measure, "mean")], xerr=means[(clean, "std")],
                        yerr=means[(measure, "std")], marker="o", color=colour, label=label, capsize=2)
            if label != "ConvNeXt":
                for value, row in means.iterrows():
                    ax.annotate(f"{value:g}", (row[(clean, "mean")], row[(measure, "mean")]), fontsize=7,
                                textcoords="offset points", xytext=(4, 4))
        kind, level = measure.rsplit("_", 1)
        ax.set(xlabel="clean test accuracy", ylabel="accuracy",
               title=f"Gaussian input noise, std {level}" if kind == "gaussian" else f"APGD-CE (L2), ε = {level}")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
