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
# # Robustness to input noise
#
# The paper's second claim, **C2**, is that the NSDE-ConvNeXt keeps a higher accuracy than the
# plain ConvNeXt when Gaussian noise is added to its input spectrograms: "up to
# {glue:text}`paper_c2_accuracy:.2f` % at noise intensity {glue:text}`paper_c2_intensity`"
# {cite:p}`brogan2024nsde`. The paper does not define its noise intensity. We read it as the
# standard deviation of Gaussian noise added to the normalised spectrogram (values in [0, 1]),
# and clip the noisy image back to [0, 1], the range the models were trained on. The same noise is
# also reported as the image's signal-to-noise ratio in dB, which does not depend on that reading.
#
# Real noise on power lines is rarely white {cite:p}`zimmermann2002impulsive`, so two structured
# noises a power-line engineer would ask about are swept as well, at growing power: **impulsive**
# noise (switching transients: short, broadband bursts, i.e. bright vertical stripes in the
# spectrogram) and a **narrowband** interferer (a carrier or a converter's harmonic: a steady tone,
# i.e. a bright horizontal line that can mimic the harmonics the classes differ by). Their exact
# definitions are in `nsdelib.evaluation.input_noise`.
#
# **How the models are evaluated.** The NSDE's noise stays on at test time. It is reported as a
# single stochastic pass and as an ensemble that averages the softmax of K passes — the **headline
# is the ensemble**, the mode chapter 3 reports — and with its noise off, which separates what the
# noisy training did to the weights from what the noise does at test time. Beside ConvNeXt stands
# the control, ConvNeXt trained with Gaussian input noise (chapter 3): whatever the NSDE gains here
# has to beat cheap data augmentation to count. All models see exactly the same noisy images for a
# given seed, and the NSDE's own noise is drawn from the same seed at every noise level, so the
# curves step with the noise level, not with fresh randomness. Every verdict pairs the models image
# by image within each seed, with seeds and images both as random (`nsdelib.report.stats`); the end of
# the chapter works the verdict rule on simulated comparisons whose answer is known.

# %% [markdown]
# ```{admonition} In this chapter
# :class: tip
# **You will learn** how to measure robustness to input noise so that two models can be compared
# image by image, what the NSDE's test-time noise and its noisy training each contribute, whether
# the paper's claim C2 reproduces, and whether it carries over to structured noise.
#
# **It needs** the trained models of chapter 3 and the verdict rule of `nsdelib.report.stats`.
#
# **Time to run:** {glue:text}`time_to_run`
# ```
#
# ```{admonition} Where this book departs from the paper
# :class: caution
# The paper does not define its "noise intensity"; the book reads it as the std of Gaussian noise on
# the [0, 1] spectrogram scale and also reports the image SNR, which does not depend on that reading.
# The paper gives no ConvNeXt figure at that intensity, so C2 is judged against a stated smallest
# effect of interest (`nsdelib.report.paper`).
# ```

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %% tags=["remove-input"]

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

import nsdelib
from nsdelib.book.glance import RECORD_COMMAND
from nsdelib.book.headline import fresh_versus_recorded, record_headline
from nsdelib.book.precompute import FRONTIER_COMMAND
from nsdelib.book.profiles import get_profile
from nsdelib.book.projection import time_to_run
from nsdelib.book.provenance import (ComputeTime, announce_recorded, glue_all, glue_figure, load_frontier,
                                     model_digests, record_if_enabled, recorded_with_outcomes, show_matched_accuracy)
from nsdelib.claims.c2_noise import (C2_STD, DESIGN_FAMILY, c2_comparisons, design_table, design_verdicts,
                                     noise_claim, noise_level_verdicts, recorded_noise_findings,
                                     structured_noise_verdicts, sweep_accuracy)
from nsdelib.evaluation.input_noise import add_noise, noise_pattern
from nsdelib.evaluation.sweeps import stratified_subset
from nsdelib.models.inference import eval_modes
from nsdelib.report.claims import MODEL_LABELS
from nsdelib.report.outcomes import HOLM_EXAMPLE, rule_examples
from nsdelib.report.paper import PAPER_VALUES
from nsdelib.report.plotting import accuracy_curves, gaussian_noise_curves, show_spectrogram
from nsdelib.report.stats import DIRECTION_HOLDS, VERDICT_RULE, seed_intervals, verdict_from_dict, verdicts_frame
from nsdelib.report.tables import settings_table

