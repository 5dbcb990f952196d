"""How much noise the NSDE carries: noise-to-signal ratios inside the network and disagreement at its output.

A trained network can learn to make fixed additive noise negligible (LayerNorms undo any growth of
the residual stream), so whether the NSDE is stochastic is measured, not assumed: per block, the
ratio std(g(h)·ΔW) / std(h) of one Euler–Maruyama step's noise to the stream it perturbs, and at the
output the *flip rate*, the share of inputs on which two independent stochastic passes disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from .inference import EvalMode, NoiseControl, predict
from .noise_shapes import white_noise_like
from .nsde import DiffusionForm, NSDEConvNeXt, diffusion, residual_drift


@torch.no_grad()
def noise_to_signal(
    model: NSDEConvNeXt, x: torch.Tensor, forms: Sequence[DiffusionForm] | None = None, first_only: bool = True
) -> pd.DataFrame:
    """Per block (or per stage's first block): std of h and std(g(h)·ΔW)/std(h) for each diffusion form.

    ``h`` is the noise-free stream entering the block for inputs ``x``; ``ΔW`` is one white draw
    (Δt = 1) from torch's global generator per block, shared by the forms; ``forms`` defaults to the
    model's own, with its σ.
    """
    forms = tuple(forms or (model.sde.diffusion,))
    rows = []
    for stage, index, block in model.blocks():
        if first_only and index > 0:
            continue
        h = model.block_input(x, stage, index)
        drift = residual_drift(block, h)
        dw = white_noise_like(h)
        row = {"stage": stage, "block": index, "feature map": "×".join(map(str, h.shape[1:])), "std of h": h.std().item()}
        for form in forms:
            row[f"{form}: std(gΔW)/std(h)"] = (diffusion(form, model.sde.sigma, h, drift) * dw).std().item() / h.std().item()
        rows.append(row)
    return pd.DataFrame(rows).set_index(["stage", "block"])


def flip_rate(
    model: torch.nn.Module, x: torch.Tensor, *, batch_size: int, seed: int, noise_control: NoiseControl | None = None
) -> float:
    """Share of inputs whose predicted class differs between two independent single stochastic passes."""
    single = EvalMode("single pass", "single")
    first = predict(model, x, single, batch_size=batch_size, seed=seed, noise_control=noise_control)
    second = predict(model, x, single, batch_size=batch_size, seed=seed + 1, noise_control=noise_control)
    return float((first != second).float().mean())
