"""Attributions of a spectrogram classifier and their stability under input perturbations.

Three captum methods explain the logit of one class per input:

* ``integrated_gradients`` — Integrated Gradients (Sundararajan et al. 2017) from a constant
  baseline (0, silence, by default); the method Attribution-Based Confidence uses. Signed; sums to
  ``F(x) − F(baseline)`` (completeness).
* ``saliency`` — the absolute input gradient |∂F/∂x| (Simonyan et al. 2014; captum's ``Saliency``).
* ``smoothgrad`` — captum's ``NoiseTunnel`` around ``Saliency`` (``nt_type="smoothgrad"``): the mean
  absolute gradient over copies of the input with Gaussian noise of standard deviation
  ``smoothgrad_stdev`` (in input units, inputs lie in [0, 1]; Smilkov et al. 2017).

A Neural SDE is random: each forward pass draws fresh Brownian increments from torch's global RNG.
Its attribution is the mean over ``noise_draws`` computations, each with the model's noise on.
Whether a model is random is checked, not assumed (:func:`is_stochastic`); for a deterministic model
the attribution is computed once. Every call runs under its own ``seed`` in a forked RNG, so the
same seed gives the same attributions and the caller's random state is left untouched.

Stability (claim C5): for an input ``x`` and a perturbation ``δ`` of standard deviation ``σ`` the
change of the attribution map is ``Σ_j |Â_j(x+δ) − Â_j(x)|`` and the book reports its natural
logarithm, as the paper does. ``Â`` is the map after the stated normalisation: ``"l1"`` (default)
divides each map by its own ``Σ_j |A_j|`` so the change lies in [0, 2] and is comparable between
models whose logits have different scales; ``"none"`` keeps raw attributions.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from pydantic import Field, field_validator
from torch import Tensor, nn

from ..common.artifacts import ArtifactStore
from ..common.config import Section
from ..common.devices import model_device
from ..common.errors import ConfigError
from ..common.seeding import seeded_rng
from ..models.inference import EvalMode, NoiseControl, default_noise_control, predict
from ..models.nsde import EvalNoise
from .sweeps import content_digest, fetch_table, modes_key, stratified_subset

AttributionMethod = Literal["integrated_gradients", "saliency", "smoothgrad"]
ATTRIBUTION_METHODS: tuple[str, ...] = get_args(AttributionMethod)
Normalisation = Literal["l1", "none"]


class AttributionConfig(Section):
    """How attributions and their stability are computed (chapter 6, and the attributions ABC uses)."""

    stability_method: AttributionMethod = Field(
        default="integrated_gradients", description="the attribution method whose stability is measured"
    )
    ig_steps: int = Field(ge=2, le=1024, description="Integrated Gradients integration steps (captum n_steps)")
    smoothgrad_samples: int = Field(ge=1, le=1024, description="noisy copies per input for SmoothGrad (nt_samples)")
    smoothgrad_stdev: float = Field(
        default=0.15, gt=0.0, le=1.0, description="SmoothGrad noise standard deviation, in input units"
    )
    noise_draws: int = Field(
        ge=1, le=1000, description="attributions averaged over this many noise draws of a stochastic model"
    )
    baseline: float = Field(
        default=0.0, ge=0.0, le=1.0, description="constant Integrated Gradients baseline (0 = silence)"
    )
    perturbation_levels: tuple[float, ...] = Field(
        min_length=1, description="standard deviations σ of the Gaussian perturbations δ, in input units"
    )
    normalisation: Normalisation = Field(
        default="l1", description="'l1': each map divided by its Σ|A| before differencing; 'none': raw maps"
    )
    common_noise: bool = Field(
        default=True,
        description="compute A(x+δ) with the same model-noise seed as A(x), so the change measures δ alone",
    )
    subset_size: int = Field(
        ge=1, le=100_000, description="stratified test subset explained: its stability (ch. 6) and its ABC (ch. 7)"
    )
    subset_seed: int = Field(default=0, ge=0, description="seed of the subset (fixed across model seeds)")
    batch_size: int = Field(ge=1, le=4096, description="spectrograms per forward/backward pass")

    @field_validator("perturbation_levels")
    @classmethod
    def _increasing_levels(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < level <= 1.0 for level in levels) or list(levels) != sorted(set(levels)):
            raise ValueError("perturbation levels must be strictly increasing values in (0, 1]")
        return levels


def check_method(method: str) -> AttributionMethod:
    """Return ``method`` if captum-backed attribution exists for it, else raise ConfigError."""
    if method not in ATTRIBUTION_METHODS:
        raise ConfigError(f"unknown attribution method {method!r}; allowed methods: {', '.join(ATTRIBUTION_METHODS)}")
    return method  # type: ignore[return-value]


def resolve_baseline(baseline: float | Tensor, x: Tensor) -> Tensor:
    """The baseline as a tensor broadcastable against ``x``: a scalar, one spectrogram, or one per input.

    Raises ConfigError naming the expected and the given shapes when it fits none of these.
    """
    tensor = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if tensor.dim() == 0:
        return tensor.expand(1, *x.shape[1:])
    if tensor.shape == x.shape[1:]:
        return tensor.unsqueeze(0)
    if tensor.shape in (x.shape, (1, *x.shape[1:])):
        return tensor
    raise ConfigError(
        f"baseline of shape {tuple(tensor.shape)} does not fit inputs of shape {tuple(x.shape)}; expected a scalar, "
        f"{tuple(x.shape[1:])}, {(1, *x.shape[1:])} or {tuple(x.shape)}"
    )


@torch.no_grad()
def is_stochastic(model: nn.Module, x: Tensor) -> bool:
    """Whether two forward passes on the same input differ (a Neural SDE with its noise on)."""
    probe = x[:1]
    return not torch.equal(model(probe), model(probe))


def _attribute_once(
    model: nn.Module, x: Tensor, target: Tensor, method: AttributionMethod, config: AttributionConfig, baseline: Tensor
) -> Tensor:
    """One captum attribution of a chunk of at most ``config.batch_size`` inputs."""
    if method == "integrated_gradients":
        return IntegratedGradients(model).attribute(
            x, baselines=baseline, target=target, n_steps=config.ig_steps, internal_batch_size=config.batch_size
        )
    if method == "saliency":
        return Saliency(model).attribute(x.detach().requires_grad_(), target=target, abs=True)
    return NoiseTunnel(Saliency(model)).attribute(
        x,
        nt_type="smoothgrad",
        nt_samples=config.smoothgrad_samples,
        nt_samples_batch_size=max(1, config.batch_size // len(x)),
        stdevs=float(config.smoothgrad_stdev),
        target=target,
        abs=True,
    )


def attribute(
    model: nn.Module,
    x: Tensor,
    target: Tensor | int,
    method: str,
    config: AttributionConfig,
    baseline: float | Tensor | None = None,
    seed: int = 0,
) -> Tensor:
    """Attributions of shape ``x.shape`` for the logit of ``target`` (one class per input, or one for all).

    A stochastic model's attributions are averaged over ``config.noise_draws`` draws of its noise;
    ``baseline`` (default ``config.baseline``) is used by Integrated Gradients only.
    """
    method = check_method(method)
    base = resolve_baseline(config.baseline if baseline is None else baseline, x)
    targets = torch.as_tensor(target, device=x.device).long().expand(len(x))
    chunks = []
    with seeded_rng(seed, x.device):
        draws = config.noise_draws if is_stochastic(model, x) else 1
        for start in range(0, len(x), config.batch_size):
            part = slice(start, start + config.batch_size)
            chunk_base = base if len(base) == 1 else base[part]
            maps = (_attribute_once(model, x[part], targets[part], method, config, chunk_base) for _ in range(draws))
            total = sum(maps)
            chunks.append(total / draws)
    return torch.cat(chunks).detach()


def perturb(x: Tensor, level: float, direction: Tensor) -> Tensor:
    """``x + level·direction`` clipped to the valid input range [0, 1] (``direction`` is standard normal)."""
    return (x + level * direction).clamp(0.0, 1.0)


def normalise(attributions: Tensor, normalisation: Normalisation) -> Tensor:
    """Each map divided by its own Σ|A| (``"l1"``; an all-zero map stays zero) or left as is (``"none"``)."""
    if normalisation == "none":
        return attributions
    total = attributions.abs().flatten(1).sum(1).clamp_min(torch.finfo(attributions.dtype).tiny)
    return attributions / total.view(-1, *([1] * (attributions.dim() - 1)))


def attribution_change(reference: Tensor, perturbed: Tensor, normalisation: Normalisation = "l1") -> Tensor:
    """Per input, ``Σ_j |Â_j(perturbed) − Â_j(reference)|`` after ``normalisation``; shape ``[N]``."""
    if reference.shape != perturbed.shape:
        raise ValueError(f"attribution maps differ in shape: {tuple(reference.shape)} vs {tuple(perturbed.shape)}")
    change = normalise(perturbed, normalisation) - normalise(reference, normalisation)
    return change.abs().flatten(1).sum(1)


def attribution_stability(
    model: nn.Module,
    x: Tensor,
    target: Tensor | int,
    config: AttributionConfig,
    levels: tuple[float, ...] | None = None,
    baseline: float | Tensor | None = None,
    seed: int = 0,
    reference: Tensor | None = None,
) -> pd.DataFrame:
    """The change of ``config.stability_method`` attributions under Gaussian perturbations of ``x``.

    One perturbation direction ``z ~ N(0, I)`` per input (from a generator seeded with ``seed``) is
    scaled by every level σ (default ``config.perturbation_levels``), so the levels differ only in
    size. ``reference``, the clean attributions ``A(x)`` if already computed with the same seed,
    saves one computation. Returns one row per input and level: ``example``, ``level``, ``change``
    and ``log_change`` (natural log; −inf for a zero change).
    """
    levels = config.perturbation_levels if levels is None else levels
    if any(level < 0 for level in levels):
        raise ConfigError(f"perturbation levels must be ≥ 0, got {levels}")
    method = config.stability_method
    if reference is None:
        reference = attribute(model, x, target, method, config, baseline, seed)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    rows = []
    for index, level in enumerate(levels):
        noise_seed = seed if config.common_noise else seed + 1 + index
        moved = attribute(model, perturb(x, level, direction), target, method, config, baseline, noise_seed)
        change = attribution_change(reference, moved, config.normalisation).cpu()
        rows.append(pd.DataFrame({"example": range(len(x)), "level": level, "change": change.numpy()}))
    table = pd.concat(rows, ignore_index=True)
    with np.errstate(divide="ignore"):
        table["log_change"] = np.log(table["change"].to_numpy())
    return table


def attribution_noise(mode: EvalMode) -> EvalNoise:
    """The noise a model evaluated in ``mode`` is explained with: none, or single passes averaged over draws."""
    return "off" if mode.noise == "off" else "single"


def attribute_in_mode(
    model: nn.Module,
    x: Tensor,
    target: Tensor | int,
    method: str,
    config: AttributionConfig,
    mode: EvalMode,
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> Tensor:
    """:func:`attribute` of a model evaluated in ``mode``, computed on the model's device, returned on the CPU.

    A stochastic ``mode`` is explained by single noisy passes averaged over ``config.noise_draws``;
    the noise is set with ``noise_control`` (by default ``nsdelib.models.eval_noise``).
    """
    control = noise_control or default_noise_control()
    device = model_device(model)
    with control(model, attribution_noise(mode), None):
        return attribute(model, x.to(device), torch.as_tensor(target).to(device), method, config, seed=seed).cpu()


def explained_subset(config: AttributionConfig, y: Tensor) -> Tensor:
    """Indices of the stratified test subset explained in chapters 6 and 7 (fixed across model seeds)."""
    return stratified_subset(y, config.subset_size, config.subset_seed)


def cached_attributions(
    store: ArtifactStore,
    cfg: AttributionConfig,
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    method: str,
    mode: EvalMode,
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> Tensor:
    """:func:`attribute_in_mode` stored as an artifact (on the CPU).

    Keyed on the attribution config, the method, the seed, the mode and the content of model,
    inputs and targets, so the stability measure and ABC share the attributions of the same inputs.
    """
    key = {
        "attribution": cfg.model_dump(mode="json"),
        "method": check_method(method),
        "seed": seed,
        **modes_key((mode,), noise_control),
        "content": content_digest(model, x, target),
    }

    def build() -> Tensor:
        return attribute_in_mode(model, x, target, method, cfg, mode, seed=seed, noise_control=noise_control)

    return store.scoped(__name__).fetch("attributions", key, build, name="attributions.pt")


def explained_attributions(
    store: ArtifactStore,
    cfg: AttributionConfig,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    mode: EvalMode,
    *,
    seed: int,
    method: str | None = None,
    noise_control: NoiseControl | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The explained subset of ``(x, y)``: its indices, the predictions in ``mode`` and their attributions.

    The attributions explain the predicted class with ``method`` (default ``stability_method``) and
    are cached; chapters 6 and 7 read the same artifact.
    """
    subset = explained_subset(cfg, y)
    predicted = predict(model, x[subset], mode, batch_size=cfg.batch_size, seed=seed, noise_control=noise_control)
    method = method or cfg.stability_method
    attributions = cached_attributions(
        store, cfg, model, x[subset], predicted, method, mode, seed=seed, noise_control=noise_control
    )
    return subset, predicted, attributions


