# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (nsdebook)
#     language: python
#     name: nsdebook
# ---

# %% [markdown]
# # Attribution-Based Confidence
#
# A classifier's softmax score is a poor guide to whether a prediction is right. Attribution-Based
# Confidence (ABC) {cite:p}`jha2019abc` asks instead whether the prediction survives when the
# features the model relies on are taken away. The paper's fourth claim, **C4**, is that ABC is
# higher for the NSDE-ConvNeXt's correct predictions than for the ConvNeXt's
# ({glue:text}`paper_nsde:.3f` against {glue:text}`paper_convnext:.3f` in {cite:t}`brogan2024nsde`). This
# chapter implements the algorithm, shows how ABC depends on how many features it takes away,
# tests the claim at a budget fixed in advance, and asks what ABC is for: does a low ABC flag
# wrong predictions better than the scores a model gives for free?
#
# ```{admonition} In this chapter
# **You will learn** Algorithm 1 of {cite:t}`jha2019abc`; why its result depends on the number of
# features each neighbour mutates, and how to fix that number by a rule instead of by the outcome;
# and how to judge a confidence score as a detector of wrong predictions (AUROC with a bootstrap
# interval, risk–coverage, reliability), against the maximum softmax probability and the NSDE's
# own uncertainty.
#
# **From earlier chapters** you need the models of chapter 3, the Integrated Gradients maps of
# chapter 6 (read back from the artifact store, or computed first), and the Gaussian input noise
# of chapter 4.
#
# **Time to run:** {glue:text}`time_to_run` At `paper` that is {glue:text}`paper_images:.0f`
# explained images per seed and {glue:text}`paper_seeds:.0f` seeds (`benchmarks/bench_attributions.py`
# measures it).
# ```
#
# **Algorithm 1 of {cite:t}`jha2019abc`**, for a model $F$, an input $x$ with features $x_1, \dots, x_n$ (here
# the pixels of a spectrogram) and a sample size $S$:
#
# 1. attributions $A_j$ of every feature: Integrated Gradients from the zero baseline, as in
#    chapter 6 (and averaged over noise draws for the NSDE);
# 2. the prediction $i = F(x)$; the attributions explain class $i$;
# 3. $P(x_j) = |A_j / x_j| \,/\, \sum_k |A_k / x_k|$;
# 4. $S$ neighbours of $x$, each mutating feature $j$ to its baseline value with probability $P(x_j)$;
# 5. ABC $=$ (number of neighbours still classified $i$) $/\, S$.
#
# Two details are fixed by `nsdelib.claims.c4_abc` and stated here. Pixels at the floor of the image
# ($x_j = 0$) already equal the baseline and are given $P = 0$ (dividing by them is undefined).
# And, as written, the probabilities of step 4 sum to one: a neighbour mutates **one pixel on
# average**. A spectrogram has thousands of pixels, so this tests the prediction against the loss
# of a single pixel. The book therefore also computes ABC with a larger expected number $m$ of
# mutated pixels per neighbour (probability $\min(1, m P(x_j))$), over a grid of budgets from the
# algorithm as written ($m = 1$) to a fifth of the pixels.
#
# ```{admonition} Where this chapter departs from the paper
# :class: warning
# - The paper does not say how many features its neighbours mutate. As written, ABC is close to 1
#   for every model, far from the paper's values. The book shows ABC over the whole budget grid and
#   judges C4 at the one budget that a rule, stated below and fixed before the NSDE's result is
#   seen, derives from the paper's ConvNeXt value.
# - The paper compares each model's own correct predictions; the book compares the images that both
#   models classify correctly, so that the two means are over the same images.
# - The NSDE classifies each neighbour with **one fresh noise draw** (a single stochastic pass), not
#   with its {glue:text}`ensemble_size:.0f`-pass ensemble, which would cost
#   {glue:text}`ensemble_size:.0f` times as much. That estimates how often *one pass* keeps the
#   class, which differs from the ensemble's wherever its passes disagree (the ensemble keeps a class
#   that most passes keep more often than one pass does, and one that most passes lose less often). At
#   C4's budget the chapter also scores the NSDE's neighbours with the full ensemble and shows both.
# - Whether ABC detects wrong predictions is the book's question (open question 2), not the
#   paper's. Clean errors are too few for it, so it is asked on inputs under Gaussian noise.
# ```

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %% tags=["remove-input"]

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

