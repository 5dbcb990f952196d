"""Per-image outcomes: stored compactly beside a recorded result, and simulated with a known true effect."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..common.artifacts import atomic_write
from .stats import Reference, Verdict, effect_verdict, holm_family

FORMAT = "nsdelib per-image outcomes"
FORMAT_VERSION = 1


def outcomes_path(record: Path) -> Path:
    """``results/<profile>/outcomes/<name>.json`` for a record ``results/<profile>/<name>.json`` (kept out of
    a listing of the profile's records)."""
    return record.parent / "outcomes" / record.name


def write_outcomes(path: Path, table: pd.DataFrame, *, keys: Sequence[str], example: str = "example",
                   value: str = "correct") -> Path:
    """Write per-image outcomes as strict JSON, atomically: one base64 block per group of ``keys`` (0/1 packed as bits,
    others float32), each list of images stored once."""
    missing = [c for c in (*keys, example, value) if c not in table.columns]
    if missing:
        raise ValueError(f"the outcome table lacks the columns {missing}")
    if table.duplicated([*keys, example]).any():
        raise ValueError(f"more than one outcome per {tuple(keys)} and {example!r}")
    if not pd.api.types.is_integer_dtype(table[example]):
        raise ValueError(f"column {example!r} must hold integer image indices")
    binary = pd.api.types.is_bool_dtype(table[value]) or set(pd.unique(table[value])) <= {0, 1}
    example_sets: dict[tuple[int, ...], int] = {}
    groups = []
    for key, group in table.groupby(list(keys), sort=False, dropna=False):
        group = group.sort_values(example)
        images = tuple(int(i) for i in group[example])
        values = group[value].to_numpy()
        raw = np.packbits(values.astype(np.uint8)) if binary else values.astype("<f4")
        plain = (k.item() if isinstance(k, np.generic) else k for k in (key if isinstance(key, tuple) else (key,)))
        groups.append([*plain, example_sets.setdefault(images, len(example_sets)),
                       base64.b64encode(raw.tobytes()).decode()])
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "keys": list(keys), "example": example, "value": value,
               "encoding": "bits" if binary else "float32", "example_sets": [list(s) for s in example_sets],
               "groups": groups}
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def read_outcomes(path: Path) -> pd.DataFrame:
    """The long table ``write_outcomes`` stored (0/1 outcomes as booleans), groups in the order written."""
    payload = json.loads(path.read_text())
    if payload.get("format") != FORMAT or payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a version-{FORMAT_VERSION} {FORMAT!r} file")
    keys, example, value, bits = payload["keys"], payload["example"], payload["value"], payload["encoding"] == "bits"
    sets = [np.asarray(s, dtype=np.int64) for s in payload["example_sets"]]
    frames = []
    for *key, set_index, encoded in payload["groups"]:
        images = sets[set_index]
        raw = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8 if bits else "<f4")
        values = np.unpackbits(raw)[: len(images)].astype(bool) if bits else raw.astype(float)
        frames.append(pd.DataFrame({**dict(zip(keys, key)), example: images, value: values}))
    return pd.concat(frames, ignore_index=True)[[*keys, example, value]]


#: The key naming each measure and the value column of :func:`long_measures`.
MEASURE, VALUE = "measure", "value"


def long_measures(table: pd.DataFrame, keys: Sequence[str], measures: Sequence[str], *, example: str = "example"
                  ) -> pd.DataFrame:
    """``table``'s columns ``measures`` stacked into one float column ``value``, named by ``measure``, beside ``keys``
    and ``example``: :func:`write_outcomes` stores one value column, so several measures per image share one file.
    Undefined (NaN) values, such as a score a model does not have, are left out."""
    long = table.melt(id_vars=[*keys, example], value_vars=list(measures), var_name=MEASURE, value_name=VALUE)
    long[VALUE] = long[VALUE].astype(float)
    return long.dropna(subset=[VALUE])[[*keys, MEASURE, example, VALUE]].reset_index(drop=True)