def cached_attribution_stability(
    store: ArtifactStore,
    cfg: AttributionConfig,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    mode: EvalMode,
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
) -> pd.DataFrame:
    """:func:`attribution_stability` on the explained subset of ``(x, y)``, stored as an artifact.

    The explained class is the model's prediction in ``mode`` on the clean input. Rows carry the
    index of the input in ``x`` (``example``) and its ``label``. Keyed on the attribution config,
    the seed, the mode and the content of the model and the subset.
    """
    control = noise_control or default_noise_control()
    subset = explained_subset(cfg, y)
    key = {
        "stability": cfg.model_dump(mode="json"),
        "seed": seed,
        **modes_key((mode,), noise_control),
        "content": content_digest(model, x[subset], y[subset]),
    }

    def build() -> pd.DataFrame:
        _, target, reference = explained_attributions(store, cfg, model, x, y, mode, seed=seed, noise_control=noise_control)
        device = model_device(model)
        with control(model, attribution_noise(mode), None):
            table = attribution_stability(
                model, x[subset].to(device), target.to(device), cfg, seed=seed, reference=reference.to(device)
            )
        position = table["example"].to_numpy()
        table.insert(1, "label", y[subset].numpy()[position])
        table["example"] = subset.numpy()[position]
        return table

    return fetch_table(store, "attribution_stability", key, build)


