"""Invertible down/upsampling: shapes, exact inverses, orthogonality, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from revnets.core import InvertibleDownsample, InvertibleUpsample


@pytest.mark.parametrize("learnable", [False, True])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_downsample_and_upsample_are_exact_inverses(spatial_dims: int, learnable: bool) -> None:
    down = InvertibleDownsample(3, spatial_dims, learnable=learnable).double()
    up = InvertibleUpsample(3 * 2**spatial_dims, spatial_dims, learnable=learnable).double()
    if learnable:
        with torch.no_grad():
            down.skew.normal_()
            up.skew.copy_(down.skew)
    x = torch.randn(2, 3, *([4, 6, 8][:spatial_dims]), dtype=torch.float64)
    y = down(x)
    assert y.shape == (2, 3 * 2**spatial_dims, *([2, 3, 4][:spatial_dims]))
    assert torch.allclose(down.inverse(y), x, atol=1e-12)
    assert torch.allclose(up(y), x, atol=1e-12)
    assert torch.allclose(up.inverse(x), y, atol=1e-12)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_learnable_resampling_is_orthogonal_and_starts_as_squeeze(spatial_dims: int) -> None:
    down = InvertibleDownsample(2, spatial_dims, learnable=True).double()
    fixed = InvertibleDownsample(2, spatial_dims).double()
    x = torch.randn(1, 2, *([4] * spatial_dims), dtype=torch.float64)
    assert torch.allclose(down(x), fixed(x))
    with torch.no_grad():
        down.skew.normal_()
    assert torch.allclose(down(x).norm(), x.norm())


def test_fixed_squeeze_matches_pixel_unshuffle_in_2d() -> None:
    x = torch.randn(2, 3, 6, 4)
    assert torch.equal(InvertibleDownsample(3, 2)(x), F.pixel_unshuffle(x, 2))


def test_learnable_resampling_is_trainable() -> None:
    down = InvertibleDownsample(2, 3, learnable=True)
    down(torch.randn(1, 2, 4, 4, 4)).square().mul(torch.randn(1, 16, 2, 2, 2)).sum().backward()
    assert down.skew.grad is not None and down.skew.grad.abs().sum() > 0


def test_bad_shapes_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="even spatial sizes, got \\(1, 2, 5, 4, 4\\)"):
        InvertibleDownsample(2, 3)(torch.randn(1, 2, 5, 4, 4))
    with pytest.raises(ValueError, match="expects \\(B, 2, \\*spatial\\)"):
        InvertibleDownsample(2, 3)(torch.randn(1, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="divisible by 8"):
        InvertibleUpsample(12, 3)
    with pytest.raises(ValueError, match="spatial_dims must be 1, 2 or 3"):
        InvertibleDownsample(2, 4)
