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
# # Signals in the wiring: an open data set of power-line spectrograms
#
# The paper trains its classifiers on "simulated harmonic signals injected into a real building":
# electromagnetic waveforms travelling through a building's wiring, recorded, and turned into
# 10,000 spectrograms with a short-time Fourier transform {cite:p}`brogan2024nsde`. Recognising what
# is connected to a power line from what it leaves on the line is the idea of non-intrusive load
# monitoring {cite:p}`hart1992nilm`. The paper's recordings are private, so this chapter builds an
# open stand-in that anyone can regenerate bit for bit from a seed, and that keeps the physics
# that makes the task hard: sources that resemble each other, wiring that colours what they emit,
# and a line full of other people's noise.
#
# We listen where a power-line coupler listens: from a few kHz to 500 kHz, sampled at 1 MHz. This
# band holds the *supraharmonic* emissions of power electronics (2–150 kHz and above)
# {cite:p}`ronnberg2017supraharmonics` and the narrowband power-line communication of smart meters
# {cite:p}`itu2017g3plc`. Each sample is one recording of a few milliseconds:
#
# $$
# r(t) = (c * s)(t) + u(t) + \eta_\mathrm{bg}(t) + \eta_\mathrm{imp}(t),
# $$
#
# an injected source $s$ passed through the wiring's impulse response $c$ (the *channel*), plus what
# is left of the mains $u$ after the coupler, coloured background noise $\eta_\mathrm{bg}$ and
# impulsive noise $\eta_\mathrm{imp}$. Every part is drawn afresh for every sample. The symbols of the
# whole book are collected on the {doc}`notation` page.
#
# ```{admonition} In this chapter
# :class: tip
#
# **You will learn** how the book's open data set is made: eight kinds of sources, the multipath
# wiring and the power-line noise they pass through, the spectrogram that turns a record into an
# image, and how hard the resulting task is for a simple reference classifier.
#
# **You need** nothing from earlier chapters.
#
# **Time to run**: this build ({glue:text}`ch1_profile` profile) ran the chapter in
# {glue:text}`ch1_runtime:.0f` s, most of it building the data set of {glue:text}`n_samples:,.0f`
# spectrograms (or reading it back from the artifact store). At `paper` the chapter builds
# {glue:text}`paper_samples:,.0f` spectrograms of {glue:text}`paper_rows`×{glue:text}`paper_cols`
# pixels once, which takes minutes on a CPU (`benchmarks/bench_dataset.py` times it); later runs
# read them back in seconds.
# ```
#
# ```{admonition} Where this departs from the paper
# :class: caution
#
# The paper's spectrograms are recordings of signals injected into one real building; the book's are
# simulated, with a new building drawn for every sample. The paper publishes neither its classes nor
# its sampling rate, STFT settings or image size, so every such choice here is the book's own (the
# tables of this chapter list them), and the difficulty knobs are set so that the ConvNeXt's clean
# accuracy at the `paper` profile falls in the book's band around the paper's reported accuracy (chapter 3). Accuracies can therefore
# be compared with the paper's in kind, not number for number.
# ```

# %% tags=["parameters"]
profile = "quick"
seed = 0
device = "auto"

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from myst_nb import glue

import nsdelib
from nsdelib.book.profiles import get_profile
from nsdelib.common import generator
from nsdelib.data import wiring
from nsdelib.data.dataset import record_examples, sample_table
from nsdelib.data.dsp import strongest_window
from nsdelib.data.reference import accuracy_by_snr, logistic_baseline
from nsdelib.data.signals import class_table
from nsdelib.data.wiring import background_noise, draw_channel
from nsdelib.report.paper import PAPER_VALUES
from nsdelib.report.plotting import show_spectrogram, spectrogram_grid

chapter_start = time.perf_counter()
ctx = nsdelib.setup(profile=profile, seed=seed, device=device)
sns.set_theme(style="whitegrid", context="notebook")
pd.set_option("display.max_colwidth", None)
config = ctx.profile.data
paper_data = get_profile("paper").data
glue("ch1_profile", ctx.profile.name, display=False)
glue("paper_samples", paper_data.n_samples, display=False)
glue("paper_rows", paper_data.image_rows, display=False)
glue("paper_cols", paper_data.image_cols, display=False)

