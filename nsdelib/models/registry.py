"""The classifiers the book compares, by name (``convnext``, ``convnext_noise``, ``nsde``): timm's ConvNeXt with one
input channel, its input-noise control and the NSDE (chapter 2); one config, one factory."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Literal, get_args

import timm
import torch
from pydantic import Field, field_validator
from timm.models.convnext import ConvNeXt
from torch import nn

from ..common import ConfigError, Section, one_of
from .nsde import NSDEConvNeXt, SDEConfig, scale_input

#: The book's own variants: ``convnext_atto_narrow`` (0.9 M parameters, not 3.4 M) is the ``quick`` profile's.
BOOK_VARIANTS: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {
    "convnext_atto_narrow": ("convnext_atto", {"dims": (24, 48, 96, 192), "depths": (2, 2, 2, 2)}),
}


@lru_cache(maxsize=1)
def convnext_variants() -> tuple[str, ...]:
    return (*timm.list_models("convnext*"), *BOOK_VARIANTS)


class ConvNeXtClassifier(nn.Module):
    """The baseline: timm's ConvNeXt fed spectrograms ``[N, 1, F, T]`` in [0, 1] (the range attacks clip to), scaled
    to [−1, 1]."""

    def __init__(self, net: ConvNeXt) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(scale_input(x))


class NoiseAugmentedConvNeXt(ConvNeXtClassifier):
    """The control: the same ConvNeXt, trained on inputs with N(0, ``noise_std``²) noise, clipped to [0, 1]."""

    def __init__(self, net: ConvNeXt, noise_std: float) -> None:
        super().__init__(net)
        self.noise_std = noise_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise_std > 0:
            x = (x + self.noise_std * torch.randn_like(x)).clamp(0.0, 1.0)
        return super().forward(x)


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
    one_of(kind, ModelKind, "model kind")
    base, shape = BOOK_VARIANTS.get(cfg.variant, (cfg.variant, {}))
    net = timm.create_model(base, pretrained=False, in_chans=1, num_classes=num_classes,
                            drop_path_rate=cfg.drop_path_rate, **shape)
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