def simulate_paired_outcomes(effect: float, *, n_seeds: int, n_images: int, rng: np.random.Generator, n_sims: int = 1,
                             seed_spread: float = 0.02, image_spread: float = 0.25,
                             base: tuple[float, float] = (0.5, 0.7), agreement: float = 0.8
                             ) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes of models a and b, each (n_sims, n_seeds, n_images), whose true mean difference is ``effect``.

    Model b's rate per image is uniform in ``base``; a adds ``effect`` and uniform seed and image effects
    (±``seed_spread``, ±``image_spread``); on a share ``agreement`` of pairs both read the same draw.
    """
    reach = abs(effect) + seed_spread + image_spread
    if base[0] - reach < 0 or base[1] + reach > 1:
        raise ValueError(f"base rates {base} ± {reach:g} leave [0, 1]: the true effect would not be {effect}")
    shape = (n_sims, n_seeds, n_images)
    rate_b = rng.uniform(*base, (n_sims, 1, n_images))
    rate_a = (rate_b + effect + rng.uniform(-seed_spread, seed_spread, (n_sims, n_seeds, 1))
              + rng.uniform(-image_spread, image_spread, (n_sims, 1, n_images)))
    draw_b = rng.random(shape)
    draw_a = np.where(rng.random(shape) < agreement, draw_b, rng.random(shape))
    return draw_a < rate_a, draw_b < rate_b


def outcomes_frame(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """A long table (``model`` "a" or "b", ``seed``, ``example``, ``correct``) from two (seeds, images) arrays."""
    seeds, images = np.indices(a.shape)
    frame = {"seed": seeds.ravel(), "example": images.ravel()}
    return pd.concat([pd.DataFrame({"model": "a", **frame, "correct": a.ravel()}),
                      pd.DataFrame({"model": "b", **frame, "correct": b.ravel()})], ignore_index=True)


@dataclass(frozen=True)
class RuleExample:
    """One simulated comparison whose verdict shows a label or flag: the truth, the design and the reference."""

    shows: str
    effect: float
    n_seeds: int
    n_images: int
    reference: Reference
    seed_spread: float = 0.02
    image_spread: float = 0.1

    def verdict(self, rng: np.random.Generator) -> Verdict:
        a, b = simulate_paired_outcomes(self.effect, n_seeds=self.n_seeds, n_images=self.n_images, rng=rng,
                                        seed_spread=self.seed_spread, image_spread=self.image_spread)
        return effect_verdict(outcomes_frame(a[0], b[0]), "a", "b", self.reference, value="correct",
                              comparison=f"true {self.effect:+.3f}, {self.n_seeds} seeds × {self.n_images} images")


SESOI = Reference(0.05, "smallest effect of interest")
RULE_EXAMPLES: tuple[RuleExample, ...] = (
    RuleExample("reproduced (smallest effect of interest)", 0.12, 5, 1000, SESOI),
    RuleExample("reproduced (the paper's figure inside one run's prediction interval)", 0.03, 10, 1000,
                Reference(0.06, "paper's figure"), seed_spread=0.04),
    RuleExample("direction holds, size differs", 0.02, 10, 2000, SESOI, seed_spread=0.005),
    RuleExample("direction holds, size not shown", 0.05, 5, 2000, SESOI, seed_spread=0.005),
    RuleExample("not reproduced", 0.0, 5, 2000, SESOI, seed_spread=0.005),
    RuleExample("opposite", -0.06, 5, 1000, SESOI),
    RuleExample("inconclusive, underpowered", 0.04, 3, 64, SESOI),
)
#: The Holm example's family: one real effect among null ones, each on its own simulated data set.
HOLM_EXAMPLE: tuple[RuleExample, ...] = (
    RuleExample("Holm: the real effect", 0.04, 5, 400, SESOI, seed_spread=0.005),
    *(RuleExample(f"Holm: no effect ({i})", 0.0, 5, 400, SESOI, seed_spread=0.005) for i in range(1, 8)),
)


def rule_examples(seed: int = 1) -> dict[str, Verdict]:
    """The verdicts of ``RULE_EXAMPLES`` and the Holm example's real effect alone and in its family, keyed by what
    each shows (as it does with the default ``seed``)."""
    rng = np.random.default_rng(seed)
    verdicts = {example.shows: example.verdict(rng) for example in RULE_EXAMPLES}
    family = {example.shows: example.verdict(rng) for example in HOLM_EXAMPLE}
    first = HOLM_EXAMPLE[0].shows
    verdicts[f"{first}, judged alone"] = family[first]
    verdicts[f"{first}, Holm-adjusted in its family"] = holm_family(family, "the Holm example")[first]
    return verdicts
