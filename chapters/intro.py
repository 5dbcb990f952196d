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
# # Neural SDEs for robust spectrogram classifiers
#
# This book is an open, executable reproduction of {cite:t}`brogan2024nsde`,
# *Improving Robustness of Spectrogram Classifiers with Neural Stochastic Differential Equations*.
# The paper turns a ConvNeXt {cite:p}`liu2022convnext` into a Neural
# stochastic differential equation (NSDE) {cite:p}`liu2020neuralsde` by injecting noise into its
# residual connections during training, and reports that the resulting classifier of
# power-line spectrograms is more robust to noise and to adversarial attacks, and explains itself
# more reliably, at a small cost in clean accuracy.
#
# Every number in this book is computed when the book is built, by the chapters you are reading,
# through the small library `nsdelib` that sits beside them, or read from the recorded `paper`-scale
# runs, labelled as such. Nothing is typed in by hand except the paper's own figures, which come from
# one place (`nsdelib.report.paper`) and are always labelled as the paper's.
#
# ```{admonition} In this book
# :class: tip
#
# **You will learn** what the paper claims and how each claim is tested: an open data set of
# power-line spectrograms (chapter 1), the Neural SDE behind the method (chapter 2), training the
# models (chapter 3), their robustness to noise and to attacks (chapters 4 and 5), the stability of
# their explanations and Attribution-Based Confidence (chapters 6 and 7), and the questions the
# paper leaves open (chapter 8). The verdicts are collected on the {doc}`glance` page.
#
# **You need** Python and some deep learning (convolutional networks, training with a loss and an
# optimiser); the stochastic calculus is introduced from scratch in chapter 2, and every symbol is
# listed on the {doc}`notation` page.
#
# **Time to run**: this page takes seconds at every profile; this build
# ({glue:text}`intro_profile` profile) ran it in {glue:text}`intro_runtime:.1f` s. Each chapter
# states its own time at the top; the whole book at `quick` takes minutes on a laptop CPU, at
# `paper` hours (see {doc}`running_this_book`).
# ```
#
# The cell below is the parameters cell that every chapter has: the *profile* sets the scale
# (`ci` seconds, `quick` minutes, `paper` the paper's scale), the *seed* makes every random draw
# repeatable, and the *device* picks where the tensors live.

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %% tags=["remove-input"]
import time

import pandas as pd

import nsdelib
from nsdelib.book.provenance import glue_all
from nsdelib.report.paper import PAPER_SETUP, claims_table

chapter_start = time.perf_counter()
ctx = nsdelib.setup(profile=profile, seed=seed, device=device)
pd.set_option("display.max_colwidth", None)

# %% [markdown]
# ## What the paper claims
#
# The paper's data set is private ({glue:text}`intro_paper_data`) and no code was
# published. These are the claims it makes, with
# the figures it gives; each chapter tests one of them and states whether it holds here. The
# {doc}`glance` page that follows this one collects the verdicts at the paper's scale.

# %%
claims_table()

# %% [markdown]
# ## What this book adds
#
# - **Open data.** {doc}`Chapter 1 <ch01_signals>` builds a physically motivated, seeded stand-in for the private data
#   set: harmonic and switching sources injected into a multipath building-wiring channel
#   {cite:p}`zimmermann2002multipath`, turned into spectrograms. Anyone can regenerate it bit for bit.
# - **The method, explicit.** {doc}`Chapter 2 <ch02_nsde_theory>` derives the NSDE from the residual network
#   {cite:p}`he2016resnet,haber2017stable,chen2018neuralode`, checks the numerics against
#   `torchsde` {cite:p}`li2020scalable`, and builds both models from the same timm network
#   {cite:p}`wightman2019timm`.
# - **Honest robustness.** Attacks on a stochastic model are run with and without Expectation over
#   Transformation {cite:p}`athalye2018eot,athalye2018obfuscated`, since noise can mask gradients
#   and overstate robustness {cite:p}`croce2020apgd`.
# - **Attributions and confidence.** Integrated Gradients {cite:p}`sundararajan2017ig`, SmoothGrad
#   {cite:p}`smilkov2017smoothgrad` and Attribution-Based Confidence {cite:p}`jha2019abc`, implemented
#   exactly as published and checked on a model whose answer is known.
# - **Beyond the paper.** Several seeds with intervals instead of single runs; a control trained with
#   input noise beside every comparison; where the NSDE's robustness comes from (noise in training
#   against noise at test time); ABC as a detector of wrong predictions; and, in
#   {doc}`chapter 8 <ch08_open_questions>`, the cost and gain of the noise along σ, the clean–robust
#   frontier at matched clean accuracy, and how much training data each model needs (each as far as
#   its `paper` runs are recorded).
#
# ```{admonition} Where the book departs from the paper
# :class: caution
#
# The data set is an open simulation rather than the paper's recordings, and every setting the paper
# does not report (image size, ConvNeXt variant, σ and the form of the noise, training schedule,
# attack budgets) is the book's own choice, stated where it is made. The {doc}`glance` page lists
# them side by side with what the paper reports.
# ```
#
# ## How to read and rerun it
#
# Start with the {doc}`glance` page for the verdicts, then read the numbered chapters in order: each
# one uses the artifacts (data set, trained models, sweeps) of the ones before it, and rebuilds them
# if they are missing. Every chapter opens with what it teaches, what it needs and how long it runs,
# and closes with a summary and exercises (their solutions fold out; those that retrain a model say
# so). The rendered pages show outputs of the `quick` profile; where a `paper`-scale run was too
# expensive for the build, its recorded results are shown beside them, labelled with their
# provenance (commit, date, device, wall time, seeds). {doc}`running_this_book` lists the exact
# versions and settings of this build, and the project's README gives the two commands that rebuild
# the book and run its tests, and how to rerun one chapter at another profile or seed.
#
# ## Summary
#
# - The paper makes five claims (C1–C5); the book tests each in its own chapter with several seeds
#   and a stated verdict rule, on an open data set, and shows the verdicts on the {doc}`glance` page.
# - Every number is computed by the chapters; the paper-scale runs are recorded with their provenance.
#
# ```{tableofcontents}
# ```

# %% tags=["remove-input"]
glue_all({"intro_profile": ctx.profile.name, "intro_runtime": time.perf_counter() - chapter_start,
          "intro_paper_data": PAPER_SETUP["data"]})