import nsdelib
from nsdelib.book.headline import fresh_versus_recorded, record_headline
from nsdelib.book.profiles import get_profile
from nsdelib.book.projection import time_to_run
from nsdelib.book.provenance import (ComputeTime, announce_recorded, glue_all, glue_figure, model_digests,
                                     record_if_enabled)
from nsdelib.claims.c4_abc import (AS_WRITTEN, abc_budget_curves, abc_budget_verdicts, abc_claim, abc_variants,
                                   both_correct, mutation_probabilities)
from nsdelib.claims.error_detection import (ABC_OUTCOME_KEYS, DETECTOR_ACCURACY, DETECTOR_MIN_ERRORS, MSP, abc_choices,
                                            abc_outcomes, detector_aurocs, reliability_bins, risk_coverage_curves,
                                            score_costs, thin_risk_coverage)
from nsdelib.evaluation.attributions import explained_attributions
from nsdelib.models.inference import headline_mode
from nsdelib.models.registry import MODEL_KINDS
from nsdelib.report.claims import MODEL_LABELS
from nsdelib.report.paper import PAPER_VALUES
from nsdelib.report.plotting import abc_budget_figure, detector_figure, show_spectrogram
from nsdelib.report.stats import verdicts_frame
from nsdelib.report.tables import settings_table

ctx = nsdelib.setup(profile=profile, seed=seed, device=device)
sns.set_theme(style="whitegrid", context="notebook")
KINDS, PAPER = MODEL_KINDS, get_profile("paper")
paper_lines = {f"paper, {MODEL_LABELS[kind]} ({PAPER_VALUES[key]:.3f})": PAPER_VALUES[key]
               for kind, key in (("convnext", "C4.convnext_abc_correct"), ("nsde", "C4.nsde_abc_correct"))}
glue_all({"ensemble_size": ctx.profile.model.sde.ensemble_size, "paper_images": PAPER.attribution.subset_size,
          "paper_seeds": PAPER.n_seeds, "paper_convnext": PAPER_VALUES["C4.convnext_abc_correct"],
          "paper_nsde": PAPER_VALUES["C4.nsde_abc_correct"],
          "paper_effect": PAPER_VALUES["C4.nsde_abc_correct"] - PAPER_VALUES["C4.convnext_abc_correct"],
          "detector_accuracy": f"{DETECTOR_ACCURACY:.0%}".replace("%", " %"), "min_errors": DETECTOR_MIN_ERRORS,
          "c2_std": PAPER_VALUES["C2.noise_intensity"], "n_resamples": ctx.profile.abc.detectors.bootstrap_resamples})
glue_all({"time_to_run": time_to_run("chapters/ch07_abc")})

# %% [markdown]
# The models of chapter 3, the explained test subset and the attributions of chapter 6 (read back
# from the artifact store), and this profile's ABC settings:

# %%
runs = ctx.train_all()
compute = ComputeTime(ctx.store)  # what the record cost beyond the models, wherever it was computed
attribution, abc = ctx.profile.attribution, ctx.profile.abc
modes = {kind: headline_mode(kind, ctx.profile.model.sde) for kind in KINDS}
n_features = ctx.data.test.x[0].numel()
budgets = abc_variants(abc, n_features)
settings_table({**abc.model_dump(exclude={"detectors"}), "features per spectrogram": n_features,
                "budgets": list(budgets), "NSDE evaluation mode": modes["nsde"].name})

# %% [markdown]
# ## The result at the paper's scale
#
# The `paper` profile ({glue:text}`paper_images:.0f` explained spectrograms per seed,
# {glue:text}`paper_seeds:.0f` seeds) was run once and recorded with its provenance in
# `results/paper/abc.json`; it comes first: ABC against the mutation budget with C4's verdict, and
# ABC beside the free scores as a detector of wrong predictions. The rest of the chapter repeats
# every step at this build's profile, as the check that the code still produces what was recorded,
# and explains the budget rule, the verdict and the detector test on the way.

# %% tags=["hide-input"]
recorded = announce_recorded("abc", "ch07_abc", {
    "fig_budget_paper": lambda result: abc_budget_figure(pd.DataFrame(result["curves"]), KINDS, MODEL_LABELS,
                                                         paper_lines, result["c4_budget"]["m"], result["n_features"]),
    "fig_detectors_paper": lambda result: detector_figure(pd.DataFrame(result["coverage"]),
                                                          pd.DataFrame(result["reliability"]), KINDS, MODEL_LABELS)})
