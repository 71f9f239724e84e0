"""Convolutions in slabs: the same function and gradients as PyTorch's, with a slab's workspace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from revnets.blocks.slab_conv import SlabConv3d, slab_convolution, slab_convolutions
from revnets.core.memory import allocated_peak_bytes

GEOMETRIES = [  # kernel, stride, padding, dilation, groups, bias
    (3, 1, 1, 1, 1, True),
    (3, 2, 1, 1, 1, False),
    (1, 1, 0, 1, 1, True),
    (3, 1, 2, 2, 1, True),
    (3, 1, 1, 1, 2, True),
    (2, 2, 0, 1, 1, True),
    (5, 3, 2, 1, 1, False),
]


@pytest.mark.parametrize("kernel, stride, padding, dilation, groups, bias", GEOMETRIES)
def test_slabs_give_the_convolution_and_its_gradients(kernel, stride, padding, dilation, groups, bias):
    torch.manual_seed(0)
    conv = nn.Conv3d(4, 6, kernel, stride, padding, dilation, groups, bias).double()
    x = torch.randn(2, 4, 7, 6, 41, dtype=torch.float64, requires_grad=True)
    expected = conv(x)
    grad = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, [x, *conv.parameters()], grad)

    out = slab_convolution(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, groups, width=5)
    grads = torch.autograd.grad(out, [x, *conv.parameters()], grad)

    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_without_gradients_and_for_an_input_that_needs_none():
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 5, 3, padding=1).double()
    x = torch.randn(1, 3, 5, 5, 30, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(slab_convolution(x, conv.weight, conv.bias, padding=(1, 1, 1), width=4), conv(x))
    out = slab_convolution(x, conv.weight, conv.bias, padding=(1, 1, 1), width=4)
    (weight_grad,) = torch.autograd.grad(out.square().sum(), [conv.weight])
    (expected,) = torch.autograd.grad(conv(x).square().sum(), [conv.weight])
    torch.testing.assert_close(weight_grad, expected)


def test_slab_convolutions_replace_conv3d_in_place_sharing_parameters_and_state_dict():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(2, 8, 3, padding=1), nn.ReLU(), nn.Sequential(nn.Conv3d(8, 3, 1)))
    net.eval()
    weights = [p for p in net.parameters()]
    keys = list(net.state_dict())
    x = torch.randn(1, 2, 8, 8, 64)
    expected = net(x)

    slab_convolutions(net)

    assert isinstance(net[0], SlabConv3d) and isinstance(net[2][0], SlabConv3d)
    assert not net[0].training
    assert all(a is b for a, b in zip(net.parameters(), weights))
    assert list(net.state_dict()) == keys
    torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-6)


def test_padding_other_than_zeros_keeps_the_convolution():
    net = nn.Sequential(nn.Conv3d(2, 2, 3, padding=1, padding_mode="reflect"), nn.Conv3d(2, 2, 3, padding="same"))
    slab_convolutions(net)
    assert [type(m) for m in net] == [nn.Conv3d, nn.Conv3d]


def test_slabs_hold_a_fraction_of_the_workspace():
    """A 3x3x3 convolution over 3 channels runs through im2col on CPU: 81 values per voxel of columns in one
    piece, those of an 8-wide slab in slabs (deterministic allocation sizes)."""
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 3, 3, padding=1)
    x = torch.randn(1, 3, 24, 24, 96, requires_grad=True)

    def step(module: nn.Module) -> int:
        return allocated_peak_bytes(lambda: module(x).square().sum().backward())

    whole = step(conv)
    slabbed = step(slab_convolutions(nn.Sequential(conv)))
    assert slabbed < 0.5 * whole


def test_under_autocast_as_pytorch_casts_a_convolution():
    torch.manual_seed(0)
    conv = SlabConv3d(4, 4, 3, padding=1)
    reference = nn.Conv3d(4, 4, 3, padding=1)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(1, 4, 16, 16, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = conv(x), reference(x)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.float(), rtol=0.02, atol=0.02)
    out.float().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.dtype == torch.float32


def test_a_gradient_of_the_gradient_raises_instead_of_being_wrong():
    conv = nn.Conv3d(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 4, 4, 24, requires_grad=True)
    out = slab_convolution(x, conv.weight, conv.bias, padding=(1, 1, 1), width=8)
    (grad,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()
