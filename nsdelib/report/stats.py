"""Intervals over seeds and images, and ``VERDICT_RULE``: the rule that turns a paired comparison into a
``Verdict`` on a claim (stated in words for the glance page and chapter 4, implemented below)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from typing import Any, Literal, NamedTuple, TypeVar

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

Label = Literal["reproduced", "direction holds, size differs", "direction holds, size not shown", "not reproduced",
                "opposite", "inconclusive"]
ReferenceKind = Literal["paper's figure", "smallest effect of interest"]
Role = Literal["primary", "exploratory"]
Design = Literal["seeds", "seeds, images held fixed", "seeds × images, crossed", "seeds × images, partly crossed",
                 "images nested in seeds"]

#: Two-sided confidence of every interval; each tail is the level of a one-sided test.
CONFIDENCE = 0.95
ALPHA_ONE_SIDED = 0.025
#: Familywise level of Holm's adjustment (two-sided tests) within a family of exploratory rows.
FAMILY_ALPHA = 1 - CONFIDENCE
#: Power at which the minimum detectable effect is stated.
POWER = 0.8
DIRECTION_HOLDS: frozenset[str] = frozenset({"reproduced", "direction holds, size differs",
                                             "direction holds, size not shown"})

VERDICT_RULE = (
    "The effect is the claimed-better model minus the other, oriented so that positive is the claimed direction. "
    "Both models see the same images and seeds: per-image differences are averaged within each seed, and those "
    "per-seed means over the seeds (a claim measured only per seed uses its per-seed values). Seeds and images are "
    "both random: the standard error of the effect adds, to the spread of the per-seed means, the variance that "
    "the images shared between seeds carry (a crossed seed × image design, estimated by the method of moments; "
    "with no image shared it is the Student-t standard error over seeds), with Satterthwaite's degrees of freedom. "
    "The 95 % interval is the effect ± t·SE; the effect is significant in a direction when the interval excludes 0 "
    "on that side (one-sided test, α = 0.025). The reference is the paper's figure for the effect or, where the "
    "paper gives none, the claim's smallest effect of interest (SESOI). Against a SESOI: 'reproduced' when the "
    "interval's lower bound is at or above it (a minimum-effect test); 'direction holds, size differs' when "
    "significant and the interval wholly below it; 'direction holds, size not shown' when significant and the "
    "interval reaches it from below; 'not reproduced' when not significant and the interval wholly below it. "
    "Against a paper's figure, which is a single run: 'reproduced' when significant and the figure inside this "
    "setup's 95 % prediction interval for one run (the effect ± t·√(s² (1 + 1/n) + the variance a new set of "
    "images adds), s the spread of the n per-seed effects); 'direction holds, size differs' when significant and "
    "the figure outside it; 'not reproduced' when not significant and the figure above it. 'opposite': "
    "significant against the claimed direction. 'inconclusive': otherwise, or without an interval (one seed, or "
    "no variation between seeds). Beside the label, a plain column says whether the paper's figure is consistent "
    "with one run of this setup (that prediction interval; consistency, not proof of equality). 'underpowered' "
    "flags a verdict whose minimum detectable effect (the true effect that the one-sided test detects with 80 % "
    "power at this standard error and degrees of freedom) exceeds the reference. Each claim has one primary "
    "comparison, judged as above; every other row belongs to a named family (C2 levels, C3 attacks, C4 budgets, "
    "C5 controls, the size study), is labelled exploratory, and its tests against 0 and against a SESOI are "
    "Holm-adjusted over the whole family (familywise α = 0.05, two-sided); its interval is shown unadjusted."
)


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a two-sided Student-t interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.mean:.4g} (n={self.n})"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student-t interval of independent values (one per seed), for descriptive tables."""
    data = np.asarray(values, dtype=float).ravel()
    if data.size == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean, math.nan, math.nan, 1, confidence)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return Interval(mean, mean - half, mean + half, int(data.size), confidence)


def seed_intervals(table: pd.DataFrame, by: Sequence[str], value: str = "accuracy") -> pd.DataFrame:
    """``mean_interval`` of ``value`` (one row per seed) per group of ``by``: columns ``by``, mean, low, high, n."""
    intervals = {key: mean_interval(group[value].to_numpy()) for key, group in table.groupby(list(by), sort=False)}
    return pd.DataFrame([{**dict(zip(by, key)), "mean": i.mean, "low": i.low, "high": i.high, "n": i.n}
                         for key, i in intervals.items()])