ctx = nsdelib.setup(profile=profile, seed=seed, device=device)
PAPER = get_profile("paper")
PAPER_POINT = (C2_STD, PAPER_VALUES["C2.nsde_accuracy_at_noise"])
sns.set_theme(style="whitegrid", context="notebook")
glue_all({"paper_c2_accuracy": float(PAPER_POINT[1] * 100), "paper_c2_intensity": float(C2_STD)})
glue_all({"time_to_run": time_to_run("chapters/ch04_noise_robustness")})

# %% [markdown]
# The sweep of this profile: the noise levels, and the fixed, class-stratified subset of the test
# split every model and seed is evaluated on (the same samples throughout, so that the models can
# be compared seed by seed).

# %%
data = ctx.data
runs = ctx.train_all()
noise_cfg, sde = ctx.profile.noise, ctx.profile.model.sde
modes = {kind: eval_modes(kind, sde) for kind in runs}
baseline_mode, control_mode = modes["convnext"][0], modes["convnext_noise"][0]
off_mode, single_mode, ensemble_mode = modes["nsde"]
subset = stratified_subset(data.test.y, noise_cfg.subset_size, noise_cfg.subset_seed)
settings_table({**noise_cfg.model_dump(), "evaluated samples": len(subset), "test samples": len(data.test.y),
                "NSDE ensemble size K": sde.ensemble_size, "seeds": ctx.seeds})

# %% [markdown]
# ## The result at the paper's scale
#
# The `paper` sweep (every model of chapter 3, on every seed, the whole test split, every level) was
# run once and recorded with its provenance in `results/paper/noise_robustness.json`; it comes
# first, with the models it cites. The rest of the chapter repeats the sweep at this build's profile.

# %% tags=["hide-input"]
recorded = announce_recorded("noise_robustness", "ch04_noise_robustness", {
    "fig_noise_paper": lambda result: gaussian_noise_curves(
        pd.DataFrame(result["accuracy"]), 1 / len(data.class_names), PAPER_POINT,
        f"Recorded paper run: mean and 95 % interval over {pd.DataFrame(result['accuracy'])['seed'].nunique()} seeds")})
if recorded is not None:
    display(pd.DataFrame(recorded["result"]["c2"]).style.format(precision=4, na_rep="–").set_caption(
        f"C2 at the paper profile (recorded, judged by today's rule): "
        f"{verdict_from_dict(recorded['result']['verdict']).flags} at std {C2_STD}"))

# %% [markdown]
# ```{glue:figure} fig_noise_paper
# :name: fig-noise-paper
# Accuracy under Gaussian input noise in the recorded `paper` run, against the noise std (left) and
# the image SNR (right), for ConvNeXt, the control and the NSDE in its three modes; bands are 95 %
# intervals over seeds, the star is the paper's NSDE figure.
# ```

# %% tags=["hide-input"]
paper_noise = recorded_with_outcomes("noise_robustness", "paper")
if recorded is None or paper_noise is None:
    glue_all({key: f"not recorded yet (`{RECORD_COMMAND.format(chapter='ch04_noise_robustness')}` records it)"
              for key in ("paper_versus_control", "paper_structured_convnext", "paper_structured_control")})
else:
    paper_structured, paper_sentences = recorded_noise_findings(
        pd.DataFrame(recorded["result"]["by_level"]), paper_noise[1], PAPER.model.sde, PAPER.calibration.gaussian_stds)
    glue_all({f"paper_{key}": sentence for key, sentence in paper_sentences.items()})
    display(paper_structured[["verdict", "effect", "low", "high", "mde", "p_holm"]].style.format(
        precision=4, na_rep="–").set_caption("Recorded paper run: NSDE ensemble − ConvNeXt and − the control under "
                                             "structured noise, paired per image within each seed (exploratory; "
                                             "each baseline Holm-adjusted within its family)"))

# %% [markdown]
# In the recorded run, at the three Gaussian stds the frontier of chapter 8 scores, NSDE ensemble −
# control is {glue:text}`paper_versus_control`. Under structured noise, at each noise's largest
# level, NSDE ensemble − ConvNeXt is {glue:text}`paper_structured_convnext`; NSDE ensemble − control
# is {glue:text}`paper_structured_control`. The table gives every level.
#
# ## What the noises look like
#
# One test spectrogram under each noise, at a low and a high level (the first row is the clean
# image and the paper's Gaussian intensity):

