"""Convolutions computed in slabs along the last spatial axis: the same function with a slab's workspace.

On CPU, PyTorch's convolution kernels allocate working buffers the size of the whole input or output: oneDNN
reorders the input, the output's gradient and the input's gradient into its blocked layout, and a convolution
over few channels runs through im2col, whose column buffer holds ``C_in * k**3`` values per voxel. At full
resolution these buffers, not the tensors autograd keeps, set the peak of the reversible twins' training step
(docs/monai_twins.md). :class:`SlabConv3d` computes the same convolution slab by slab along the last spatial
axis (:data:`SLAB_WIDTH` output positions each, reading the input positions their kernels cover), forward and
backward, so the buffers are a slab's: the output and the input's gradient are written in place, the weight's
and bias's gradients summed over slabs (the same values up to the order of the sums).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

SLAB_WIDTH = 8
"""Output positions along the last axis per slab: a kernel of 3 reads 10 input positions, so the input's
gradient costs 25% more work than in one piece; the forward and the weight's gradient cost nothing more."""

MIN_SLAB_VALUES = 2**20
"""Convolutions whose im2col columns (input positions times the weights per output channel) hold fewer values
(4 MiB of float32) are convolved in one piece: their buffers are small."""


@dataclass(frozen=True)
class _Slab:
    """Output positions ``[start, stop)`` along the last axis, and the input positions ``[lo, hi)`` their
    kernels read, with ``pad_lo`` and ``pad_hi`` zeros beyond the input's ends."""

    start: int
    stop: int
    lo: int
    hi: int
    pad_lo: int
    pad_hi: int

    def input(self, x: Tensor) -> Tensor:
        """The slab's part of ``x`` ``(B, C, *S)``, zero-padded along the last axis, contiguous."""
        part = x[..., self.lo : self.hi]
        return F.pad(part, (self.pad_lo, self.pad_hi)) if self.pad_lo or self.pad_hi else part.contiguous()


@dataclass(frozen=True)
class _Geometry:
    """Stride, padding and dilation per spatial axis and the group count of a convolution."""

    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    def outputs(self, size: int, kernel: int) -> int:
        """Output positions along the last axis for ``size`` input positions and a kernel of ``kernel``."""
        return (size + 2 * self.padding[-1] - self.dilation[-1] * (kernel - 1) - 1) // self.stride[-1] + 1

    def slabs(self, size: int, kernel: int, width: int) -> Iterator[_Slab]:
        """The slabs of ``width`` output positions over ``size`` input positions (last axis)."""
        stride, padding, reach = self.stride[-1], self.padding[-1], self.dilation[-1] * (kernel - 1) + 1
        outputs = self.outputs(size, kernel)
        for start in range(0, outputs, width):
            stop = min(start + width, outputs)
            first, end = start * stride - padding, (stop - 1) * stride - padding + reach
            lo, hi = max(first, 0), min(end, size)
            yield _Slab(start, stop, lo, hi, lo - first, end - hi)

    @property
    def slab_padding(self) -> tuple[int, ...]:
        """Padding of one slab's convolution: none along the last axis (the slab brings its own zeros)."""
        return (*self.padding[:-1], 0)


_CONVOLUTIONS = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}


def _convolve(x: Tensor, weight: Tensor, bias: Tensor | None, geometry: _Geometry, width: int) -> Tensor:
    """The convolution of ``x`` ``(B, C_in, *S)`` slab by slab: ``(B, C_out, *S')``."""
    kernel = weight.shape[-1]
    conv = _CONVOLUTIONS[x.dim()]
    out: Tensor | None = None
    for slab in geometry.slabs(x.shape[-1], kernel, width):
        part = conv(
            slab.input(x), weight, bias, geometry.stride, geometry.slab_padding, geometry.dilation, geometry.groups
        )
        if out is None:
            out = part.new_empty((*part.shape[:-1], geometry.outputs(x.shape[-1], kernel)))
        out[..., slab.start : slab.stop] = part
    assert out is not None
    return out


