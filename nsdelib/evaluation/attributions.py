"""Attribution maps (captum: Integrated Gradients, Saliency, SmoothGrad) of the explained test subset, cached for
C4's ABC and C5's stability alike, and their physical summaries. Chapter 6 explains them."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from pydantic import Field
from torch import Tensor, nn

from ..common import ConfigError, IncreasingFractions, Section, model_device, one_of, seeded_rng
from ..common.artifacts import ArtifactKind, ArtifactStore
from ..models.inference import EvalMode, NoiseControl, predict
from ..models.nsde import EvalNoise, eval_noise
from .sweeps import SweepTarget

#: The predicted classes of the explained images; bump when prediction changes.
EXPLAINED_PREDICTIONS = ArtifactKind("explained_predictions", 3, "table.json")
#: The per-draw attribution maps; bump when an attribution method changes.
ATTRIBUTIONS = ArtifactKind("attributions", 3, "attributions.pt")

AttributionMethod = Literal["integrated_gradients", "saliency", "smoothgrad"]
ATTRIBUTION_METHODS: tuple[str, ...] = get_args(AttributionMethod)
Normalisation = Literal["l1", "none"]


class AttributionConfig(Section):
    """How attributions and their stability are computed (chapter 6, and the attributions ABC uses)."""

    stability_method: AttributionMethod = Field("integrated_gradients", description="the method C5 measures")
    ig_steps: int = Field(ge=2, le=1024, description="Integrated Gradients integration steps (captum n_steps)")
    smoothgrad_samples: int = Field(ge=1, le=1024, description="noisy copies per input for SmoothGrad (nt_samples)")
    smoothgrad_stdev: float = Field(0.15, gt=0.0, le=1.0, description="input-noise std of SmoothGrad and the control")
    noise_draws: int = Field(ge=1, le=1000, description="maps averaged (model noise draws or the control's copies)")
    baseline: float = Field(0.0, ge=0.0, le=1.0, description="constant IG baseline (0 = silence)")
    perturbation_levels: IncreasingFractions = Field(min_length=1, description="stds σ of the perturbations δ")
    normalisation: Normalisation = Field("l1", description="'l1': each map divided by its Σ|A|; 'none': raw maps")
    common_noise: bool = Field(True, description="draw the noise of A(x+δ) with the seed of A(x): δ alone changes A")
    subset_size: int = Field(ge=1, le=100_000, description="stratified test subset explained (ch. 6 and 7)")
    subset_seed: int = Field(0, ge=0, description="seed of the subsets (each model seed draws its own)")
    batch_size: int = Field(ge=1, le=4096, description="spectrograms per forward/backward pass")


def resolve_baseline(baseline: float | Tensor, x: Tensor) -> Tensor:
    """The baseline (a scalar, one spectrogram, or one per input) expanded to the shape of ``x``."""
    tensor = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if tensor.shape not in ((), x.shape[1:], (1, *x.shape[1:]), x.shape):
        raise ConfigError(f"baseline of shape {tuple(tensor.shape)} does not fit inputs of shape {tuple(x.shape)}; "
                          f"expected a scalar, {tuple(x.shape[1:])}, {(1, *x.shape[1:])} or {tuple(x.shape)}")
    return tensor.expand_as(x)


@torch.no_grad()
def is_stochastic(model: nn.Module, x: Tensor) -> bool:
    """Whether two forward passes on the same input differ (a Neural SDE with its noise on)."""
    probe = x[:1]
    return not torch.equal(model(probe), model(probe))


def _attribute_once(model: nn.Module, x: Tensor, target: Tensor, method: AttributionMethod, config: AttributionConfig,
                    baseline: Tensor, input_draws: int = 0) -> Tensor:
    """One captum attribution of a chunk; with ``input_draws`` > 0 the mean over that many noisy copies of the inputs
    (captum's ``NoiseTunnel``; for SmoothGrad, one SmoothGrad with ``input_draws`` times as many copies)."""
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
    return tunnel.attribute(x, nt_type="smoothgrad", nt_samples=samples,
                            nt_samples_batch_size=max(1, config.batch_size // len(x)),
                            stdevs=float(config.smoothgrad_stdev), target=target, **kwargs)


def attribute(model: nn.Module, x: Tensor, target: Tensor | int, method: str, config: AttributionConfig,
              baseline: float | Tensor | None = None, seed: int = 0, input_draws: int = 0,
              keep_draws: bool = False) -> Tensor:
    """Attributions of shape ``x.shape`` for the logit of ``target``: the mean of the maps of ``config.noise_draws``
    noise draws (one for a deterministic model; ``keep_draws``: all, ``[D, *x.shape]``), seeded chunk by chunk so
    equal seeds and shapes draw the same noise. ``baseline`` (default ``config.baseline``) is used by IG only."""
    method = one_of(method, AttributionMethod, "attribution method")
    base = resolve_baseline(config.baseline if baseline is None else baseline, x)
    targets = torch.as_tensor(target, device=x.device).long().expand(len(x))
    chunks = []
    with seeded_rng(seed, x.device):
        draws = config.noise_draws if is_stochastic(model, x) else 1
        for start in range(0, len(x), config.batch_size):
            part = slice(start, start + config.batch_size)
            chunks.append(torch.stack([
                _attribute_once(model, x[part], targets[part], method, config, base[part], input_draws).detach()
                for _ in range(draws)
            ]))
    maps = torch.cat(chunks, dim=1)
    return maps if keep_draws else maps.mean(0)


def attribution_noise(mode: EvalMode) -> EvalNoise:
    """The noise a model evaluated in ``mode`` is explained with: none, or single passes averaged over draws."""
    return "off" if mode.noise == "off" else "single"


def _attribute_on_device(model: nn.Module, x: Tensor, target: Tensor | int, method: str, config: AttributionConfig,
                         noise: EvalNoise, control: NoiseControl, seed: int, keep_draws: bool = False) -> Tensor:
    """:func:`attribute` of the model with its noise ``noise``, on its device; on the CPU."""
    device = model_device(model)
    with control(model, noise, None):
        return attribute(model, x.to(device), torch.as_tensor(target).to(device), method, config, seed=seed,
                         keep_draws=keep_draws).cpu()


def attribute_in_mode(model: nn.Module, x: Tensor, target: Tensor | int, method: str, config: AttributionConfig,
                      mode: EvalMode, *, seed: int, noise_control: NoiseControl | None = None) -> Tensor:
    """:func:`attribute` of a model explained as in ``mode`` (:func:`attribution_noise`), on its device; on the CPU."""
    return _attribute_on_device(model, x, target, method, config, attribution_noise(mode),
                                noise_control or eval_noise, seed)


def cached_predictions(store: ArtifactStore, cfg: AttributionConfig, target: SweepTarget) -> Tensor:
    """The model's predictions in its mode on the explained subset (on the CPU), stored as an artifact."""
    subset = target.subset(cfg)

    def build() -> pd.DataFrame:
        predicted = predict(target.model, target.x[subset], target.mode, batch_size=cfg.batch_size, seed=target.seed,
                            noise_control=target.noise_control)
        return pd.DataFrame({"example": subset.numpy(), "predicted": predicted.numpy()})

    table = store.fetch_table(EXPLAINED_PREDICTIONS, target.key(cfg, kind="predictions"), build)
    return torch.tensor(table["predicted"].to_numpy(), dtype=torch.long)


def cached_attribution_draws(store: ArtifactStore, cfg: AttributionConfig, target: SweepTarget, method: str,
                             noise: EvalNoise) -> Tensor:
    """The per-draw maps (:func:`attribute`) of the predicted classes of the explained subset with the model's noise
    ``noise``, stored (on the CPU): C5 reuses them as its unperturbed maps and ABC averages them."""
    key = target.key(cfg, kind="draws", method=one_of(method, AttributionMethod, "attribution method"), noise=noise)
    return store.fetch(ATTRIBUTIONS, key, lambda: _attribute_on_device(
        target.model, target.x[target.subset(cfg)], cached_predictions(store, cfg, target), method, cfg, noise,
        target.control, target.seed, keep_draws=True))


def explained_attributions(store: ArtifactStore, cfg: AttributionConfig, target: SweepTarget,
                           method: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The explained subset's indices, predictions and attributions of them (``method``, default ``stability_method``)
    as the mode is reported (:func:`attribution_noise`); cached, so chapters 6 and 7 read the same artifact."""
    method = method or cfg.stability_method
    draws = cached_attribution_draws(store, cfg, target, method, attribution_noise(target.mode))
    return target.subset(cfg), cached_predictions(store, cfg, target), draws.mean(0)


#: The brightest share of a spectrogram's pixels that ``share_on_brightest`` counts as "the source's lines".
BRIGHTEST_FRACTION = 0.1


def share_on_brightest(attributions: Tensor, x: Tensor, fraction: float = BRIGHTEST_FRACTION) -> Tensor:
    """Per input, the share of Σ|A| that falls on its brightest ``fraction`` of pixels; shape ``[N]``."""
    a, v = attributions.abs().flatten(1), x.flatten(1)
    count = max(1, round(fraction * v.shape[1]))
    brightest = v.topk(count, dim=1).indices
    return a.gather(1, brightest).sum(1) / a.sum(1).clamp_min(torch.finfo(a.dtype).tiny)


def frequency_profile(attributions: Tensor) -> Tensor:
    """Per input, the share of Σ|A| in each frequency row of ``[N, 1, F, T]`` maps; shape ``[N, F]``, rows sum to 1."""
    rows = attributions.abs().sum(dim=(1, 3))
    return rows / rows.sum(1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)


def class_means(values: Tensor, labels: Tensor, n_classes: int) -> np.ndarray:
    """Mean of the rows ``values [N, F]`` of each class: ``[n_classes, F]`` (NaN for an absent class)."""
    return np.stack([values[labels == c].mean(0).numpy() for c in range(n_classes)])