# %% tags=["hide-input"]
example = data.test.x[subset[:1]]
generator = torch.Generator().manual_seed(ctx.seed)
patterns = {kind: noise_pattern(example.shape, kind, generator, noise_cfg.impulse_probability)
            for kind in ("gaussian", *noise_cfg.structured_kinds)}
names = {"gaussian": "Gaussian, std", "impulsive": "impulsive, level", "narrowband": "narrowband, level"}
panels = [("clean", example[0]), (f"{names['gaussian']} {C2_STD}", add_noise(example, patterns["gaussian"], C2_STD)[0])]
panels += [(f"{names[kind]} {level}", add_noise(example, pattern, level)[0])
           for kind, pattern in patterns.items()
           for level in dict.fromkeys((noise_cfg.levels(kind)[len(noise_cfg.levels(kind)) // 2], noise_cfg.levels(kind)[-1]))]
fig, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(3.2 * ((len(panels) + 1) // 2), 6.4), squeeze=False)
for ax, (title, image) in zip(axes.flat, panels):
    show_spectrogram(ax, image, data.freqs_hz, data.times_s, title=title)
for ax in axes.flat[len(panels):]:
    ax.axis("off")
fig.tight_layout()
glue_figure("fig_noise_examples", fig)

# %% [markdown]
# ```{glue:figure} fig_noise_examples
# :name: fig-noise-examples
# One test spectrogram, clean and under each noise of the sweep at a middle and at the largest level.
# ```
#
# In {numref}`fig-noise-examples`, Gaussian noise lifts the dark background everywhere and, at high levels, buries the harmonic
# lines; impulses are vertical stripes at random frames; the interferer is one bright line at a
# random frequency.
#
# ## Accuracy under noise
#
# Every model of chapter 3 (both kinds, every seed) is evaluated at every level of every noise.
# The sweep is an artifact: a rebuild with the same models and settings reads it back.

# %%
compute = ComputeTime(ctx.store)
sweep = pd.concat([ctx.noise_sweep(run).assign(model=MODEL_LABELS[kind], seed=run.seed)
                   for kind, kind_runs in runs.items() for run in kind_runs], ignore_index=True)
accuracy = sweep_accuracy(sweep)
curves = seed_intervals(accuracy, ["noise", "level", "mode"])
curves = curves.merge(accuracy.groupby(["noise", "level"], as_index=False)["image_snr_db"].mean(), on=["noise", "level"])
chance = 1 / len(data.class_names)
glue_figure("fig_noise_fresh", gaussian_noise_curves(
    accuracy, chance, PAPER_POINT, f"This build ({ctx.profile.name}): mean and 95 % interval over {ctx.profile.n_seeds} seeds"))

# %% [markdown]
# ```{glue:figure} fig_noise_fresh
# :name: fig-noise-fresh
# Accuracy under Gaussian input noise at this build's profile, against the noise std (left) and the
# image SNR (right); bands are 95 % intervals over seeds, the star is the paper's NSDE figure.
# ```
#
# Read the left panel of {numref}`fig-noise-fresh` from left to right: the noise grows, and the question is which curve stays
# up longer. The bands are the 95 % intervals over seeds; where they overlap, the sweep cannot
# tell the models apart. The star is the paper's single number for the NSDE. The right panel is
# the same data against the image SNR (the clean point has no finite SNR and is left out).

# %%
c2_table, c2 = noise_claim(sweep, ensemble_mode.name, baseline_mode.name)
by_level = noise_level_verdicts(sweep, c2_comparisons(sde))
by_level[["verdict", "effect", "low", "high", "mde", "p_holm", "n_seeds", "n_pairs"]].style.format(precision=4, na_rep="–").set_caption(
    "Differences in accuracy per Gaussian noise std, paired per image within each seed, seeds and images random; "
    "every row but C2's own is exploratory, its label Holm-adjusted within the family C2 levels")

# %% tags=["remove-input"]
largest = noise_cfg.gaussian_stds[-1]
point = 100 * curves[curves["noise"] == "gaussian"].set_index(["level", "mode"])["mean"]
control_verdict = by_level.loc[("NSDE ensemble − ConvNeXt + input noise", C2_STD)]
significant = by_level.loc["NSDE ensemble − ConvNeXt (C2)"].query("level > 0")["label"].isin(DIRECTION_HOLDS)
glue_all({"c2_verdict": c2.flags, "c2_one_run": c2.one_run, "c2_difference": float(c2.effect * 100),
          "c2_low": float(c2.low * 100), "c2_high": float(c2.high * 100), "c2_mde": float(c2.mde * 100),
          "c2_reference": float(c2.reference * 100),
          "c2_single_verdict": by_level.loc[("NSDE single pass − ConvNeXt", C2_STD), "verdict"],
          "c2_control_verdict": control_verdict["verdict"],
          "c2_control_difference": float(control_verdict["effect"] * 100),
          **{f"c2_{name}": float(point[(C2_STD, mode.name)]) for name, mode in {
              "convnext": baseline_mode, "control": control_mode, "nsde": ensemble_mode, "nsde_single": single_mode,
              "nsde_off": off_mode}.items()},
          "c2_levels_holding": int(significant.sum()), "c2_levels": len(significant), "largest_std": float(largest),
          "largest_convnext": float(point[(largest, baseline_mode.name)]),
          "largest_nsde": float(point[(largest, ensemble_mode.name)]), "chance": float(100 * chance)})

# %% [markdown]
# ## Claim C2
#
# At the paper's intensity (std {glue:text}`paper_c2_intensity`) the ConvNeXt keeps
# {glue:text}`c2_convnext:.1f` %, the control trained with input noise {glue:text}`c2_control:.1f` %,
# and the NSDE {glue:text}`c2_nsde:.1f` % as an ensemble ({glue:text}`c2_nsde_single:.1f` % as a
# single pass, {glue:text}`c2_nsde_off:.1f` % with its noise off; means over seeds). The NSDE
# ensemble's advantage over ConvNeXt is {glue:text}`c2_difference:.1f` points (95 % interval
# {glue:text}`c2_low:.1f` to {glue:text}`c2_high:.1f`; smallest detectable difference
# {glue:text}`c2_mde:.1f` points; the paper gives no ConvNeXt figure here, so the reference is the
# smallest effect of interest, {glue:text}`c2_reference:.0f` points). **C2: {glue:text}`c2_verdict`**
# at this profile. The other rows of the table are exploratory: each is labelled after Holm's
# adjustment over the whole family "C2 levels", so that testing many levels does not manufacture a
# finding. For the single stochastic pass: "{glue:text}`c2_single_verdict`". Against the control at
# the same std, the NSDE ensemble differs by {glue:text}`c2_control_difference:.1f` points
# ("{glue:text}`c2_control_verdict`"); the recorded run's comparison at the larger stds is above.
# {glue:text}`c2_versus_recorded`
# Across the sweep, the ensemble's advantage over ConvNeXt is significant after that adjustment at
# {glue:text}`c2_levels_holding` of the {glue:text}`c2_levels` noise levels (table above). The paper
# gives an NSDE accuracy at this noise but no ConvNeXt one, so there is no paper's figure for the
# effect to set beside one run of this setup ({glue:text}`c2_one_run`).
#
# At the largest std, {glue:text}`largest_std`, the ConvNeXt is at {glue:text}`largest_convnext:.1f` %
# and the NSDE ensemble at {glue:text}`largest_nsde:.1f` % (chance: {glue:text}`chance:.1f` %).
#
# ## Structured noise: impulses and a narrowband interferer

# %% tags=["hide-input"]
structured = curves[curves["noise"] != "gaussian"]
kinds = list(noise_cfg.structured_kinds)
mode_order = [mode.name for mode in (baseline_mode, control_mode, off_mode, single_mode, ensemble_mode)]
fig, axes = plt.subplots(1, max(len(kinds), 1), figsize=(6 * max(len(kinds), 1), 4.2), squeeze=False)
for ax, kind in zip(axes.flat, kinds):
    accuracy_curves(ax, structured[structured["noise"] == kind], "level", mode_order, chance)
    ax.set(xlabel=f"{kind} noise level (added amplitude, [0, 1] scale)", ylabel="test accuracy", title=kind, ylim=(0, 1.02))
axes.flat[0].legend(fontsize=8, loc="lower left")
fig.suptitle(f"Structured noise: mean and 95 % interval over {ctx.profile.n_seeds} seeds")
fig.tight_layout()
glue_figure("fig_structured_noise", fig)

# %%
structured_verdicts = structured_noise_verdicts(sweep, ensemble_mode.name, baseline_mode.name)
structured_verdicts[["verdict", "effect", "low", "high", "mde", "p_holm"]].style.format(precision=4, na_rep="–").set_caption(
    "NSDE ensemble − ConvNeXt accuracy under structured noise, paired per image within each seed "
    "(exploratory: Holm-adjusted within the family C2 structured noise)")

# %% [markdown]
# ```{glue:figure} fig_structured_noise
# :name: fig-structured-noise
# Accuracy under impulsive and narrowband noise at this build's profile, against the level of each
# noise (mean and 95 % interval over seeds), for every model and mode.
# ```
#
# The NSDE's training noise is injected inside the network, not shaped like stripes or tones in the
# input, so whatever it gains against Gaussian noise need not carry over to structured noise
# ({numref}`fig-structured-noise`). The table gives this build's paired verdict at every level; the
# recorded `paper` run's is at the top of the chapter.
#
# ## Where the robustness comes from: noise in training × noise at test time
#
# The NSDE differs from ConvNeXt twice: it was trained with noise inside the network, and it adds
# that noise again at test time. A 2 × 2 design tells the two apart on the same images, seeds and
# input noise: ConvNeXt, ConvNeXt with the NSDE's noise injected at test time only (its own weights run
# through the NSDE's solver, `nsdelib.models.registry.with_injected_noise`), the NSDE with its noise
# off, and the NSDE as reported (its ensemble). Each effect is paired per image within each seed and
# judged against C2's smallest effect of interest; all rows form one Holm family.

# %%
injected = pd.concat([ctx.injected_noise_sweep(run).assign(model=MODEL_LABELS["convnext"], seed=run.seed)
                      for run in runs["convnext"]], ignore_index=True)
design_sweep = pd.concat([sweep, injected], ignore_index=True)
design = design_table(design_sweep, sde)
design_rows = design_verdicts(design_sweep, sde)
display((100 * design).style.format("{:.1f}").set_caption(
    "Accuracy (%) of the four cells, clean and under Gaussian input noise (mean over seeds)"))
design_rows[["verdict", "effect", "low", "high", "mde", "p_holm"]].style.format(precision=4, na_rep="–").set_caption(
    "The design's effects, paired per image within each seed (exploratory: Holm-adjusted within the family "
    f"{DESIGN_FAMILY})")

# %% tags=["remove-input"]
weights_clean = design_rows.loc[("noise in training (test-time noise off)", 0.0)]
design_top = float(design_rows.index.get_level_values("Gaussian std").max())
glue_all({"design_weights_clean": float(weights_clean["effect"] * 100),
          "design_weights_clean_verdict": weights_clean["verdict"], "design_level": design_top})
for effect, key in {"test-time noise, NSDE": "nsde", "test-time noise, ConvNeXt": "convnext"}.items():
    row = design_rows.loc[(effect, design_top)]
    glue_all({f"design_{key}_noisy": float(row["effect"] * 100), f"design_{key}_noisy_verdict": row["verdict"]})

# %% [markdown]
# On clean inputs, noisy training alone (the NSDE with its noise off against ConvNeXt) changes the
# accuracy by {glue:text}`design_weights_clean:.1f` points ("{glue:text}`design_weights_clean_verdict`").
# At the strongest input noise of the design (std {glue:text}`design_level`), switching the test-time
# noise on changes the NSDE's accuracy by {glue:text}`design_nsde_noisy:.1f` points
# ("{glue:text}`design_nsde_noisy_verdict`") and ConvNeXt's by {glue:text}`design_convnext_noisy:.1f`
# ("{glue:text}`design_convnext_noisy_verdict`"): whatever test-time noise does for a network that
# never trained with it is the second row of each pair.
#
# ## At matched clean accuracy
#
# A model that gives up clean accuracy can buy robustness with it; the fair comparison holds clean
# accuracy fixed. The clean–robust frontier (chapter 8) trains the NSDE at several σ and the control at
# several input-noise stds, several seeds each, at the `paper` scale, one point and seed at a time
# (chapter 8 says how many are recorded). Per seed the control's robust accuracy is interpolated
# along its line of stds, which starts at ConvNeXt (the control at std 0, trained by the same rule),
# to the clean accuracy of the book's NSDE: linearly between the two neighbouring stds whose
# accuracies bracket it, never beyond the line's ends. Where the line reaches that accuracy twice (a
# little input noise can raise the clean accuracy), the noisier crossing counts, a choice made on
# clean accuracy alone. Each test image's outcome is
# interpolated with the same weights, so the difference is judged with seeds and images both random,
# the interpolation weight held fixed, against C2's smallest effect of interest
# (`nsdelib.claims.c2_noise`). It is read from its records, one per point and seed, with the per-image
# outcomes beside each:

# %% tags=["hide-input"]
frontier = load_frontier("paper")
if frontier.empty:
    print(f"No frontier point has been recorded yet: `{FRONTIER_COMMAND}` records them.")
else:
    show_matched_accuracy(frontier, PAPER.model.sde.sigma, "Recorded paper frontier: NSDE − control at the NSDE's "
                          f"clean accuracy, per robustness measure (primary: Gaussian std {C2_STD:g}; the others "
                          "Holm-adjusted)")

# %% tags=["remove-input"]
record_if_enabled(ctx, "noise_robustness", {"accuracy": accuracy.to_dict(orient="list"), "c2": c2_table.reset_index().to_dict(
    orient="list"), "verdict": c2.to_dict(), "by_level": by_level.drop(columns="note").reset_index().to_dict(orient="list"),
    "design": (100 * design).reset_index().to_dict(orient="list"),
    "design_verdicts": design_rows.drop(columns="note").reset_index().to_dict(orient="list")},
                  ctx.seeds, compute, model_digests(runs),
                  outcomes=design_sweep, outcome_keys=["model", "noise", "level", "mode", "seed"])
glue_all({"c2_versus_recorded": fresh_versus_recorded(ctx, "C2", c2)})
record_headline(ctx, "C2", c2, {"noise_std": C2_STD})

# %% [markdown]
# ## The verdict rule, worked on simulated outcomes
#
# Every label in this book comes from one rule, printed in full at the end of the chapter. To see
# what each label means, here are comparisons whose truth is known: per-image right-or-wrong outcomes
# of two models on the same images in every seed, simulated with a seed effect, an image effect and
# binomial noise (`nsdelib.report.outcomes`), and judged exactly as the models above. The first column
# says what each one shows, the comparison its true effect and design.

# %%
examples = verdicts_frame(rule_examples(), "example")
examples[["comparison", "verdict", "effect", "low", "high", "prediction_low", "prediction_high", "reference",
          "reference_kind", "mde", "p_holm"]].style.format(precision=3, na_rep="–")

# %% tags=["remove-input"]
shown = {"sesoi": "reproduced (smallest effect of interest)",
         "paper": "reproduced (the paper's figure inside one run's prediction interval)",
         "differs": "direction holds, size differs", "not_shown": "direction holds, size not shown",
         "weak": "inconclusive, underpowered", "alone": "Holm: the real effect, judged alone",
         "holm": "Holm: the real effect, Holm-adjusted in its family"}
for key, name in shown.items():
    row = examples.loc[name]
    glue_all({**{f"ex_{key}_{column}": float(row[column]) for column in
                 ("low", "high", "reference", "prediction_low", "prediction_high", "mde", "p_value", "p_holm")},
              f"ex_{key}_verdict": row["verdict"], f"ex_{key}_seeds": int(row["n_seeds"]),
              f"ex_{key}_images": int(row["n_pairs"] // row["n_seeds"])})
glue_all({"ex_holm_family": len(HOLM_EXAMPLE), "ex_holm_nulls": len(HOLM_EXAMPLE) - 1})

# %% [markdown]
# How to read the rows:
#
# - **Against a smallest effect of interest the rule is a minimum-effect test.** The first row is
#   "reproduced" because its whole interval lies above the smallest effect of interest (lower bound
#   {glue:text}`ex_sesoi_low:.3f`, reference {glue:text}`ex_sesoi_reference:.3f`). The row "size not
#   shown" has an interval, {glue:text}`ex_not_shown_low:.3f` to {glue:text}`ex_not_shown_high:.3f`,
#   that excludes 0 and reaches {glue:text}`ex_not_shown_reference:.3f` but does not start above it:
#   the direction is shown, an effect of the size that matters is not. A wider interval would reach the
#   reference more easily, which is why reaching it is not enough. "Size differs" lies wholly below it
#   ({glue:text}`ex_differs_low:.3f` to {glue:text}`ex_differs_high:.3f`).
# - **The paper's figure is one run, not a mean.** In the second row the mean's interval,
#   {glue:text}`ex_paper_low:.3f` to {glue:text}`ex_paper_high:.3f`, lies below the paper's
#   {glue:text}`ex_paper_reference:.3f`, but one run of this setup could give anything from
#   {glue:text}`ex_paper_prediction_low:.3f` to {glue:text}`ex_paper_prediction_high:.3f` (the 95 %
#   prediction interval for one run), so the paper's single figure is consistent with it.
# - **Underpowered.** With {glue:text}`ex_weak_seeds` seeds of {glue:text}`ex_weak_images` images,
#   the smallest effect the design detects with 80 %
#   power is {glue:text}`ex_weak_mde:.3f`, above the reference {glue:text}`ex_weak_reference:.3f`:
#   "{glue:text}`ex_weak_verdict`" says more about the design than about the models.
# - **Holm.** The last two rows are the same comparison. Judged alone it is significant (one-sided
#   p = {glue:text}`ex_alone_p_value:.3f`) and reads "{glue:text}`ex_alone_verdict`". In a family with
#   {glue:text}`ex_holm_nulls` comparisons of no effect, Holm's adjustment over all their tests raises
#   its two-sided p-value to {glue:text}`ex_holm_p_holm:.3f`, and it reads "{glue:text}`ex_holm_verdict`":
#   among {glue:text}`ex_holm_family` tries, one as strong as this is not rare enough to count.
#
# ## Summary
#
# - Every model is evaluated on the same noisy images per seed; verdicts pair them image by image.
# - The NSDE is shown in three modes, so that the effect of its noisy training (noise off) and of its
#   test-time noise (one pass, ensemble) can be told apart, and beside a control trained with input
#   noise, which any claimed gain must beat.
# - C2's verdict, its interval and the smallest effect this design could detect are printed above;
#   every other comparison is exploratory, adjusted with Holm's method within its family, and
#   structured noise gets its own paired verdicts.
# - At the paper's scale (recorded), NSDE ensemble − control is {glue:text}`paper_versus_control`.
#   Under structured noise at each noise's largest level, NSDE ensemble − ConvNeXt is
#   {glue:text}`paper_structured_convnext`.
# - The verdict rule is worked above on simulated outcomes, one example per label and flag.
#
# ## Exercises
#
# 1. Compare the NSDE's "noise off" curve with its ensemble curve. Is its robustness a property of
#    the weights it learned, or of the noise it adds at test time?
#
#    ```{admonition} Solution
#    :class: dropdown
#    If the noise-off curve lies on the ensemble curve, the gain (if any) lives in the weights that
#    noisy training produced, and the test-time noise adds nothing; if the ensemble lies above, the
#    test-time noise helps. The `by_level` table holds the paired verdicts of both against ConvNeXt.
#    ```
# 2. *(retrains: minutes at `quick`)* Train the NSDE with a larger σ (chapter 3's first exercise) and
#    repeat the Gaussian sweep. Does more training noise buy more robustness, and at what cost?
#
#    ```{admonition} Solution
#    :class: dropdown
#    The calibration sweep of chapter 3 measured it at the paper's scale (its columns `gaussian_0.05`
#    and `gaussian_0.2`); chapter 8 reads the answer off that record.
#    ```
# 3. Change `impulse_probability` in the profile's noise section. Which matters more for the
#    models, how often impulses come or how strong they are?
#
#    ```{admonition} Solution
#    :class: dropdown
#    `ctx.profile.noise.replace(impulse_probability=...)` and rerun `noise_sweep` through a
#    `SweepTarget`. A hypothesis to test: rarer but stronger stripes leave most frames clean, so
#    models that see whole harmonic lines should survive them better than frequent stripes, which
#    cover the lines themselves.
#    ```
# 4. The verdict rule needs several seeds. With `n_seeds = 1`, what does it say, and why?
#
#    ```{admonition} Solution
#    :class: dropdown
#    "inconclusive": seeds are the unit of replication, and one seed gives no spread, so no interval
#    (a t interval with zero degrees of freedom is infinite). Images within a seed are not
#    independent replicates of the training randomness.
#    ```
#
# The rule behind every verdict in this chapter, as `nsdelib.report.stats` states it:

# %%
print(VERDICT_RULE)
