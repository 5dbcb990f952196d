"""The three scales the book runs at (``ci``, ``quick``, ``paper``) as validated data ("Running this book")."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, ValidationError

from ..claims.c3_attacks import AttackConfig
from ..claims.c4_abc import ABCConfig
from ..claims.c2_noise import NoiseSweepConfig
from ..claims.sigma_tuning import CalibrationConfig
from ..common import IncreasingPositive, Section, config_error, one_of
from ..data.dataset import DataConfig
from ..evaluation.attributions import AttributionConfig
from ..evaluation.data_size import DataSizeConfig
from ..models.registry import ModelConfig
from ..training.trainer import TrainConfig

ProfileName = Literal["ci", "quick", "paper"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
DEFAULT_PROFILE: ProfileName = "quick"


class Profile(Section):
    """Everything that changes between the ``ci``, ``quick`` and ``paper`` scales."""

    name: ProfileName
    description: str
    n_seeds: int = Field(ge=1, le=20, description="seeds for multi-seed experiments (intervals over seeds)")
    record_results: bool = Field(description="write results with provenance under results/<profile>/")
    calibrates: bool = Field(description="σ and the control's input-noise std come from this profile's own recorded "
                                         "calibration (results/<profile>/calibration.json), not from paper's")
    data: DataConfig
    train: TrainConfig
    lr_grid: IncreasingPositive = Field(description="learning rates the training rule compares per model kind "
                                                    "(on the first seed's validation split); train.lr is one of them")
    attribution: AttributionConfig
    abc: ABCConfig
    noise: NoiseSweepConfig
    attack: AttackConfig
    model: ModelConfig
    calibration: CalibrationConfig
    data_size: DataSizeConfig = Field(default_factory=DataSizeConfig)


#: What every profile shares (each profile below merges in what differs). The NSDE's noise and the control's
#: input-noise std are those the calibration rule of chapter 3 chooses at ``paper`` (a test holds them to it).
BASE: dict[str, Any] = {
    "model": {
        "variant": "convnext_atto", "drop_path_rate": 0.0, "input_noise_std": 0.23,
        "sde": {
            "sigma": 0.43, "diffusion": "relative", "noise_shape": "coloured", "spectral_exponent": 2.0,
            "steps_per_block": 1, "eval_noise": "ensemble", "ensemble_size": 8,
        },
    },
    "train": {"batch_size": 64, "lr": 2e-3, "weight_decay": 0.05, "warmup_epochs": 1},
    "lr_grid": (2e-3,),
    "attribution": {"ig_steps": 8, "smoothgrad_samples": 8, "noise_draws": 2, "perturbation_levels": (0.02, 0.1),
                    "batch_size": 64},
    "calibration": {"sigmas": (0.05, 0.1, 0.2, 0.4, 0.8, 1.6), "input_noise_stds": (0.05, 0.1, 0.2, 0.4)},
    "abc": {"neighbours": "one_draw", "detectors": {"noise_stds": (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)}},
    "attack": {"epsilons": {"L2": (0.25, 0.5, 1.0, 2.0, 4.0), "Linf": (0.005, 0.01, 0.02, 0.05)},
               "headline_epsilons": {"L2": (0.5, 1.0), "Linf": (0.01,)}, "sweep_steps": 10, "steps": 50,
               "eot_iter": 5, "score_draws": 4, "square_queries": 1000, "square_subset": 32},
}

PROFILES: dict[str, dict[str, Any]] = {
    "ci": {
        "name": "ci",
        "description": "smallest scale: seconds per chapter; used by the tests and CI",
        "n_seeds": 2,
        # Chapter 8's study on one smaller size, and the frontier on one seed: every path runs, at the least cost.
        "data_size": {"fractions": (0.25, 1.0)},
        "record_results": False,
        "calibrates": False,
        "data": {"n_samples": 240, "image_rows": 32, "image_cols": 32},
        # patience = max_epochs: the stop never fires in 4 epochs, which are too few to tell a plateau from noise.
        "train": {"max_epochs": 4, "patience": 4, "batch_size": 32, "warmup_epochs": 0.5},
        "model": {"sde": {"ensemble_size": 2}},
        "calibration": {"sigmas": (0.1, 0.4), "input_noise_stds": (0.1, 0.4), "forms": ("relative",),
                        "shapes": ("coloured",), "subset_size": 16, "attack_steps": 2,
                        "frontier_sigmas": (0.2, 0.43), "frontier_input_noise_stds": (0.1, 0.23), "frontier_seeds": 1},
        # ci's models are near chance (12–18 %), so whether a seed's 12 explained images include one that ConvNeXt and
        # the NSDE both get right (C4's rule needs one) is luck: subset seed 20 gives each seed one, 0 gives none.
        "attribution": {"ig_steps": 4, "smoothgrad_samples": 4, "perturbation_levels": (0.05, 0.1), "subset_size": 12,
                        "subset_seed": 20},
        "abc": {"samples": 8, "batch_size": 128, "rescaled_fractions": (0.02, 0.2),
                "detectors": {"noise_stds": (0.1, 0.3, 1.0), "bootstrap_resamples": 200}},
        "noise": {
            "gaussian_stds": (0.05, 0.2, 1.0), "structured_levels": (0.2, 1.0), "subset_size": 32, "batch_size": 64,
        },
        "attack": {"epsilons": {"L2": (0.5, 2.0, 8.0), "Linf": (0.01, 0.05, 0.3)},
                   "headline_epsilons": {"L2": (2.0,), "Linf": (0.05,)}, "sweep_steps": 3, "steps": 5, "eot_iter": 2,
                   "score_draws": 3, "square_queries": 20, "square_subset": 8, "strong_steps": 10, "strong_eot": 2,
                   "convergence_steps": (2, 5),
                   "convergence_eot": (1, 2), "convergence_subset": 8, "subset_size": 16, "batch_size": 64},
    },
    "quick": {
        "name": "quick",
        "description": "default: minutes per chapter on a laptop CPU",
        "n_seeds": 3,
        # Chapter 8's size study at a quarter of the training split and on two seeds only (6 models beyond
        # chapter 3's), so that the default build stays within its ten minutes.
        "data_size": {"fractions": (0.25, 1.0), "n_seeds": 2},
        "record_results": False,
        "calibrates": True,
        # A miniature of ``paper``: 6,000 spectrograms at 32 × 32 (64 × 64 costs four times as much per image, more
        # than the build's ten minutes allow) and a narrower ConvNeXt (0.9 M parameters) for 8 epochs, so that the
        # nine models of chapter 3 learn (ConvNeXt about 83 % on seed 0) in about four minutes on two cores.
        "data": {"n_samples": 6000, "image_rows": 32, "image_cols": 32},
        "train": {"max_epochs": 8, "patience": 8, "batch_size": 32},  # 8 epochs are the build's whole budget
        # σ and the control's input-noise std by chapter 3's rule on this profile's own sweep (results/quick/
        # calibration.json, `nsdebook calibrate --profile quick`; a test holds them to it), around paper's settings.
        "model": {"variant": "convnext_atto_narrow", "input_noise_std": 0.11,
                  "sde": {"sigma": 0.26, "ensemble_size": 4}},
        "calibration": {"sigmas": (0.2, 0.3, 0.43), "input_noise_stds": (0.05, 0.1, 0.23), "shapes": ("coloured",),
                        "subset_size": 160},
        "attribution": {"subset_size": 32},
        "abc": {"samples": 16, "batch_size": 256, "rescaled_fractions": (0.01, 0.03, 0.1, 0.2)},
        "noise": {
            "gaussian_stds": (0.02, 0.05, 0.1, 0.2, 0.5, 1.0), "structured_levels": (0.1, 0.3, 1.0),
            "subset_size": 160, "batch_size": 160,
        },
        # Chapter 5's protocol at a tenth of paper's budgets, so that the default build stays within its ten minutes
        # (benchmarks/bench_robustness.py --profile quick). The ε grid scaled to 32 × 32 images: on the first build's
        # sweep ConvNeXt kept 7 % at L2 ε = 0.5, 0 % from 1.0 on and 10 % at L∞ 0.02, so L2 is halved, L∞ extended.
        "attack": {"epsilons": {"L2": (0.1, 0.25, 0.5, 1.0), "Linf": (0.005, 0.02, 0.05)},
                   "headline_epsilons": {"L2": (0.5, 1.0), "Linf": ()}, "sweep_steps": 5, "steps": 10, "eot_iter": 2,
                   "score_draws": 3, "square_queries": 100,
                   "strong_steps": 10, "strong_eot": 2,
                   "square_subset": 16, "convergence_steps": (5, 10, 20), "convergence_eot": (1, 2, 4),
                   "convergence_subset": 16, "subset_size": 32, "batch_size": 32},
    },
    "paper": {
        "name": "paper",
        "description": "the scale of the paper: 10,000 spectrograms and the full evaluation",
        "n_seeds": 5,
        # Chapter 8's size study (an open question, not a claim of the paper) on three of the five seeds: its
        # 27 extra models take about an hour on the two cores, beside the 15 of chapter 3.
        "data_size": {"n_seeds": 3},
        "record_results": True,
        "calibrates": True,
        "data": {"n_samples": 10000, "image_rows": 64, "image_cols": 64},
        # The training rule (chapter 3), fixed before the retrain: at most 25 epochs (the old fixed 12 left the NSDE
        # still improving), stop after 4 without a better validation accuracy, the rate from a grid around 2e-3.
        "train": {"max_epochs": 25, "patience": 4},
        "lr_grid": (1e-3, 2e-3, 4e-3),
        # Chapters 6 and 7 per seed: ≈ 350 k forward passes of a 64×64 image ≈ 12 minutes on one CPU thread (budget:
        # 15; benchmarks/bench_attributions.py counts them per setting).
        "attribution": {"subset_size": 256},
        "abc": {"samples": 16, "batch_size": 256, "rescaled_fractions": (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)},
        "noise": {
            "gaussian_stds": (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0), "structured_levels": (0.1, 0.3, 0.6, 1.0),
            "subset_size": None, "batch_size": 256,
        },
        # The full protocol at the one L2 ε where the calibration sweep's 10-step APGD-CE left ConvNeXt 4.7 % (C3's test
        # point), the cheap sweep on a 6-point grid. Budget: benchmarks/bench_robustness.py.
        "attack": {"epsilons": {"L2": (0.25, 0.5, 1.0, 2.0), "Linf": (0.005, 0.02)},
                   "headline_epsilons": {"L2": (1.0,), "Linf": ()}, "subset_size": 256, "batch_size": 128},
    },
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def get_profile(name: str, **overrides: Any) -> Profile:
    """The validated profile ``name``; ``overrides`` replace top-level fields."""
    raw = {**merged(BASE, PROFILES[one_of(name, ProfileName, "profile")]), **overrides}
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise config_error(f"profile {name!r}", exc, list(Profile.model_fields)) from exc


class ChapterParams(Section):
    """The parameters every chapter's papermill ``parameters`` cell declares."""

    profile: ProfileName = DEFAULT_PROFILE
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")


def validate_params(**params: Any) -> ChapterParams:
    """Validate chapter parameters, raising one ConfigError that names the bad parameter."""
    try:
        return ChapterParams.model_validate(params)
    except ValidationError as exc:
        raise config_error("chapter parameters", exc, list(ChapterParams.model_fields)) from exc
