"""Intervals over seeds, and the one rule that turns a paired comparison into a verdict on a claim.

The paper reports single runs; the book repeats every experiment over several seeds. Both models
of a comparison are evaluated on the same images with the same seeds, so a claim "A beats B" is
judged on per-image differences A − B, averaged within each seed; the seeds are the unit of
replication, and the Student-t interval over the per-seed means is the inference. The verdict
compares that interval with zero and with a reference effect: the paper's own figure for the
effect, or, where the paper gives none, a smallest effect of interest stated once with the claim
(``report.paper``). ``VERDICT_RULE`` states the rule for the book to print.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

Label = Literal["reproduced", "direction holds, size differs", "not reproduced", "opposite", "inconclusive"]
ReferenceKind = Literal["paper's figure", "smallest effect of interest"]

#: Two-sided confidence of every interval; each of its tails is the level of a one-sided test.
CONFIDENCE = 0.95
ALPHA_ONE_SIDED = 0.025
#: Power at which the minimum detectable effect is stated.
POWER = 0.8

VERDICT_RULE = (
    "The effect is the claimed-better model minus the other, oriented so that positive is the claimed direction. "
    "Both models see the same images and seeds: per-image differences are averaged within each seed (a claim "
    "measured only per seed uses its per-seed values), and the seeds are the unit of replication. The effect is "
    "the mean of the per-seed differences with its two-sided 95 % Student-t interval over seeds (df = seeds − 1). "
    "It is significant in a direction when the interval excludes 0 on that side (one-sided t-test, α = 0.025). "
    "The reference is the paper's figure for the effect or, where the paper gives none, the claim's smallest "
    "effect of interest. 'reproduced': significant in the claimed direction and the paper's figure inside the "
    "interval (for a smallest effect of interest: the interval reaches it). 'direction holds, size differs': "
    "significant in the claimed direction, the paper's figure outside the interval (the interval wholly below "
    "the smallest effect of interest). 'not reproduced': not significant in the claimed direction and the "
    "interval wholly below the reference. 'opposite': significant against the claimed direction. "
    "'inconclusive': the interval covers both 0 and the reference, or there is no interval (one seed, or no "
    "variation between seeds). The minimum detectable effect is the true effect this test would detect with "
    "80 % power at the observed standard error and degrees of freedom."
)


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a two-sided ``confidence`` Student-t interval (NaN bounds when n < 2)."""

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
    """Mean and 95 % Student-t interval over seeds of ``value`` for each group of ``by`` (one row per seed each).

    Columns: the ``by`` keys, ``mean``, ``low``, ``high`` and ``n`` (seeds); NaN bounds with one seed.
    """
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        interval = mean_interval(group[value].to_numpy())
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        rows.append({**keys, "mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Reference:
    """The effect a verdict compares with: the paper's figure, or a smallest effect of interest (both > 0)."""

    value: float
    kind: ReferenceKind

    def __post_init__(self) -> None:
        if not self.value > 0:
            raise ValueError(f"a reference effect lies in the claimed direction, so it must be > 0, got {self.value}")


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim with everything it rests on (``VERDICT_RULE``).

    ``effect`` is the mean of ``seed_effects`` (the per-seed mean paired differences, positive = the
    claimed direction), ``low``/``high`` its 95 % t-interval over seeds, ``p_value`` the one-sided
    p-value for an effect in the claimed direction, ``mde`` the minimum detectable effect at 80 % power,
    ``n_pairs`` the paired observations (seed × image, or seeds for per-seed values). Without an
    interval the bounds, p-value and MDE are NaN and ``note`` says why.
    """

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

    @property
    def significant(self) -> bool:
        """Whether the effect is significant in the claimed direction (the interval lies above 0)."""
        return self.low > 0

    def to_dict(self) -> dict[str, object]:
        """The fields as plain Python values with NaN as None, for strict JSON."""
        def plain(value: object) -> object:
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            if isinstance(value, float):
                return None if math.isnan(value) else float(value)
            return value

        return {name: plain(value) for name, value in asdict(self).items()}

    def __str__(self) -> str:
        counts = f"{self.n_seeds} seed{'s' * (self.n_seeds != 1)}, {self.n_pairs} pair{'s' * (self.n_pairs != 1)}"
        reference = f"{self.reference_kind} {self.reference:+.3g}"
        if math.isnan(self.low):
            return f"{self.label}: {self.comparison} = {self.effect:+.3g}, {self.note}; {reference}; {counts}"
        return (f"{self.label}: {self.comparison} = {self.effect:+.3g}, 95 % CI [{self.low:+.3g}, {self.high:+.3g}], "
                f"one-sided p = {self.p_value:.2g}; {reference}; MDE {self.mde:.3g}; {counts}")


def verdict_label(low: float, high: float, reference: Reference) -> Label:
    """The rule's label for a 95 % interval [low, high] of an effect (positive = claimed) and a reference.

    Bounds are inclusive: an interval ending at 0 does not exclude it. A paper's figure must lie inside
    the interval for "reproduced"; a smallest effect of interest need only be reached by it.
    """
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if high < 0:
        return "opposite"
    below_reference = high < reference.value
    if low > 0:
        matches = not below_reference and (reference.kind == "smallest effect of interest" or low <= reference.value)
        return "reproduced" if matches else "direction holds, size differs"
    return "not reproduced" if below_reference else "inconclusive"


@cache
def _noncentrality(df: int, power: float, alpha: float) -> float:
    """Noncentrality at which the one-sided level-``alpha`` t-test with ``df`` degrees of freedom has ``power``."""
    critical = scipy_stats.t.ppf(1 - alpha, df)
    return float(optimize.brentq(lambda nc: scipy_stats.nct.sf(critical, df, nc) - power, 0.0, 1e3))


def minimum_detectable_effect(
    standard_error: float, df: int, power: float = POWER, alpha: float = ALPHA_ONE_SIDED
) -> float:
    """The true effect that the one-sided level-``alpha`` t-test detects with ``power``, from the noncentral t.

    With the standard error ``standard_error`` of the mean over ``df`` + 1 seeds, the t statistic of a
    true effect δ is noncentral t with noncentrality δ / ``standard_error``; the MDE solves for δ.
    """
    return _noncentrality(int(df), power, alpha) * standard_error


def seed_effects_verdict(
    seed_effects: Sequence[float] | np.ndarray,
    reference: Reference,
    *,
    n_pairs: int | None = None,
    comparison: str = "effect",
) -> Verdict:
    """The verdict from per-seed effects (positive = the claimed direction), one per seed (``VERDICT_RULE``).

    ``n_pairs`` is the number of paired observations behind them (default: one per seed). With one
    seed, or none of the per-seed effects differing, there is no between-seed interval: the verdict
    is "inconclusive" and says so, rather than falling back on an interval over images.
    """
    effects = np.asarray(seed_effects, dtype=float).ravel()
    if effects.size == 0 or not np.isfinite(effects).all():
        raise ValueError(f"a verdict needs at least one per-seed effect, all finite; got {effects.tolist()}")
    n, effect = int(effects.size), float(effects.mean())
    standard_error = float(effects.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    common = {"comparison": comparison, "effect": effect, "reference": reference.value,
              "reference_kind": reference.kind, "n_seeds": n, "n_pairs": n if n_pairs is None else int(n_pairs),
              "seed_effects": tuple(float(e) for e in effects)}
    if n < 2 or standard_error == 0:
        note = ("one seed: no between-seed replication, so no interval and no test" if n < 2 else
                "no variation between seeds: the t-interval is undefined, so no test")
        return Verdict("inconclusive", low=math.nan, high=math.nan, p_value=math.nan, mde=math.nan, note=note, **common)
    half = float(scipy_stats.t.ppf(1 - ALPHA_ONE_SIDED, n - 1)) * standard_error
    low, high = effect - half, effect + half
    return Verdict(verdict_label(low, high, reference), low=low, high=high,
                   p_value=float(scipy_stats.t.sf(effect / standard_error, n - 1)),
                   mde=minimum_detectable_effect(standard_error, n - 1), **common)


def paired_seed_effects(
    table: pd.DataFrame, a: str, b: str, *, value: str, model: str = "model", seed: str = "seed",
    unit: str | None = "example",
) -> tuple[pd.Series, int]:
    """Per-seed mean of the paired differences a − b, and the number of pairs.

    ``table`` is long: one row per ``model`` (whose values include ``a`` and ``b``), ``seed`` and
    ``unit`` (the image), with the outcome in ``value`` (0/1 or a score). ``unit=None`` takes one
    already-aggregated value per model and seed. Every (seed, unit) must have both models.
    """
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
    differences = wide[a] - wide[b]
    return differences.groupby(level=seed).mean(), len(differences)


def effect_verdict(
    table: pd.DataFrame, a: str, b: str, reference: Reference, *, value: str, model: str = "model",
    seed: str = "seed", unit: str | None = "example", comparison: str | None = None,
) -> Verdict:
    """The verdict on "``a`` exceeds ``b``" from a long table of paired outcomes (``paired_seed_effects``).

    The effect a − b is analysed per seed and judged by ``VERDICT_RULE`` against ``reference``;
    ``comparison`` names it (default "a − b").
    """
    effects, n_pairs = paired_seed_effects(table, a, b, value=value, model=model, seed=seed, unit=unit)
    return seed_effects_verdict(effects.to_numpy(), reference, n_pairs=n_pairs, comparison=comparison or f"{a} − {b}")


def effect_verdicts(
    table: pd.DataFrame, by: str | list[str], a: str, b: str, reference: Reference, *, value: str,
    model: str = "model", seed: str = "seed", unit: str | None = "example", comparison: str | None = None,
) -> dict[Hashable, Verdict]:
    """``effect_verdict`` for each group of ``by`` (a column, or a list of columns for tuple keys)."""
    return {key: effect_verdict(group, a, b, reference, value=value, model=model, seed=seed, unit=unit,
                                comparison=comparison)
            for key, group in table.groupby(by, sort=False)}


def verdicts_frame(verdicts: Mapping[Hashable, Verdict], names: str | list[str]) -> pd.DataFrame:
    """Verdicts as a table, one row per key (index named ``names``), the fields of ``Verdict.to_dict`` as columns.

    The per-seed effects are left out (they are in each ``Verdict``); NaN stays NaN for display.
    """
    keys = list(verdicts)
    index = pd.Index(keys, name=names) if isinstance(names, str) else pd.MultiIndex.from_tuples(keys, names=names)
    rows = [{name: value for name, value in asdict(v).items() if name != "seed_effects"} for v in verdicts.values()]
    return pd.DataFrame(rows, index=index)