if recorded is not None:
    result = recorded["result"]
    display(pd.DataFrame.from_dict({"NSDE's neighbours: one draw each": result["verdict"],
                                    "NSDE's neighbours: its ensemble": result["verdict_ensemble"]}, orient="index")[
        ["label", "effect", "low", "high", "mde", "n_seeds", "n_pairs"]].style.format(precision=3, na_rep="–").set_caption(
        f"C4 (NSDE − ConvNeXt) at m = {result['c4_budget']['m']:.3g}, paper profile (recorded)"))
    display(pd.DataFrame(result["c4"]).set_index("model").style.format(precision=3, na_rep="–").set_caption(
        "Mean ABC on the images both models classify correctly, paper profile (recorded; NSDE: one draw)"))
    paper_aurocs = pd.DataFrame(result["aurocs"]).assign(model=lambda d: d["model"].map(MODEL_LABELS))
    display(paper_aurocs.set_index(["model", "score"]).style.format(precision=3, na_rep="–").set_caption(
        f"AUROC for wrong predictions at noise std {result['detector_noise']['std']:.3g}, paper profile (recorded)"))

# %% [markdown]
# ```{glue:figure} fig_budget_paper
# :name: "fig-ch7-budget-paper"
#
# Mean ABC against the expected number of mutated pixels per neighbour in the recorded `paper` run
# (log scale; the leftmost point is the algorithm as written). Solid lines with 95 % bands over
# seeds: the images that ConvNeXt and the NSDE both classify correctly; dashed: each model's own
# wrong predictions. Dotted and dash-dotted: the paper's values. Vertical line: the budget of C4's
# verdict.
# ```
#
# ```{glue:figure} fig_detectors_paper
# :name: "fig-ch7-detectors-paper"
#
# Wrong-prediction detectors under Gaussian input noise in the recorded `paper` run, all seeds
# pooled, one column per model. Top: risk–coverage curves (lower is better). Bottom: accuracy of the
# predictions in equal-width bins of ABC, markers sized by the number of predictions in the bin.
# ```

# %% [markdown]
# ## Step 3 on one spectrogram
#
# The mutation probabilities $P(x_j)$ of one explained test spectrogram, for the three models
# (first seed), on a logarithmic colour scale ({numref}`fig-ch7-probabilities`).

# %%
probabilities = {}
for kind in KINDS:
    subset, predicted, attributions = explained_attributions(ctx.store, attribution, ctx.explained(runs[kind][0]),
                                                             method=abc.method)
    probabilities[kind] = mutation_probabilities(attributions[:1], ctx.data.test.x[subset[:1]], abc.zero_guard)

# %% tags=["hide-input"]
glue_all({"n_features": n_features, "max_p": float(max(p.max() for p in probabilities.values()))})
data, test = ctx.data, ctx.data.test
fig, axes = plt.subplots(1, 1 + len(KINDS), figsize=(4.3 * (1 + len(KINDS)), 3.6), sharey=True, layout="constrained")
image = test.x[subset[0]]
show_spectrogram(axes[0], image, data.freqs_hz, data.times_s, title=f"input ({data.class_names[test.y[subset[0]]]})")
positive = float(min(p[p > 0].min() for p in probabilities.values()))
for ax, kind in zip(axes[1:], KINDS):
    drawn = show_spectrogram(ax, probabilities[kind].view(image.shape).clamp_min(positive), data.freqs_hz, data.times_s,
                             title=f"P(x_j), {MODEL_LABELS[kind]}", cmap="viridis", norm=LogNorm(vmin=positive, vmax=1.0))
    ax.set_ylabel("")
fig.colorbar(drawn, ax=axes[1:], label="mutation probability P(x_j) (log scale)")
glue_figure("fig_probabilities", fig)

