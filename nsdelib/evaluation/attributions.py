"""Attributions (captum: Integrated Gradients, Saliency, SmoothGrad) and their stability (claim C5).

A stochastic model's map is the mean over ``noise_draws`` seeded passes; the change of a map under a
perturbation is ``Σ_j |Â_j(x+δ) − Â_j(x)|`` after the configured normalisation (the raw change, the
paper's literal measure, is kept beside it), with matched averaging controls. Chapter 6.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from pydantic import Field
from torch import Tensor, nn

from ..common.artifacts import ArtifactKind, ArtifactStore, content_digest
from ..common.config import IncreasingFractions, Section, one_of
from ..common.devices import model_device
from ..common.errors import ConfigError
from ..common.seeding import seeded_rng
from ..models.inference import EvalMode, NoiseControl, default_noise_control, predict
from ..models.nsde import EvalNoise
from .sweeps import fetch_table, modes_key, stratified_subset

#: The predicted classes of the explained images; bump when prediction changes.
EXPLAINED_PREDICTIONS = ArtifactKind("explained_predictions", 2, "table.json")
#: The per-draw attribution maps; bump when an attribution method changes.
ATTRIBUTIONS = ArtifactKind("attributions", 2, "attributions.pt")
#: The attribution change under perturbation and its controls; bump when the measure changes.
ATTRIBUTION_STABILITY = ArtifactKind("attribution_stability", 2, "table.json")

AttributionMethod = Literal["integrated_gradients", "saliency", "smoothgrad"]
ATTRIBUTION_METHODS: tuple[str, ...] = get_args(AttributionMethod)
Normalisation = Literal["l1", "none"]

#: The map variants of the stability measure (:func:`stability_controls`), by the models they apply to.
ONE_MAP, INPUT_AVERAGED = "one map", "averaged over input noise"
NOISE_AVERAGED, ONE_DRAW, NOISE_OFF = "averaged over its noise", "one noise draw", "noise off"
MAP_VARIANTS: tuple[str, ...] = (ONE_MAP, INPUT_AVERAGED, NOISE_AVERAGED, ONE_DRAW, NOISE_OFF)


class AttributionConfig(Section):
    """How attributions and their stability are computed (chapter 6, and the attributions ABC uses)."""

    stability_method: AttributionMethod = Field(
        default="integrated_gradients", description="the attribution method whose stability is measured"
    )
    ig_steps: int = Field(ge=2, le=1024, description="Integrated Gradients integration steps (captum n_steps)")
    smoothgrad_samples: int = Field(ge=1, le=1024, description="noisy copies per input for SmoothGrad (nt_samples)")
    smoothgrad_stdev: float = Field(
        default=0.15, gt=0.0, le=1.0,
        description="Gaussian input-noise std, in input units, of SmoothGrad and of the matched control's copies",
    )
    noise_draws: int = Field(
        ge=1, le=1000,
        description="maps averaged: over noise draws of a stochastic model, over input-noise copies for the control",
    )
    baseline: float = Field(
        default=0.0, ge=0.0, le=1.0, description="constant Integrated Gradients baseline (0 = silence)"
    )
    perturbation_levels: IncreasingFractions = Field(
        min_length=1, description="standard deviations σ of the Gaussian perturbations δ, in input units"
    )
    normalisation: Normalisation = Field(
        default="l1", description="'l1': each map divided by its Σ|A| before differencing; 'none': raw maps"
    )
    common_noise: bool = Field(
        default=True,
        description="compute A(x+δ) with the same noise seed (model and input noise) as A(x), so the change "
        "measures δ alone",
    )
    subset_size: int = Field(
        ge=1, le=100_000, description="stratified test subset explained: its stability (ch. 6) and its ABC (ch. 7)"
    )
    subset_seed: int = Field(default=0, ge=0, description="seed of the subset (fixed across model seeds)")
    batch_size: int = Field(ge=1, le=4096, description="spectrograms per forward/backward pass")


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
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    method: AttributionMethod,
    config: AttributionConfig,
    baseline: Tensor,
    input_draws: int = 0,
) -> Tensor:
    """One captum attribution of a chunk of at most ``config.batch_size`` inputs.

    With ``input_draws`` > 0 it is the mean of the maps of that many copies of the inputs with
    Gaussian noise of std ``config.smoothgrad_stdev`` (captum's ``NoiseTunnel``, SmoothGrad-style);
    for SmoothGrad, which already averages over such copies, that is one SmoothGrad with
    ``input_draws`` times as many copies.
    """
    if method == "smoothgrad":
        attribution, kwargs = NoiseTunnel(Saliency(model)), {"abs": True}
        samples = config.smoothgrad_samples * max(1, input_draws)
    elif method == "integrated_gradients":
        attribution = IntegratedGradients(model)
        kwargs = {"baselines": baseline, "n_steps": config.ig_steps, "internal_batch_size": config.batch_size}
        samples = input_draws
    else:
        attribution, kwargs, samples = Saliency(model), {"abs": True}, input_draws
    if samples == 0:
        return attribution.attribute(x.detach().requires_grad_(), target=target, **kwargs)
    tunnel = attribution if isinstance(attribution, NoiseTunnel) else NoiseTunnel(attribution)
    return tunnel.attribute(
        x,
        nt_type="smoothgrad",
        nt_samples=samples,
        nt_samples_batch_size=max(1, config.batch_size // len(x)),
        stdevs=float(config.smoothgrad_stdev),
        target=target,
        **kwargs,
    )


def attribute(
    model: nn.Module,
    x: Tensor,
    target: Tensor | int,
    method: str,
    config: AttributionConfig,
    baseline: float | Tensor | None = None,
    seed: int = 0,
    input_draws: int = 0,
    keep_draws: bool = False,
) -> Tensor:
    """Attributions of shape ``x.shape`` for the logit of ``target``: the mean of the maps of every noise draw.

    A stochastic model gets one map per draw of its noise, ``config.noise_draws`` of them; a
    deterministic one a single map. ``keep_draws`` returns the maps of every draw, ``[D, *x.shape]``,
    instead of their mean. ``input_draws`` > 0 makes each map the mean over that many input-noise
    copies (:func:`_attribute_once`). ``baseline`` (default ``config.baseline``) is used by
    Integrated Gradients only. Draws are taken chunk by chunk under ``seed``, so two calls with the
    same seed and input shape draw the same noise ("common random numbers").
    """
    method = one_of(method, AttributionMethod, "attribution method")
    base = resolve_baseline(config.baseline if baseline is None else baseline, x)
    targets = torch.as_tensor(target, device=x.device).long().expand(len(x))
    chunks = []
    with seeded_rng(seed, x.device):
        draws = config.noise_draws if is_stochastic(model, x) else 1
        for start in range(0, len(x), config.batch_size):
            part = slice(start, start + config.batch_size)
            chunk_base = base if len(base) == 1 else base[part]
            chunks.append(torch.stack([
                _attribute_once(model, x[part], targets[part], method, config, chunk_base, input_draws).detach()
                for _ in range(draws)
            ]))
    maps = torch.cat(chunks, dim=1)
    return maps if keep_draws else maps.mean(0)


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


def check_levels(levels: tuple[float, ...]) -> tuple[float, ...]:
    """Perturbation levels must be ≥ 0 (0 is allowed outside a profile, as a check that nothing changes)."""
    if any(level < 0 for level in levels):
        raise ConfigError(f"perturbation levels must be ≥ 0, got {levels}")
    return levels


def perturbed_maps(
    model: nn.Module,
    x: Tensor,
    target: Tensor | int,
    config: AttributionConfig,
    levels: tuple[float, ...],
    *,
    seed: int,
    baseline: float | Tensor | None = None,
    input_draws: int = 0,
    reference: Tensor | None = None,
) -> Tensor:
    """The per-draw maps (:func:`attribute`) of ``config.stability_method`` at ``x`` and at every ``x + σ·z``:
    ``[1 + L, D, *x.shape]``.

    One perturbation direction ``z ~ N(0, I)`` per input (from a generator seeded with ``seed``) is
    scaled by every level σ, so the levels differ only in size. The model's noise and the input-noise
    copies are drawn with ``seed`` at every level (fresh seeds without ``config.common_noise``).
    ``reference``, the ``[D, *x.shape]`` maps at ``x`` if already computed with the same seed, saves
    one computation.
    """
    method = config.stability_method
    clean = reference if reference is not None else attribute(
        model, x, target, method, config, baseline, seed, input_draws, keep_draws=True)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    states = [clean]
    for index, level in enumerate(check_levels(levels)):
        noise_seed = seed if config.common_noise else seed + 1 + index
        states.append(attribute(model, perturb(x, level, direction), target, method, config, baseline, noise_seed,
                                input_draws, keep_draws=True))
    return torch.stack(states)


def change_table(maps: Tensor, levels: tuple[float, ...], normalisation: Normalisation) -> pd.DataFrame:
    """The changes of one map per input and state ``[1 + L, *x.shape]`` (state 0 unperturbed) at every level.

    One row per input and level: ``example`` (position), ``level``, ``change`` and ``log_change`` after
    ``normalisation``, and ``raw_change`` and ``log_raw_change`` of the raw maps (the paper's literal
    measure). Natural logs; −inf for a zero change.
    """
    if len(maps) != len(levels) + 1:
        raise ValueError(f"{len(maps)} states of maps for {len(levels)} levels: expected the clean state and one per level")
    rows = []
    for index, level in enumerate(levels, start=1):
        rows.append(pd.DataFrame({
            "example": range(maps.shape[1]), "level": level,
            "change": attribution_change(maps[0], maps[index], normalisation).cpu().numpy(),
            "raw_change": attribution_change(maps[0], maps[index], "none").cpu().numpy(),
        }))
    table = pd.concat(rows, ignore_index=True)
    with np.errstate(divide="ignore"):
        table.insert(3, "log_change", np.log(table["change"].to_numpy()))
        table["log_raw_change"] = np.log(table["raw_change"].to_numpy())
    return table


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
    """The change of ``config.stability_method`` attributions (averaged over noise draws) under Gaussian perturbations.

    ``levels`` default to ``config.perturbation_levels``; ``reference`` is as for :func:`perturbed_maps`.
    Returns the rows of :func:`change_table`.
    """
    levels = config.perturbation_levels if levels is None else check_levels(levels)
    maps = perturbed_maps(model, x, target, config, levels, seed=seed, baseline=baseline, reference=reference)
    return change_table(maps.mean(1), levels, config.normalisation)


def attribution_noise(mode: EvalMode) -> EvalNoise:
    """The noise a model evaluated in ``mode`` is explained with: none, or single passes averaged over draws."""
    return "off" if mode.noise == "off" else "single"


def reported_variant(mode: EvalMode, stochastic: bool) -> str:
    """The map variant a model is reported with: one map if deterministic, else its noise-averaged or noise-off maps."""
    if not stochastic:
        return ONE_MAP
    return NOISE_OFF if attribution_noise(mode) == "off" else NOISE_AVERAGED


def stability_controls(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    config: AttributionConfig,
    mode: EvalMode,
    *,
    seed: int,
    noise_control: NoiseControl | None = None,
    references: Mapping[EvalNoise, Tensor] | None = None,
) -> pd.DataFrame:
    """C5 with matched controls: the stability of every map variant of one model (inputs on its device).

    A model that is random with its noise on (the NSDE) is explained by the mean of
    ``config.noise_draws`` maps, one per draw of its noise (:data:`NOISE_AVERAGED`), by the first of
    those draws alone (:data:`ONE_DRAW`) and with its noise off (:data:`NOISE_OFF`). A deterministic
    model is explained by one map (:data:`ONE_MAP`) and by the mean of ``config.noise_draws`` maps of
    copies with Gaussian input noise of std ``config.smoothgrad_stdev`` (:data:`INPUT_AVERAGED`), the
    matched control: as many maps averaged as for the NSDE. ``references`` maps a noise setting
    (``"single"``, ``"off"``) to its per-draw maps at ``x`` if already computed with ``seed``.

    Returns the rows of :func:`change_table` with ``variant`` and ``reported`` (whether it is the
    variant the model is reported with in ``mode``, :func:`reported_variant`).
    """
    control = noise_control or default_noise_control()
    references = references or {}
    levels = config.perturbation_levels

    def maps(noise: EvalNoise, input_draws: int = 0) -> Tensor:
        with control(model, noise, None):
            reference = references.get(noise) if input_draws == 0 else None
            return perturbed_maps(model, x, target, config, levels, seed=seed, input_draws=input_draws,
                                  reference=reference)

    with seeded_rng(seed, x.device), control(model, "single", None):
        stochastic = is_stochastic(model, x)
    if stochastic:
        noisy = maps("single")
        variants = {NOISE_AVERAGED: noisy.mean(1), ONE_DRAW: noisy[:, 0], NOISE_OFF: maps("off")[:, 0]}
    else:
        variants = {ONE_MAP: maps("off")[:, 0], INPUT_AVERAGED: maps("off", config.noise_draws)[:, 0]}
    reported = reported_variant(mode, stochastic)
    return pd.concat([change_table(m, levels, config.normalisation).assign(variant=name, reported=name == reported)
                      for name, m in variants.items()], ignore_index=True)


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
    """Indices of the stratified test subset explained in chapters 6 and 7, the same for every model seed.

    Not yet drawn per seed like the sweeps' subsets: C4 reads the images both models classify
    correctly, and at ``ci`` a seed's own small subset can hold none.
    """
    return stratified_subset(y, config.subset_size, config.subset_seed)


@dataclass(frozen=True, eq=False)
class ExplainedModel:
    """What chapters 6 and 7 explain: one trained model in one evaluation mode, a data split, its noise seed.

    Every cached function of attributions, stability and ABC takes one, and keys its artifact on
    :meth:`key`: the config, the seed, the mode and the content of the model and the explained subset.
    """

    model: nn.Module
    x: Tensor
    y: Tensor
    mode: EvalMode
    seed: int
    noise_control: NoiseControl | None = None

    @property
    def control(self) -> NoiseControl:
        """The noise control that sets the model's evaluation noise."""
        return self.noise_control or default_noise_control()

    @property
    def device(self) -> torch.device:
        """Where the model's computations run."""
        return model_device(self.model)

    def subset(self, cfg: AttributionConfig) -> Tensor:
        """Indices of the explained subset of ``y`` (:func:`explained_subset`)."""
        return explained_subset(cfg, self.y)

    def key(self, cfg: AttributionConfig, **parts: Any) -> dict[str, Any]:
        """The cache key of an artifact computed on the explained subset, with ``parts`` naming what it is."""
        subset = self.subset(cfg)
        return {
            "attribution": cfg.model_dump(mode="json"),
            "seed": self.seed,
            **modes_key((self.mode,), self.noise_control),
            "content": content_digest(self.model, self.x[subset], self.y[subset]),
            **parts,
        }


def cached_predictions(store: ArtifactStore, cfg: AttributionConfig, target: ExplainedModel) -> Tensor:
    """The model's predictions in its mode on the explained subset (on the CPU), stored as an artifact."""
    subset = target.subset(cfg)

    def build() -> pd.DataFrame:
        predicted = predict(target.model, target.x[subset], target.mode, batch_size=cfg.batch_size, seed=target.seed,
                            noise_control=target.noise_control)
        return pd.DataFrame({"example": subset.numpy(), "predicted": predicted.numpy()})

    table = fetch_table(store, EXPLAINED_PREDICTIONS, target.key(cfg, kind="predictions"), build)
    return torch.tensor(table["predicted"].to_numpy(), dtype=torch.long)


def cached_attribution_draws(
    store: ArtifactStore, cfg: AttributionConfig, target: ExplainedModel, method: str, noise: EvalNoise
) -> Tensor:
    """The per-draw maps (:func:`attribute`) of the predicted classes of the explained subset, with the model's noise ``noise``.

    Stored as an artifact (on the CPU): the stability measure reuses them as its unperturbed maps and
    ABC averages them, so both explain the same inputs with the same maps.
    """
    key = target.key(cfg, kind="draws", method=one_of(method, AttributionMethod, "attribution method"), noise=noise)

    def build() -> Tensor:
        subset, device = target.subset(cfg), target.device
        predicted = cached_predictions(store, cfg, target)
        with target.control(target.model, noise, None):
            return attribute(target.model, target.x[subset].to(device), predicted.to(device), method, cfg,
                             seed=target.seed, keep_draws=True).cpu()

    return store.fetch(ATTRIBUTIONS, key, build)


def explained_attributions(
    store: ArtifactStore, cfg: AttributionConfig, target: ExplainedModel, method: str | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The explained subset: its indices, the predictions in the target's mode and their attributions.

    The attributions explain the predicted class with ``method`` (default ``stability_method``) as the
    mode is reported (:func:`attribution_noise`: averaged over noise draws, or noise off); cached, so
    chapters 6 and 7 read the same artifact.
    """
    method = method or cfg.stability_method
    draws = cached_attribution_draws(store, cfg, target, method, attribution_noise(target.mode))
    return target.subset(cfg), cached_predictions(store, cfg, target), draws.mean(0)


def cached_attribution_stability(store: ArtifactStore, cfg: AttributionConfig, target: ExplainedModel) -> pd.DataFrame:
    """:func:`stability_controls` on the explained subset, stored as an artifact.

    The explained class is the model's prediction in its mode on the clean input. Rows carry the
    index of the input in ``x`` (``example``) and its ``label``.
    """
    subset = target.subset(cfg)

    def build() -> pd.DataFrame:
        device = target.device
        with seeded_rng(target.seed, device), target.control(target.model, "single", None):
            stochastic = is_stochastic(target.model, target.x[subset[:1]].to(device))
        references = {noise: cached_attribution_draws(store, cfg, target, cfg.stability_method, noise).to(device)
                      for noise in (("single", "off") if stochastic else ("off",))}
        predicted = cached_predictions(store, cfg, target)
        table = stability_controls(target.model, target.x[subset].to(device), predicted.to(device), cfg, target.mode,
                                   seed=target.seed, noise_control=target.noise_control, references=references)
        position = table["example"].to_numpy()
        table.insert(1, "label", target.y[subset].numpy()[position])
        table["example"] = subset.numpy()[position]
        return table

    return fetch_table(store, ATTRIBUTION_STABILITY, target.key(cfg, kind="stability"), build)


#: The brightest share of a spectrogram's pixels that ``share_on_brightest`` counts as "the source's lines".
BRIGHTEST_FRACTION = 0.1


def share_on_brightest(attributions: Tensor, x: Tensor, fraction: float = BRIGHTEST_FRACTION) -> Tensor:
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
