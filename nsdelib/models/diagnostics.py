"""How much noise the NSDE carries (noise-to-signal per block, output flip rate), and a function-preserving
rescaling of its residual stream (chapters 2 and 3)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from .inference import EvalMode, NoiseControl, predict
from .sde_numerics import white_noise_like
from .nsde import DiffusionForm, NSDEConvNeXt, diffusion, residual_drift


@torch.no_grad()
def noise_to_signal(model: NSDEConvNeXt, x: torch.Tensor, forms: Sequence[DiffusionForm] | None = None,
                    first_only: bool = True) -> pd.DataFrame:
    """Per block (or each stage's first): std of the noise-free stream h and std(g(h)·ΔW)/std(h) for each form
    (default: the model's own), with one white ΔW per block from torch's global generator shared by the forms."""
    forms = tuple(forms or (model.sde.diffusion,))
    rows = []
    for stage, index, block in model.blocks():
        if first_only and index > 0:
            continue
        h = model.block_input(x, stage, index)
        drift = residual_drift(block, h)
        dw = white_noise_like(h)
        row = {"stage": stage, "block": index, "feature map": "×".join(map(str, h.shape[1:])),
               "std of h": h.std().item()}
        for form in forms:
            noise = diffusion(form, model.sde.sigma, h, drift) * dw
            row[f"{form}: std(gΔW)/std(h)"] = noise.std().item() / h.std().item()
        rows.append(row)
    return pd.DataFrame(rows).set_index(["stage", "block"])


def flip_rate(model: torch.nn.Module, x: torch.Tensor, *, batch_size: int, seed: int,
              noise_control: NoiseControl | None = None) -> float:
    """Share of inputs whose predicted class differs between two independent single stochastic passes."""
    single = EvalMode("single pass", "single")
    first = predict(model, x, single, batch_size=batch_size, seed=seed, noise_control=noise_control)
    second = predict(model, x, single, batch_size=batch_size, seed=seed + 1, noise_control=noise_control)
    return float((first != second).float().mean())


@torch.no_grad()
def rescaled_stream(model: NSDEConvNeXt, factor: float) -> NSDEConvNeXt:
    """A copy of ``model`` whose residual stream is ``factor`` times larger everywhere, computing the same function:
    stem, downsampling outputs, depthwise biases and layer scales γ grow by ``factor``; the LayerNorms undo it."""
    scaled = copy.deepcopy(model)
    layers: list[nn.Module] = [scaled.net.stem[-1]]
    layers += [stage.downsample[-1] for stage in scaled.net.stages if not isinstance(stage.downsample, nn.Identity)]
    for layer in layers:
        layer.weight.mul_(factor)
        layer.bias.mul_(factor)
    for _, _, block in scaled.blocks():
        block.conv_dw.bias.mul_(factor)
        block.gamma.mul_(factor)
    return scaled


def stage_noise_to_signal(model: NSDEConvNeXt, x: torch.Tensor) -> dict[str, float]:
    """The model's own std(g(h)·ΔW)/std(h), averaged over the blocks of each stage."""
    table = noise_to_signal(model, x, first_only=False)
    per_stage = table[f"{model.sde.diffusion}: std(gΔW)/std(h)"].groupby(level="stage").mean()
    return {f"noise/signal, stage {stage}": float(ratio) for stage, ratio in per_stage.items()}