# %% [markdown]
# ```{glue:figure} fig_probabilities
# :name: "fig-ch7-probabilities"
#
# One explained test spectrogram (left) and the probability with which a neighbour drawn as
# written mutates each of its pixels, per model. The probabilities of a map sum to one.
# ```
#
# Over the {glue:text}`n_features:,.0f` pixels the probabilities sum to one; the largest is
# {glue:text}`max_p:.3f`. A neighbour drawn as written removes on average one pixel, most likely
# one of the brightest in these maps.
#
# ## ABC against the mutation budget
#
# For every seed and model, ABC of the explained test subset at every budget of the grid. The NSDE
# predicts in its headline evaluation mode and scores its neighbours with one noise draw each, so
# its neighbours also change class when its own noise does; the deterministic models have no such
# source of disagreement.

# %%
curve = pd.concat([ctx.abc_curve(run) for kind in KINDS for run in runs[kind]], ignore_index=True)
curves = abc_budget_curves(curve)
choice, level = abc_choices(ctx)  # C4's budget and the detectors' noise std, each by its rule

# %% tags=["remove-input"]
as_written = curve[curve["budget"] == AS_WRITTEN]
glue_all({"n_both": int((both_correct(as_written)["model"] == "convnext").sum()),
          "n_scored": int((as_written["model"] == "convnext").sum()), "c4_m": choice.value,
          "c4_share": 100 * choice.value / n_features, "c4_note": f"{choice.note}."})
glue_figure("fig_budget", abc_budget_figure(curves, KINDS, MODEL_LABELS, paper_lines, choice.value, n_features))

# %% [markdown]
# ```{glue:figure} fig_budget
# :name: "fig-ch7-budget"
#
# Mean ABC against the expected number of mutated pixels per neighbour (log scale; the leftmost
# point is the algorithm as written). Solid lines with 95 % bands over seeds: the images that
# ConvNeXt and the NSDE both classify correctly, every model on the same images. Dashed: each
# model's own wrong predictions. Dotted and dash-dotted: the paper's values. Vertical line: the
# budget of C4's verdict.
# ```
#
# {numref}`fig-ch7-budget` is the whole trade-off: as written, ABC is near 1 for every model, and
# it falls as each neighbour loses more of the pixels the model relies on. Where the paper's
# values fall on these curves depends on the budget, which the paper does not report, so the
# comparison needs a budget fixed in advance. Set beside {numref}`fig-ch7-budget-paper`, the curves
# of this build are the check that the code still draws the recorded `paper` curves (at a smaller
# profile, with wider bands). The rule (`c4_budget` in `nsdelib.claims.c4_abc`):
#
# > C4 is judged at one mutation budget, fixed by this rule before the NSDE's ABC is looked at: the
# > expected number $m$ of mutated features per neighbour at which the plain ConvNeXt's mean ABC on
# > the images that both ConvNeXt and the NSDE classify correctly, pooled over seeds, equals the
# > paper's ConvNeXt value {glue:text}`paper_convnext:.3f`, interpolated linearly in $\log m$ between
# > the points of the budget grid. If the curve never reaches that value on the grid, the grid end
# > nearest to it is used, and the chapter says so. The NSDE is then compared with ConvNeXt at that
# > budget. The rule uses only the baseline and the paper's baseline figure, never the NSDE's ABC
# > (the logic of the book's σ calibration).
#
# Here that budget is $m$ = {glue:text}`c4_m:.3g` mutated pixels per neighbour
# ({glue:text}`c4_share:.2g` % of the pixels): {glue:text}`c4_note`
#
# ## Claim C4 at the fixed budget
#
# ABC of every model at that budget, on the {glue:text}`n_both:.0f` seed × image pairs (of
# {glue:text}`n_scored:.0f`) that both ConvNeXt and the NSDE classify correctly, against the paper:

# %%
at_choice = pd.concat([ctx.abc_at(run, choice.value) for kind in KINDS for run in runs[kind]], ignore_index=True)
c4_table, c4_verdict = abc_claim(at_choice)
ensemble_rows = pd.concat([at_choice[at_choice["model"] == "convnext"]]
                          + [ctx.abc_at(run, choice.value, neighbours="mode") for run in runs["nsde"]], ignore_index=True)
ensemble_table, ensemble_verdict = abc_claim(ensemble_rows)
c4_table.style.format(precision=3, na_rep="–").set_caption(
    f"C4 at m = {choice.value:.3g}, {ctx.profile.name} profile, built now (NSDE neighbours: one draw each)")

