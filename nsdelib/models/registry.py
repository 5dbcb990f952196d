"""The classifiers the book compares, by name (``convnext``, ``convnext_noise``, ``nsde``): one config, one factory."""

from __future__ import annotations

import copy
from typing import Literal, get_args

from pydantic import Field, field_validator
from torch import nn

from ..common import ConfigError, Section
from .convnext import ConvNeXtClassifier, NoiseAugmentedConvNeXt, convnext_variants, create_convnext
from .nsde import NSDEConvNeXt, SDEConfig

ModelKind = Literal["convnext", "convnext_noise", "nsde"]
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)


class ModelConfig(Section):
    """The classifier: which timm ConvNeXt, its stochastic depth, and the NSDE's noise."""

    variant: str = Field(default="convnext_atto", description="timm ConvNeXt architecture (random init)")
    drop_path_rate: float = Field(default=0.0, ge=0.0, lt=1.0, description="timm's stochastic depth rate")
    sde: SDEConfig = Field(default_factory=SDEConfig)
    input_noise_std: float = Field(default=0.1, ge=0.0, le=1.0, description="std of the control's input noise")

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        if value not in convnext_variants():
            raise ValueError(f"allowed variants: {', '.join(convnext_variants())}")
        return value


def build_model(kind: ModelKind, cfg: ModelConfig, num_classes: int) -> nn.Module:
    """A randomly initialised model of ``kind`` (weights from torch's seeded RNG; the same for every kind)."""
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; allowed kinds: {', '.join(MODEL_KINDS)}")
    if num_classes < 2:
        raise ConfigError(f"num_classes = {num_classes}: a classifier needs at least 2 classes")
    net = create_convnext(cfg.variant, num_classes, cfg.drop_path_rate)
    if kind == "convnext":
        return ConvNeXtClassifier(net)
    if kind == "convnext_noise":
        return NoiseAugmentedConvNeXt(net, cfg.input_noise_std)
    return NSDEConvNeXt(net, cfg.sde)


def with_injected_noise(model: nn.Module, sde: SDEConfig) -> NSDEConvNeXt:
    """A copy of a trained ConvNeXt run through the NSDE's solver with noise ``sde``: noise at test time only."""
    if not isinstance(model, ConvNeXtClassifier) or isinstance(model, NoiseAugmentedConvNeXt):
        raise ConfigError(f"test-time noise is injected into a plain ConvNeXt, not a {type(model).__name__}")
    return NSDEConvNeXt(copy.deepcopy(model.net), sde).eval()
