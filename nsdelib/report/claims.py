"""Paper-versus-book tables and verdicts for the paper's claims, one function per claim.

Both models are evaluated on the same test images with the same seeds, so every claim function
takes a long table of outcomes, one row per model (or evaluation mode), seed and image, and
judges the claim on the paired differences with ``report.stats.effect_verdict`` against the
claim's reference (``report.paper``). It returns the table for the book beside the verdict, which
carries the effect, its interval, the one-sided p-value, the reference, one run's prediction interval
and the minimum detectable effect. With ``unit=None`` a function takes one already-aggregated value
per model and seed instead. Each claim has one primary verdict; a function that judges more rows
(levels, attacks, budgets, controls) puts every other row in the claim's named family, Holm-adjusted
and exploratory (``report.stats.holm_family``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..evaluation.abc import Crossing, log_crossing
from ..evaluation.attacks import TRANSFER, WORST
from ..evaluation.attributions import (
    INPUT_AVERAGED,
    MAP_VARIANTS,
    NOISE_AVERAGED,
    NOISE_OFF,
    ONE_DRAW,
    ONE_MAP,
)
from .paper import DETECTOR_ACCURACY, PAPER_VALUES, get_claim
from .stats import (
    Verdict,
    effect_verdict,
    effect_verdicts,
    holm_family,
    mean_interval,
    primary_and_family,
    seed_intervals,
    verdicts_frame,
)

#: The named families of exploratory rows: every verdict that is not a claim's primary comparison is in one.
C2_LEVELS, C2_STRUCTURED, C4_BUDGETS, C5_CONTROLS, SIZE_STUDY = (
    "C2 levels", "C2 structured noise", "C4 budgets", "C5 controls", "size study")

MODEL_LABELS = {"convnext": "ConvNeXt", "convnext_noise": "ConvNeXt + input noise", "nsde": "NSDE-ConvNeXt"}
#: The effect of C1, C4 and C5 compares these two models (values of the ``model`` column).
CONVNEXT, NSDE = "convnext", "nsde"


def interval_row(label: str, values: Sequence[float], paper: float | None) -> dict[str, object]:
    """One table row: the paper's figure and this book's mean with its 95 % interval over seeds."""
    interval = mean_interval(values)
    return {
        "model": label,
        "paper": paper,
        "this book (mean)": interval.mean,
        "95 % low": interval.low,
        "95 % high": interval.high,
        "seeds": interval.n,
    }


def models_table(outcomes: pd.DataFrame, rows: Mapping[str, tuple[str, float | None]], *, value: str,
                 model: str = "model") -> pd.DataFrame:
    """Per-seed means of ``value`` per model, as ``interval_row`` rows indexed by label.

    ``rows`` maps each value of the ``model`` column to its label and the paper's figure (or None).
    """
    seed_means = outcomes.assign(**{value: outcomes[value].astype(float)}).groupby(["seed", model])[value].mean()
    by_model = seed_means.unstack(model)
    return pd.DataFrame([interval_row(label, by_model[key].dropna(), paper)
                         for key, (label, paper) in rows.items()]).set_index("model")


def clean_accuracy_claim(outcomes: pd.DataFrame, *, value: str = "correct", unit: str | None = "example"
                         ) -> tuple[pd.DataFrame, Verdict]:
    """C1: clean test accuracy of ConvNeXt and NSDE against the paper, and the verdict on ConvNeXt − NSDE.

    ``outcomes`` has columns ``model`` (``"convnext"`` and ``"nsde"``; other models are ignored),
    ``seed``, ``unit`` (the test image) and ``value`` (1 if that image was classified correctly, else 0).
    With ``unit=None``: one row per model and seed with the seed's accuracy in ``value``.
    The reference is the paper's difference, 87.20 % − 82.88 %.
    """
    table = models_table(outcomes, {CONVNEXT: (MODEL_LABELS[CONVNEXT], PAPER_VALUES["C1.convnext_clean_accuracy"]),
                                    NSDE: (MODEL_LABELS[NSDE], PAPER_VALUES["C1.nsde_clean_accuracy"])}, value=value)
    verdict = effect_verdict(outcomes, CONVNEXT, NSDE, get_claim("C1").reference, value=value, unit=unit,
                             comparison=f"{MODEL_LABELS[CONVNEXT]} − {MODEL_LABELS[NSDE]}")
    return table, verdict


def noise_claim(sweep: pd.DataFrame, nsde_mode: str, baseline_mode: str, *, value: str = "correct",
                unit: str | None = "example") -> tuple[pd.DataFrame, Verdict]:
    """C2 at the paper's Gaussian noise std: accuracy of both modes and the verdict on NSDE − ConvNeXt.

    ``sweep`` has columns ``noise``, ``level``, ``mode`` (``nsde_mode`` and ``baseline_mode``), ``seed``,
    ``unit`` (the test image) and ``value`` (1 if that noisy image was classified correctly, else 0);
    with ``unit=None`` one row per mode, seed and level with the accuracy in ``value``. Only the
    Gaussian rows at ``PAPER_VALUES["C2.noise_intensity"]`` count. The paper gives no ConvNeXt figure
    there, so the reference is C2's smallest effect of interest.
    """
    at = PAPER_VALUES["C2.noise_intensity"]
    rows = sweep[(sweep["noise"] == "gaussian") & np.isclose(sweep["level"], at)]
    if rows.empty:
        raise ValueError(f"the sweep has no Gaussian noise at the paper's std {at}: add it to the sweep's levels")
    table = models_table(rows, {baseline_mode: (baseline_mode, None),
                                nsde_mode: (nsde_mode, PAPER_VALUES["C2.nsde_accuracy_at_noise"])},
                         value=value, model="mode")
    verdict = effect_verdict(rows, nsde_mode, baseline_mode, get_claim("C2").reference, value=value, model="mode",
                             unit=unit)
    return table, verdict


def noise_level_verdicts(sweep: pd.DataFrame, comparisons: Mapping[str, tuple[str, str]], *, value: str = "correct",
                         unit: str | None = "example") -> pd.DataFrame:
    """C2's comparisons at every Gaussian noise level, with C2's reference, indexed by (``models``, ``level``).

    ``comparisons`` maps a name to (the mode claimed better, the other mode); ``sweep`` as for
    ``noise_claim``. The first comparison at the paper's std is C2's primary verdict (``noise_claim``'s);
    every other row is in the family C2 levels, Holm-adjusted and exploratory.
    """
    gaussian = sweep[sweep["noise"] == "gaussian"]
    verdicts = {(name, level): verdict for name, (a, b) in comparisons.items()
                for level, verdict in effect_verdicts(gaussian, "level", a, b, get_claim("C2").reference, value=value,
                                                      model="mode", unit=unit).items()}
    first = next(iter(comparisons))
    primary = next((key for key in verdicts if key[0] == first
                    and np.isclose(key[1], PAPER_VALUES["C2.noise_intensity"])), None)
    return verdicts_frame(primary_and_family(verdicts, C2_LEVELS, primary), ["models", "level"])


def structured_noise_verdicts(sweep: pd.DataFrame, nsde_mode: str, baseline_mode: str, *, value: str = "correct",
                              unit: str | None = "example") -> pd.DataFrame:
    """NSDE − baseline under every structured noise and level above 0, with C2's reference, indexed by (``noise``,
    ``level``): the family C2 structured noise, Holm-adjusted and exploratory (the claim is about Gaussian noise)."""
    structured = sweep[(sweep["noise"] != "gaussian") & (sweep["level"] > 0)]
    verdicts = effect_verdicts(structured, ["noise", "level"], nsde_mode, baseline_mode, get_claim("C2").reference,
                               value=value, model="mode", unit=unit)
    return verdicts_frame(holm_family(verdicts, C2_STRUCTURED), ["noise", "level"])


#: The attacks C3 is judged against: the worst case over all attacks (the headline) first, then the worst case
#: after each of the cascade's first attacks (``evaluation.attacks.cascade_attacks``).
C3_ATTACKS = (WORST, "APGD-CE", "APGD-DLR", TRANSFER)
C3_ATTACKS_FAMILY = "C3 attacks"


@dataclass(frozen=True)
class AdversarialClaim:
    """C3 at the L2 budget where the baseline collapses: the verdict against each attack and what they mean."""

    eps_star: float | None
    verdicts: dict[str, Verdict]
    note: str

    @property
    def verdict(self) -> Verdict | None:
        """The headline verdict, against the worst case over every attack (None without a test point)."""
        return self.verdicts.get(WORST)

    @property
    def flags(self) -> str:
        """The headline label with its flags (underpowered, exploratory); "inconclusive" without a test point."""
        return self.verdict.flags if self.verdict else "inconclusive"

    @property
    def table(self) -> pd.DataFrame:
        """The verdicts, one row per attack on the NSDE."""
        return verdicts_frame(self.verdicts, "NSDE attacked with")


#: ConvNeXt has "collapsed" at an ε where its worst-case robust accuracy is at most this (C3's test point).
C3_COLLAPSE = 0.05


def adversarial_claim(outcomes: pd.DataFrame, nsde_mode: str, baseline_mode: str, threshold: float = C3_COLLAPSE
                      ) -> AdversarialClaim:
    """C3: at the smallest headline L2 ε where the baseline's worst-case robust accuracy is at most ``threshold``,
    is the NSDE (in ``nsde_mode``) more accurate? Judged per image within each seed, seeds as replicates.

    ``outcomes`` are ``evaluation.attacks.robustness_sweep`` rows of both models with a ``seed``
    column. The baseline always counts with its worst case over every attack; the NSDE with its worst
    case (the headline, C3's primary verdict) and after each stage of the attack cascade (the family
    C3 attacks, Holm-adjusted and exploratory), so a reader sees which attack decides. The reference
    is C3's smallest effect of interest.
    """
    l2 = outcomes[outcomes["norm"] == "L2"]
    full, stages = l2[l2["protocol"] == "full"], l2[l2["protocol"] == "cascade"]
    baseline = full[(full["mode"] == baseline_mode) & (full["attack"] == WORST)]
    curve = baseline.groupby("eps")["correct"].mean()
    collapsed = curve[curve <= threshold]
    if collapsed.empty:
        note = (f"The baseline kept more than {threshold:.0%} robust accuracy at every headline L2 ε, so the claim has "
                "no test point here: add a larger headline ε.")
        return AdversarialClaim(None, {}, note)
    eps_star = float(collapsed.index.min())
    nsde = pd.concat([full[(full["attack"] == WORST)], stages])
    nsde = nsde[(nsde["mode"] == nsde_mode) & (nsde["eps"] == eps_star)]
    at_star = baseline[baseline["eps"] == eps_star]
    verdicts = {
        attack: effect_verdict(pd.concat([at_star, nsde[nsde["attack"] == attack]]), nsde_mode, baseline_mode,
                               get_claim("C3").reference, value="correct", model="mode", unit="example",
                               comparison=f"{nsde_mode} ({attack}) − {baseline_mode}")
        for attack in C3_ATTACKS if (nsde["attack"] == attack).any()
    }
    verdicts = primary_and_family(verdicts, C3_ATTACKS_FAMILY, WORST)
    weakest = {a: v for a, v in verdicts.items() if a != WORST and v.significant}
    if verdicts[WORST].significant:
        note = "The NSDE's advantage survives every attack, the worst case per image included."
    elif weakest:
        note = (f"The NSDE looks more robust after {', '.join(weakest)} in the cascade, but not against the worst case "
                "over all attacks: that advantage is the earlier attacks' weakness, not the model's robustness.")
    else:
        note = "No attack shows an advantage for the NSDE that the seeds can resolve at this ε."
    return AdversarialClaim(eps_star, verdicts, note)


def both_correct(scores: pd.DataFrame, *, unit: str = "example", correct: str = "correct") -> pd.DataFrame:
    """The rows of ``scores`` (every model's) on the images that ConvNeXt and the NSDE both classify correctly.

    ``scores`` has columns ``model``, ``seed``, ``unit`` and ``correct``; an image counts per seed, and
    rows repeated for several budgets of one image share its correctness.
    """
    pair = scores[scores["model"].isin([CONVNEXT, NSDE])]
    flags = pair.groupby(["seed", unit, "model"])[correct].all().unstack("model")
    kept = flags.reindex(columns=[CONVNEXT, NSDE]).eq(True).all(axis=1)
    return scores[pd.MultiIndex.from_frame(scores[["seed", unit]]).isin(kept[kept].index)]


def abc_claim(scores: pd.DataFrame, *, value: str = "abc", unit: str | None = "example", correct: str = "correct"
              ) -> tuple[pd.DataFrame, Verdict]:
    """C4: mean ABC of correct predictions per model against the paper, and the verdict on NSDE − ConvNeXt.

    ``scores`` has columns ``model`` (``"convnext"`` and ``"nsde"``; other models are ignored), ``seed``,
    ``unit`` (the explained image), ``value`` (its ABC) and ``correct`` (whether the model classified
    it correctly), as ``evaluation.abc.cached_abc`` returns them; only images that both models
    classify correctly count (:func:`both_correct`), so the two means are over the same images. With
    ``unit=None``: one row per model and seed with the seed's mean ABC of its correct predictions in
    ``value`` (e.g. ``abc_correct``). The reference is the paper's difference, 0.599 − 0.497.
    """
    rows = scores[scores["model"].isin([CONVNEXT, NSDE])]
    if unit is not None:
        rows = both_correct(rows, unit=unit, correct=correct)
    table = models_table(rows, {CONVNEXT: (MODEL_LABELS[CONVNEXT], PAPER_VALUES["C4.convnext_abc_correct"]),
                                NSDE: (MODEL_LABELS[NSDE], PAPER_VALUES["C4.nsde_abc_correct"])}, value=value)
    verdict = effect_verdict(rows, NSDE, CONVNEXT, get_claim("C4").reference, value=value, unit=unit,
                             comparison=f"{MODEL_LABELS[NSDE]} − {MODEL_LABELS[CONVNEXT]}")
    return table, verdict


def c4_budget(curve: pd.DataFrame) -> Crossing:
    """The mutation budget m of C4's verdict by ``C4_BUDGET_RULE``, from ABC at every budget of the grid.

    ``curve`` has the columns of ``evaluation.abc.abc_curve`` (``m``, ``abc``, ``correct``, ...) with
    ``model`` and ``seed``. Only the plain ConvNeXt's ABC on the images both models classify
    correctly is read: its mean over seeds and images at every m, against the paper's ConvNeXt value.
    """
    rows = both_correct(curve)
    means = rows[rows["model"] == CONVNEXT].groupby("m")["abc"].mean().sort_index()
    if means.empty:
        raise ValueError("no ConvNeXt rows on images both models classify correctly: C4's budget is undefined")
    return log_crossing(means.index.to_numpy(), means.to_numpy(), PAPER_VALUES["C4.convnext_abc_correct"])


def abc_budget_curves(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean ABC against the mutation budget with 95 % intervals over seeds, per model, for two sets of images.

    ``images`` is ``"both correct"`` (the images ConvNeXt and the NSDE both classify correctly, every
    model on the same ones) or ``"own wrong"`` (each model's own wrong predictions; seeds without one
    are left out). Columns: ``images``, ``model``, ``m``, ``mean``, ``low``, ``high``, ``n`` (seeds).
    """
    sets = {"both correct": both_correct(curve), "own wrong": curve[~curve["correct"].astype(bool)]}
    frames = []
    for images, rows in sets.items():
        if rows.empty:
            continue
        per_seed = rows.groupby(["model", "m", "seed"], as_index=False)["abc"].mean()
        frames.append(seed_intervals(per_seed, ["model", "m"], value="abc").assign(images=images))
    return pd.concat(frames, ignore_index=True)[["images", "model", "m", "mean", "low", "high", "n"]]


def abc_budget_verdicts(curve: pd.DataFrame) -> pd.DataFrame:
    """C4's verdict at every budget of the grid (how it would move with the budget), indexed by ``budget``, with ``m``:
    the family C4 budgets, Holm-adjusted and exploratory (C4's primary verdict is at the budget ``c4_budget`` fixes)."""
    verdicts = {budget: abc_claim(rows)[1] for budget, rows in curve.groupby("budget", sort=False)}
    frame = verdicts_frame(holm_family(verdicts, C4_BUDGETS), "budget")
    frame.insert(0, "m", curve.groupby("budget", sort=False)["m"].first().reindex(frame.index))
    return frame.sort_values("m")


def stability_claim(stability: pd.DataFrame, *, value: str = "log_change", unit: str | None = "example"
                    ) -> tuple[pd.DataFrame, dict[float, Verdict]]:
    """C5 per perturbation level: mean log attribution change per model, and the verdict on ConvNeXt − NSDE.

    ``stability`` has columns ``model`` (``"convnext"`` and ``"nsde"``), ``seed``, ``level``, ``unit``
    (the explained image) and ``value`` (its natural-log summed attribution change), one map variant
    per model: the rows of ``evaluation.attributions.cached_attribution_stability`` with ``reported``
    true judge the claim as the models are reported (:func:`stability_controls_claim` judges the
    other variants); with ``unit=None`` one
    row per model, seed and level with the seed's mean in ``value``. The claim is NSDE smaller, so
    the effect is ConvNeXt − NSDE; the reference is C5's smallest effect of interest.
    """
    verdicts: dict[float, Verdict] = {}
    tables = []
    comparison = f"{MODEL_LABELS[CONVNEXT]} − {MODEL_LABELS[NSDE]}"
    for level, at_level in stability.groupby("level"):
        verdicts[float(level)] = effect_verdict(at_level, CONVNEXT, NSDE, get_claim("C5").reference, value=value,
                                                unit=unit, comparison=comparison)
        at = models_table(at_level, {kind: (kind, None) for kind in (CONVNEXT, NSDE)}, value=value)
        tables.append(at.drop(columns="paper").assign(level=float(level)))
    table = pd.concat(tables).reset_index().set_index(["level", "model"]).rename(
        columns={"this book (mean)": "mean log change"})
    table["C5 (NSDE < ConvNeXt)"] = [verdicts[level].label for level, _ in table.index]
    return table, verdicts


#: C5's matched comparisons: (name, (model, map variant) claimed to change more, (model, map variant) claimed to
#: change less). The map variants are ``evaluation.attributions``'; the first is the claim as the models are reported.
C5_COMPARISONS: tuple[tuple[str, tuple[str, str], tuple[str, str]], ...] = (
    ("as reported: ConvNeXt vs NSDE averaged over its noise", (CONVNEXT, ONE_MAP), (NSDE, NOISE_AVERAGED)),
    ("equal averaging: ConvNeXt averaged over input noise", (CONVNEXT, INPUT_AVERAGED), (NSDE, NOISE_AVERAGED)),
    ("no averaging: one map each", (CONVNEXT, ONE_MAP), (NSDE, ONE_DRAW)),
    ("NSDE's weights alone: its noise off", (CONVNEXT, ONE_MAP), (NSDE, NOISE_OFF)),
    ("noise-trained control, equal averaging", ("convnext_noise", INPUT_AVERAGED), (NSDE, NOISE_AVERAGED)),
    ("noise-trained control, no averaging", ("convnext_noise", ONE_MAP), (NSDE, ONE_DRAW)),
    ("averaging alone: ConvNeXt one map vs averaged", (CONVNEXT, ONE_MAP), (CONVNEXT, INPUT_AVERAGED)),
)


def arm_label(model: str, variant: str) -> str:
    """A model and the map variant it is explained with, for tables and figures."""
    return f"{MODEL_LABELS[model]}, {variant}"


def stability_controls_claim(stability: pd.DataFrame, *, value: str = "log_change", unit: str = "example",
                             primary: bool = True) -> pd.DataFrame:
    """C5's matched comparisons (:data:`C5_COMPARISONS`) per perturbation level, each judged by the verdict rule.

    ``stability`` has the rows of ``evaluation.attributions.cached_attribution_stability`` with
    ``model`` and ``seed``; each comparison pairs its two arms image by image within each seed. The
    reference is C5's smallest effect of interest. Comparisons whose arms are missing are left out.
    One row per (control, level), the control named as in :data:`C5_COMPARISONS`, with the fields of ``Verdict``.
    With ``primary``, the first comparison at the largest level is C5's primary verdict; every other row
    is in the family C5 controls, Holm-adjusted and exploratory (all of them without ``primary``).
    """
    arms = stability.assign(arm=stability["model"] + "|" + stability["variant"])
    present = set(arms["arm"])
    verdicts = {}
    for name, a, b in C5_COMPARISONS:
        first, second = "|".join(a), "|".join(b)
        if not {first, second} <= present:
            continue
        for level, rows in arms[arms["arm"].isin([first, second])].groupby("level"):
            verdicts[name, float(level)] = effect_verdict(
                rows, first, second, get_claim("C5").reference, value=value, model="arm", unit=unit,
                comparison=f"{arm_label(*a)} − {arm_label(*b)}")
    headline = (C5_COMPARISONS[0][0], max((level for _, level in verdicts), default=None))
    return verdicts_frame(primary_and_family(verdicts, C5_CONTROLS, headline if primary else None), ["control", "level"])


def stability_by_arm(stability: pd.DataFrame) -> pd.DataFrame:
    """Mean log change per model and map variant with 95 % intervals over seeds, for both measures, per level.

    ``measure`` is ``"normalised"`` (``log_change``) or ``"literal"`` (``log_raw_change``, the raw maps).
    Columns: ``measure``, ``level``, ``model``, ``variant``, ``arm``, ``reported``, ``mean``, ``low``, ``high``, ``n``.
    """
    frames = []
    for measure, column in (("normalised", "log_change"), ("literal", "log_raw_change")):
        per_seed = stability.groupby(["level", "model", "variant", "reported", "seed"], as_index=False)[column].mean()
        frames.append(seed_intervals(per_seed, ["level", "model", "variant", "reported"], value=column)
                      .assign(measure=measure))
    table = pd.concat(frames, ignore_index=True)
    table["arm"] = [arm_label(m, v) for m, v in zip(table["model"], table["variant"])]
    return table[["measure", "level", "model", "variant", "arm", "reported", "mean", "low", "high", "n"]]


def arm_order(by_arm: pd.DataFrame) -> list[str]:
    """The arms of ``by_arm`` (:func:`stability_by_arm`'s rows) in a fixed order, by model and then map variant.

    A figure drawn from a recorded table and one drawn from a fresh run then give each arm the same
    place and colour. A model or variant this book does not know is an error, not a dropped arm.
    """
    present = set(zip(by_arm["model"], by_arm["variant"]))
    unknown = {(m, v) for m, v in present if m not in MODEL_LABELS or v not in MAP_VARIANTS}
    if unknown:
        raise ValueError(f"unknown model or map variant in the arms: {sorted(unknown)}")
    return [arm_label(m, v) for m in MODEL_LABELS for v in MAP_VARIANTS if (m, v) in present]


def detector_noise_level(accuracy: pd.DataFrame) -> Crossing:
    """The Gaussian input-noise std of the detector test by ``DETECTOR_NOISE_RULE``.

    ``accuracy`` has rows ``model``, ``seed``, ``std``, ``example``, ``correct`` (``evaluation.detectors.
    noisy_accuracy``); only the plain ConvNeXt's rows are read, pooled over seeds and images.
    """
    rows = accuracy[accuracy["model"] == CONVNEXT]
    if rows.empty:
        raise ValueError("the detector noise rule reads the plain ConvNeXt's accuracy, and there are no ConvNeXt rows")
    means = rows.groupby("std")["correct"].mean().sort_index()
    return log_crossing(means.index.to_numpy(), means.to_numpy(dtype=float), DETECTOR_ACCURACY)


def thin_risk_coverage(coverage: pd.DataFrame, points: int = 101, by: Sequence[str] = ("model", "score")
                       ) -> pd.DataFrame:
    """At most ``points`` rows of each risk–coverage curve, for a recorded result small enough to commit.

    ``coverage`` has ``coverage`` and ``risk`` per ``by`` (``evaluation.detectors.risk_coverage_curves``),
    one row per distinct confidence: as many as images for a continuous score. Of a longer curve it
    keeps, for every one of ``points`` evenly spaced coverages in [0, 1], the first row at or above
    it, so the rows kept are rows of the curve (never interpolated), its first and last among them.
    """
    if points < 2:
        raise ValueError(f"a thinned curve needs at least 2 points (its ends), got {points}")
    grid = np.linspace(0.0, 1.0, points)
    kept = []
    for _, curve in coverage.groupby(list(by), sort=False):
        curve = curve.sort_values("coverage", kind="stable")
        if len(curve) > points:
            first_above = np.searchsorted(curve["coverage"].to_numpy(), grid)
            curve = curve.iloc[np.unique(np.minimum(first_above, len(curve) - 1))]
        kept.append(curve)
    return pd.concat(kept).reset_index(drop=True)


ABC_QUANTITIES = {"abc_correct": "mean ABC, correct", "abc_incorrect": "mean ABC, wrong",
                  "auroc_wrong": "AUROC, wrong vs right"}


def abc_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds with 95 % intervals of ABC's per-seed summaries, per variant, model and quantity.

    ``per_seed`` has ``variant``, ``model`` and ``seed`` columns and the columns of ``ABC_QUANTITIES``
    (``evaluation.abc.abc_seed_summary``); seeds where a quantity is undefined (no wrong prediction)
    are left out of it, and a quantity undefined for every seed gets NaN with 0 seeds.
    """
    rows = []
    for (variant, kind), group in per_seed.groupby(["variant", "model"], sort=False):
        for column, quantity in ABC_QUANTITIES.items():
            values = group[column].dropna()
            interval = mean_interval(values) if len(values) else None
            rows.append({"variant": variant, "model": MODEL_LABELS[kind], "quantity": quantity,
                         "mean": interval.mean if interval else np.nan, "95 % low": interval.low if interval else np.nan,
                         "95 % high": interval.high if interval else np.nan, "seeds": interval.n if interval else 0})
    return pd.DataFrame(rows).set_index(["variant", "model", "quantity"])
