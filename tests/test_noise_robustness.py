"""Input-noise sweeps on toy models: the noises themselves, SNR, the sweep table, caching, config, subsets."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from robustness_toys import ToyNet, toy_data, toy_noise_control, trained_toy

from nsdelib.book.profiles import PROFILE_NAMES, get_profile
from nsdelib.common import ConfigError
from nsdelib.common.artifacts import ArtifactStore, content_digest
from nsdelib.claims.c2_noise import NOISE_SWEEP, NoiseSweepConfig, noise_sweep, sweep_accuracy
from nsdelib.evaluation.input_noise import add_noise, image_snr_db, noise_pattern
from nsdelib.evaluation.sweeps import SweepTarget, cached_subset_sweep, stratified_subset
from nsdelib.models.inference import EvalMode, eval_modes, predict
from nsdelib.models.nsde import SDEConfig
from nsdelib.models.registry import MODEL_KINDS
from nsdelib.report.stats import seed_intervals

STOCHASTIC = (EvalMode("single pass", "single"), EvalMode("ensemble", "ensemble", 8))


def config(**changes: object) -> NoiseSweepConfig:
    values = {"gaussian_stds": (0.05, 0.2, 0.5, 1.0), "structured_levels": (0.25, 0.5, 1.0), "batch_size": 32}
    return NoiseSweepConfig.build(**{**values, **changes})


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return toy_data(60, seed=7)


@pytest.fixture(scope="module")
def stochastic_toy() -> ToyNet:
    return trained_toy(sigma=0.5)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_has_the_requested_std_and_is_clipped() -> None:
    x = torch.full((200, 1, 8, 8), 0.5)
    pattern = noise_pattern(x.shape, "gaussian", generator())
    noisy = add_noise(x, pattern, 0.05)
    assert (noisy - x).std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(add_noise(x, pattern, 0.0), x)
    loud = add_noise(x, pattern, 3.0)
    assert loud.min() == 0 and loud.max() == 1


def test_impulsive_noise_hits_whole_time_frames() -> None:
    x = torch.zeros(400, 1, 8, 16)
    noisy = add_noise(x, noise_pattern(x.shape, "impulsive", generator(), impulse_probability=0.1), 0.3)
    frames = noisy[:, 0].amax(dim=1)  # [N, T]: 0.3 where a frame was hit
    assert frames.unique().tolist() == pytest.approx([0.0, 0.3])
    assert torch.equal(noisy[:, 0].amin(dim=1), frames), "a hit must cover every frequency bin of its frame"
    assert (frames > 0).float().mean().item() == pytest.approx(0.1, abs=0.02)


def test_narrowband_noise_adds_one_steady_frequency_line_per_sample() -> None:
    x = torch.zeros(50, 1, 8, 16)
    noisy = add_noise(x, noise_pattern(x.shape, "narrowband", generator()), 0.4)
    lit_rows = (noisy[:, 0] > 0).all(dim=2)  # [N, F]: rows lit at every time frame
    assert (lit_rows.sum(dim=1) == 1).all()
    assert noisy.sum().item() == pytest.approx(50 * 16 * 0.4, rel=1e-5)
    assert lit_rows.float().argmax(dim=1).unique().numel() > 1, "the interferer's frequency is drawn per sample"


def test_unknown_noise_kind_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown noise kind 'pink'; allowed kinds: gaussian, impulsive, narrowband"):
        noise_pattern((2, 1, 8, 8), "pink", generator())  # type: ignore[arg-type]


def test_image_snr_in_db() -> None:
    x = torch.full((4, 1, 8, 8), 0.5)
    signs = torch.ones_like(x)
    signs[..., ::2] = -1
    assert image_snr_db(x, add_noise(x, signs, 0.1)) == pytest.approx(10 * math.log10(0.25 / 0.01))
    assert image_snr_db(x, x) == math.inf


def test_noise_sweep_table_and_its_shape_of_curve(stochastic_toy, data) -> None:
    x, y = data
    cfg = config()
    per_image = noise_sweep(SweepTarget(stochastic_toy, x, y, STOCHASTIC, 0, toy_noise_control), cfg)
    assert len(per_image) == ((1 + 4) * 2 + 2 * (1 + 3) * 2) * len(y)  # (clean + levels) × modes × images, per noise
    assert set(per_image["correct"]) == {0, 1} and per_image.groupby(["noise", "level", "mode"]).size().eq(len(y)).all()
    table = sweep_accuracy(per_image)
    assert set(table["noise"]) == {"gaussian", "impulsive", "narrowband"}
    for (noise, mode), curve in table.groupby(["noise", "mode"]):
        assert curve["level"].iloc[0] == 0 and curve["image_snr_db"].iloc[0] == math.inf
        assert curve["image_snr_db"].is_monotonic_decreasing, (noise, mode)
    gaussian = table[table["noise"] == "gaussian"].pivot(index="level", columns="mode", values="accuracy")
    assert (gaussian.loc[0.0] > 0.9).all()
    assert (gaussian.loc[1.0] < gaussian.loc[0.0] - 0.15).all(), "the sweep must reach levels that hurt the model"
    clean = predict(stochastic_toy, x, STOCHASTIC[1], batch_size=32, seed=0, noise_control=toy_noise_control)
    assert gaussian.loc[0.0, "ensemble"] == pytest.approx(float((clean == y).float().mean()))


def test_noise_sweep_is_reproducible_and_paired_across_models(stochastic_toy, data) -> None:
    x, y = data
    cfg = config(structured_kinds=("narrowband",))
    first = noise_sweep(SweepTarget(stochastic_toy, x, y, STOCHASTIC, 4, toy_noise_control), cfg)
    again = noise_sweep(SweepTarget(stochastic_toy, x, y, STOCHASTIC, 4, toy_noise_control), cfg)
    pd.testing.assert_frame_equal(first, again)
    first = sweep_accuracy(first)
    other_model = sweep_accuracy(noise_sweep(SweepTarget(trained_toy(0.0), x, y, (EvalMode("toy", "off"),), 4,
                                                         toy_noise_control), cfg))
    snr = first.drop_duplicates(["noise", "level"])["image_snr_db"].to_numpy()
    assert list(other_model["image_snr_db"]) == list(snr), "both models must see the same noisy inputs for one seed"
    other_seed = sweep_accuracy(noise_sweep(SweepTarget(stochastic_toy, x, y, STOCHASTIC, 5, toy_noise_control), cfg))
    assert not other_seed["image_snr_db"].equals(first["image_snr_db"])


def test_cached_sweep_reads_the_artifact_instead_of_recomputing(stochastic_toy, data, tmp_path) -> None:
    x, y = data
    calls = []

    def counting_control(model, mode, ensemble_size):
        calls.append(mode)
        return toy_noise_control(model, mode, ensemble_size)

    store, cfg = ArtifactStore(tmp_path), config(subset_size=30)
    first = cached_subset_sweep(store, NOISE_SWEEP, cfg, noise_sweep, SweepTarget(stochastic_toy, x, y, STOCHASTIC, 0, counting_control))
    assert calls and (sweep_accuracy(first)["n_samples"] == 30).all()
    subset = SweepTarget(stochastic_toy, x, y, STOCHASTIC, 0).subset(cfg)
    assert set(first["example"]) == set(subset.tolist()), "rows name images by their index in the full split"
    other_seed = cached_subset_sweep(store, NOISE_SWEEP, cfg, noise_sweep,
                                     SweepTarget(stochastic_toy, x, y, STOCHASTIC, 1, counting_control))
    other_subset = SweepTarget(stochastic_toy, x, y, STOCHASTIC, 1).subset(cfg)
    assert set(other_seed["example"]) == set(other_subset.tolist()) != set(subset.tolist()), \
        "each seed is evaluated on its own images"
    calls.clear()
    second = cached_subset_sweep(store, NOISE_SWEEP, cfg, noise_sweep, SweepTarget(stochastic_toy, x, y, STOCHASTIC, 0, counting_control))
    assert not calls
    pd.testing.assert_frame_equal(first, second)
    retrained = trained_toy(sigma=0.5, steps=10)
    cached_subset_sweep(store, NOISE_SWEEP, cfg, noise_sweep, SweepTarget(retrained, x, y, STOCHASTIC, 0, counting_control))
    assert calls, "other weights must not read the first model's artifact"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gaussian_stds": (-0.05, 0.1)}, r"gaussian_stds.*finite and > 0"),
        ({"gaussian_stds": ()}, r"gaussian_stds.*at least 1 item"),
        ({"gaussian_stds": (0.0, 0.05)}, r"clean point 0 is implied"),
        ({"gaussian_stds": (0.1, 0.05)}, r"strictly increasing"),
        ({"gaussian_stds": (0.05, float("nan"))}, r"finite and > 0"),
        ({"structured_levels": (-1.0,)}, r"structured_levels.*finite and > 0"),
        ({"structured_kinds": ("pink",)}, r"structured_kinds.*'impulsive' or 'narrowband'"),
        ({"impulse_probability": 0.0}, r"parameter 'impulse_probability'"),
        ({"subset_size": 0}, r"parameter 'subset_size'"),
        ({"std": 0.05}, r"unknown parameter 'std'"),
    ],
)
def test_invalid_noise_config_fails_clearly(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_sweeps_through_the_papers_noise_intensity(name) -> None:
    noise = get_profile(name).noise
    assert 0.05 in noise.gaussian_stds
    assert noise.gaussian_stds[-1] >= 1.0, "the sweep must reach the point where both models fail"


def test_stratified_subset_keeps_class_balance_and_is_fixed() -> None:
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    subset = stratified_subset(y, 20, seed=0)
    assert len(subset) == 20 and subset.unique().numel() == 20
    assert torch.bincount(y[subset]).tolist() == [10, 6, 4]
    assert torch.equal(subset, stratified_subset(y, 20, seed=0))
    assert not torch.equal(subset, stratified_subset(y, 20, seed=1))
    assert torch.equal(stratified_subset(y, None, seed=0), torch.arange(100))
    assert torch.bincount(y[stratified_subset(y, 7, seed=0)]).sum() == 7


def test_model_eval_modes_and_content_digest() -> None:
    sde = SDEConfig.build(ensemble_size=10)
    assert [m.noise for m in eval_modes("convnext", sde)] == ["off"]
    assert [m.name for m in eval_modes("convnext_noise", sde)] == ["ConvNeXt + input noise"]
    off, single, ensemble = eval_modes("nsde", sde)
    assert (off.noise, off.name) == ("off", "NSDE, noise off")
    assert (single.noise, ensemble.noise, ensemble.ensemble_size) == ("single", "ensemble", 10)
    allowed = ", ".join(MODEL_KINDS)
    with pytest.raises(ConfigError, match=f"unknown model kind 'resnet'; allowed model kinds: {allowed}$"):
        eval_modes("resnet", sde)
    a, b = ToyNet(), ToyNet()
    assert content_digest(a) != content_digest(b)
    b.load_state_dict(a.state_dict())
    assert content_digest(a) == content_digest(b)
    assert content_digest(torch.zeros(3)) != content_digest(torch.zeros(4))


def test_seed_intervals() -> None:
    table = pd.DataFrame(
        {
            "level": [0.05] * 6 + [0.2] * 6,
            "mode": ["nsde", "base"] * 6,
            "seed": [0, 0, 1, 1, 2, 2] * 2,
            "accuracy": [0.90, 0.80, 0.91, 0.82, 0.92, 0.81, 0.50, 0.60, 0.70, 0.55, 0.40, 0.65],
        }
    )
    intervals = seed_intervals(table, ["level", "mode"]).set_index(["level", "mode"])
    assert intervals.loc[(0.05, "nsde"), "mean"] == pytest.approx(0.91)
    assert intervals.loc[(0.05, "nsde"), "low"] < 0.91 < intervals.loc[(0.05, "nsde"), "high"]
    assert (intervals["n"] == 3).all()


def test_per_image_outcomes_score_every_image_in_every_mode(stochastic_toy, data) -> None:
    from nsdelib.evaluation.sweeps import per_image_outcomes

    x, y = data
    table = per_image_outcomes(stochastic_toy, x, y, STOCHASTIC, batch_size=7, seed=0, noise_control=toy_noise_control)
    assert len(table) == len(STOCHASTIC) * len(y) and set(table["correct"]) <= {0, 1}
    for mode in STOCHASTIC:
        expected = predict(stochastic_toy, x, mode, batch_size=7, seed=0, noise_control=toy_noise_control) == y
        assert table.loc[table["mode"] == mode.name, "correct"].tolist() == expected.int().tolist()


def test_noise_patterns_follow_their_generator_and_the_default_impulse_rate() -> None:
    shape = (400, 1, 8, 50)
    for kind in ("gaussian", "impulsive", "narrowband"):
        torch.manual_seed(98)  # the global generator, in another state for each draw, must not matter
        first = noise_pattern(shape, kind, torch.Generator().manual_seed(3))
        torch.manual_seed(99)
        again = noise_pattern(shape, kind, torch.Generator().manual_seed(3))
        assert torch.equal(first, again), kind
    for seed in range(5):  # one input: its band is one of all eight bins, whichever was drawn
        band = noise_pattern((1, 1, 8, 50), "narrowband", torch.Generator().manual_seed(seed))
        assert band.shape == (1, 1, 8, 1) and band.sum() == 1 and set(band.unique().tolist()) == {0.0, 1.0}
    impulses = noise_pattern(shape, "impulsive", torch.Generator().manual_seed(0))
    assert impulses.shape == (400, 1, 1, 50) and set(impulses.unique().tolist()) == {0.0, 1.0}
    assert float(impulses.mean()) == pytest.approx(0.05, abs=0.01)  # 20,000 frames: the default rate, ±5 σ


def test_noise_sweep_uses_the_configured_impulse_rate_and_a_fresh_index(stochastic_toy, data) -> None:
    x, y = data
    dense = config().replace(structured_kinds=("impulsive",), structured_levels=(0.3,), impulse_probability=1.0)
    per_image = noise_sweep(SweepTarget(stochastic_toy, x, y, STOCHASTIC, 0, toy_noise_control), dense)
    assert per_image.index.tolist() == list(range(len(per_image)))
    impulsive = per_image[(per_image["noise"] == "impulsive") & (per_image["level"] == 0.3)]
    expected = image_snr_db(x, add_noise(x, torch.ones(1, 1, 1, x.shape[-1]), 0.3))  # every frame carries the impulse
    assert impulsive["image_snr_db"].unique().tolist() == pytest.approx([expected])


def test_sweep_accuracy_keeps_models_and_seeds_apart_in_table_order() -> None:
    table = pd.DataFrame({"noise": "gaussian", "level": 0.1, "image_snr_db": 20.0, "mode": "m",
                          "model": ["b", "b", "a", "a", "b", "b"], "seed": [1, 1, 1, 1, 0, 0],
                          "correct": [1, 1, 0, 0, 1, 0]})
    accuracy = sweep_accuracy(table)
    assert accuracy[["model", "seed", "accuracy", "n_samples"]].values.tolist() == [["b", 1, 1.0, 2], ["a", 1, 0.0, 2],
                                                                                    ["b", 0, 0.5, 2]]