@dataclass(frozen=True)
class Reference:
    """The effect a verdict compares with: the paper's figure, or a smallest effect of interest (both > 0)."""

    value: float
    kind: ReferenceKind

    def __post_init__(self) -> None:
        if not self.value > 0:
            raise ValueError(f"a reference effect lies in the claimed direction, so it must be > 0, got {self.value}")


class CrossedMoments(NamedTuple):
    """``crossed_moments``' estimates, one value per leading index."""

    effect: np.ndarray
    variance: np.ndarray
    df: np.ndarray
    prediction_variance: np.ndarray
    prediction_df: np.ndarray
    between_seeds: np.ndarray
    image_weight: np.ndarray


def _satterthwaite(terms: Sequence[tuple[np.ndarray, np.ndarray | float]]) -> np.ndarray:
    """Satterthwaite's degrees of freedom of a sum of independent (mean square, df) terms."""
    total = sum(value for value, _ in terms)
    spread = sum(value**2 / df for value, df in terms)
    with np.errstate(invalid="ignore"):  # no spread means no terms (every square is ≥ 0): 0 / 0, no df
        return total**2 / spread


def crossed_moments(differences: np.ndarray) -> CrossedMoments:
    """The effect, its variance and a new run's, from differences ``[..., seed, image]`` (NaN: image not in that seed).

    Method of moments for effect + seed + image + noise: variance B / S + c·X (B: variance of the S per-seed
    means; X: image covariance across seeds, floored at 0; c: how much shared images correlate the seed means),
    a new run's B (1 + 1 / S) + 2·c·X; Satterthwaite's df (two-way ANOVA when balanced and crossed).
    """
    d = np.asarray(differences, dtype=float)
    present = ~np.isnan(d)
    per_seed = present.sum(-1)
    n_seeds = d.shape[-2]
    if n_seeds < 2 or (per_seed == 0).any():
        raise ValueError(f"crossed_moments needs at least 2 seeds, each with an image; got per-seed counts {per_seed}")
    seed_means = np.where(present, d, 0.0).sum(-1) / per_seed
    between = seed_means.var(-1, ddof=1)
    residuals = np.where(present, d - seed_means[..., None], 0.0)
    squares = (residuals**2).sum((-2, -1))
    within_df = (per_seed - 1).sum(-1)
    within = squares / np.maximum(within_df, 1)
    shared = present.astype(float)
    overlap = np.einsum("...si,...ti->...st", shared, shared)
    inverse = 1.0 / per_seed
    outer = inverse[..., :, None] * inverse[..., None, :]
    centring = 1.0 - inverse[..., :, None] - inverse[..., None, :] + overlap * outer
    other = ~np.eye(n_seeds, dtype=bool)
    pair_weight = (overlap * centring * other).sum((-2, -1)) / 2
    cross = ((residuals.sum(-2) ** 2).sum(-1) - squares) / 2
    image_covariance = np.maximum(np.divide(cross, pair_weight, out=np.zeros_like(cross), where=pair_weight > 0), 0.0)
    image_weight = ((overlap * outer).sum((-2, -1)) / n_seeds - inverse.mean(-1)) / (n_seeds - 1)
    image_df = np.maximum(present.any(-2).sum(-1) - 1, 1)
    residual_df = np.maximum(within_df - image_df, 1)
    image_square = within + (n_seeds - 1) * image_covariance
    residual_square = within - image_covariance
    image_share = image_weight / n_seeds * (image_covariance > 0)
    variance = between / n_seeds + image_weight * image_covariance
    prediction_variance = between * (1 + 1 / n_seeds) + 2 * image_weight * image_covariance
    df = _satterthwaite([(between / n_seeds, n_seeds - 1), (image_share * image_square, image_df),
                         (-image_share * residual_square, residual_df)])
    prediction_df = _satterthwaite([(between * (1 + 1 / n_seeds), n_seeds - 1),
                                    (2 * image_share * image_square, image_df),
                                    (-2 * image_share * residual_square, residual_df)])
    return CrossedMoments(seed_means.mean(-1), variance, df, prediction_variance, prediction_df, between, image_weight)


@dataclass(frozen=True)
class EffectEstimate:
    """An effect with its standard error, one new run's (``prediction_error``) and their df; NaN (with ``note``
    saying why) where there is no interval."""

    effect: float
    n_seeds: int
    n_pairs: int
    seed_effects: tuple[float, ...]
    design: Design
    standard_error: float = math.nan
    df: float = math.nan
    prediction_error: float = math.nan
    prediction_df: float = math.nan
    note: str = ""


