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
# through the small library `nsdelib` that sits beside them. Nothing is typed in by hand except
# the paper's own figures, which come from one place (`nsdelib.paper`) and are always labelled as
# the paper's.
#
# The cell below is the parameters cell that every chapter has: the *profile* sets the scale
# (`ci` seconds, `quick` minutes, `paper` the paper's scale), the *seed* makes every random draw
# repeatable, and the *device* picks where the tensors live.

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %%
import nsdelib
from nsdelib.report.paper import claims_table

ctx = nsdelib.setup(profile=profile, seed=seed, device=device)

# %% [markdown]
# ## What the paper claims
#
# The paper's data set (simulated harmonic signals injected into a real building's wiring,
# 10,000 spectrograms) is private and no code was published. These are the claims it makes, with
# the figures it gives; each chapter tests one of them and states whether it holds here.

# %%
claims_table()

# %% [markdown]
# ## What this book adds
#
# - **Open data.** Chapter 1 builds a physically motivated, seeded stand-in for the private data
#   set: harmonic and switching sources injected into a multipath building-wiring channel
#   {cite:p}`zimmermann2002multipath`, turned into spectrograms. Anyone can regenerate it bit for bit.
# - **The method, explicit.** Chapter 2 derives the NSDE from the residual network
#   {cite:p}`he2016resnet,haber2017stable,chen2018neuralode`, checks the numerics against
#   `torchsde` {cite:p}`li2020scalable`, and builds both models from the same timm network
#   {cite:p}`wightman2019timm`.
# - **Honest robustness.** Attacks on a stochastic model are run with and without Expectation over
#   Transformation {cite:p}`athalye2018eot,athalye2018obfuscated`, since noise can mask gradients
#   and overstate robustness {cite:p}`croce2020apgd`.
# - **Attributions and confidence.** Integrated Gradients {cite:p}`sundararajan2017ig`, SmoothGrad
#   {cite:p}`smilkov2017smoothgrad` and Attribution-Based Confidence {cite:p}`jha2019abc`, implemented
#   exactly as published and checked on a model whose answer is known.
# - **Beyond the paper.** Several seeds with intervals instead of single runs; white, coloured,
#   Brownian and attribution-shaped noise {cite:p}`jha2021smoother,jha2022shaping` compared; ABC as a
#   detector of wrong predictions.
#
# ## How to read and rerun it
#
# Read the chapters in order: each one uses the artifacts (data set, trained models, sweeps) of
# the ones before it, and rebuilds them if they are missing. The rendered pages show outputs of the
# `quick` profile; where a `paper`-scale run was too expensive for the build, its recorded
# results are shown beside them, labelled with their provenance (commit, date, device, wall time,
# seeds). The chapter *Running this book* lists the exact versions and settings of this build, and
# the project's README gives the two commands that rebuild the book and run its tests, and how to
# rerun one chapter at another profile or seed.
#
# ```{tableofcontents}
# ```