# %% [markdown]
# ## The sources
#
# Eight classes of injected waveform each stand for a real kind of emitter on a building's low-voltage
# wiring. Power supplies, LED drivers and ballasts switch at tens to hundreds of kHz and leave
# *combs* of harmonics; motor drives and dimmers leave *transients* that ring in the resonances of
# cables and filters; arcs leave broadband bursts; communication leaves bands of carriers; an
# impedance analyser leaves a sweep. Sources powered from the mains follow its 50 or 60 Hz cycle:
# their ripple, their switching frequency and their firing instants are all driven by the same
# mains phase that the wiring carries.
#
# Every parameter is drawn at random for every sample from a *typical* range, widened towards an
# *extreme* range by the knob `class_overlap` ({glue:text}`overlap:.2f` in this profile). At 0 the
# classes keep their textbook values; at 1 a supply with a 50 % duty cycle has lost its even
# harmonics and looks like a ballast, a sweep that barely moves looks like a single harmonic, and
# a motor drive with a slow carrier fires as rarely as a dimmer. The table lists every class, the
# source it stands for, its waveform model and the ranges of its parameters.

# %%
glue("overlap", config.class_overlap, display=False)
class_table(overlap=config.class_overlap)

# %% [markdown]
# {numref}`fig-ch1-sources` shows one clean waveform of each class, before it enters the wiring.

