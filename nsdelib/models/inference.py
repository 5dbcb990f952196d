"""How a model is queried: its evaluation modes (set by a *noise control*, ``nsde.eval_noise`` by default) and
reproducible, batched predictions: equal seeds draw the same model noise (common random numbers, chapter 4)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from ..common import model_device, one_of, seeded_rng
from .nsde import EvalNoise, SDEConfig, eval_noise
from .registry import ModelKind

NoiseControl = Callable[[nn.Module, EvalNoise, int | None], AbstractContextManager[object]]


@dataclass(frozen=True)
class EvalMode:
    """One way of evaluating a model: a label for tables and figures, its noise mode and ensemble size."""

    name: str
    noise: EvalNoise
    ensemble_size: int | None = None

    @property
    def stochastic(self) -> bool:
        return self.noise != "off"


def nsde_mode(noise: EvalNoise, ensemble_size: int) -> EvalMode:
    """The NSDE evaluated with its noise ``off``, as one ``single`` pass, or as a K-pass ``ensemble``."""
    label = {"off": "noise off", "single": "single pass", "ensemble": f"{ensemble_size}-pass ensemble"}[noise]
    return EvalMode(f"NSDE, {label}", noise, ensemble_size if noise == "ensemble" else None)


def injected_noise_modes(sde: SDEConfig) -> tuple[EvalMode, ...]:
    """The modes of a ConvNeXt with the NSDE's noise injected at test time: one pass and the ensemble."""
    return tuple(EvalMode(f"ConvNeXt + test-time noise, {mode.name.split(', ')[1]}", mode.noise, mode.ensemble_size)
                 for mode in (nsde_mode("single", sde.ensemble_size), nsde_mode("ensemble", sde.ensemble_size)))


#: How the deterministic models are labelled in tables and figures.
DETERMINISTIC_LABELS = {"convnext": "ConvNeXt", "convnext_noise": "ConvNeXt + input noise"}


def eval_modes(kind: str, sde: SDEConfig) -> tuple[EvalMode, ...]:
    """The modes the book reports a model in: a deterministic model once, the NSDE off, single and ensemble."""
    one_of(kind, ModelKind, "model kind")
    if kind in DETERMINISTIC_LABELS:
        return (EvalMode(DETERMINISTIC_LABELS[kind], "off"),)
    return tuple(nsde_mode(noise, sde.ensemble_size) for noise in ("off", "single", "ensemble"))


def headline_mode(kind: str, sde: SDEConfig) -> EvalMode:
    """The mode of a model's headline numbers: a deterministic model as it is, the NSDE in ``sde.eval_noise``."""
    return next(mode for mode in eval_modes(kind, sde) if kind in DETERMINISTIC_LABELS or mode.noise == sde.eval_noise)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The model's outputs for ``x`` (on the CPU), computed in batches on ``device``, in its current mode."""
    outputs = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, mode: EvalMode, *, batch_size: int, seed: int,
            noise_control: NoiseControl | None = None) -> torch.Tensor:
    """Predicted classes of ``x`` in ``mode``, batched, with seeded model noise; on the CPU."""
    control = noise_control or eval_noise
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with seeded_rng(seed, device), control(model, mode.noise, mode.ensemble_size):
            preds = [model(batch.to(device)).argmax(dim=1).cpu() for batch in x.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
