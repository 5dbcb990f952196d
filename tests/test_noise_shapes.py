"""Coloured noise has the spectrum, variance and layout it claims, and colours a torchsde Brownian motion."""

from __future__ import annotations

import pytest
import torch
import torchsde

from nsdelib.models.sde_numerics import (ColouredBrownian, brownian_noise, colour, coloured_noise, power_spectrum,
                                         spectral_slope, white_noise_like)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_1d_noise_has_the_requested_spectral_slope_and_unit_variance(exponent: float) -> None:
    x = coloured_noise((128, 512), exponent, generator=torch.Generator().manual_seed(0))
    slope = spectral_slope(*power_spectrum(x))
    assert slope == pytest.approx(-exponent, abs=0.08)
    assert x.var().item() == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_2d_noise_has_the_requested_radial_slope(exponent: float) -> None:
    x = coloured_noise((32, 64, 64), exponent, ndim=2, generator=torch.Generator().manual_seed(1))
    assert spectral_slope(*power_spectrum(x, ndim=2)) == pytest.approx(-exponent, abs=0.12)


def test_random_walk_is_brownian_at_low_frequencies() -> None:
    x = brownian_noise((128, 1024), generator=torch.Generator().manual_seed(2))
    assert spectral_slope(*power_spectrum(x), band=(0.0, 0.1)) == pytest.approx(-2.0, abs=0.1)


def test_colouring_is_linear_and_leaves_white_and_single_pixel_fields_unchanged() -> None:
    a, b = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(colour(a + 2 * b, 1.5, ndim=2), colour(a, 1.5, ndim=2) + 2 * colour(b, 1.5, ndim=2))
    torch.testing.assert_close(colour(a, 0.0, ndim=2), a)
    single = torch.randn(4, 5, 1, 1)
    torch.testing.assert_close(colour(single, 2.0, ndim=2), single)


def test_white_noise_like_keeps_shape_and_channels_last_layout() -> None:
    h = torch.zeros(4, 16, 8, 8).to(memory_format=torch.channels_last)
    noise = white_noise_like(h)
    assert noise.shape == h.shape and noise.stride() == h.stride()
    torch.manual_seed(3)
    first = white_noise_like(h)
    torch.manual_seed(3)
    assert torch.equal(first, white_noise_like(h))


def test_coloured_brownian_colours_each_increment_of_its_base() -> None:
    shape = (2, 8, 8)
    base = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(3, 128), entropy=4)
    coloured = ColouredBrownian(base, shape, exponent=2.0)
    expected = colour(base(0.25, 0.5).reshape(3, *shape), 2.0, ndim=2).reshape(3, 128)
    torch.testing.assert_close(coloured(0.25, 0.5), expected)
    assert coloured.shape == base.shape
    for levy in ({"return_U": True}, {"return_A": True}):
        with pytest.raises(NotImplementedError, match="ColouredBrownian provides increments only"):
            coloured(0.25, 0.5, **levy)
