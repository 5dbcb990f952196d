"""The first call of every chapter: validate parameters, seed everything, pick the device.

The context binds a profile's config sections to the seed, the device and the artifact store, and
hands each stage only the pieces it uses: the stages never see the context itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
import torch

from ..common.artifacts import ArtifactStore
from ..common.devices import resolve_device
from ..common.seeding import seed_everything
from ..data.dataset import SpectrogramData, load_dataset
from ..evaluation.attacks import convergence_study, headline_first, robustness_sweep
from ..evaluation.input_noise import noise_sweep
from ..evaluation.sweeps import SweepTarget, cached_subset_sweep
from ..models.inference import EvalMode, eval_modes
from ..models.registry import MODEL_KINDS, ModelKind
from ..training.trainer import TrainedModel, train_or_load
from .profiles import Profile, get_profile, validate_params


@dataclass(frozen=True)
class Context:
    """What a chapter needs: the profile's config, the seed, the device and the artifact store."""

    profile: Profile
    seed: int
    device: torch.device
    store: ArtifactStore = field(default_factory=ArtifactStore)

    @property
    def seeds(self) -> list[int]:
        """The seeds of multi-seed experiments: ``seed, seed+1, …`` (``profile.n_seeds`` of them)."""
        return [self.seed + k for k in range(self.profile.n_seeds)]

    @cached_property
    def data(self) -> SpectrogramData:
        """The profile's data set for the chapter's seed (built once, then read from the store)."""
        return load_dataset(self.profile.data, self.seed, self.store)

    def train(self, kind: ModelKind, seed: int, progress: bool | None = None) -> TrainedModel:
        """The profile's trained model of ``kind`` for ``seed`` (read back, resumed or trained)."""
        profile = self.profile
        return train_or_load(self.data, kind, seed, profile.model, profile.train, self.store, self.device, progress)

    def train_all(self, progress: bool | None = None) -> dict[ModelKind, list[TrainedModel]]:
        """Every model kind for every seed of the profile (``seeds``)."""
        return {kind: [self.train(kind, seed, progress) for seed in self.seeds] for kind in MODEL_KINDS}

    def noise_sweep(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 4's input-noise sweep of ``run`` on the test split, in every evaluation mode (cached)."""
        modes = eval_modes(run.kind, self.profile.model.sde)
        return cached_subset_sweep(self.store, self.profile.noise, noise_sweep, self._test_target(run, modes))

    def attack_sweep(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 5's attack protocol on ``run``, the reported mode first (cached)."""
        modes = headline_first(run.kind, self.profile.model.sde)
        return cached_subset_sweep(self.store, self.profile.attack, robustness_sweep, self._test_target(run, modes))

    def attack_convergence(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 5's convergence study of the attack on ``run``'s reported mode (cached)."""
        modes = headline_first(run.kind, self.profile.model.sde)
        return cached_subset_sweep(self.store, self.profile.attack, convergence_study, self._test_target(run, modes))

    def _test_target(self, run: TrainedModel, modes: tuple[EvalMode, ...]) -> SweepTarget:
        return SweepTarget(run.model, self.data.test.x, self.data.test.y, modes, run.seed)


def setup(profile: str = "quick", seed: int = 0, device: str = "auto") -> Context:
    """Validate the chapter parameters and return the run's context (seeded, device resolved)."""
    params = validate_params(profile=profile, seed=seed, device=device)
    seed_everything(params.seed)
    return Context(profile=get_profile(params.profile), seed=params.seed, device=resolve_device(params.device))
