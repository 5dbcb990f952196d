"""NSDE-ConvNeXt: timm's ConvNeXt whose residual connections are Euler–Maruyama steps of a Neural SDE (chapter 2).

Each block integrates dh = f(h) dt + g(h) dW over t ∈ [0, 1] (σ = 0 and one step give timm's forward pass)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
import torchsde
from pydantic import Field
from timm.models.convnext import ConvNeXt, ConvNeXtBlock
from torch import nn

from ..common import ConfigError, Section
from .sde_numerics import ColouredBrownian, colour, white_noise_like

DiffusionForm = Literal["additive", "relative", "multiplicative", "dropout"]
NoiseShape = Literal["white", "coloured", "scale_map"]
EvalNoise = Literal["off", "single", "ensemble"]
#: A source of Wiener increments: given the state h and the step Δt, return ΔW shaped like h.
Increment = Callable[[torch.Tensor, float], torch.Tensor]


class SDEConfig(Section):
    """How the NSDE injects noise into every residual connection (the defaults are chosen in chapter 2)."""

    sigma: float = Field(default=0.1, ge=0.0, le=5.0, description="noise scale σ of the diffusion g")
    diffusion: DiffusionForm = Field(default="additive", description="g(h) = σ, σ·RMS(h), σ·h or σ·f(h)")
    noise_shape: NoiseShape = Field(default="white", description="spatial shape of ΔW on each feature map")
    spectral_exponent: float = Field(default=2.0, ge=0.0, le=4.0, description="β of coloured noise (2: Brownian)")
    steps_per_block: int = Field(default=1, ge=1, le=64, description="Euler–Maruyama steps per block, Δt = 1/steps")
    eval_noise: EvalNoise = Field(default="ensemble", description="noise at evaluation: off, single pass or ensemble")
    ensemble_size: int = Field(default=8, ge=1, le=1000, description="stochastic passes averaged by 'ensemble'")


def scale_input(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 - 1.0


def residual_drift(block: ConvNeXtBlock, h: torch.Tensor) -> torch.Tensor:
    """f(h): timm's ConvNeXt block without its identity shortcut (same operations, same order)."""
    x = block.conv_dw(h)
    if block.use_conv_mlp:
        x = block.mlp(block.norm(x))
    else:
        x = block.mlp(block.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    if block.gamma is not None:
        x = x.mul(block.gamma.reshape(1, -1, 1, 1))
    return block.drop_path(x)


def diffusion(form: DiffusionForm, sigma: float, h: torch.Tensor, drift: torch.Tensor | None = None,
              scale: torch.Tensor | None = None) -> torch.Tensor | float:
    """g(h) for ``form`` (``drift`` is f(h), needed by ``dropout``), times an optional scale map."""
    amplitude = sigma if scale is None else sigma * scale
    if form == "additive":
        return amplitude
    if form == "relative":
        # σ·RMS(h) per sample, no gradient through the RMS; flatten(1) reads NCHW order as torchsde does
        rms = h.detach().flatten(1).square().mean(dim=1).sqrt()
        return amplitude * rms.view(-1, *[1] * (h.dim() - 1))
    if form == "multiplicative":
        return amplitude * h
    return amplitude * drift


def integrate_block(block: ConvNeXtBlock, h: torch.Tensor, sde: SDEConfig, increment: Increment | None = None,
                    scale: torch.Tensor | None = None) -> torch.Tensor:
    """Euler–Maruyama over t ∈ [0, 1]: h ← h + f(h) Δt + g(h) ΔW; ``increment=None`` drops the noise."""
    dt = 1.0 / sde.steps_per_block
    for _ in range(sde.steps_per_block):
        drift = residual_drift(block, h)
        # torch.add(h, f, alpha=Δt) is h + f·Δt in one kernel, and no multiply at all in backward when Δt = 1.
        if increment is None:
            h = torch.add(h, drift, alpha=dt)
        else:
            noise = diffusion(sde.diffusion, sde.sigma, h, drift, scale) * increment(h, dt)
            h = torch.add(h, drift, alpha=dt) + noise
    return h


def increments_from(bm: torchsde.BrownianInterval | ColouredBrownian) -> Increment:
    """Consecutive increments W(t+Δt) − W(t) of a torchsde Brownian motion from t = 0, shaped like h."""
    clock = {"t": 0.0}

    def increment(h: torch.Tensor, dt: float) -> torch.Tensor:
        start = clock["t"]
        clock["t"] = start + dt
        return bm(start, start + dt).reshape(h.shape)

    return increment


class BlockSDE(nn.Module):
    """One block's dh = f(h) dt + g(h) dW as a torchsde SDE on the flattened feature map ``[N, C·H·W]``."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, block: ConvNeXtBlock, sde: SDEConfig, feature_shape: tuple[int, int, int],
                 scale: torch.Tensor | None = None) -> None:
        super().__init__()
        self.block = block
        self.config = sde
        self.feature_shape = tuple(feature_shape)
        self.scale = scale

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return residual_drift(self.block, y.reshape(y.shape[0], *self.feature_shape)).flatten(1)

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = y.reshape(y.shape[0], *self.feature_shape)
        drift = residual_drift(self.block, h) if self.config.diffusion == "dropout" else None
        g = diffusion(self.config.diffusion, self.config.sigma, h, drift, self.scale)
        return torch.as_tensor(g, dtype=y.dtype, device=y.device).expand_as(h).reshape(y.shape)


def block_brownian_motion(sde: SDEConfig, batch: int, feature_shape: tuple[int, int, int], seed: int,
                          device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                          ) -> torchsde.BrownianInterval | ColouredBrownian:
    """The seeded Brownian motion that drives one block over [0, 1]: white, or coloured over (H, W)."""
    size = (batch, math.prod(feature_shape))
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=size, dtype=dtype, device=device, entropy=seed)
    if sde.noise_shape == "coloured":
        return ColouredBrownian(bm, feature_shape, sde.spectral_exponent)
    return bm


class NSDEConvNeXt(nn.Module):
    """timm's ConvNeXt with Euler–Maruyama residual connections; noise (from torch's global generator) is on in
    training, and in evaluation ``sde.eval_noise`` picks drift only, one pass or the mean softmax of an ensemble."""

    def __init__(self, net: ConvNeXt, sde: SDEConfig) -> None:
        super().__init__()
        blocks = [block for stage in net.stages for block in stage.blocks]
        if not all(isinstance(b, ConvNeXtBlock) and isinstance(b.shortcut, nn.Identity) for b in blocks):
            raise ConfigError("the NSDE needs ConvNeXt blocks with identity shortcuts")
        self.net = net
        self.sde = sde
        self.register_buffer("noise_scale_map", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noisy = self.sde.sigma > 0 and (self.training or self.sde.eval_noise != "off")
        if self.training or not noisy or self.sde.eval_noise == "single":
            return self.logits(x, noisy)
        k = self.sde.ensemble_size
        # K passes over the batch one after another: a K-fold batch costs more memory and, on the CPU, more time
        log_probs = torch.stack([self.logits(x, noisy=True).log_softmax(dim=-1) for _ in range(k)])
        return torch.logsumexp(log_probs, dim=0) - math.log(k)

    def logits(self, x: torch.Tensor, noisy: bool) -> torch.Tensor:
        """One pass through the network, with Brownian increments (``noisy``) or drift only."""
        h = self.net.stem(scale_input(x))
        for stage in self.net.stages:
            h = stage.downsample(h)
            scale = self.scale_at(tuple(h.shape[-2:])) if noisy else None
            for block in stage.blocks:
                h = integrate_block(block, h, self.sde, self._increment if noisy else None, scale)
        return self.net.forward_head(self.net.norm_pre(h))

    def _increment(self, h: torch.Tensor, dt: float) -> torch.Tensor:
        white = white_noise_like(h)
        shaped = colour(white, self.sde.spectral_exponent, ndim=2) if self.sde.noise_shape == "coloured" else white
        return shaped if dt == 1.0 else shaped.mul_(math.sqrt(dt))

    def scale_at(self, size: tuple[int, int]) -> torch.Tensor | None:
        """The noise scale map averaged down to a feature map of ``size`` (``[1, 1, H, W]``), or None if uniform."""
        if self.noise_scale_map is None:
            return None
        return F.adaptive_avg_pool2d(self.noise_scale_map[None, None], size)

    def block_input(self, x: torch.Tensor, stage: int, index: int) -> torch.Tensor:
        """The residual stream entering block ``index`` of ``stage`` (drift only, no noise)."""
        h = self.net.stem(scale_input(x))
        for s, current in enumerate(self.net.stages):
            h = current.downsample(h)
            for i, block in enumerate(current.blocks):
                if (s, i) == (stage, index):
                    return h
                h = integrate_block(block, h, self.sde)
        raise IndexError(f"no block {index} in stage {stage}")

    def block_sde(self, stage: int, index: int, feature_shape: tuple[int, int, int]) -> BlockSDE:
        """Block ``index`` of ``stage`` as a torchsde SDE on feature maps of ``feature_shape`` (C, H, W)."""
        block = self.net.stages[stage].blocks[index]
        return BlockSDE(block, self.sde, feature_shape, self.scale_at(tuple(feature_shape[-2:])))

    def blocks(self) -> Iterator[tuple[int, int, ConvNeXtBlock]]:
        for s, stage in enumerate(self.net.stages):
            for i, block in enumerate(stage.blocks):
                yield s, i, block


@contextmanager
def eval_noise(model: nn.Module, mode: EvalNoise, ensemble_size: int | None = None) -> Iterator[nn.Module]:
    """Temporarily set the NSDE's evaluation noise (``off``, ``single``, ``ensemble``); no-op on the baseline."""
    changes = {"eval_noise": mode} | ({} if ensemble_size is None else {"ensemble_size": ensemble_size})
    SDEConfig.build(**changes)  # a bad mode fails loudly even on the baseline, which has nothing to change
    targets = [m for m in model.modules() if isinstance(m, NSDEConvNeXt)]
    saved = [m.sde for m in targets]
    try:
        for m in targets:
            m.sde = m.sde.replace(**changes)
        yield model
    finally:
        for m, sde in zip(targets, saved):
            m.sde = sde


def set_noise_scale_map(model: nn.Module, scale: torch.Tensor | None) -> None:
    """Shape the NSDE's noise by an ``[F, T]`` map at input resolution, normalised to mean 1 (not saved with the
    weights); None restores uniform noise. A no-op on the baseline."""
    for m in model.modules():
        if not isinstance(m, NSDEConvNeXt):
            continue
        normalised = scale
        if scale is not None:
            if m.sde.noise_shape != "scale_map":
                raise ConfigError(
                    f"a noise scale map needs sde.noise_shape = 'scale_map', this model has {m.sde.noise_shape!r}")
            if scale.dim() != 2:
                raise ConfigError(f"noise scale map must be a 2-D [F, T] tensor, got shape {tuple(scale.shape)}")
            normalised = scale.detach().float()
            if not torch.isfinite(normalised).all() or (normalised < 0).any() or normalised.sum() <= 0:
                raise ConfigError("noise scale map must be finite, non-negative and not all zero")
            normalised = (normalised / normalised.mean()).to(next(m.parameters()).device)
        m.noise_scale_map = normalised