ONE_SEED = "one seed: no between-seed replication, so no interval and no test"
NO_SEED_VARIATION = "no variation between seeds: the t-interval is undefined, so no test"


def seed_estimate(seed_effects: Sequence[float] | np.ndarray, n_pairs: int | None = None,
                  design: Design = "seeds") -> EffectEstimate:
    """The effect from independent per-seed effects: Student-t over seeds, a new run's spread s·√(1 + 1/n)."""
    effects = np.asarray(seed_effects, dtype=float).ravel()
    if effects.size == 0 or not np.isfinite(effects).all():
        raise ValueError(f"a verdict needs at least one per-seed effect, all finite; got {effects.tolist()}")
    n = int(effects.size)
    base = EffectEstimate(float(effects.mean()), n, n if n_pairs is None else int(n_pairs),
                          tuple(float(e) for e in effects), design)
    if n < 2:
        return replace(base, note=ONE_SEED)
    spread = float(effects.std(ddof=1))
    if spread == 0:
        return replace(base, note=NO_SEED_VARIATION)
    return replace(base, standard_error=spread / math.sqrt(n), df=n - 1,
                   prediction_error=spread * math.sqrt(1 + 1 / n), prediction_df=n - 1)


def crossed_estimate(differences: pd.DataFrame) -> EffectEstimate:
    """The effect from per-image differences (a row per seed, a column per image, NaN where a seed lacks it)."""
    values = differences.to_numpy(dtype=float)
    present = ~np.isnan(values)
    seed_effects = tuple(float(e) for e in np.nanmean(values, axis=1))
    n_seeds = len(seed_effects)
    shares = present.astype(int) @ present.T.astype(int)
    design: Design = ("images nested in seeds" if not shares[~np.eye(n_seeds, dtype=bool)].any() else
                      "seeds × images, crossed" if (present == present[:1]).all() else
                      "seeds × images, partly crossed")
    base = EffectEstimate(seed_effects[0], n_seeds, int(present.sum()), seed_effects, design)
    if n_seeds < 2:
        return replace(base, note=ONE_SEED)
    moments = crossed_moments(values)
    base = replace(base, effect=float(moments.effect))
    if float(moments.between_seeds) == 0:
        return replace(base, note=NO_SEED_VARIATION)
    return replace(base, standard_error=math.sqrt(float(moments.variance)), df=float(moments.df),
                   prediction_error=math.sqrt(float(moments.prediction_variance)),
                   prediction_df=float(moments.prediction_df))


@dataclass(frozen=True)
class Verdict:
    """The verdict on one comparison (``VERDICT_RULE``) and what it rests on, positive in the claimed direction;
    ``p_holm``/``p_holm_reference``: an exploratory row's family-adjusted p-values; NaN where there is no interval."""

    label: Label
    comparison: str
    effect: float
    low: float
    high: float
    p_value: float
    reference: float
    reference_kind: ReferenceKind
    mde: float
    n_seeds: int
    n_pairs: int
    seed_effects: tuple[float, ...]
    note: str = ""
    standard_error: float = math.nan
    df: float = math.nan
    prediction_low: float = math.nan
    prediction_high: float = math.nan
    prediction_df: float = math.nan
    paper_figure_in_prediction: bool | None = None
    underpowered: bool = False
    design: Design = "seeds"
    role: Role = "primary"
    family: str = ""
    p_holm: float = math.nan
    p_holm_reference: float = math.nan

    @property
    def significant(self) -> bool:
        """Whether the effect is significant in the claimed direction (Holm-adjusted for an exploratory row)."""
        return self.label in DIRECTION_HOLDS

    @property
    def flags(self) -> str:
        """The label with what qualifies it: underpowered, and exploratory with its family."""
        parts = [self.label] + ["underpowered"] * self.underpowered
        if self.role == "exploratory":
            parts.append(f"exploratory (Holm within {self.family})")
        return " · ".join(parts)

    @property
    def one_run(self) -> str:
        """In plain words: is the paper's figure consistent with one run of this setup?"""
        if self.reference_kind != "paper's figure":
            return "the paper gives no figure for this effect"
        if self.paper_figure_in_prediction is None:
            return "no prediction interval"
        where = "inside" if self.paper_figure_in_prediction else "outside"
        return (f"{'yes' if self.paper_figure_in_prediction else 'no'}: the paper's {self.reference:+.3g} is {where} "
                f"[{self.prediction_low:+.3g}, {self.prediction_high:+.3g}]")

    def to_dict(self) -> dict[str, object]:
        """The fields as plain Python values with NaN and infinities (an MDE out of reach) as None, for strict JSON."""
        def plain(value: object) -> object:
            if isinstance(value, float):
                return float(value) if math.isfinite(value) else None
            return [plain(v) for v in value] if isinstance(value, tuple) else value

        return {name: plain(value) for name, value in asdict(self).items()}

    def __str__(self) -> str:
        counts = f"{self.n_seeds} seed{'s' * (self.n_seeds != 1)}, {self.n_pairs} pair{'s' * (self.n_pairs != 1)}"
        reference = f"{self.reference_kind} {self.reference:+.3g}"
        if math.isnan(self.low):
            return f"{self.flags}: {self.comparison} = {self.effect:+.3g}, {self.note}; {reference}; {counts}"
        return (f"{self.flags}: {self.comparison} = {self.effect:+.3g}, 95 % CI [{self.low:+.3g}, {self.high:+.3g}], "
                f"one-sided p = {self.p_value:.2g}; {reference}; one run [{self.prediction_low:+.3g}, "
                f"{self.prediction_high:+.3g}]; MDE {self.mde:.3g}; {counts}")


