"""Per-image outcomes: stored compactly beside a recorded result, simulated with a known answer, and the records
judged again by today's verdict rule.

A verdict with seeds and images both random (``report.stats``) is computed from the per-image
outcomes (one row per seed, image, model and the outcome: right or wrong, or a per-image score), so
a recorded result keeps them beside it in ``results/<profile>/outcomes/<name>.json``: strict JSON,
one packed bit string (or float32 block) per group, small enough for git. The simulation draws
outcomes whose true effect is known, for the rule's coverage test and the worked examples of chapter 4.
``relabel`` judges a record's stored verdicts again, each claim's primary one unadjusted and every
other in its named family (``RECORD_PLANS``), without retraining anything.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..common.artifacts import atomic_write
from ..evaluation.attacks import WORST
from .claims import C2_LEVELS, C3_ATTACKS_FAMILY, C4_BUDGETS, C5_CONTROLS, SIZE_STUDY
from .stats import (
    VERDICT_FIELDS,
    Reference,
    Verdict,
    effect_verdict,
    holm_family,
    verdict_from_dict,
)

FORMAT = "nsdelib per-image outcomes"
FORMAT_VERSION = 1

#: A key that selects the largest level among numeric keys: C5 is judged at every perturbation level, and its
#: primary comparison is at the largest, where chapter 6 states its headline.
LARGEST_LEVEL = "<largest level>"


def outcomes_path(record: Path) -> Path:
    """Where the per-image outcomes of the recorded result ``results/<profile>/<name>.json`` are stored.

    ``results/<profile>/outcomes/<name>.json``: one folder down, so that what lists the records
    (every ``*.json`` of a profile's folder) never mistakes them for a record.
    """
    return record.parent / "outcomes" / record.name


def _plain(value: Any) -> Any:
    """A key value as a JSON scalar (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def write_outcomes(path: Path, table: pd.DataFrame, *, keys: Sequence[str], example: str = "example",
                   value: str = "correct") -> Path:
    """Write a long table of per-image outcomes compactly as strict JSON at ``path`` (atomically).

    ``keys`` are the columns that name a group of images (seed and model at least; the noise level,
    the ε, ...), ``example`` the image's integer index, ``value`` its outcome: 0/1 (or booleans) are
    packed 8 to a byte, anything else stored as float32, each group base64-encoded. The image lists
    are stored once each and shared by the groups that use them. ``read_outcomes`` reads it back.
    """
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
        groups.append([*(_plain(k) for k in (key if isinstance(key, tuple) else (key,))),
                       example_sets.setdefault(images, len(example_sets)), base64.b64encode(raw.tobytes()).decode()])
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "keys": list(keys), "example": example, "value": value,
               "encoding": "bits" if binary else "float32", "example_sets": [list(s) for s in example_sets],
               "groups": groups}
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def read_outcomes(path: Path) -> pd.DataFrame:
    """The long table that ``write_outcomes`` stored at ``path``: the key columns, the image and its outcome
    (booleans for 0/1 outcomes, floats otherwise), groups in the order written, images in increasing order."""
    payload = json.loads(path.read_text())
    if payload.get("format") != FORMAT or payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a version-{FORMAT_VERSION} {FORMAT!r} file")
    keys, example, value = payload["keys"], payload["example"], payload["value"]
    sets = [np.asarray(s, dtype=np.int64) for s in payload["example_sets"]]
    frames = []
    for *key, set_index, encoded in payload["groups"]:
        images = sets[set_index]
        raw = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8 if payload["encoding"] == "bits" else "<f4")
        values = (np.unpackbits(raw)[: len(images)].astype(bool) if payload["encoding"] == "bits"
                  else raw.astype(float))
        frames.append(pd.DataFrame({**dict(zip(keys, key)), example: images, value: values}))
    return pd.concat(frames, ignore_index=True)[[*keys, example, value]]