def share_on_brightest(attributions: Tensor, x: Tensor, fraction: float = 0.1) -> Tensor:
    """Per input, the share of Σ|A| that falls on its brightest ``fraction`` of pixels; shape ``[N]``.

    In a spectrogram the brightest pixels are the source's harmonic lines and bursts. A share near
    ``fraction`` means the attribution ignores brightness; a share near 1 means it sits on the signal.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"fraction = {fraction}: it must lie strictly between 0 and 1")
    a, v = attributions.abs().flatten(1), x.flatten(1)
    count = max(1, round(fraction * v.shape[1]))
    brightest = v.topk(count, dim=1).indices
    return a.gather(1, brightest).sum(1) / a.sum(1).clamp_min(torch.finfo(a.dtype).tiny)


def frequency_profile(attributions: Tensor) -> Tensor:
    """Per input, the share of Σ|A| in each frequency row of ``[N, 1, F, T]`` maps; shape ``[N, F]``, rows sum to 1."""
    rows = attributions.abs().sum(dim=(1, 3))
    return rows / rows.sum(1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)


def class_means(values: Tensor, labels: Tensor, n_classes: int) -> np.ndarray:
    """Mean of per-input rows ``values [N, F]`` over the inputs of each class: ``[n_classes, F]`` (NaN for an absent class)."""
    return np.stack([values[labels == c].mean(0).numpy() for c in range(n_classes)])