VERDICT_FIELDS = tuple(f.name for f in fields(Verdict))


def rule_label(*, above_zero: bool, below_zero: bool, reaches: bool, misses: bool) -> Label:
    """The label from the rule's decisions: effect above or below 0, size shown to reach or miss the reference."""
    if below_zero:
        return "opposite"
    if above_zero:
        if reaches:
            return "reproduced"
        return "direction holds, size differs" if misses else "direction holds, size not shown"
    return "not reproduced" if misses else "inconclusive"


def verdict_label(low: float, high: float, reference: Reference, prediction_low: float = math.nan,
                  prediction_high: float = math.nan) -> Label:
    """The label for the interval [low, high] (bounds inclusive) and, for a paper's figure, one run's interval."""
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if reference.kind == "smallest effect of interest":
        reaches, misses = low >= reference.value, high < reference.value
    else:
        reaches = prediction_low <= reference.value <= prediction_high
        misses = not reaches
    return rule_label(above_zero=low > 0, below_zero=high < 0, reaches=reaches, misses=misses)


#: The largest noncentrality searched: an effect 1,000 standard errors away. A test on fewer than about half a degree
#: of freedom (a Satterthwaite df from a small, partly crossed design) does not reach its power even there.
MAX_NONCENTRALITY = 1e3


@cache
def _noncentrality(df: float, power: float, alpha: float) -> float:
    critical = scipy_stats.t.ppf(1 - alpha, df)

    def shortfall(nc: float) -> float:
        return scipy_stats.nct.sf(critical, df, nc) - power

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nct's series may not converge that far out; it stays < power
        if shortfall(MAX_NONCENTRALITY) < 0:
            return math.inf
    return float(optimize.brentq(shortfall, 0.0, MAX_NONCENTRALITY))


def minimum_detectable_effect(standard_error: float, df: float, power: float = POWER,
                              alpha: float = ALPHA_ONE_SIDED) -> float:
    """The true effect the one-sided level-``alpha`` t-test detects with ``power`` (noncentral t)."""
    return _noncentrality(float(df), power, alpha) * standard_error


def judge(estimate: EffectEstimate, reference: Reference, comparison: str = "effect") -> Verdict:
    """The primary verdict on an estimated effect against ``reference``."""
    common: dict[str, Any] = {
        "comparison": comparison, "effect": estimate.effect, "reference": reference.value,
        "reference_kind": reference.kind, "n_seeds": estimate.n_seeds, "n_pairs": estimate.n_pairs,
        "seed_effects": estimate.seed_effects, "design": estimate.design}
    if math.isnan(estimate.standard_error):
        return Verdict("inconclusive", low=math.nan, high=math.nan, p_value=math.nan, mde=math.nan,
                       note=estimate.note, **common)
    half = float(scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, estimate.df)) * estimate.standard_error
    one_run = float(scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, estimate.prediction_df)) * estimate.prediction_error
    low, high = estimate.effect - half, estimate.effect + half
    prediction_low, prediction_high = estimate.effect - one_run, estimate.effect + one_run
    mde = minimum_detectable_effect(estimate.standard_error, estimate.df)
    in_prediction = (prediction_low <= reference.value <= prediction_high
                     if reference.kind == "paper's figure" else None)
    return Verdict(verdict_label(low, high, reference, prediction_low, prediction_high), low=low, high=high,
                   p_value=float(scipy_stats.t.sf(estimate.effect / estimate.standard_error, estimate.df)), mde=mde,
                   note=estimate.note, standard_error=estimate.standard_error, df=estimate.df,
                   prediction_low=prediction_low, prediction_high=prediction_high, prediction_df=estimate.prediction_df,
                   paper_figure_in_prediction=in_prediction, underpowered=bool(mde > reference.value), **common)


