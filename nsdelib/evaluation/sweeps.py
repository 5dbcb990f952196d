"""What every evaluation sweep shares: each seed's test subset, the sweep's cache key, its stored table.

Sweeps (input noise, attacks, attributions, ABC) run on a class-stratified subset of the test split
drawn afresh for each model seed and shared by every model of that seed, so that results are paired
within a seed and images vary between seeds like the seeds do. Each is keyed on what it computes with
(config, seed, evaluation modes, and the *content* of the model and the subset) and stored as a
table in the artifact store, so a rebuild reads it back and a retrained model never reads a stale one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import pandas as pd
import torch
from torch import nn

from ..common.artifacts import ArtifactKind, ArtifactStore, content_digest
from ..common.seeding import derive_seed
from ..models.inference import EvalMode, NoiseControl, default_noise_control, predict


def stratified_subset(y: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of a class-stratified random subset of ``size`` samples (all samples if ``size`` is None).

    Each class gets its share of ``size`` in proportion to its frequency (largest remainders
    first), so the subset's class balance matches the full set's.
    """
    n = len(y)
    if size is None or size >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(y, return_counts=True)
    quotas = counts.double() * size / n
    take = quotas.floor().long()
    remainders = (quotas - take).argsort(descending=True, stable=True)
    take[remainders[: size - int(take.sum())]] += 1
    chosen = []
    for label, k in zip(classes.tolist(), take.tolist()):
        members = (y == label).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(chosen).sort().values


def seed_subset(y: torch.Tensor, size: int | None, subset_seed: int, seed: int) -> torch.Tensor:
    """The stratified subset of ``size`` images that the models of seed ``seed`` are evaluated on.

    Each seed draws its own (from ``subset_seed`` and ``seed``), so a verdict over seeds also
    averages over images; every model of one seed sees the same images, so they stay paired.
    """
    return stratified_subset(y, size, derive_seed(subset_seed, "subset", seed))


def modes_key(modes: tuple[EvalMode, ...], noise_control: NoiseControl | None) -> dict[str, Any]:
    """The evaluation modes and the noise control's name, as JSON-ready data for a cache key."""
    control = noise_control or default_noise_control()
    return {"modes": [asdict(mode) for mode in modes],
            "noise_control": getattr(control, "__name__", type(control).__name__)}


def fetch_table(store: ArtifactStore, kind: ArtifactKind, key: Mapping[str, Any], build: Callable[[], pd.DataFrame]
                ) -> pd.DataFrame:
    """A sweep's table from the artifact store, or ``build()`` stored as JSON (column order kept)."""

    def build_payload() -> dict[str, Any]:
        table = build()
        return {"columns": list(table.columns), "rows": table.to_dict(orient="list")}

    payload = store.fetch(kind, key, build_payload)
    return pd.DataFrame(payload["rows"])[payload["columns"]]


@dataclass(frozen=True)
class SweepTarget:
    """What a sweep evaluates: a model, images and labels, its modes (the reported one first), the noise seed."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    modes: tuple[EvalMode, ...]
    seed: int
    noise_control: NoiseControl | None = None

    def subset(self, indices: torch.Tensor) -> SweepTarget:
        """The same target on the images ``indices`` only."""
        return replace(self, x=self.x[indices], y=self.y[indices])


class SubsetSweep(Protocol):
    """A sweep run on a subset: ``sweep(target, cfg)`` returns its table."""

    def __call__(self, target: SweepTarget, cfg: Any) -> pd.DataFrame: ...


def cached_subset_sweep(store: ArtifactStore, kind: ArtifactKind, cfg: Any, sweep: SubsetSweep, target: SweepTarget
                        ) -> pd.DataFrame:
    """``sweep`` on ``cfg``'s stratified subset of the target's images, stored as an artifact and reused.

    Keyed on the sweep config, the seed, the evaluation modes and the content of the model and the
    subset, so a rerun with the same inputs reads the table instead of recomputing, and a retrained
    model or a changed σ never reads a stale one.
    """
    subset = seed_subset(target.y, cfg.subset_size, cfg.subset_seed, target.seed)
    target = target.subset(subset)
    key = {
        "sweep": cfg.model_dump(mode="json"),
        "seed": target.seed,
        **modes_key(target.modes, target.noise_control),
        "content": content_digest(target.model, target.x, target.y),
    }

    def build() -> pd.DataFrame:
        table = sweep(target, cfg)
        if "example" in table.columns:  # per-image rows name the image by its index in the full split
            table["example"] = subset.numpy()[table["example"].to_numpy()]
        return table

    return fetch_table(store, kind, key, build)


def per_image_outcomes(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    modes: tuple[EvalMode, ...],
    *,
    batch_size: int,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """One row per (mode, image): ``mode``, ``example`` (index in ``x``) and ``correct`` (0 or 1).

    The per-image outcomes the verdicts pair across models: both models are scored on the same images.
    """
    frames = [
        pd.DataFrame({"mode": mode.name, "example": range(len(y)),
                      "correct": (predict(model, x, mode, batch_size=batch_size, seed=seed,
                                          noise_control=noise_control) == y.cpu()).int().numpy()})
        for mode in modes
    ]
    return pd.concat(frames, ignore_index=True)
