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
# # Results at a glance
#
# What the book concludes about each of the paper's five claims, in one table, at the paper's
# scale: read this page first, then follow a row's link to the chapter that tests the claim.
#
# ```{admonition} On this page
# :class: tip
#
# **You will learn** this book's verdict on each claim of {cite:t}`brogan2024nsde` at the `paper`
# profile, how sure each verdict is (its interval and the smallest effect the design could detect),
# where each number was recorded, and how the book's setup differs from the paper's.
#
# **You need** nothing from the chapters: the introduction lists the claims, and this page only
# reads the results that the chapters record.
#
# **Time to run**: this page only reads files, so it takes seconds at every profile; this build
# ({glue:text}`glance_profile` profile) ran it in {glue:text}`glance_runtime:.1f` s.
# ```

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %% tags=["remove-input"]
import time

import pandas as pd
from IPython.display import Markdown

import nsdelib
from nsdelib.book.profiles import get_profile
from nsdelib.book.adversarial_records import load_claim_record
from nsdelib.book.headline import headline_beside_recorded, this_build_headline
from nsdelib.book.precompute import FRONTIER_COMMAND
from nsdelib.book.provenance import glue_all, load_frontier, load_recorded, provenance_warnings
from nsdelib.claims.c2_noise import matched_accuracy_verdicts
from nsdelib.book.glance import (
    NOT_RECORDED,
    claims_at_a_glance,
    findings_at_a_glance,
    glance_markdown,
    provenance_table,
    setup_differences,
)
from nsdelib.report.stats import VERDICT_RULE

chapter_start = time.perf_counter()
ctx = nsdelib.setup(profile=profile, seed=seed, device=device)
pd.set_option("display.max_colwidth", None)

# %% [markdown]
# ## The five claims
#
# One row per claim: the paper's figure, this book's effect at the `paper` profile with its 95 %
# interval (seeds and images both random), the label the verdict rule gives the claim's primary
# comparison, flagged "underpowered" where the design could not be expected to detect the reference,
# whether the paper's single figure is consistent with one run of this setup (its 95 % prediction
# interval for one run), the reference the rule compares with (the paper's own figure for the effect,
# or the claim's smallest effect of interest), the minimum detectable effect (MDE, the true effect
# the design detects with 80 % power), the seeds, and the chapter that tests it. Effects are oriented
# so that positive is the direction the paper claims. A result recorded under an earlier version of
# the rule is judged again by today's rule from what it stores.

# %% tags=["remove-input"]
glance = claims_at_a_glance(load_claim_record, provenance_warnings)
warned = glance["recorded"] & (glance["status"] != "clean commit, current code")
glue_all({"glance_table": Markdown(glance_markdown(glance)), "glance_recorded": int(glance["recorded"].sum()),
          "glance_claims": len(glance), "glance_warned": int(warned.sum()), "glance_not_recorded": NOT_RECORDED,
          "verdict_rule": VERDICT_RULE})

# %% [markdown]
# ```{glue:md} glance_table
# :format: myst
# ```
#
# {glue:text}`glance_recorded` of the {glue:text}`glance_claims` claims have a recorded `paper`
# result. A row that reads "{glue:text}`glance_not_recorded`" names the command that records it
# (it trains and evaluates at the paper's scale; each record states how long it took, and on what). C5 is judged at every perturbation
# level of chapter 6; the row shows the largest, where chapter 6 states its headline, and chapter 6
# gives the others. Only these primary comparisons are shown here: every other row of the chapters
# (noise levels, attacks, budgets, controls, training sizes) is exploratory and adjusted for
# multiplicity within its family. The effects are measured as follows (the units of the interval and
# the MDE):

# %% tags=["hide-input"]
glance[["statement", "effect judged (positive = claimed)"]]

# %% [markdown]
# ## This build beside the record
#
# Every chapter also judges its claim at the profile this book is built with (here
# {glue:text}`glance_profile`, on {glue:text}`glance_fresh_seeds` seeds), on its own smaller models and
# fewer images. Its verdicts sit beside the recorded `paper` ones; a label that differs comes from that
# smaller scale (wider intervals, weaker models), and the chapter that tests the claim shows both.