def seed_effects_verdict(seed_effects: Sequence[float] | np.ndarray, reference: Reference, *,
                         n_pairs: int | None = None, comparison: str = "effect") -> Verdict:
    """The verdict from per-seed effects; ``n_pairs``: the paired observations behind them (default: the seeds)."""
    return judge(seed_estimate(seed_effects, n_pairs), reference, comparison)


K = TypeVar("K", bound=Hashable)


def holm_family(verdicts: Mapping[K, Verdict], family: str) -> dict[K, Verdict]:
    """One named family's verdicts marked exploratory and re-labelled from Holm-adjusted two-sided tests against 0
    and any SESOI (a paper's figure keeps its prediction-interval reading; rows without interval: inconclusive)."""
    tests = [(key, at) for key, v in verdicts.items() if not math.isnan(v.standard_error)
             for at in ((0.0, v.reference) if v.reference_kind == "smallest effect of interest" else (0.0,))]
    p_values = [2 * scipy_stats.t.sf(abs(verdicts[key].effect - at) / verdicts[key].standard_error, verdicts[key].df)
                for key, at in tests]
    reject, adjusted = (multipletests(p_values, alpha=FAMILY_ALPHA, method="holm")[:2] if tests else ([], []))
    decided = {(key, at): (bool(r), float(p)) for (key, at), r, p in zip(tests, reject, adjusted)}
    relabelled = {}
    for key, v in verdicts.items():
        common = {"role": "exploratory", "family": family}
        if (key, 0.0) not in decided:
            relabelled[key] = replace(v, label="inconclusive", p_holm=math.nan, p_holm_reference=math.nan, **common)
            continue
        zero_rejected, p_zero = decided[key, 0.0]
        if v.reference_kind == "smallest effect of interest":
            reference_rejected, p_reference = decided[key, v.reference]
            # a rejected test means effect ≠ reference, so > and ≥ (< and ≤) agree here and below
            reaches = reference_rejected and v.effect > v.reference  # pragma: no mutate
            misses = reference_rejected and v.effect < v.reference  # pragma: no mutate
        else:
            p_reference, reaches = math.nan, bool(v.paper_figure_in_prediction)
            misses = not reaches
        label = rule_label(above_zero=zero_rejected and v.effect > 0,  # pragma: no mutate
                           below_zero=zero_rejected and v.effect < 0,  # pragma: no mutate
                           reaches=reaches, misses=misses)
        relabelled[key] = replace(v, label=label, p_holm=p_zero, p_holm_reference=p_reference, **common)
    return relabelled


def primary_and_family(verdicts: Mapping[K, Verdict], family: str, primary: K | None) -> dict[K, Verdict]:
    """The verdict at key ``primary`` as it is, the others Holm-adjusted in ``family``, in the order given."""
    others = holm_family({key: v for key, v in verdicts.items() if key != primary}, family)
    return {key: verdicts[key] if key == primary else others[key] for key in verdicts}


def stored_estimate(stored: Mapping[str, Any]) -> EffectEstimate:
    """The estimate behind a stored ``Verdict.to_dict()`` (an older record: read back from its seed interval)."""
    n, n_pairs = int(stored["n_seeds"]), int(stored.get("n_pairs") or stored["n_seeds"])
    seed_effects = tuple(float(e) for e in stored.get("seed_effects") or ())
    base = EffectEstimate(float(stored["effect"]), n, n_pairs, seed_effects, stored.get("design") or (
        "seeds" if n_pairs == n else "seeds, images held fixed"), note=stored.get("note") or "")
    low, high = (math.nan if stored.get(bound) is None else float(stored[bound]) for bound in ("low", "high"))
    if math.isnan(low) or math.isnan(high):
        return replace(base, note=base.note or (ONE_SEED if n < 2 else NO_SEED_VARIATION))
    if "df" in stored:
        prediction_t = float(scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, float(stored["prediction_df"])))
        return replace(base, standard_error=float(stored["standard_error"]), df=float(stored["df"]),
                       prediction_error=(float(stored["prediction_high"]) - float(stored["prediction_low"])) / 2
                       / prediction_t, prediction_df=float(stored["prediction_df"]))
    standard_error = (high - low) / 2 / float(scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, n - 1))
    return replace(base, standard_error=standard_error, df=n - 1, prediction_error=standard_error * math.sqrt(n + 1),
                   prediction_df=n - 1)


