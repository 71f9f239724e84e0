"""Couplings: exact inverses, the one-pass backward against autograd, shape errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from revnets.core import AdditiveCoupling, AffineCoupling
from tests.core.stacks import CONV, relative_error, residual_function


def _coupling(kind: str, channels: int, spatial_dims: int) -> nn.Module:
    cls, factor = {"additive": (AdditiveCoupling, 1), "affine": (AffineCoupling, 2)}[kind]
    half = channels // 2
    return cls(
        residual_function(half, spatial_dims, out_factor=factor),
        residual_function(half, spatial_dims, out_factor=factor),
    ).double()


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_inverse_undoes_forward(kind: str, spatial_dims: int) -> None:
    block = _coupling(kind, 8, spatial_dims)
    x = torch.randn(2, 8, *([5] * spatial_dims), dtype=torch.float64)
    with torch.no_grad():
        y = block(x)
        assert not torch.allclose(y, x)
        assert torch.allclose(block.inverse(y), x, atol=1e-13)


@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_grad_disabled_forward_equals_autograd_forward(kind: str) -> None:
    block = _coupling(kind, 4, 3)
    x = torch.randn(2, 4, 5, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        y_no_grad = block(x)
    assert torch.equal(block(x).detach(), y_no_grad)


@pytest.mark.parametrize("owned", [False, True])
@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_reverse_and_grad_matches_autograd(kind: str, owned: bool) -> None:
    block = _coupling(kind, 4, 3)
    x = torch.randn(2, 4, 5, 5, 5, dtype=torch.float64, requires_grad=True)
    y = block(x)
    dy = torch.randn_like(y)
    params = list(block.parameters())
    expected = torch.autograd.grad(y, [x, *params], dy)
    y_in, dy_in = y.detach().clone(), dy.clone()
    x_rec, dx, param_grads = block.reverse_and_grad(y_in, dy_in, owned)
    assert torch.allclose(x_rec, x.detach(), atol=1e-13)
    assert relative_error([dx, *(param_grads[p] for p in params)], list(expected)) <= 1e-12
    if not owned:
        assert torch.equal(y_in, y.detach()) and torch.equal(dy_in, dy)


def test_affine_scale_is_bounded_whatever_f_returns() -> None:
    class Huge(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat((torch.full_like(x, -1e4), torch.zeros_like(x)), dim=1)

    block = AffineCoupling(Huge(), Huge())
    x = torch.randn(1, 4, 3, 3, 3, dtype=torch.float64)
    y = block(x)
    assert torch.allclose(y, 0.5 * x)
    assert torch.allclose(block.inverse(y), x)


def test_function_with_wrong_output_shape_is_named() -> None:
    block = AdditiveCoupling(CONV[3](2, 3, 1), CONV[3](2, 2, 1))
    with pytest.raises(ValueError, match="AdditiveCoupling.f must map \\(1, 2, 4, 4, 4\\) to"):
        block(torch.randn(1, 4, 4, 4, 4))