# %% tags=["hide-input"]
examples = record_examples(config, ctx.seed)
t_ms = np.arange(config.record_samples) / config.sample_rate_hz * 1e3
span = int(200e-6 * config.sample_rate_hz)
fig, axes = plt.subplots(len(examples), 2, figsize=(11, 1.25 * len(examples)), sharex="col")
fig.subplots_adjust(left=0.16, right=0.98, top=0.96, bottom=0.06, hspace=0.15, wspace=0.12)
for row, (name, rec) in enumerate(examples.items()):
    wave = rec.source[0].numpy()
    start = strongest_window(rec.source[0], span)
    axes[row, 0].plot(t_ms, wave, lw=0.4, color="C0")
    axes[row, 0].axvspan(t_ms[start], t_ms[start + span - 1], color="C1", alpha=0.3)
    axes[row, 1].plot(t_ms[start : start + span] - t_ms[start], wave[start : start + span], lw=0.8, color="C0")
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
axes[-1, 0].set_xlabel("time (ms)")
axes[-1, 1].set_xlabel("time from the start of the shaded window (ms)")
axes[0, 0].set_title("whole record (shaded: the window on the right)")
axes[0, 1].set_title("the strongest 200 µs")
glue("fig_ch1_sources", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_ch1_sources
# :name: fig-ch1-sources
#
# One clean waveform of each class before it enters the wiring (unit mean power, arbitrary units):
# the whole record on the left, and on the right the 200 µs in which it is strongest (shaded on the
# left).
# ```
#
# Look at the left column for the envelopes (the ripple of the supply and the ballast at twice the
# mains frequency, the single step of the dimmer, the bursts of the arc and of the communication
# frame) and at the right column for the fine structure (the pulse train of the supply against the
# square wave of the ballast, the ringing of a motor-drive edge or of the dimmer's filter).

# %% [markdown]
# ## The building's wiring
#
# Between the injection point and the coupler, the signal travels along a direct path and along
# echoes reflected from the open or loaded ends of branches. The multipath model of
# {cite:t}`zimmermann2002multipath` writes the wiring's frequency response, at frequency $\nu$, as
#
# $$
# C(\nu) = \sum_{i=1}^{N_\mathrm{p}} \rho_i \, e^{-(a_0 + a_1 \nu^\kappa)\, d_i} \, e^{-\mathrm{j} 2 \pi \nu d_i / v},
# $$
#
# with $N_\mathrm{p}$ paths of lengths $d_i$ and weights $\rho_i$ (products of the transmission and
# reflection factors met along the way), a cable loss that grows with frequency, and the propagation
# speed $v$ (the speed of light divided by the square root of the insulation's relative permittivity)
# = {glue:text}`speed:.2f` × 10⁸ m/s. Each sample gets its own
# building: a direct path of {glue:text}`direct_min:.0f`–{glue:text}`direct_max:.0f` m, up to
# {glue:text}`branches:.0f` branches of {glue:text}`branch_min:.0f`–{glue:text}`branch_max:.0f` m
# and {glue:text}`echoes:.0f` echoes per branch, each bounce weighted by the reflection factor of
# the branch's end and of the junction it comes back through. The weights
# are scaled so that $\sum_i |\rho_i| \le 1$: the wiring is passive, and $|C(\nu)| \le 1$ at every
# frequency whatever the phases. The knob `channel_variability` ({glue:text}`variability:.2f` here)
# scales the echoes; at 0 only the direct path's gentle low-pass is left.
#
# The noise follows measurements of power lines {cite:p}`zimmermann2002impulsive`: a background
# whose power spectral density falls exponentially from the low kHz to a flat floor, a few AM
# broadcast carriers, and impulses at random instants that ring in the wiring's resonances. A
# share `impulsive_share` ({glue:text}`impulsive:.2f` here) of the noise power is impulsive. The
# noise has unit power in every record, and the source's level after the wiring is set to the
# sample's signal-to-noise ratio, drawn uniformly between {glue:text}`snr_low:.0f` and
# {glue:text}`snr_high:.0f` dB:
#
# $$
# \mathrm{SNR} = 10 \log_{10} \frac{\overline{(c * s)^2}}{\overline{(\eta_\mathrm{bg} + \eta_\mathrm{imp})^2}} .
# $$
#
# The mains (50 or 60 Hz with odd harmonics from other loads,
# {glue:text}`mains_low:.0f`–{glue:text}`mains_high:.0f` dB above the noise after the coupler's
# high-pass) is not counted as noise: its 50 Hz swing is so slow that only the leakage of the STFT
# window reaches the spectrogram, as a bright lowest row that says nothing about the class.

# %%
for name, value in {
    "speed": wiring.PROPAGATION_SPEED_M_S / 1e8, "branches": wiring.MAX_BRANCHES, "echoes": wiring.ECHOES_PER_BRANCH,
    "direct_min": wiring.DIRECT_LENGTH_M[0], "direct_max": wiring.DIRECT_LENGTH_M[1],
    "branch_min": wiring.BRANCH_LENGTH_M[0], "branch_max": wiring.BRANCH_LENGTH_M[1],
    "mains_low": wiring.MAINS_LEVEL_DB[0], "mains_high": wiring.MAINS_LEVEL_DB[1],
}.items():
    glue(name, value, display=False)
glue("variability", config.channel_variability, display=False)
glue("impulsive", config.impulsive_share, display=False)
glue("snr_low", config.snr_db_range[0], display=False)
glue("snr_high", config.snr_db_range[1], display=False)

# %% tags=["hide-input"]
freqs = torch.linspace(0, config.sample_rate_hz / 2, 1001)
channels = draw_channel(5, config.channel_variability, generator(ctx.seed, "figure", "channels"))
direct_only = draw_channel(1, 0.0, generator(ctx.seed, "figure", "channels"))
noise = background_noise(3, config.record_samples, config.sample_rate_hz, generator(ctx.seed, "figure", "noise"))
noise_levels = 10 * torch.log10(config.power(noise).mean(-1))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
for i, response in enumerate(channels.response(freqs)):
    axes[0].plot(freqs / 1e3, 20 * torch.log10(response.abs()), lw=1.2, label=f"building {i + 1}")
axes[0].plot(freqs / 1e3, 20 * torch.log10(direct_only.response(freqs)[0].abs()), "k--", lw=1.2,
             label="direct path only")
axes[0].set(xlabel="frequency ν (kHz)", ylabel="|C(ν)| (dB)", title="Wiring: five random buildings")
axes[0].legend(fontsize="small", ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
bin_freqs = torch.arange(1, config.n_fft // 2 + 1) * config.sample_rate_hz / config.n_fft
for i, levels in enumerate(noise_levels):
    axes[1].plot(bin_freqs / 1e3, levels, lw=1.0, label=f"record {i + 1}")
axes[1].set(xlabel="frequency (kHz)", ylabel="level per STFT bin (dB re noise power)",
            title="Background noise of three records")
axes[1].legend(fontsize="small")
glue("fig_ch1_wiring", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_ch1_wiring
# :name: fig-ch1-wiring
#
# Left: the frequency response $|C(\nu)|$ of the wiring in five randomly drawn buildings, and of the
# direct path alone (dashed). Right: the level of the background noise per STFT bin in three records.
# ```
#
# In {numref}`fig-ch1-wiring`, on the left, every curve stays below 0 dB (the wiring only
# attenuates), falls with frequency (the cable loss), and the echoes carve ripples and notches whose
# spacing $v / \Delta d$ depends on the difference $\Delta d$ of path lengths; without echoes
# (dashed) the response is a smooth slope. On the right, the background noise of each record is
# strongest in the lowest tens of kHz and flat above (0 dB would be white noise of the same power);
# the narrow peaks are broadcast carriers, different in every record.
#
# ## From waveform to spectrogram
#
# {numref}`fig-ch1-chain` follows one recording of a PFC LED driver through the chain: the injected
# source, what the wiring delivers at the sample's SNR, and what the coupler records.

# %% tags=["hide-input"]
rec = record_examples(config, ctx.seed, per_class=1)["pfc_led_driver"]
stages = {
    "injected source": rec.source * rec.signal.square().mean().sqrt(),
    "after the wiring": rec.signal,
    "recorded: + noise + mains": rec.received,
}
fig, axes = plt.subplots(2, 3, figsize=(12, 6), layout="constrained")
for col, (title, wave) in enumerate(stages.items()):
    axes[0, col].plot(t_ms, wave[0].numpy(), lw=0.3)
    axes[0, col].set(title=title, xlabel="time (ms)")
    drawn = show_spectrogram(axes[1, col], config.image(wave)[0], config.freqs_hz(), config.times_s())
axes[0, 0].set_ylabel("waveform")
fig.colorbar(drawn, ax=axes[1, :], shrink=0.8, label="image value")
glue("example_snr", float(rec.snr_db[0]), display=False)
glue("fig_ch1_chain", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_ch1_chain
# :name: fig-ch1-chain
#
# One PFC LED driver from source to record: the waveform (top) and its spectrogram (bottom) as
# injected, after the wiring, and as recorded with the noise and the mains.
# ```
#
# In the waveforms (top) the recorded signal is dominated by the slow swing of the mains and the
# source is invisible; in the spectrograms (bottom) the mains is reduced to the bright lowest row and
# the source's curved comb stands out of the noise at this sample's SNR of
# {glue:text}`example_snr:.1f` dB. The curve is physics: the switching frequency of a
# critical-conduction PFC stage falls as the mains voltage rises.
#
# The spectrogram is the STFT of the record with a periodic Hann window. The power in each bin is
# divided by the window's energy, so that white noise of unit power reads 0 dB in every bin: the
# decibel scale is relative to the noise power, which the wiring fixes at one. The DC bin is
# dropped (the coupler blocks it) and bins and frames are averaged in power down to the image
# size. The image value is the level mapped linearly from a *fixed* range of decibels to [0, 1]
# and clipped,
#
# $$
# x_{\nu t} = \operatorname{clip}\!\left(
#   \frac{10 \log_{10} \Phi_{\nu t} - L_\mathrm{low}}{L_\mathrm{high} - L_\mathrm{low}},\, 0,\, 1\right),
# $$
#
# where $\Phi_{\nu t}$ is the power in the cell of frequency row $\nu$ and time frame $t$, and
# $L_\mathrm{low}$, $L_\mathrm{high}$ are the levels mapped to 0 and 1.
#
# A fixed range keeps the meaning of a pixel across the data set. Later chapters add Gaussian
# noise of standard deviation {glue:text}`c2_std:g` (the paper's noise intensity) to the images and
# attack them within [0, 1]; on this scale {glue:text}`c2_std:g` is {glue:text}`db_per_005:.0f` dB in
# every pixel of every image, whereas a per-image
# min–max scaling would give the same number a different meaning in each image. The settings:

# %%
c2_std = PAPER_VALUES["C2.noise_intensity"]
glue("c2_std", c2_std, display=False)
glue("db_per_005", c2_std * (config.level_range_db[1] - config.level_range_db[0]), display=False)
pd.Series(config.describe_image(), name="setting").to_frame()

# %% [markdown]
# ## The data set
#
# The data set draws {glue:text}`n_samples:,.0f` samples in this profile
# ({glue:text}`per_class:,.0f` per class; {glue:text}`paper_samples:,.0f` at the `paper` profile,
# like the paper's), splits each class 70/15/15 into training, validation and test sets, and stores
# the result in the artifact store, keyed by its config and the seed: the next chapter reads it back
# instead of rebuilding it, and any change of knob, seed or library rebuilds it.

# %%
data = ctx.data
samples = sample_table(data)
glue("n_samples", len(samples), display=False)
glue("per_class", config.samples_per_class, display=False)
samples.groupby(["class", "split"]).size().unstack("split").loc[data.class_names, ["train", "val", "test"]]

# %% [markdown]
# {numref}`fig-ch1-grid` shows five test images of every class, ordered from the highest SNR to the
# lowest.

# %% tags=["hide-input"]
picks, titles = [], []
for label, name in enumerate(data.class_names):
    members = torch.nonzero(data.test.y == label).squeeze(1)
    members = members[torch.argsort(data.test.snr_db[members], descending=True)]
    chosen = members[torch.linspace(0, len(members) - 1, 5).round().long()]
    picks.append([data.test.x[i] for i in chosen])
    titles.append([f"SNR {round(float(data.test.snr_db[i]))} dB" for i in chosen])
fig = spectrogram_grid(picks, data.freqs_hz, data.times_s, data.class_names, titles=titles)
glue("fig_ch1_grid", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_ch1_grid
# :name: fig-ch1-grid
#
# Five test spectrograms of every class (rows), from the highest SNR (left) to the lowest (right).
# ```
#
# Each row shows its class's signature fading into the noise from left to right: horizontal combs
# (supply, ballast), curved combs (LED driver), trains of ringing edges (motor drive), one event
# (dimmer), broadband bursts (arc), a block of carriers (communication) and diagonal lines with
# their harmonics (sweep). The faint vertical lines in every row are the impulsive noise, and the
# bright bottom rows are the mains and the low-frequency background: they belong to no class.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
sns.countplot(data=samples, y="class", hue="split", order=data.class_names, ax=axes[0])
axes[0].set(title="Class balance", xlabel="samples", ylabel="")
sns.move_legend(axes[0], "lower right")
sns.histplot(data=samples, x="snr_db", hue="split", multiple="stack", bins=25, ax=axes[1])
axes[1].set(title="SNR of the samples", xlabel="SNR (dB)")
sns.move_legend(axes[1], "lower right")
glue("fig_ch1_balance", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_ch1_balance
# :name: fig-ch1-balance
#
# The data set's splits: samples per class (left) and the distribution of their SNRs (right).
# ```
#
# Every class has the same number of samples in every split ({numref}`fig-ch1-balance`, left), and
# the SNRs cover the configured range evenly in every split (right), so no split is easier than
# another.
#
# ## How hard is it?
#
# A first measure of difficulty: a logistic regression on two numbers per frequency row, the mean
# and the standard deviation of its level over time. It knows which bands are lit and how steadily,
# but not how the pattern is arranged in time.

# %%
baseline = logistic_baseline(data)
correct = baseline.predictions == data.test.y.numpy()
by_snr = accuracy_by_snr(data.test.snr_db, correct)
glue("lr_accuracy", 100 * baseline.accuracy, display=False)
glue("lr_low", 100 * float(by_snr["accuracy"].iloc[0]), display=False)
glue("lr_high", 100 * float(by_snr["accuracy"].iloc[-1]), display=False)
glue("chance", 100 / len(data.class_names), display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
shares = baseline.confusion.div(baseline.confusion.sum(axis=1), axis=0)
sns.heatmap(shares, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=axes[0])
axes[0].set(title="Reference classifier: confusion (rows: true class)", xlabel="predicted", ylabel="true")
sns.lineplot(data=by_snr, x="snr_db", y="accuracy", marker="o", ax=axes[1])
axes[1].axhline(1 / len(data.class_names), color="grey", ls="--", label="chance")
axes[1].set(title="Accuracy against SNR (test set)", xlabel="SNR, 5 dB bins (dB)", ylabel="accuracy", ylim=(0, 1))
axes[1].legend()
glue("fig_ch1_reference", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_ch1_reference
# :name: fig-ch1-reference
#
# The reference classifier on the test split: its confusion matrix, each row normalised to the true
# class (left), and its accuracy in 5 dB bins of SNR (right).
# ```
#
# The reference classifier reaches {glue:text}`lr_accuracy:.1f` % on the test set, against
# {glue:text}`chance:.1f` % for guessing. Its errors ({numref}`fig-ch1-reference`, left, off the
# diagonal) fall between classes whose average spectra look alike, and its accuracy depends on the
# SNR (right): {glue:text}`lr_low:.0f` % in the lowest bin, {glue:text}`lr_high:.0f` % in the
# highest. What is left for the convolutional networks of the next chapters lies in the
# *arrangement* of the energy in time and frequency, and in the samples buried in noise.
#
# ## The knobs
#
# Everything above came from one validated config, the `data` section of the profile. The three
# difficulty knobs (`snr_db_range`, `class_overlap`, `channel_variability`, with
# `impulsive_share`) are where a later calibration tunes the task; an invalid value (a negative
# SNR span, zero samples, a window longer than the signal, an unknown class) stops at once with a
# message that names it.

# %%
config.table()

# %% [markdown]
# ## Exercises
#
# Exercises marked *(rebuilds the data set)* generate a new data set of this profile's size: about
# as long as this chapter's first run. The solutions use the names defined above (and
# `from nsdelib.data.dataset import load_dataset`).
#
# 1. **SNR and difficulty** *(rebuilds the data set)*. Build the data set with
#    `config.replace(snr_db_range=(10.0, 20.0))` through `load_dataset(config, seed, ctx.store)` and
#    rerun the reference classifier. How much of its error was noise?
#
# ````{admonition} Solution
# :class: dropdown
#
# ```python
# easy = load_dataset(config.replace(snr_db_range=(10.0, 20.0)), ctx.seed, ctx.store)
# print(f"{baseline.accuracy:.3f} at the profile's SNRs, {logistic_baseline(easy).accuracy:.3f} at 10-20 dB")
# ```
#
# The gain is the part of the error that the noisy samples caused; what is left at 10–20 dB comes
# from the classes' overlap and the wiring. The right panel of {numref}`fig-ch1-reference` predicts
# it: the new accuracy should be close to that of the highest SNR bins there.
# ````
#
# 2. **Overlap** *(rebuilds the data set twice)*. Repeat with `class_overlap` at 0 and at 1. Which
#    pairs of classes in the confusion matrix merge first?
#
# ````{admonition} Solution
# :class: dropdown
#
# ```python
# for overlap in (0.0, 1.0):
#     result = logistic_baseline(load_dataset(config.replace(class_overlap=overlap), ctx.seed, ctx.store))
#     display(result.confusion.div(result.confusion.sum(axis=1), axis=0).round(2))
# ```
#
# Look at the off-diagonal cells that grow between the two matrices. The class table says where to
# expect them: at the extreme ends of their ranges a supply with a 50 % duty cycle loses its even
# harmonics like a ballast, and a motor drive with a slow carrier fires as rarely as a dimmer.
# ````
#
# 3. **Wiring** *(rebuilds the data set)*. Set `channel_variability` to 0. Does the reference
#    classifier notice? Why would a model that looks at the whole image care more than one that
#    averages over time?
#
# ````{admonition} Solution
# :class: dropdown
#
# Rebuild as in exercise 1 with `config.replace(channel_variability=0.0)`. Without echoes every
# building has the same smooth low-pass, so the time-averaged level of each frequency row varies
# less from sample to sample within a class and the reference classifier should gain accuracy. The
# echoes also smear every event in time (each path delivers its own copy of an edge), which changes
# how the energy is arranged along the time axis: exactly the information that the reference
# classifier averages away and that a convolutional network can use.
# ````
#
# 4. **A ninth class** *(rebuilds the data set)*. Add a source to
#    `nsdelib.data.signals.SOURCE_CLASSES`, for example an electric vehicle charger (a PWM converter
#    at 16–20 kHz whose power steps every few hundred µs), with a typical and an extreme range for
#    each parameter. Which existing class does it resemble most?
#
# ````{admonition} Solution
# :class: dropdown
#
# Add a `SourceClass` entry (its name, what it stands for, its waveform model, a `ParamRange` per
# parameter and a synthesiser written like `_smps` or `_motor_drive`), rebuild the data set and
# rerun the reference classifier. The class it resembles most is the one its errors fall into: the
# largest off-diagonal cell of its row in the confusion matrix. A PWM carrier with harmonics is a
# comb, so expect the switching supplies and the motor drive to be its nearest neighbours.
# ````
#
# 5. **Normalisation**. Replace the fixed decibel range by a per-image min–max scaling and add
#    Gaussian noise of standard deviation {glue:text}`c2_std:g` to a few images. Why does the same
#    {glue:text}`c2_std:g` now mean a different number of dB in each image?
#
# ````{admonition} Solution
# :class: dropdown
#
# With min–max scaling an image value of 1 is that image's own loudest level and 0 its quietest, so
# a change of {glue:text}`c2_std:g` in image value is {glue:text}`c2_std:g` times that image's own
# range of levels: a record with a narrow range of levels gets a small change in dB, one with a wide
# range a large one. With the fixed range it is {glue:text}`db_per_005:.0f` dB in every image.
# ````
#
# 6. **Features**. Plot the coefficients of the logistic regression (`baseline.model[-1].coef_`,
#    one row per class, the mean features of every frequency row first): which frequency rows does
#    it rely on for each class, and do they match the class table?
#
# ````{admonition} Solution
# :class: dropdown
#
# ```python
# coefficients = baseline.model[-1].coef_[:, : config.image_rows]
# rows_khz = (data.freqs_hz / 1e3).round().int().tolist()
# sns.heatmap(pd.DataFrame(coefficients, index=data.class_names, columns=rows_khz), cmap="RdBu_r", center=0)
# ```
#
# A large positive coefficient marks a frequency row whose mean level raises that class's score.
# Compare the bright cells of each row with the frequency ranges of the class table: a comb class
# should rely on the rows of its harmonics, the communication class on its band of carriers.
# ````
#
# ## Summary
#
# - The book's data set is an open simulation: sources of eight classes, passed through a randomly
#   drawn multipath wiring channel with power-line noise at a random SNR, recorded and turned into
#   spectrogram images on a fixed decibel scale ({numref}`fig-ch1-chain`).
# - Everything comes from one validated config and a seed: the same seed gives the same bytes, and
#   any change rebuilds the data set in the artifact store.
# - A reference classifier that only sees time-averaged levels reaches {glue:text}`lr_accuracy:.1f` %
#   against {glue:text}`chance:.1f` % for guessing: the task is learnable but not trivial, and what
#   it misses lies in the arrangement of the energy and in the noisiest samples.
# - Next, {doc}`chapter 2 <ch02_nsde_theory>` builds the two models that learn from these images.

# %%
glue("ch1_runtime", time.perf_counter() - chapter_start, display=False)