def verdict_from_dict(stored: Mapping[str, Any]) -> Verdict:
    """A stored verdict judged again by today's rule, as a primary verdict."""
    reference = Reference(float(stored["reference"]), stored["reference_kind"])
    return judge(stored_estimate(stored), reference, stored.get("comparison") or "effect")


def paired_differences(table: pd.DataFrame, a: str, b: str, *, value: str, model: str = "model",
                       seed: str = "seed", unit: str | None = "example") -> pd.Series:
    """The differences a − b of ``value`` per ``seed`` and ``unit`` (``None``: per seed), both models once each."""
    rows = table[table[model].isin([a, b])]
    keys = [seed] if unit is None else [seed, unit]
    if rows.empty:
        raise ValueError(f"no rows with {model} = {a!r} or {b!r}")
    outcomes = rows[value].astype(float)
    if not np.isfinite(outcomes).all():
        raise ValueError(f"{int((~np.isfinite(outcomes)).sum())} non-finite values in column {value!r}")
    if rows.duplicated(keys + [model]).any():
        raise ValueError(f"more than one row per {model} and {tuple(keys)}: pair the outcomes first")
    wide = rows.assign(**{value: outcomes}).pivot(index=keys, columns=model, values=value).reindex(columns=[a, b])
    unpaired = wide.isna().any(axis=1)
    if unpaired.any():
        raise ValueError(f"{int(unpaired.sum())} of {len(wide)} {tuple(keys)} have only one of {a!r} and {b!r}")
    return wide[a] - wide[b]


def effect_verdict(table: pd.DataFrame, a: str, b: str, reference: Reference, *, value: str, model: str = "model",
                   seed: str = "seed", unit: str | None = "example", comparison: str | None = None) -> Verdict:
    """The verdict on "``a`` exceeds ``b``" from paired outcomes; ``unit=None``: over seeds alone."""
    differences = paired_differences(table, a, b, value=value, model=model, seed=seed, unit=unit)
    if unit is None:
        estimate = seed_estimate(differences.to_numpy(), len(differences))
    else:
        estimate = crossed_estimate(differences.unstack(unit))
    return judge(estimate, reference, comparison or f"{a} − {b}")


def effect_verdicts(table: pd.DataFrame, by: str | list[str], a: str, b: str, reference: Reference, *, value: str,
                    model: str = "model", seed: str = "seed", unit: str | None = "example",
                    comparison: str | None = None) -> dict[Hashable, Verdict]:
    """``effect_verdict`` for each group of ``by`` (a column, or a list of columns for tuple keys)."""
    return {key: effect_verdict(group, a, b, reference, value=value, model=model, seed=seed, unit=unit,
                                comparison=comparison)
            for key, group in table.groupby(by, sort=False)}


def verdicts_frame(verdicts: Mapping[Hashable, Verdict], names: str | list[str]) -> pd.DataFrame:
    """Verdicts as a table indexed by their keys: the flags, the one-run reading and every field but seed effects."""
    keys = list(verdicts)
    index = pd.Index(keys, name=names) if isinstance(names, str) else pd.MultiIndex.from_tuples(keys, names=names)
    rows = [{"verdict": v.flags, "paper's figure in one run": v.one_run,
             **{name: value for name, value in asdict(v).items() if name != "seed_effects"}}
            for v in verdicts.values()]
    return pd.DataFrame(rows, index=index)


def effects_in_points(verdicts: pd.DataFrame, where: Callable[[Hashable], str]) -> str:
    """Each row of a :func:`verdicts_frame` (effects as fractions) for prose: ``+7.3 points (95 % interval +2.9 to
    +11.8; inconclusive, underpowered) <where(its index)>``, joined by semicolons."""
    return "; ".join(
        f"{100 * row['effect']:+.1f} points (95 % interval {100 * row['low']:+.1f} to {100 * row['high']:+.1f}; "
        f"{row['label']}{', underpowered' if row['underpowered'] else ''}) {where(index)}"
        for index, row in verdicts.iterrows())