class _SlabConvolution(torch.autograd.Function):
    """Autograd of :func:`slab_convolution`: backward slab by slab too."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, geometry: _Geometry, width: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.width, ctx.has_bias = geometry, width, bias is not None
        return _convolve(x, weight, bias, geometry, width)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        geometry: _Geometry = ctx.geometry
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        arguments = (geometry.stride, geometry.slab_padding, geometry.dilation, False, (0,) * (x.dim() - 2))
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        grad_x = torch.zeros_like(x) if mask[0] else None
        grad_weight: Tensor | None = None
        grad_bias: Tensor | None = None
        for slab in geometry.slabs(x.shape[-1], weight.shape[-1], ctx.width):
            part = grad[..., slab.start : slab.stop].contiguous()
            gx, gw, gb = torch.ops.aten.convolution_backward(
                part, slab.input(x), weight, bias_sizes, *arguments, geometry.groups, mask
            )
            if grad_x is not None:
                grad_x[..., slab.lo : slab.hi] += gx[..., slab.pad_lo : gx.shape[-1] - slab.pad_hi]
            if mask[1]:
                grad_weight = gw if grad_weight is None else grad_weight.add_(gw)
            if mask[2]:
                grad_bias = gb if grad_bias is None else grad_bias.add_(gb)
        return grad_x, grad_weight, grad_bias, None, None


def slab_convolution(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Sequence[int] = (1, 1, 1),
    padding: Sequence[int] = (0, 0, 0),
    dilation: Sequence[int] = (1, 1, 1),
    groups: int = 1,
    width: int = SLAB_WIDTH,
) -> Tensor:
    """``torch.nn.functional.conv3d`` (or ``conv2d``, ``conv1d``: one entry of ``stride``, ``padding`` and
    ``dilation`` per spatial axis) computed in slabs of ``width`` output positions along the last spatial axis,
    forward and backward: ``(B, C_in, *S) -> (B, C_out, *S')``. Zero padding only; not twice differentiable."""
    return _slab_convolution(x, weight, bias, _Geometry(tuple(stride), tuple(padding), tuple(dilation), groups), width)


def _slab_convolution(x: Tensor, weight: Tensor, bias: Tensor | None, geometry: _Geometry, width: int) -> Tensor:
    """:func:`slab_convolution` for a given geometry: under autocast, the tensors cast as autocast casts a
    convolution; through autograd where a gradient is wanted."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(device, enabled=False):
            return _slab_convolution(x, weight, bias, geometry, width)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return _SlabConvolution.apply(x, weight, bias, geometry, width)
    return _convolve(x, weight, bias, geometry, width)


class SlabConv3d(nn.Conv3d):
    """``nn.Conv3d`` that convolves large inputs on CPU in slabs (:func:`slab_convolution`): the same
    parameters, state dict and function. Pointwise convolutions (no working buffers to speak of), small ones
    (:data:`MIN_SLAB_VALUES`), those with at most two slabs along the last axis and those on other devices run
    as ``nn.Conv3d``."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        geometry = _Geometry(self.stride, self.padding, self.dilation, self.groups)  # type: ignore[arg-type]
        slabbed = (
            input.device.type == "cpu"
            and weight[0, 0].numel() > 1
            and input.numel() // input.shape[1] * weight[0].numel() >= MIN_SLAB_VALUES
            and geometry.outputs(input.shape[-1], weight.shape[-1]) > 2 * SLAB_WIDTH
        )
        if not slabbed:
            return super()._conv_forward(input, weight, bias)
        return _slab_convolution(input, weight, bias, geometry, SLAB_WIDTH)


def as_slab_conv(conv: nn.Conv3d) -> nn.Conv3d:
    """:class:`SlabConv3d` sharing ``conv``'s parameters, or ``conv`` itself where slabs cannot apply (padding
    other than zeros or given as a string)."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return conv
    slab = SlabConv3d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,  # type: ignore[arg-type]
        conv.dilation, conv.groups, conv.bias is not None, device="meta",  # type: ignore[arg-type]
    )
    slab.weight = conv.weight
    slab.bias = conv.bias
    slab.train(conv.training)
    return slab


def slab_convolutions(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.Conv3d`` inside it replaced, in place, by :func:`as_slab_conv`; returns
    ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.Conv3d:
            setattr(module, name, as_slab_conv(child))
        else:
            slab_convolutions(child)
    return module
