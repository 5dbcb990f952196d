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
# # Running this book
#
# This page was executed by the same machinery as every other chapter: the runner read its
# jupytext source, papermill injected the parameters below, and `nsdelib.setup` validated them,
# seeded every random generator and chose the device. What it prints is the record of *this*
# build: rebuild the book and the numbers below describe your machine instead.
#
# ```{admonition} On this page
# :class: tip
#
# **You will learn** what a profile, a seed and a device are, which versions and settings this build
# used, which paper-scale results have been recorded, how to rerun one chapter or the whole
# book, locally or on Binder, and how long the paper's computations take on more workers.
#
# **You need** nothing from the chapters.
#
# **Time to run**: seconds at every profile (it only reads settings and files); this build
# ({glue:text}`running_profile` profile) ran it in {glue:text}`running_runtime:.1f` s.
# ```

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %% tags=["remove-input"]
import time

import pandas as pd

import nsdelib
from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.book.projection import (PAPER_TASK_COSTS, chapter_time_table, load_task_costs, projected_wall_times,
                                     recorded_chapter_times)
from nsdelib.book.provenance import artifact_versions, glue_all, load_recorded_index, package_versions
from nsdelib.common import device_description
from nsdelib.common.artifacts import torch_series
from nsdelib.report.tables import settings_table

chapter_start = time.perf_counter()
ctx = nsdelib.setup(profile=profile, seed=seed, device=device)

# %% [markdown]
# ## Profile, seed and device
#
# A profile is one validated config object; the chapters read its fields and never branch on its
# name. These are the values this build ran with.

# %%
pd.Series(
    {
        "profile": ctx.profile.name,
        "what it is for": ctx.profile.description,
        "base seed": ctx.seed,
        "seeds of multi-seed experiments": ctx.seeds,
        "device": device_description(ctx.device),
        "artifact store": str(ctx.store.root),
    },
    name="value",
).to_frame()

# %% [markdown]
# ## Versions
#
# The same versions are written into the provenance of every recorded result. The project's
# `constraints.txt` pins the exact versions the README's commands install.

# %%
pd.Series(package_versions(), name="version").to_frame()

# %% [markdown]
# ## What the artifact store keys on
#
# Data sets, trained models and sweep tables are cached in the artifact store, each keyed by what it
# means: its kind, the kind's version, its config, the digests of its inputs (a sweep keys on the
# weights it evaluates) and torch's major.minor series. Editing a comment, renaming or moving code
# changes no key. The version of a kind is bumped by hand when the code that produces it changes its
# output; `make golden` regenerates the golden outputs that the tests compare against, so a change of
# behaviour without a bump fails `make test`. The versions in force:

# %%
pd.Series(artifact_versions(), name="version").rename_axis("artifact kind").to_frame().assign(torch=torch_series())

# %% [markdown]
# Every recorded result cites the SHA-256 of the weights of each model it used. On a new machine,
# `nsdebook verify --profile paper` retrains (or reads back) those models and compares the digests:
# it exits with status 0 only when every model is bit-for-bit the one the records came from.

# %% [markdown]
# ## The three profiles
#
# `ci` is what the test suite executes, `quick` is the default build, `paper` is the paper's
# scale. The table lists every field of each profile.

# %%
settings_table({}, **{name: get_profile(name).model_dump() for name in PROFILE_NAMES})

# %% [markdown]
# ## Recorded results
#
# Runs too expensive for a book build (the `paper` profile) are recorded under `results/` with
# their provenance. The chapters show them beside the freshly built numbers; this is what has been
# recorded so far.

# %%
load_recorded_index()

# %% [markdown]
# ## Rerunning
#
# From the repository root, `make book` rebuilds everything at the `quick` profile;
# `make book PROFILE=paper SEED=1` rebuilds at another profile or seed; and
# `.venv/bin/nsdebook run ch01_signals --profile ci` executes a single chapter (its executed
# notebook lands in `_build/book/`). Artifacts of earlier chapters are reused when their config
# and the versions of their kinds are unchanged, and rebuilt otherwise.
#
# The chapters are jupytext text sources without outputs. The runner executes each in the registered
# `nsdebook` kernel with the parameters injected, prints what the chapter prints while it runs, and
# writes the executed notebook into a staging copy of the book under `_build/book/`; a chapter must
# declare exactly the three parameters above. Jupyter Book then renders that staging copy without
# executing anything, so the HTML shows exactly the outputs the runner produced, and any Sphinx warning
# fails the build. The notebooks readers download name the standard `python3` kernel and keep the
# parameters the book was built with.
#
# ## The paper's scale on many workers
#
# `nsdebook precompute --profile paper` computes every model and sweep the chapters read as one Dask
# task graph, on this machine, on a cluster started elsewhere or on Slurm jobs (the README shows the
# three commands); `nsdebook build` computes this build's models and sweeps the same way first, then
# runs the chapters as many at a time as it has workers. More workers help
# only as far as the graph allows: a task waits for the model it evaluates, and the longest such
# chain of tasks, the *critical path*, takes as long however many workers there are. The table
# projects the `paper` graph's wall time by simulating workers that each start the first ready task
# of the graph whenever they are free (the order `nsdebook precompute` asks Dask for), from the cost
# of each kind of task in `benchmarks/paper_task_costs.json`; the second table lists those costs and
# where each comes from. `benchmarks/bench_precompute.py` rewrites that file and prints the same
# projection.
#
# The graph holds the very calls the chapters make, which the chapters otherwise make one after
# another in one process: the data set first, then each model (kind and seed), then each evaluation of
# a model once that model is trained. The two settings chapter 7 chooses from every model's results
# (C4's mutation budget and the detectors' noise level) are one task that waits for every attribution
# task, and the ABC tasks wait for it. A task goes to the cluster only when the tasks it needs are done
# and a worker thread is free, and where several are ready the earlier in the graph (the first seed's)
# goes first: handed every ready task at once, as dask does, each worker would run its own share in
# its own order, and a long run would not finish what it needs most first. Each task writes its results to the artifact store (on a cluster, a
# filesystem every worker shares) and returns a line of text for the log, never a model; a task that
# fails is retried twice, and then the tasks that need it are skipped while every other one runs. The
# chapters then read every result back, so the build only renders.
#
# By default the graph runs on a Dask cluster on this machine of one single-threaded worker process
# per usable core (`benchmarks/bench_precompute.py` measures the speed-up of two such workers over one
# on the machine at hand).
# `--scheduler` or `--scheduler-file` connects to a cluster started elsewhere (`dask scheduler` and
# `dask worker` on machines that share the artifact store's filesystem), and `--cluster slurm` submits
# Dask worker jobs with dask-jobqueue. Workers with GPUs advertise a `GPU` resource, so a mixed
# cluster places the work that runs models on them.

