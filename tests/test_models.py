"""The ConvNeXt baseline and the NSDE-ConvNeXt: exactness at σ = 0, torchsde equivalence, noise control."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torchsde
from pydantic import ValidationError

from nsdelib.common import ConfigError
from nsdelib.models.nsde import (
    NSDEConvNeXt,
    SDEConfig,
    block_brownian_motion,
    eval_noise,
    increments_from,
    integrate_block,
    residual_drift,
    set_noise_scale_map,
)
from nsdelib.models.registry import ConvNeXtClassifier, ModelConfig, build_model, with_injected_noise

CLASSES = 5
SIZE = 32


def pair(**sde: object) -> tuple[ConvNeXtClassifier, NSDEConvNeXt]:
    """A baseline and an NSDE with the same weights."""
    cfg = ModelConfig.build(sde=sde)
    torch.manual_seed(0)
    baseline = build_model("convnext", cfg, CLASSES)
    nsde = build_model("nsde", cfg, CLASSES)
    nsde.load_state_dict(baseline.state_dict())
    return baseline, nsde


def spectrograms(n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def wake_up_layer_scale(model: NSDEConvNeXt) -> None:
    """timm initialises layer scale to 1e-6, which makes f(h) ≈ 0; trained networks have γ ≈ O(1)."""
    with torch.no_grad():
        for _, _, block in model.blocks():
            block.gamma.fill_(0.5)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"sde": {"sigma": -0.1}}, "sde.sigma"),
        ({"sde": {"diffusion": "exponential"}}, "sde.diffusion"),
        ({"sde": {"noise_shape": "purple"}}, "sde.noise_shape"),
        ({"sde": {"steps_per_block": 0}}, "sde.steps_per_block"),
        ({"sde": {"eval_noise": "sometimes"}}, "sde.eval_noise"),
        ({"sde": {"ensemble_size": 0}}, "sde.ensemble_size"),
        ({"variant": "resnet18"}, "variant"),
        ({"drop_path_rate": 1.5}, "drop_path_rate"),
        ({"sde": {"sigma": 0.1, "colour": "red"}}, "sde.colour"),
    ],
)
def test_invalid_config_names_the_field(values: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"'{field}'"):
        ModelConfig.build(**values)


def test_build_model_rejects_an_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="allowed model kinds: convnext, convnext_noise, nsde"):
        build_model("resnet", ModelConfig(), CLASSES)  # type: ignore[arg-type]


def test_both_models_map_spectrograms_to_logits_and_share_state_dict_keys() -> None:
    baseline, nsde = pair()
    assert set(baseline.state_dict()) == set(nsde.state_dict())
    x = spectrograms()
    for model in (baseline, nsde):
        assert model.eval()(x).shape == (3, CLASSES)


@pytest.mark.parametrize("mode", ["off", "single", "ensemble"])
def test_sigma_zero_gives_exactly_the_baseline_logits(mode: str) -> None:
    baseline, nsde = pair(sigma=0.0, eval_noise=mode)
    wake_up_layer_scale(nsde)
    baseline.load_state_dict(nsde.state_dict())
    x = spectrograms()
    assert torch.equal(baseline.eval()(x), nsde.eval()(x))
    assert torch.equal(baseline.train()(x), nsde.train()(x))


def test_noise_changes_the_logits_and_drift_only_equals_the_baseline() -> None:
    baseline, nsde = pair(sigma=0.3, eval_noise="off")
    x = spectrograms()
    reference = baseline.eval()(x)
    assert torch.equal(nsde.eval()(x), reference)
    assert not torch.equal(nsde.train()(x), reference)


@pytest.mark.parametrize("shape", ["white", "coloured", "scale_map"])
@pytest.mark.parametrize("form", ["additive", "relative", "multiplicative", "dropout"])
@pytest.mark.parametrize("steps", [1, 4])
def test_fast_forward_equals_torchsde_euler_on_the_same_brownian_path(shape: str, form: str, steps: int) -> None:
    _, nsde = pair(sigma=0.3, diffusion=form, noise_shape=shape, steps_per_block=steps)
    wake_up_layer_scale(nsde)
    if shape == "scale_map":
        set_noise_scale_map(nsde, torch.linspace(0.0, 2.0, SIZE).repeat(SIZE, 1))
    nsde.eval()
    h = nsde.block_input(spectrograms(2), stage=1, index=0)
    feature_shape = tuple(h.shape[1:])
    sde = nsde.block_sde(1, 0, feature_shape)
    with torch.no_grad():
        bm = block_brownian_motion(nsde.sde, 2, feature_shape, seed=7)
        reference = torchsde.sdeint(sde, h.flatten(1), torch.tensor([0.0, 1.0]), bm=bm, method="euler", dt=1 / steps)
        bm = block_brownian_motion(nsde.sde, 2, feature_shape, seed=7)
        block = nsde.net.stages[1].blocks[0]
        fast = integrate_block(block, h, nsde.sde, increments_from(bm), nsde.scale_at(feature_shape[1:]))
    torch.testing.assert_close(fast.flatten(1), reference[-1], rtol=0, atol=0)
    assert (fast - integrate_block(block, h, nsde.sde)).abs().mean() > 1e-3  # the noise really acted


def test_block_sde_drift_is_the_residual_branch_of_timms_block() -> None:
    _, nsde = pair()
    wake_up_layer_scale(nsde)
    block = nsde.net.stages[0].blocks[1].eval()
    h = nsde.eval().block_input(spectrograms(), 0, 1)
    torch.testing.assert_close(residual_drift(block, h) + h, block(h), rtol=0, atol=0)


def test_noise_is_seeded_by_torch_and_fresh_on_every_call() -> None:
    _, nsde = pair(sigma=0.3, eval_noise="single")
    x = spectrograms()
    nsde.eval()
    torch.manual_seed(5)
    first = nsde(x)
    second = nsde(x)
    torch.manual_seed(5)
    assert torch.equal(first, nsde(x))
    assert not torch.equal(first, second)


def test_ensemble_returns_log_mean_softmax_of_k_stochastic_passes() -> None:
    k = 6
    _, nsde = pair(sigma=0.3, eval_noise="ensemble", ensemble_size=k)
    x = spectrograms()
    nsde.eval()
    torch.manual_seed(9)
    ensemble = nsde(x)
    torch.manual_seed(9)
    passes = torch.stack([nsde.logits(x, noisy=True).softmax(dim=-1) for _ in range(k)])
    torch.testing.assert_close(ensemble, passes.mean(dim=0).log())
    torch.testing.assert_close(ensemble.exp().sum(dim=-1), torch.ones(3))


def test_eval_noise_context_sets_and_restores_the_mode() -> None:
    baseline, nsde = pair(sigma=0.3, eval_noise="ensemble", ensemble_size=3)
    x = spectrograms()
    nsde.eval()
    with eval_noise(nsde, "off"):
        assert torch.equal(nsde(x), nsde(x))
    with eval_noise(nsde, "single", ensemble_size=7):
        assert nsde.sde.eval_noise == "single" and nsde.sde.ensemble_size == 7
        assert not torch.equal(nsde(x), nsde(x))
    assert nsde.sde.eval_noise == "ensemble" and nsde.sde.ensemble_size == 3
    with eval_noise(baseline.eval(), "single"):
        assert torch.equal(baseline(x), baseline(x))
    with pytest.raises(ConfigError, match="'eval_noise'"):
        with eval_noise(nsde, "loud"):  # type: ignore[arg-type]
            pass


def test_scale_map_shapes_the_noise_where_it_is_large() -> None:
    _, nsde = pair(sigma=0.3, noise_shape="scale_map")
    half = torch.zeros(SIZE, SIZE)
    half[:, SIZE // 2:] = 1.0
    set_noise_scale_map(nsde, half)
    stage_map = nsde.scale_at((8, 8))[0, 0]
    assert stage_map.mean().item() == pytest.approx(1.0)
    assert torch.all(stage_map[:, :4] == 0) and torch.all(stage_map[:, 4:] == 2.0)
    h = nsde.eval().block_input(spectrograms(), 0, 0)
    block = nsde.net.stages[0].blocks[0]
    bm = block_brownian_motion(nsde.sde, 3, tuple(h.shape[1:]), seed=0)
    with torch.no_grad():
        change = integrate_block(block, h, nsde.sde, increments_from(bm), nsde.scale_at(tuple(h.shape[-2:])))
        change = change - integrate_block(block, h, nsde.sde)
    width = h.shape[-1] // 2
    assert torch.all(change[..., :width] == 0) and change[..., width:].abs().mean() > 0.1
    set_noise_scale_map(nsde, None)
    assert nsde.scale_at((8, 8)) is None


def test_scale_map_is_validated_and_needs_the_scale_map_shape() -> None:
    baseline, white = pair(noise_shape="white")
    with pytest.raises(ConfigError, match="noise_shape = 'scale_map'"):
        set_noise_scale_map(white, torch.ones(SIZE, SIZE))
    set_noise_scale_map(baseline, torch.ones(SIZE, SIZE))  # no noise to shape: a no-op
    _, shaped = pair(noise_shape="scale_map")
    with pytest.raises(ConfigError, match=r"noise scale map must be a 2-D \[F, T\] tensor, got shape \(1, 32, 32\)"):
        set_noise_scale_map(shaped, torch.ones(1, SIZE, SIZE))
    nan = torch.ones(SIZE, SIZE)
    nan[0, 0] = float("nan")
    for bad in (-torch.ones(SIZE, SIZE), torch.zeros(SIZE, SIZE), nan):
        with pytest.raises(ConfigError, match="noise scale map must be finite, non-negative and not all zero"):
            set_noise_scale_map(shaped, bad)


def test_nsde_refuses_blocks_without_identity_shortcuts_and_unknown_blocks() -> None:
    baseline, nsde = pair()
    net = copy.deepcopy(baseline.net)
    net.stages[1].blocks[0].shortcut = torch.nn.Conv2d(80, 80, 1)
    with pytest.raises(ConfigError, match="the NSDE needs ConvNeXt blocks with identity shortcuts"):
        NSDEConvNeXt(net, SDEConfig())
    with pytest.raises(IndexError, match="no block 2 in stage 1"):
        nsde.block_input(spectrograms(1), stage=1, index=2)


def test_training_step_backpropagates_through_the_noise() -> None:
    _, nsde = pair(sigma=0.2, diffusion="multiplicative", noise_shape="coloured", steps_per_block=2)
    loss = torch.nn.functional.cross_entropy(nsde.train()(spectrograms()), torch.tensor([0, 1, 2]))
    loss.backward()
    grads = [p.grad for p in nsde.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert math.isfinite(loss.item())


def test_sde_config_defaults_are_valid_and_frozen() -> None:
    cfg = SDEConfig()
    with pytest.raises(ValidationError, match="Instance is frozen"):
        cfg.sigma = 1.0  # type: ignore[misc]
    assert cfg.replace(sigma=0.2).sigma == 0.2


def test_injected_noise_runs_the_convnext_weights_with_the_nsde_noise_and_leaves_the_convnext_alone() -> None:
    baseline, _ = pair()
    wake_up_layer_scale(NSDEConvNeXt(baseline.net, SDEConfig.build()))  # shares baseline.net: a trained-looking one
    x = spectrograms()
    reference = baseline.eval()(x)
    injected = with_injected_noise(baseline, SDEConfig.build(sigma=0.3, eval_noise="single"))
    assert torch.equal(baseline.eval()(x), reference)
    with eval_noise(injected, "off"):
        assert torch.equal(injected(x), reference), "with its noise off it is the ConvNeXt"
    torch.manual_seed(0)
    assert not torch.allclose(injected(x), reference)
    injected.net.stem[0].weight.data.zero_()
    assert torch.equal(baseline.eval()(x), reference), "a copy: the ConvNeXt's weights are untouched"
    for other in ("nsde", "convnext_noise"):
        with pytest.raises(ConfigError, match="injected into a plain ConvNeXt"):
            with_injected_noise(build_model(other, ModelConfig.build(), CLASSES), SDEConfig.build())


def test_the_narrow_variant_is_convnext_atto_narrower_and_shallower_for_every_kind() -> None:
    """quick's network: timm's convnext_atto blocks at 24–192 channels, two blocks per stage, for all three kinds."""
    cfg = ModelConfig(variant="convnext_atto_narrow")
    for kind in ("convnext", "convnext_noise", "nsde"):
        model = build_model(kind, cfg, num_classes=8)
        assert [len(stage.blocks) for stage in model.net.stages] == [2, 2, 2, 2], kind
        assert model.net.num_features == 192
        assert model(torch.rand(2, 1, 32, 32)).shape == (2, 8)
    assert 0.8e6 < sum(p.numel() for p in build_model("convnext", cfg, 8).parameters()) < 1.0e6
