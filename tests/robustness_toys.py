"""Tiny models and data for the robustness tests: 1×8×8 "spectrograms" whose class is a bright row.

Like the book's harmonic classes, class c has a horizontal line at frequency row ``ROWS[c]`` over a
dim random background. ``ToyNet`` is a small CNN; with ``sigma > 0`` it adds Gaussian noise to its
hidden activations whenever its noise mode is not ``"off"`` (a one-layer stand-in for the NSDE),
and in ``"ensemble"`` mode it returns the log of the mean softmax of K passes, like the NSDE.
``ShatteredNoiseLinear`` is an analytic linear classifier plus a tiny, fast-oscillating random term:
one draw's input gradient is dominated by noise while its predictions barely change, the textbook
case in which only an EOT attack (averaging gradients over draws) finds the true direction.
``toy_noise_control`` sets the noise mode, playing the role of ``nsdelib.models.eval_noise``.
``within_norm_ball`` is the tests' own norm-bound check (independent of the library's sanity checks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

ROWS = (1, 4, 6)
#: Slack of a perturbation norm over ε for float32 rounding: a few ulps of inputs in [0, 1] (1.2e-7 each).
ROUNDING = 1e-6


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` toy spectrograms [n,1,8,8] in [0, 1] and their labels, balanced over the three classes."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % len(ROWS)
    x = 0.3 * torch.rand((n, 1, 8, 8), generator=generator)
    for label, row in enumerate(ROWS):
        x[y == label, 0, row, :] += 0.5
    return x.clamp(0, 1), y


class ToyNet(nn.Module):
    """Conv → ReLU → (+ σ·ξ when noise is on) → linear; K-pass log-mean-softmax in ensemble mode."""

    def __init__(self, sigma: float = 0.0, n_classes: int = len(ROWS)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, n_classes)
        self.sigma = sigma
        self.noise_mode = "single"
        self.ensemble_size = 1

    def one_pass(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.conv(x))
        if self.sigma > 0 and self.noise_mode != "off":
            hidden = hidden + self.sigma * torch.randn_like(hidden)
        return self.head(hidden.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_mode != "ensemble":
            return self.one_pass(x)
        probs = torch.stack([self.one_pass(x).softmax(dim=1) for _ in range(self.ensemble_size)]).mean(dim=0)
        return probs.clamp_min(1e-12).log()


class ShatteredNoiseLinear(nn.Module):
    """Row-template linear classifier + ``amplitude · sin(frequency · ξᵀx + φ)`` on two logits, ξ and φ random per pass.

    The random term moves logits by at most ``amplitude`` but its gradient has size
    ``amplitude · frequency``, in a random direction ξ that averages out over draws.
    """

    def __init__(self, amplitude: float = 0.05, frequency: float = 300.0) -> None:
        super().__init__()
        self.linear = nn.Linear(64, len(ROWS))
        templates = torch.zeros(len(ROWS), 8, 8)
        for label, row in enumerate(ROWS):
            templates[label, row, :] = 1.0
        with torch.no_grad():
            self.linear.weight.copy_(templates.flatten(1))
            self.linear.bias.zero_()
        self.register_buffer("mix", torch.tensor([1.0, -1.0, 0.0]))
        self.amplitude, self.frequency = amplitude, frequency
        self.noise_mode = "single"
        self.ensemble_size = 1

    def one_pass(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        logits = self.linear(flat)
        if self.noise_mode == "off":
            return logits
        direction = torch.randn_like(flat)
        direction = direction / direction.norm(dim=1, keepdim=True)
        phase = 2 * math.pi * torch.rand(len(flat), 1)
        wiggle = torch.sin(self.frequency * (flat * direction).sum(dim=1, keepdim=True) + phase)
        return logits + self.amplitude * wiggle * self.mix

    forward = ToyNet.forward


@contextmanager
def toy_noise_control(model: nn.Module, mode: str, ensemble_size: int | None) -> Iterator[None]:
    """Set a ToyNet's noise mode for the duration of the block (the toy ``eval_noise``)."""
    previous = (model.noise_mode, model.ensemble_size)
    model.noise_mode, model.ensemble_size = mode, ensemble_size or 1
    try:
        yield
    finally:
        model.noise_mode, model.ensemble_size = previous


def trained_toy(sigma: float = 0.0, steps: int = 40, seed: int = 0) -> ToyNet:
    """A ToyNet trained with Adam for a few full-batch steps (noise on, as the NSDE trains) on 96 samples."""
    torch.manual_seed(seed)
    model = ToyNet(sigma)
    x, y = toy_data(96, seed=seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def within_norm_ball(norms: torch.Tensor, eps: float) -> bool:
    """Whether every perturbation norm is at most ε, up to float32 rounding (``ROUNDING``, relative and absolute)."""
    return bool((norms <= eps * (1 + ROUNDING) + ROUNDING).all())
