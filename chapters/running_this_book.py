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

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %%
import pandas as pd

import nsdelib
from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.book.provenance import load_recorded_index, package_versions
from nsdelib.common.artifacts import LIBRARY_FINGERPRINT
from nsdelib.common.devices import device_description

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
        "library fingerprint": LIBRARY_FINGERPRINT,
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
# ## The three profiles
#
# `ci` is what the test suite executes, `quick` is the default build, `paper` is the paper's
# scale. The table lists every field of each profile.

# %%
pd.DataFrame({name: get_profile(name).model_dump() for name in PROFILE_NAMES})

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
# and the library are unchanged, and rebuilt otherwise.