# %% [markdown]
# At this budget the images both models get right have a mean ABC of {glue:text}`c4_nsde:.3f`
# under the NSDE-ConvNeXt and {glue:text}`c4_convnext:.3f` under the ConvNeXt (the paper:
# {glue:text}`paper_effect:.3f` more for the NSDE). By the book's rule (paired per image within each
# seed, seeds as replicates; `nsdelib.report.stats`), the verdict on C4 is
# **{glue:text}`c4_verdict`** (NSDE − ConvNeXt = {glue:text}`c4_effect:+.3f`). Scoring the NSDE's
# neighbours with its full ensemble instead of one draw gives it a mean ABC of
# {glue:text}`c4_nsde_ensemble:.3f` and the verdict *{glue:text}`c4_ensemble_verdict`*. Both
# verdicts, and how the first would move with the budget. {glue:text}`c4_versus_recorded`

# %%
by_budget = abc_budget_verdicts(curve)
pd.concat([
    verdicts_frame({f"C4's budget, m = {choice.value:.3g} (one draw)": c4_verdict,
                    f"C4's budget, m = {choice.value:.3g} (NSDE's ensemble)": ensemble_verdict}, "budget"),
    by_budget.drop(columns="m"),
])[["label", "effect", "low", "high", "mde", "n_seeds", "n_pairs"]].style.format(precision=3, na_rep="–")

# %% [markdown]
# The rows below the first two are not verdicts on C4: they show, for each budget of the grid,
# what the verdict would have been had that budget been chosen.
#
# ## Is ABC a useful detector of wrong predictions?
#
# ABC was proposed to flag predictions that should not be trusted. A fair test compares it with
# what a model gives for free: the maximum softmax probability (MSP) of its prediction, the
# entropy of its predictive distribution, and, for the NSDE, the disagreement of its stochastic
# passes (the share of its {glue:text}`ensemble_size:.0f` passes whose class differs from the
# ensemble's). Clean errors are few, so the test uses the explained images under Gaussian input
# noise at a level fixed by a rule (`detector_noise_level` in `nsdelib.claims.error_detection`; the
# cell above applied both rules at once, with `abc_choices`, the very call `nsdebook precompute` makes):
#
# > The detectors of wrong predictions are judged on the explained test images with Gaussian input
# > noise of the std at which the plain ConvNeXt's accuracy on them, pooled over seeds, falls to
# > {glue:text}`detector_accuracy`, interpolated linearly in log std between the stds of the
# > profile's grid (the grid end nearest to it if it never does). The rule uses only the baseline,
# > so that errors are plentiful for every model (at least {glue:text}`min_errors:.0f` wrong
# > predictions pooled over seeds at the paper profile) without choosing the level by how well any
# > detector does.
#
# The plain ConvNeXt's accuracy on the explained images at each noise std of the grid, pooled
# over seeds, which is all the rule reads:

# %%
accuracy = pd.concat([ctx.detector_accuracy(run) for run in runs["convnext"]], ignore_index=True)
accuracy.groupby("std")["correct"].mean().rename("ConvNeXt accuracy").to_frame().T

# %%
detector_budgets = ctx.detector_budgets(choice.value)
scores = pd.concat([ctx.detector_scores(run, choice.value, level.value) for kind in KINDS for run in runs[kind]],
                   ignore_index=True)
aurocs = detector_aurocs(scores, list(detector_budgets), abc.detectors)
aurocs.assign(model=aurocs["model"].map(MODEL_LABELS)).set_index(["model", "score"]).style.format(
    precision=3, na_rep="–").set_caption(f"AUROC of each score for wrong predictions under Gaussian input noise of std "
                                         f"{level.value:.3g}, all seeds pooled, 95 % bootstrap intervals over images")

# %% tags=["remove-input"]
auroc = aurocs.set_index(["model", "score"])["AUROC"]
glue_all({"noise_std": level.value, "noise_note": level.note,
          "min_wrong": int((~scores["correct"].astype(bool)).groupby(scores["model"]).sum().min()),
          **{f"auroc_{kind}_{name}": f"{auroc[kind, column]:.2f}" if (kind, column) in auroc.index else "undefined"
             for kind in ("convnext", "nsde") for column, name in (("ABC at C4's budget", "abc"), (MSP, "msp"))}})