# %% tags=["remove-input"]
fresh = this_build_headline()
fresh_seeds = {len(entry["seeds"]) for entry in (fresh or {}).get("claims", {}).values()}
glue_all({"glance_fresh_seeds": ", ".join(map(str, sorted(fresh_seeds))) or "no"})
headline_beside_recorded(fresh, glance)

# %% [markdown]
# ```{admonition} The verdict rule
# :class: dropdown
#
# {glue:text}`verdict_rule`
# ```
#
# ## The book's own findings
#
# Two comparisons the paper does not make and a reviewer asks for first. The NSDE against the control
# trained with input noise **at matched clean accuracy**, along the clean–robust frontier of
# {doc}`chapter 8 <ch08_open_questions>` (primary measure: Gaussian noise at the paper's std); and
# **where the NSDE's robustness comes from**, the 2 × 2 design of {doc}`chapter 4 <ch04_noise_robustness>`
# (noise in training × noise at test time; its rows are Holm-adjusted within their family).

# %% tags=["remove-input"]
frontier = load_frontier("paper")
matched = None if frontier.empty else matched_accuracy_verdicts(frontier.points, frontier.outcomes,
                                                                get_profile("paper").model.sde.sigma)
findings_at_a_glance(matched, load_recorded("noise_robustness"), FRONTIER_COMMAND).style.format(precision=3, na_rep="–")

# %% [markdown]
# ## Where each row comes from
#
# Every recorded result carries its provenance: the full commit it was recorded from (with
# `-dirty` when the work tree had uncommitted changes), the date, the device and the wall time.
# The status says whether that commit alone reproduces it and whether the code that produced it has
# changed since.

# %% tags=["hide-input"]
provenance_table(glance).style.format(precision=1, na_rep="–")

# %% [markdown]
# ```{admonition} Reading a warning
# :class: caution
#
# {glue:text}`glance_warned` of the recorded rows carry a warning. A result recorded from a dirty
# work tree, with artifact versions other than this build's, or without model digests may not be
# what the current code produces: treat its verdict as provisional until it is recorded again from
# a clean commit.
# ```
#
# ## How this book's setup differs from the paper's
#
# The paper's data set is private and it leaves most settings unreported, so the book had to choose
# them (every choice is a field of the profile). On the left what the paper states, on the right the
# book's `paper` profile, read from the profile itself:

# %% tags=["hide-input"]
setup_differences(get_profile("paper"))

# %% [markdown]
# ```{admonition} Comparing with the paper
# :class: caution
#
# The data set is a simulation, not the paper's recordings, so accuracies are not comparable
# number for number: the book judges each claim on an *effect*, a difference between two models on
# the same images, and compares that with the paper's difference. The paper reports single runs;
# the book repeats every model behind a claim over several seeds, which is what the intervals and the MDE rest on.
# ```
#
# This page reads only the recorded `paper` results. Each chapter also runs its experiment at the
# profile the book is built with (here {glue:text}`glance_profile`) and shows that fresh run beside
# the recorded one, as the check that the code still produces what was recorded.
#
# ## Exercise
#
# 1. A claim's MDE is larger than the paper's effect (its row is flagged "underpowered"). What
#    verdict do you expect, even if the claim is true, and what would you change to get a more
#    informative one?
#
# ```{admonition} Solution
# :class: dropdown
#
# With 80 % power the design only detects effects of at least the MDE, so an effect the size of the
# paper's is likely to leave an interval that covers both 0 and the paper's figure: the verdict
# will most often be "inconclusive", whatever the truth. The MDE shrinks with the standard error of
# the per-seed effects, so more seeds (the `n_seeds` field of the profile) or more test images per
# seed (the subset sizes of the evaluations) make the verdict more informative.
# ```
#
# ## Summary
#
# - The table above gives, for each claim, the paper's figure, the book's effect with its interval,
#   the verdict of its primary comparison with its underpowered flag, whether the paper's single run
#   is consistent with this setup, and the MDE, from the recorded `paper` results; a claim not yet
#   recorded says so and names the command that records it.
# - Every row shows where it was recorded and warns when its commit was dirty or its code has changed.
# - The setup comparison lists every setting the book had to choose because the paper does not report it.

# %% tags=["remove-input"]
glue_all({"glance_profile": ctx.profile.name, "glance_runtime": time.perf_counter() - chapter_start})