# %%
task_costs = load_task_costs(PAPER_TASK_COSTS)
projection = projected_wall_times(PAPER_TASK_COSTS, workers=(2, 16, 64))
projection.round(2)

# %% tags=["remove-input"]
largest = projection.iloc[-1]
glue_all({"projection_largest_workers": int(projection.index[-1]),
          "projection_largest_wall_h": float(largest["projected wall time (h)"]),
          "projection_critical_path_h": float(largest["critical path (h)"])})

# %% [markdown]
# On the largest cluster of the table, {glue:text}`projection_largest_workers` workers, the projected
# wall time is {glue:text}`projection_largest_wall_h:.1f` h against a critical path of
# {glue:text}`projection_critical_path_h:.1f` h; the column *workers busy* is the share of the
# workers' time spent on tasks. The costs are seconds of one single-threaded CPU worker, the
# largest first:

# %%
pd.DataFrame({"seconds": task_costs.seconds, "source": task_costs.sources}).rename_axis("task").sort_values(
    "seconds", ascending=False)

# %% [markdown]
# ## Each chapter's time
#
# The first column is each chapter's wall time in a whole `make book` at `quick` from a fresh clone
# on a CPU with {glue:text}`quick_cores` cores and an empty artifact store (its first row is the models
# and sweeps of chapters 3–8, which `nsdebook build` computes on a local cluster before the chapters run,
# side by side, one per worker: their times add up to more than the build's),
# measured by the runner at commit {glue:text}`quick_commit` and recorded in
# `results/quick/build/chapter_times.json`; every build writes its own to `_build/book/chapter_times.json`. The
# second is the paper graph's work for the chapter from the task costs above, in hours of one
# single-threaded CPU worker: a cluster of *n* workers divides it by up to *n*. Chapter 2 trains
# nothing and reads nothing from the graph.

# %% tags=["remove-input"]
quick_times = recorded_chapter_times("quick") or {"cores": "–", "commit": "(not recorded yet)"}
glue_all({"quick_cores": str(quick_times["cores"]), "quick_commit": quick_times["commit"][:7]})

# %%
chapter_time_table().style.format(precision=2, na_rep="–")

# %% [markdown]
# ## On Binder
#
# Every chapter's *Launch* button (the rocket in the header) starts JupyterLab on
# [mybinder.org](https://mybinder.org) with this repository. Binder installs `environment.yml`, and
# the repository's `postBuild` script then installs `nsdelib`, registers the `nsdebook` kernel and
# turns every chapter into a notebook whose parameters are set to the `ci` profile, the only one a
# Binder machine can run in minutes: run all its cells. To try another profile, change `profile` in
# the notebook's parameters cell, or run the runner in Binder's terminal
# (`nsdebook run ch03_training --profile quick`).
#
# ```{admonition} Profiles are not interchangeable
# :class: caution
#
# Only the `paper` profile is at the paper's scale. The `ci` profile only checks that the code runs.
# `quick` is a miniature of `paper`: the same protocol and verdict rule on fewer and smaller images,
# a narrower ConvNeXt, fewer epochs and smaller evaluation budgets, with σ set by chapter 3's rule
# at its own scale. Its models learn and its curves have points between the extremes, so it can be
# taught from, but its numbers are not estimates of the paper-scale results.
# ```
#
# Every build writes each claim's headline (its profile, seeds, effect, interval and label, with the
# figures behind it) to `_build/book/headline.json`; the glance page, executed last, shows them beside
# the recorded `paper` verdicts. `results/quick/build/headline.json` keeps the default build's copy, and a
# test holds it to what a miniature must show: a ConvNeXt that learns, an NSDE whose noise flips some
# predictions but not most, and attack curves with at least two points strictly between the extremes.
#
# ## Exercise
#
# 1. Rerun chapter 1 at the `ci` profile with seed 1 (`nsdebook run ch01_signals --profile ci --seed 1`)
#    and compare its reference classifier's accuracy with the seed-0 run. Which artifacts were reused?
#
# ```{admonition} Solution
# :class: dropdown
#
# None: the seed is part of the data set's key, so seed 1 draws and stores a new data set (a new
# folder under the artifact store's `dataset/`), and the accuracy differs by the sampling variation
# of a new data set and a new split. Rerunning seed 0 afterwards reads its data set back.
# ```
#
# ## Summary
#
# - A build is fixed by its profile, its seed, its device and the versions listed above; every
#   recorded result stores the same information.
# - Single chapters can be rerun at any profile, locally or on Binder; expensive artifacts are reused
#   only when their config and code are unchanged.

# %% tags=["remove-input"]
glue_all({"running_profile": ctx.profile.name, "running_runtime": time.perf_counter() - chapter_start})