# %% [markdown]
# The noise std is {glue:text}`noise_std:.3g` ({glue:text}`noise_note`). The fewest wrong
# predictions of any model, pooled over seeds, are {glue:text}`min_wrong:.0f` (the rule aims at
# {glue:text}`min_errors:.0f` or more at the `paper` profile; smaller profiles have fewer and wider
# intervals). The AUROC is the probability that a randomly chosen wrong prediction gets a lower
# confidence than a randomly chosen right one (0.5 is chance, 1 perfect); its interval comes from
# {glue:text}`n_resamples:.0f` bootstrap resamples of the images, each image's rows of every seed
# kept together. ABC at C4's budget reaches {glue:text}`auroc_nsde_abc` for the NSDE-ConvNeXt and
# {glue:text}`auroc_convnext_abc` for the ConvNeXt; the free MSP reaches {glue:text}`auroc_nsde_msp`
# and {glue:text}`auroc_convnext_msp`.
#
# Two more views of the same scores in {numref}`fig-ch7-detectors`: the risk–coverage curve (keep
# only the most confident predictions; how many of the kept are wrong?) and the accuracy of the
# predictions in bins of ABC, where a useful confidence climbs from left to right.

# %%
coverage = thin_risk_coverage(risk_coverage_curves(scores, list(detector_budgets)))
reliability = pd.concat([reliability_bins(rows[column], rows["correct"], abc.detectors.reliability_bins)
                         .assign(model=kind, score=column)
                         for kind, rows in scores.groupby("model", sort=False)
                         for column in detector_budgets], ignore_index=True)

# %% tags=["remove-input"]
glue_figure("fig_detectors", detector_figure(coverage, reliability, KINDS, MODEL_LABELS))

# %% [markdown]
# ```{glue:figure} fig_detectors
# :name: "fig-ch7-detectors"
#
# Wrong-prediction detectors under Gaussian input noise, all seeds pooled, one column per model.
# Top: risk–coverage curves (lower is better; at full coverage every curve ends at the model's
# error rate). Bottom: accuracy of the predictions in equal-width bins of ABC, markers sized by the
# number of predictions in the bin; the dotted diagonal is a perfectly calibrated score.
# ```
#
# The recorded `paper` run's version is {numref}`fig-ch7-detectors-paper`. A detector is only
# worth its cost if it beats what comes for free. The cost of each score in passes through the
# network per input, computed from this profile's configs (a backward pass costs about two forward
# passes):

# %%
costs = pd.concat([score_costs(attribution, detector_budgets, modes[kind]).assign(model=MODEL_LABELS[kind])
                   for kind in KINDS], ignore_index=True)
costs.set_index(["model", "score"])

# %% [markdown]
# For the ConvNeXt, ABC costs {glue:text}`abc_cost_convnext:.0f` forward passes per input (and the
# backward passes of its Integrated Gradients) where the MSP costs the one forward pass that makes
# the prediction.

# %% tags=["remove-input"]
glue_all({"abc_cost_convnext": int(costs.loc[(costs["model"] == MODEL_LABELS["convnext"])
                                             & (costs["score"] == "ABC at C4's budget"), "forward passes"].iloc[0]),
          "c4_verdict": c4_verdict.flags, "c4_effect": c4_verdict.effect,
          "c4_convnext": float(c4_table.loc[MODEL_LABELS["convnext"], "this book (mean)"]),
          "c4_nsde": float(c4_table.loc[MODEL_LABELS["nsde"], "this book (mean)"]),
          "c4_nsde_ensemble": float(ensemble_table.loc[MODEL_LABELS["nsde"], "this book (mean)"]),
          "c4_ensemble_verdict": ensemble_verdict.flags})
record_if_enabled(ctx, "abc",
                  {"curves": curves.to_dict(orient="list"),
                   "by_budget": by_budget.reset_index().to_dict(orient="list"),
                   "c4_budget": {"m": choice.value, "crossed": choice.crossed, "note": choice.note,
                                 "share_of_features": choice.value / n_features},
                   "n_features": n_features,
                   "c4": c4_table.reset_index().to_dict(orient="list"), "verdict": c4_verdict.to_dict(),
                   "c4_ensemble": ensemble_table.reset_index().to_dict(orient="list"),
                   "verdict_ensemble": ensemble_verdict.to_dict(),
                   "detector_noise": {"std": level.value, "crossed": level.crossed, "note": level.note},
                   "convnext_accuracy_by_std": accuracy.groupby("std")["correct"].mean().reset_index()
                   .to_dict(orient="list"),
                   "aurocs": aurocs.to_dict(orient="list"), "costs": costs.to_dict(orient="list"),
                   "coverage": coverage[["model", "score", "coverage", "risk"]].to_dict(orient="list"),
                   "reliability": reliability.to_dict(orient="list")},
                  ctx.seeds, compute, model_digests(runs),
                  outcomes=abc_outcomes(at_choice, ensemble_rows, scores, list(detector_budgets)),
                  outcome_keys=ABC_OUTCOME_KEYS, outcome_value="value")
