"""``setup``, every chapter's first call: a profile bound to a seed, a device and the artifact store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..claims.c3_attacks import CONVERGENCE_STUDY, ROBUSTNESS_SWEEP, convergence_study, headline_first, robustness_sweep
from ..claims.c4_abc import AS_WRITTEN, ABCConfig, Neighbours, abc_curve, abc_variants, at_budget, cached_abc
from ..claims.c5_stability import cached_attribution_stability
from ..claims.error_detection import cached_detector_scores, noisy_accuracy
from ..claims.c2_noise import NOISE_SWEEP, noise_sweep
from ..claims.sigma_tuning import frontier_plan, measure_point
from ..common import resolve_device, seed_everything
from ..common.artifacts import ArtifactStore, content_digest
from ..data.dataset import SpectrogramData, load_dataset
from ..evaluation.data_size import data_for_size, data_size_study, training_sizes
from ..evaluation.sweeps import SweepTarget, cached_subset_sweep
from ..models.inference import EvalMode, eval_modes, headline_mode, injected_noise_modes
from ..models.registry import MODEL_KINDS, ModelKind, with_injected_noise
from ..report.claims import MODEL_LABELS
from ..report.paper import PAPER_VALUES
from ..training.learning_rate import choose_learning_rate
from ..training.trainer import TrainConfig, TrainedModel, train_or_load, training_key
from .profiles import Profile, get_profile, validate_params
from .adversarial_records import record_adversarial_seed
from .provenance import (RESULTS_ROOT, ComputeTime, record_model, record_rate_point, record_size_study_run,
                         recorded_cost, recorded_rate_point, recorded_size_study_run, size_study_record_name)


@dataclass(frozen=True)
class Context:
    """What a chapter needs: the profile's config, the seed, the device and the artifact store."""

    profile: Profile
    seed: int
    device: torch.device
    store: ArtifactStore = field(default_factory=ArtifactStore)
    results: Path = RESULTS_ROOT  # where a recording profile's records are written and read back
    _learning_rates: dict[ModelKind, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def seeds(self) -> list[int]:
        return [self.seed + k for k in range(self.profile.n_seeds)]

    @property
    def data_size_seeds(self) -> list[int]:
        return self.seeds[: self.profile.data_size.n_seeds]

    @cached_property
    def data(self) -> SpectrogramData:
        return load_dataset(self.profile.data, self.seed, self.store)

    def learning_rate_grid(self, kind: ModelKind, progress: bool | None = None) -> dict[float, dict[str, Any]]:
        """The first seed's grid for ``kind``: the metrics of its run at each rate (:meth:`rate_metrics`)."""
        return {lr: self.rate_metrics(kind, lr, progress)[0] for lr in self.profile.lr_grid}

    def rate_metrics(self, kind: ModelKind, lr: float, progress: bool | None = None) -> tuple[dict[str, Any], bool]:
        """The metrics of the first seed's run of ``kind`` at ``lr`` (read back, resumed or trained, recorded once at
        ``paper``), and whether they come from its record (a recording profile's recorded point is never trained
        again: its record holds the digest of its training key)."""
        profile, train = self.profile, self.profile.train.replace(lr=lr)
        digest = content_digest(training_key(self.data, kind, self.seed, profile.model, train))
        recorded = profile.record_results and recorded_rate_point(kind, lr, digest, profile.name, self.results)
        if recorded:
            return recorded, True
        run = train_or_load(self.data, kind, self.seed, profile.model, train, self.store, self.device, progress)
        if profile.record_results:
            record_rate_point(run, lr, digest, profile.name, self.device, self.results)
        return run.metrics, False

    def learning_rate(self, kind: ModelKind) -> float:
        """The training rule's learning rate for ``kind``: the grid's best on the first seed's validation split."""
        if kind not in self._learning_rates:
            grid = self.profile.lr_grid
            self._learning_rates[kind] = grid[0] if len(grid) == 1 else choose_learning_rate(self.learning_rate_grid(kind))
        return self._learning_rates[kind]

    def train_config(self, kind: ModelKind) -> TrainConfig:
        return self.profile.train.replace(lr=self.learning_rate(kind))

    def train(self, kind: ModelKind, seed: int, progress: bool | None = None) -> TrainedModel:
        """The profile's model of ``kind`` for ``seed`` (read back, resumed or trained), recorded once at ``paper``."""
        profile, train = self.profile, self.train_config(kind)
        run = train_or_load(self.data, kind, seed, profile.model, train, self.store, self.device, progress)
        if profile.record_results:
            record_model(run, profile.name, self.device, train, self.results)
        return run

    def train_all(self, progress: bool | None = None) -> dict[ModelKind, list[TrainedModel]]:
        return {kind: [self.train(kind, seed, progress) for seed in self.seeds] for kind in MODEL_KINDS}

    def noise_sweep(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 4's input-noise sweep of ``run`` on the test split, in every evaluation mode (cached)."""
        modes = eval_modes(run.kind, self.profile.model.sde)
        return cached_subset_sweep(self.store, NOISE_SWEEP, self.profile.noise, noise_sweep,
                                   self._test_target(run, modes))

    def injected_noise_sweep(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 4's sweep of the ConvNeXt ``run`` with the NSDE's noise injected at test time only (cached)."""
        sde = self.profile.model.sde
        target = SweepTarget(with_injected_noise(run.model, sde), self.data.test.x, self.data.test.y,
                             injected_noise_modes(sde), run.seed)
        return cached_subset_sweep(self.store, NOISE_SWEEP, self.profile.noise, noise_sweep, target)

    def attack_sweep(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 5's attack protocol on ``run``, the reported mode first (cached)."""
        modes = headline_first(run.kind, self.profile.model.sde)
        return cached_subset_sweep(self.store, ROBUSTNESS_SWEEP, self.profile.attack, robustness_sweep,
                                   self._test_target(run, modes))

    def adversarial_seed(self, seed: int) -> pd.DataFrame:
        """Chapter 5's protocol on every model of ``seed`` (cached), recorded once at ``paper``."""
        runs = {kind: self.train(kind, seed, progress=False) for kind in MODEL_KINDS}
        compute = ComputeTime(self.store)  # the attacks may have run in other processes (nsdebook precompute)
        sweeps = {kind: self.attack_sweep(run) for kind, run in runs.items()}
        table = pd.concat([sweep.assign(model=MODEL_LABELS[kind], seed=seed) for kind, sweep in sweeps.items()],
                          ignore_index=True)
        if self.profile.record_results:
            studies = {kind: self.attack_convergence(run) for kind, run in runs.items()} if seed == self.seed else {}
            study = pd.concat([s.assign(model=MODEL_LABELS[kind]) for kind, s in studies.items()],
                              ignore_index=True) if studies else None
            digests = [{"kind": kind, "seed": seed, "sha256": run.digest} for kind, run in runs.items()]
            record_adversarial_seed(seed, table, study, digests, self.profile.name, self.device, compute,
                                    self.results)
        return table

    def attack_convergence(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 5's convergence study of the attack on ``run``'s reported mode (cached)."""
        modes = headline_first(run.kind, self.profile.model.sde)
        return cached_subset_sweep(self.store, CONVERGENCE_STUDY, self.profile.attack, convergence_study,
                                   self._test_target(run, modes))

    def _test_target(self, run: TrainedModel, modes: tuple[EvalMode, ...]) -> SweepTarget:
        return SweepTarget(run.model, self.data.test.x, self.data.test.y, modes, run.seed)

    def explained(self, run: TrainedModel) -> SweepTarget:
        """``run`` as chapters 6 and 7 explain it: on the test split, in the mode of its headline accuracy."""
        return self._test_target(run, (headline_mode(run.kind, self.profile.model.sde),))

    def attribution_stability(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 6's attribution change under input noise of ``run``, with its map controls (cached)."""
        return cached_attribution_stability(self.store, self.profile.attribution, self.explained(run)).assign(
            model=run.kind, seed=run.seed)

    def abc_curve(self, run: TrainedModel) -> pd.DataFrame:
        """Chapter 7's ABC of ``run`` at every mutation budget of the profile's grid (cached)."""
        return abc_curve(self.store, self.profile.abc, self.profile.attribution, self.explained(run)).assign(
            model=run.kind, seed=run.seed)

    def abc_at(self, run: TrainedModel, m: float, neighbours: Neighbours | None = None) -> pd.DataFrame:
        """ABC of ``run`` at ``m`` expected mutations per neighbour, neighbours as ``neighbours`` says (cached)."""
        cfg = at_budget(self.profile.abc, m)
        if neighbours is not None:
            cfg = cfg.replace(neighbours=neighbours)
        return cached_abc(self.store, cfg, self.profile.attribution, self.explained(run)).assign(
            model=run.kind, seed=run.seed)

    def detector_accuracy(self, run: TrainedModel) -> pd.DataFrame:
        """Whether ``run`` classifies each explained image correctly at each noise std of the detector test (cached)."""
        attribution, stds = self.profile.attribution, self.profile.abc.detectors.noise_stds
        return noisy_accuracy(self.store, attribution, self.explained(run), stds).assign(model=run.kind, seed=run.seed)

    def detector_budgets(self, m: float) -> dict[str, ABCConfig]:
        """The ABC variants tested as detectors: the algorithm as written and ABC at C4's budget ``m``."""
        as_written = abc_variants(self.profile.abc, self.data.test.x[0].numel())[AS_WRITTEN]
        return {"ABC as written": as_written, "ABC at C4's budget": at_budget(self.profile.abc, m)}

    def detector_scores(self, run: TrainedModel, m: float, std: float) -> pd.DataFrame:
        """Every detector score of ``run`` under Gaussian input noise of std ``std`` (cached)."""
        return cached_detector_scores(self.store, self.profile.attribution, self.detector_budgets(m),
                                      self.explained(run), std).assign(model=run.kind, seed=run.seed)

    def frontier(self, only_stored: bool = False) -> pd.DataFrame:
        """The clean–robust frontier (chapters 4 and 8), measured or read back (``only_stored``: nothing trained)."""
        cfg = self.profile.calibration
        points = [measure_point(self.data, kind, model, self.train_config(kind), cfg, self.store, self.device,
                                only_stored, seed)
                  for kind, model, seed in frontier_plan(cfg, self.profile.model, self.seeds)]
        return pd.DataFrame([point.row for point in points if point is not None])

    def data_size_datasets(self) -> list[SpectrogramData]:
        """The data sets of chapter 8's study, one per training-set size."""
        sizes = training_sizes(len(self.data.train), self.profile.train.batch_size, self.profile.data_size.fractions)
        return [data_for_size(self.data, n, self.store) for n in sizes]

    def data_size_study(self, kinds: Sequence[ModelKind] = MODEL_KINDS, seeds: Sequence[int] | None = None,
                        log: Callable[[str], None] | None = None) -> pd.DataFrame:
        """Chapter 8's training-set-size study, one outcome per test image (its models cached, their scoring redone);
        where the profile records results, each kind and seed is recorded once and read back from its record."""
        seeds = self.data_size_seeds if seeds is None else seeds
        if not self.profile.record_results:
            return self._size_study(kinds, seeds, log)
        frames = []
        for kind in kinds:
            for seed in seeds:
                recorded = recorded_size_study_run(kind, seed, self.profile.name, self.results)
                if recorded is None:
                    compute = ComputeTime(self.store)
                    recorded = self._size_study((kind,), (seed,), log)
                    record_size_study_run(recorded, kind, seed, self.profile.name, self.device, compute,
                                          self.results)
                else:  # what it cost where it ran counts in a record of the whole study
                    name = size_study_record_name(kind, seed)
                    self.store.credit(self.results / self.profile.name / name,
                                      recorded_cost(name, self.profile.name, self.results))
                frames.append(recorded)
        return pd.concat(frames, ignore_index=True)

    def _size_study(self, kinds: Sequence[ModelKind], seeds: Sequence[int], log: Callable[[str], None] | None
                    ) -> pd.DataFrame:
        return data_size_study(self.data, kinds, seeds, self.profile.model, self.train_config, self.store, self.device,
                               PAPER_VALUES["C2.noise_intensity"], self.profile.data_size.fractions, log)


def setup(profile: str = "quick", seed: int = 0, device: str = "auto") -> Context:
    """The chapter's context, parameters validated, everything seeded, device resolved."""
    params = validate_params(profile=profile, seed=seed, device=device)
    seed_everything(params.seed)
    pd.set_option("styler.format.na_rep", "–")  # a missing value in a styled table: a dash, not "nan"
    return Context(profile=get_profile(params.profile), seed=params.seed, device=resolve_device(params.device))

