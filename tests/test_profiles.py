"""Profiles and chapter parameters: valid data loads, every kind of bad input gets one clear message."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

import nsdelib
from nsdelib.book.profiles import PROFILE_NAMES, Profile, get_profile, validate_params
from nsdelib.common import ConfigError
from nsdelib.data.dataset import stratified_split


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_validates(name: str) -> None:
    profile = get_profile(name)
    assert isinstance(profile, Profile)
    assert profile.name == name


def test_unknown_profile_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown profile 'fast'.*ci, quick, paper"):
        get_profile("fast")


def test_profiles_are_frozen() -> None:
    with pytest.raises(ValidationError, match="Instance is frozen"):
        get_profile("ci").n_seeds = 7  # type: ignore[misc]


def test_profile_override_is_validated() -> None:
    assert get_profile("ci", n_seeds=4).n_seeds == 4
    with pytest.raises(ConfigError, match="n_seeds"):
        get_profile("ci", n_seeds=0)


def test_an_unknown_profile_field_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown parameter 'colour'"):
        get_profile("ci", colour="red")


def test_chapter_params_defaults() -> None:
    params = validate_params()
    assert (params.profile, params.seed, params.device) == ("quick", 0, "auto")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"profile": "huge"}, r"parameter 'profile' = 'huge': Input should be 'ci', 'quick' or 'paper'"),
        ({"seed": -1}, r"parameter 'seed' = -1"),
        ({"seed": "one"}, r"parameter 'seed' = 'one'"),
        ({"device": "tpu"}, r"parameter 'device' = 'tpu': String should match pattern '\^\(auto\|cpu"),
        ({"epochs": 3}, r"unknown parameter 'epochs'.*allowed parameters: profile, seed, device"),
    ],
)
def test_bad_chapter_params_fail_with_one_clear_message(params: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        validate_params(**params)
    assert "\n" not in str(info.value)


def test_setup_seeds_torch_identically() -> None:
    first = nsdelib.setup(profile="ci", seed=3, device="cpu")
    a = torch.rand(5)
    nsdelib.setup(profile="ci", seed=3, device="cpu")
    b = torch.rand(5)
    nsdelib.setup(profile="ci", seed=4, device="cpu")
    c = torch.rand(5)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert first.device == torch.device("cpu")
    assert first.seeds == [3 + k for k in range(first.profile.n_seeds)]


def test_setup_auto_device_and_missing_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = nsdelib.setup(profile="ci", device="auto")
    assert ctx.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert nsdelib.setup(profile="ci", device="auto").device == torch.device("cpu")
    with pytest.raises(RuntimeError, match="device 'cuda:1' was requested but CUDA is not available"):
        nsdelib.setup(profile="ci", device="cuda:1")


def test_the_package_exposes_setup_and_nothing_else_lazily() -> None:
    assert nsdelib.setup.__module__ == "nsdelib.book.context"
    with pytest.raises(AttributeError, match="module 'nsdelib' has no attribute 'train'"):
        nsdelib.train  # noqa: B018


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_evaluates_subsets_that_fit_its_test_split(name: str) -> None:
    # a subset larger than the test split would silently shrink to it: the book would report fewer samples
    profile = get_profile(name)
    data = profile.data
    labels = torch.arange(len(data.classes)).repeat_interleave(data.samples_per_class)
    test_size = len(stratified_split(labels, data.split_fractions, torch.Generator().manual_seed(0))[2])
    sizes = {"noise": profile.noise.subset_size, "attack": profile.attack.subset_size,
             "attribution": profile.attribution.subset_size}
    assert all(size is None or size <= test_size for size in sizes.values()), (test_size, sizes)


def test_profiles_set_the_scales() -> None:
    ci, quick, paper = (get_profile(name).data for name in ("ci", "quick", "paper"))
    assert (ci.n_samples, ci.image_rows, ci.image_cols) == (240, 32, 32)
    assert (quick.image_rows, quick.image_cols) == (32, 32) and quick.n_samples < paper.n_samples
    assert get_profile("quick").model.variant == "convnext_atto_narrow", "quick's miniature of the paper's network"
    assert paper.n_samples == 10_000


def test_the_profiles_use_the_noise_their_recorded_calibration_chooses(repo_root) -> None:
    """σ and the control's input noise are set by the calibration rule: quick runs it at its own scale, the others
    take paper's, and each profile's settings must match the record they come from."""
    import json

    for name in PROFILE_NAMES:
        profile = get_profile(name)
        source = name if profile.calibrates else "paper"
        record = json.loads((repo_root / "results" / source / "calibration.json").read_text())["result"]
        choice = record.get("fixed_choice") or record["choice"]  # a re-run reports its own choice beside the fixed one
        expected = (choice["sigma"], choice["input_noise_std"])
        assert (profile.model.sde.sigma, profile.model.input_noise_std) == expected, name
        assert (profile.model.sde.diffusion, profile.model.sde.noise_shape) == ("relative", "coloured")
