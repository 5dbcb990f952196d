"""The baseline classifier, timm's ConvNeXt with one input channel, and its input-noise control (chapter 2).

Classifiers take spectrograms ``[N, 1, F, T]`` in [0, 1] (the range attacks clip to) and centre them inside."""

from __future__ import annotations

from functools import lru_cache

import timm
import torch
from timm.models.convnext import ConvNeXt
from torch import nn


#: The book's own variants: ``convnext_atto_narrow`` (0.9 M parameters, not 3.4 M) is the ``quick`` profile's.
BOOK_VARIANTS: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {
    "convnext_atto_narrow": ("convnext_atto", {"dims": (24, 48, 96, 192), "depths": (2, 2, 2, 2)}),
}


@lru_cache(maxsize=1)
def convnext_variants() -> tuple[str, ...]:
    return (*timm.list_models("convnext*"), *BOOK_VARIANTS)


def scale_input(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 - 1.0


def create_convnext(variant: str, num_classes: int, drop_path_rate: float) -> ConvNeXt:
    """A randomly initialised timm ConvNeXt with one input channel (weights from torch's seeded RNG)."""
    base, shape = BOOK_VARIANTS.get(variant, (variant, {}))
    return timm.create_model(base, pretrained=False, in_chans=1, num_classes=num_classes,
                             drop_path_rate=drop_path_rate, **shape)


class ConvNeXtClassifier(nn.Module):
    """The baseline: timm's ConvNeXt fed spectrograms scaled to [−1, 1]."""

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
