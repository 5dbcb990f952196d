"""Intervals over seeds and the rule that turns them into a verdict on a claim.

The paper reports single runs; the book repeats every experiment over several seeds and reports
the mean with a 95 % Student-t interval. A claim "A is greater than B" is judged on the paired
per-seed differences A − B: it *holds* when the whole interval of the mean difference lies above
zero, *does not hold* when it lies below zero, and is *inconclusive* when it contains zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

Direction = Literal["greater", "less"]
VERDICT_RULE = (
    "paired per-seed differences; 'holds' if the 95 % t-interval of the mean difference excludes 0 in the "
    "claimed direction, 'does not hold' if it excludes 0 in the other direction, else 'inconclusive'"
)


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with a two-sided ``confidence`` Student-t interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.mean:.4g} (n={self.n})"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (always False without an interval)."""
        return self.low <= value <= self.high


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval of independent values (one per seed)."""
    data = np.asarray(values, dtype=float).ravel()
    if data.size == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean, math.nan, math.nan, 1, confidence)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return Interval(mean, mean - half, mean + half, int(data.size), confidence)


@dataclass(frozen=True)
class Verdict:
    """Outcome of testing "a is ``direction`` than b" on paired per-seed values."""

    label: Literal["holds", "does not hold", "inconclusive"]
    difference: Interval
    direction: Direction
    rule: str = VERDICT_RULE

    def __str__(self) -> str:
        return f"{self.label} (mean difference {self.difference})"


def paired_verdict(a: Sequence[float], b: Sequence[float], direction: Direction = "greater") -> Verdict:
    """Judge "a > b" (or "a < b") from paired per-seed values with the book's rule (module docstring)."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape or a_arr.size == 0:
        raise ValueError(f"paired_verdict needs two equally long, non-empty sequences, got {a_arr.shape} and {b_arr.shape}")
    diff = mean_interval(a_arr - b_arr)
    sign = 1.0 if direction == "greater" else -1.0
    low, high = sorted((sign * diff.low, sign * diff.high))
    if math.isnan(diff.low):
        label = "inconclusive"
    elif low > 0:
        label = "holds"
    elif high < 0:
        label = "does not hold"
    else:
        label = "inconclusive"
    return Verdict(label, diff, direction)


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


def paired_verdicts(
    table: pd.DataFrame,
    by: Sequence[str],
    a: str,
    b: str,
    value: str = "accuracy",
    direction: Direction = "greater",
) -> pd.DataFrame:
    """For each group of ``by``, the book's verdict on "mode ``a`` is ``direction`` than mode ``b``".

    ``table`` has ``mode`` and ``seed`` columns; values are paired by seed (``paired_verdict``).
    Columns: the ``by`` keys, the mean difference a − b with its 95 % interval, seeds and the verdict.
    """
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        paired = group.pivot_table(index="seed", columns="mode", values=value)[[a, b]].dropna()
        verdict = paired_verdict(paired[a].to_numpy(), paired[b].to_numpy(), direction)
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        rows.append({**keys, "difference": verdict.difference.mean, "low": verdict.difference.low,
                     "high": verdict.difference.high, "n": verdict.difference.n, "verdict": verdict.label})
    return pd.DataFrame(rows)