def simulate_paired_outcomes(
    effect: float, *, n_seeds: int, n_images: int, rng: np.random.Generator, n_sims: int = 1,
    seed_spread: float = 0.02, image_spread: float = 0.25, base: tuple[float, float] = (0.5, 0.7),
    agreement: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes of models a and b, each of shape (n_sims, n_seeds, n_images), every seed on the same images.

    Each simulated data set draws its own images and seeds. Image i has a base rate uniform in ``base``:
    model b is right on it with that probability, model a with that plus ``effect``, a seed effect
    uniform in ±``seed_spread`` and an image effect uniform in ±``image_spread``. On a share
    ``agreement`` of the (seed, image) pairs both models read the same uniform draw (paired models
    mostly err on the same images), so the outcomes add binomial noise. No probability leaves [0, 1],
    so the true mean difference over seeds and images is exactly ``effect``.
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
    """One simulated comparison whose verdict shows a label or flag: the true effect, the design and the reference."""

    shows: str
    effect: float
    n_seeds: int
    n_images: int
    reference: Reference
    seed_spread: float = 0.02
    image_spread: float = 0.1

    def verdict(self, rng: np.random.Generator) -> Verdict:
        """The verdict on a − b for one simulated data set of this example."""
        a, b = simulate_paired_outcomes(self.effect, n_seeds=self.n_seeds, n_images=self.n_images, rng=rng,
                                        seed_spread=self.seed_spread, image_spread=self.image_spread)
        return effect_verdict(outcomes_frame(a[0], b[0]), "a", "b", self.reference, value="correct",
                              comparison=f"true {self.effect:+.3f}, {self.n_seeds} seeds × {self.n_images} images")


SESOI = Reference(0.05, "smallest effect of interest")
#: One example of each label and flag (what the verdict should show, the truth and the design behind it).
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
#: The family of the Holm example: one real effect among null ones, each on its own simulated data set.
HOLM_EXAMPLE: tuple[RuleExample, ...] = (
    RuleExample("Holm: the real effect", 0.04, 5, 400, SESOI, seed_spread=0.005),
    *(RuleExample(f"Holm: no effect ({i})", 0.0, 5, 400, SESOI, seed_spread=0.005) for i in range(1, 8)),
)


def rule_examples(seed: int = 1) -> dict[str, Verdict]:
    """The verdict of every ``RULE_EXAMPLES`` entry, then the Holm example's real effect judged alone (primary)
    and within its family of null comparisons (exploratory), keyed by what each shows.

    One generator seeded by ``seed`` draws them all. A label is a random outcome: with the default
    seed every example shows what it is named for (the tests check it); another seed may not.
    """
    rng = np.random.default_rng(seed)
    verdicts = {example.shows: example.verdict(rng) for example in RULE_EXAMPLES}
    family = {example.shows: example.verdict(rng) for example in HOLM_EXAMPLE}
    first = HOLM_EXAMPLE[0].shows
    verdicts[f"{first}, judged alone"] = family[first]
    verdicts[f"{first}, Holm-adjusted in its family"] = holm_family(family, "the Holm example")[first]
    return verdicts


@dataclass(frozen=True)
class RecordPlan:
    """How a recorded result's verdicts are judged: the keys from its ``result`` block to the claim's primary
    verdict (``LARGEST_LEVEL`` picks the largest numeric key; empty: no primary), and the named family of the
    verdicts under each other top-level key."""

    primary: tuple[str, ...]
    families: Mapping[str, str]


RECORD_PLANS: dict[str, RecordPlan] = {
    "clean_accuracy": RecordPlan(("verdict",), {}),
    "noise_robustness": RecordPlan(("verdict",), {"by_level": C2_LEVELS}),
    "adversarial": RecordPlan(("verdicts", WORST), {"verdicts": C3_ATTACKS_FAMILY}),
    "abc": RecordPlan(("verdict",), {"by_budget": C4_BUDGETS, "verdict_ensemble": C4_BUDGETS}),
    "attribution_stability": RecordPlan(("verdicts", LARGEST_LEVEL), {
        key: C5_CONTROLS for key in ("verdicts", "verdicts_literal", "controls", "controls_literal")}),
    "data_size": RecordPlan((), {"verdicts": SIZE_STUDY}),
}


def _is_verdict(node: Any) -> bool:
    return isinstance(node, Mapping) and "label" in node and "effect" in node and not isinstance(node["label"], list)


def _is_verdict_table(node: Any) -> bool:
    return isinstance(node, Mapping) and isinstance(node.get("label"), list) and isinstance(node.get("effect"), list)


def _slots(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Mapping[str, Any]]]:
    """Every stored verdict under ``node``: (its path, its fields); a table's row i has the path (..., i)."""
    if _is_verdict(node):
        yield path, node
    elif _is_verdict_table(node):
        for i in range(len(node["label"])):
            yield (*path, i), {name: column[i] for name, column in node.items()}
    elif isinstance(node, Mapping):
        for key, child in node.items():
            yield from _slots(child, (*path, key))


def _resolve(result: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    """``keys`` with ``LARGEST_LEVEL`` replaced by the largest numeric key where it stands."""
    node, path = result, []
    for key in keys:
        if key == LARGEST_LEVEL and isinstance(node, Mapping) and node:
            key = max(node, key=float)
        path.append(key)
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return tuple(path)


def _test_identity(verdict: Verdict) -> tuple[Any, ...]:
    """What makes two stored verdicts the same test (a table may repeat, under another name, a verdict stored
    elsewhere): the same reference, effect, standard error and pairs."""
    error = None if math.isnan(verdict.standard_error) else verdict.standard_error
    return verdict.reference, verdict.effect, error, verdict.n_pairs


def relabel(record: Mapping[str, Any], plan: RecordPlan) -> dict[str, Any]:
    """A copy of a recorded result whose verdicts are judged again by today's rule (``report.stats``).

    Each stored verdict is rebuilt from what it stores (:func:`report.stats.verdict_from_dict`). The
    primary verdict at ``plan.primary`` and every verdict outside the plan's families are judged alone;
    the verdicts under a family's key are Holm-adjusted together, a test counted once however often it
    is stored, and one identical to the primary stays primary. Tables keep their other columns.
    """
    relabelled = copy.deepcopy(dict(record))
    result = relabelled["result"]
    slots = {path: verdict_from_dict(stored) for path, stored in _slots(result)}
    primary = slots.get(_resolve(result, plan.primary)) if plan.primary else None
    families: dict[str, dict[tuple[Any, ...], Verdict]] = {}
    for path, verdict in slots.items():
        family = plan.families.get(path[0])
        if family and verdict is not primary and (primary is None or _test_identity(verdict) != _test_identity(primary)):
            families.setdefault(family, {}).setdefault(_test_identity(verdict), verdict)
    judged = {test: verdict for name, members in families.items() for test, verdict in holm_family(members, name).items()}
    for path, verdict in slots.items():
        final = verdict if verdict is primary else judged.get(_test_identity(verdict), verdict)
        node = result
        for key in path[:-1]:
            node = node[key]
        if isinstance(path[-1], int):
            row = {"verdict": final.flags, "paper's figure in one run": final.one_run, **final.to_dict()}
            for name in ("verdict", "paper's figure in one run", *VERDICT_FIELDS):
                if name != "seed_effects":
                    node.setdefault(name, [None] * len(node["label"]))[path[-1]] = row[name]
        else:
            node[path[-1]] = final.to_dict()
    return relabelled