glue_all({"c4_versus_recorded": fresh_versus_recorded(ctx, "C4", c4_verdict)})
record_headline(ctx, "C4", c4_verdict, {"budget": choice.value})

# %% [markdown]
# ## Summary
#
# - ABC as written mutates about one pixel per neighbour and is close to 1 for every model; its value
#   is set by the mutation budget ({numref}`fig-ch7-budget`), which the paper does not report.
# - C4 is judged at the budget where the plain ConvNeXt's ABC matches the paper's ConvNeXt value, a
#   rule that never reads the NSDE's ABC, on the images both models classify correctly.
# - As a detector of wrong predictions, ABC is compared with the free MSP, the predictive entropy
#   and the NSDE's disagreement by AUROC with bootstrap intervals, risk–coverage and reliability
#   ({numref}`fig-ch7-detectors`), and by what each costs.
#
# ## Exercises
#
# 1. *(Costs about {glue:text}`ensemble_size:.0f` times the ABC computation of the NSDE.)* Score the
#    NSDE's neighbours with its ensemble at every budget (`abc.replace(neighbours="mode")`). Where on
#    {numref}`fig-ch7-budget` does its curve move, and why?
#
# ```{admonition} Solution
# :class: dropdown
# Rerun the curve cell with `abc_curve(ctx.store, abc.replace(neighbours="mode"), attribution, ctx.explained(run))`
# for the NSDE's runs. The ensemble averages the softmax of its passes, so a neighbour on which
# single passes disagree is kept more often by the ensemble than by one pass when most passes keep
# it, and less often when most do not. Expect the NSDE's curve to move up where its neighbours are
# mostly kept, as at small budgets, where a neighbour is nearly the input and the disagreement of the
# passes is all that changes the class; the table at C4's budget above shows the measured change.
# ```
#
# 2. Evaluate the NSDE with its noise off (`SweepTarget(..., modes=(headline_mode("nsde",
#    ctx.profile.model.sde.replace(eval_noise="off")),), ...)`) and recompute its curve. How much of
#    its ABC below 1 at small budgets came from its own noise rather than from the mutations?
#
# ```{admonition} Solution
# :class: dropdown
# With the noise off the NSDE is deterministic, so its neighbours change class only through the
# mutations. The gap between the noise-on and the noise-off curves at $m = 1$ is the share of
# neighbours whose class one noisy pass changes on its own. Compare it with the flip rate of chapter
# 3, which counts two passes that disagree, either of which may have changed the class: for rare
# changes the flip rate is about twice the share one pass changes.
# ```
#
# 3. Use saliency instead of Integrated Gradients for step 1 (`abc.replace(method="saliency")`). Why
#    does the guard for $x_j = 0$ matter more then?
#
# ```{admonition} Solution
# :class: dropdown
# IG is the gradient times the input, so $A_j / x_j$ is a gradient and is zero where $x_j = 0$
# anyway. Saliency is the gradient itself, non-zero on the floor of the spectrogram, so
# $|A_j / x_j|$ grows without bound as $x_j \to 0$: without the guard, nearly all of the mutation
# probability would sit on the darkest pixels, which the baseline 0 cannot change.
# ```
#
# 4. Judge the detectors at the C2 noise level, std {glue:text}`c2_std:.2f`, instead of the rule's level. How many
#    wrong predictions are left, and do the intervals still separate the scores?
#
# ```{admonition} Solution
# :class: dropdown
# Call `cached_detector_scores(..., std=PAPER_VALUES["C2.noise_intensity"])` for every target and `detector_aurocs` on the result.
# At a weaker noise the models make fewer mistakes: the count of wrong predictions falls, the
# bootstrap intervals widen, and differences between the scores that were resolved at the rule's
# level may no longer be. This is why the rule fixes the level by the number of errors it yields,
# not by the paper's noise intensity.
# ```
