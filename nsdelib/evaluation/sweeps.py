"""What every evaluation sweep (input noise, attacks, attributions, ABC) shares: the model it evaluates with its cache
key and the class-stratified test subsets (chapter 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..common import derive_seed, model_device
from ..common.artifacts import ArtifactKind, ArtifactStore, content_digest
from ..models.inference import EvalMode, NoiseControl, predict
from ..models.nsde import eval_noise


def stratified_subset(y: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of a random subset of ``size`` samples (all if None), each class's share by largest remainder."""
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


@dataclass(frozen=True, eq=False)
class SweepTarget:
    """What a sweep evaluates or explains: a model, images and labels, its modes (the reported one first), the seed."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    modes: tuple[EvalMode, ...]
    seed: int
    noise_control: NoiseControl | None = None

    @property
    def mode(self) -> EvalMode:
        """The reported mode, the one attributions and ABC explain."""
        return self.modes[0]

    @property
    def control(self) -> NoiseControl:
        return self.noise_control or eval_noise

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def on(self, indices: torch.Tensor) -> SweepTarget:
        """The same target on the images ``indices`` only."""
        return replace(self, x=self.x[indices], y=self.y[indices])

    def subset(self, cfg: Any) -> torch.Tensor:
        """The stratified test subset of a sweep or of chapters 6 and 7's explanations: each seed draws its own, shared
        by that seed's models, so that a verdict's interval covers a new set of images as well as a new seed."""
        return stratified_subset(self.y, cfg.subset_size, derive_seed(cfg.subset_seed, "subset", self.seed))

    def key(self, cfg: Any, **parts: Any) -> dict[str, Any]:
        """The cache key of an artifact computed on the explained subset, with ``parts`` naming what it is."""
        return {**self.content_key("attribution", cfg, self.subset(cfg), self.modes[:1]), **parts}

    def content_key(self, section: str, cfg: Any, indices: torch.Tensor, modes: tuple[EvalMode, ...]
                    ) -> dict[str, Any]:
        """What an artifact on the images ``indices`` is computed with, the model's and the images' content included."""
        return {section: cfg.model_dump(mode="json"), "seed": self.seed, "modes": [asdict(mode) for mode in modes],
                "noise_control": getattr(self.control, "__name__", type(self.control).__name__),
                "content": content_digest(self.model, self.x[indices], self.y[indices])}


def cached_subset_sweep(store: ArtifactStore, kind: ArtifactKind, cfg: Any,
                        sweep: Callable[[SweepTarget, Any], pd.DataFrame], target: SweepTarget) -> pd.DataFrame:
    """``sweep(target, cfg)`` on the seed's subset, stored as an artifact and reused."""
    subset = target.subset(cfg)
    key = target.content_key("sweep", cfg, subset, target.modes)

    def build() -> pd.DataFrame:
        table = sweep(target.on(subset), cfg)
        if "example" in table.columns:  # per-image rows name the image by its index in the full split
            table["example"] = subset.numpy()[table["example"].to_numpy()]
        return table

    return store.fetch_table(kind, key, build)


def per_image_outcomes(model: nn.Module, x: torch.Tensor, y: torch.Tensor, modes: tuple[EvalMode, ...], *,
                       batch_size: int, seed: int, noise_control: NoiseControl | None = None) -> pd.DataFrame:
    """One row per (mode, image): ``mode``, ``example`` (index in ``x``) and ``correct`` (0 or 1)."""
    frames = [pd.DataFrame({"mode": mode.name, "example": range(len(y)),
                            "correct": (predict(model, x, mode, batch_size=batch_size, seed=seed,
                                                noise_control=noise_control) == y.cpu()).int().numpy()})
              for mode in modes]
    return pd.concat(frames, ignore_index=True)
