"""MONAI's residual-unit UNet with reversible subunits, behind MONAI's constructor.

MONAI's ``UNet`` with ``num_res_units = n`` builds each encoder level (and the bottom) from a
``ResidualUnit`` of ``n`` convolutions, the first strided and changing channels, and each decoder level from a
transposed convolution followed by a one-convolution ``ResidualUnit`` that keeps the shape. What is
reversible: the ``n - 1`` same-shape convolutions of each encoder unit and the convolution of each decoder
unit, as :class:`~revnets.core.AdditiveCoupling` blocks (:mod:`revnets.nets.couplings`). What stays ordinary,
as in MONAI: each unit's first (strided) convolution and its residual projection, the concatenation of skip
and coarser output, each transposed convolution, and the top decoder level, whose residual unit ends in the
``out_channels`` logits. ``num_res_units=0`` (plain convolutions, nothing of the same shape) has no
reversible form and is refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.networks.blocks.convolutions import Convolution, ResidualUnit
from monai.networks.layers.factories import Act, Conv, Norm
from torch import Tensor, nn

from revnets.blocks.slab_conv import slab_convolutions
from revnets.core import Form
from revnets.models.deterministic import DeterministicSegmentation
from revnets.models.sampling import check_output_activation
from revnets.nets.couplings import same_padding, same_shape_couplings
from revnets.nets.stage import ShortcutStage, Stage


class _Concatenate(nn.Module):
    """``module(cat(skip, x))``: MONAI's ``SkipConnection`` concatenation followed by the decoder layer."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, skip: Tensor, x: Tensor) -> Tensor:
        return self.module(torch.cat((skip, x), dim=1))


class UNet(DeterministicSegmentation):
    """Reversible twin of ``monai.networks.nets.UNet``: same arguments, same input/output contract.

    ``(B, in_channels, *S) -> (B, out_channels, *S)`` logits; every spatial size a multiple of the product of
    the strides.

    Args:
        spatial_dims, in_channels, out_channels, channels, strides, kernel_size, up_kernel_size,
            num_res_units, act, norm, dropout, bias, adn_ordering: as in MONAI's ``UNet``. ``num_res_units``
            must be at least 1 and ``channels`` even where a level has couplings.
        form: :class:`~revnets.core.Form`: reversible (default), plain (the same modules under ordinary
            autograd) or checkpointed.
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample` and the default loss.
        branch_width: hidden width of the couplings' branches as a multiple of each level's width (None, the
            default: as many weights as MONAI's convolutions they replace, about 2; smaller widths keep less
            memory in backward, with fewer weights).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        kernel_size: Sequence[int] | int = 3,
        up_kernel_size: Sequence[int] | int = 3,
        num_res_units: int = 0,
        act: tuple | str = Act.PRELU,
        norm: tuple | str = Norm.INSTANCE,
        dropout: float = 0.0,
        bias: bool = True,
        adn_ordering: str = "NDA",
        form: Form | str = Form.REVERSIBLE,
        output_activation: str = "softmax",
        branch_width: float | None = None,
    ) -> None:
        super().__init__()
        if num_res_units < 1:
            raise ValueError(
                f"UNet: num_res_units must be >= 1 for a reversible twin (with {num_res_units} every layer is one "
                "convolution that changes shape, so nothing can be reversible)."
            )
        if len(channels) < 2:
            raise ValueError("UNet: channels needs at least 2 values.")
        if len(strides) < len(channels) - 1:
            raise ValueError("UNet: strides needs len(channels) - 1 values.")
        if len(strides) > len(channels) - 1:
            warnings.warn(
                f"UNet: the last {len(strides) - len(channels) + 1} values of strides are not used.", stacklevel=2
            )
        for name, value in (("kernel_size", kernel_size), ("up_kernel_size", up_kernel_size)):
            if not isinstance(value, int) and len(value) != spatial_dims:
                raise ValueError(f"UNet: {name} must have spatial_dims ({spatial_dims}) values, got {value}.")
        levels = len(channels)
        strides = list(strides)[: levels - 1]
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.form = Form.of(form)
        self.output_activation = check_output_activation(output_activation)
        self.size_divisor = int(np.lcm.reduce(np.prod([np.broadcast_to(s, spatial_dims) for s in strides], axis=0)))
        layer: dict[str, Any] = {
            "act": act, "norm": norm, "dropout": dropout, "bias": bias, "adn_ordering": adn_ordering
        }

        def couplings(width: int, convolutions: int) -> list:
            # the finest level with couplings: encoder level 0 and decoder level 1 (width channels[0])
            return same_shape_couplings(
                spatial_dims, width, convolutions, kernel_size, norm, act, dropout or None, bias, adn_ordering,
                owner="UNet", argument="channels", branch_width=branch_width, finest=width == channels[0],
            )

        def residual_unit(c_in: int, c_out: int, stride: int) -> ShortcutStage:
            first = Convolution(spatial_dims, c_in, c_out, strides=stride, kernel_size=kernel_size, **layer)
            stage = Stage(first, couplings(c_out, num_res_units - 1), self.form)
            if np.prod(stride) == 1 and c_in == c_out:
                return ShortcutStage(stage, nn.Identity())
            kernel, padding = (kernel_size, same_padding(kernel_size)) if np.prod(stride) != 1 else (1, 0)
            projection = Conv[Conv.CONV, spatial_dims](c_in, c_out, kernel, stride, padding, bias=bias)
            return ShortcutStage(stage, projection)

        def up_layer(c_in: int, c_out: int, stride: int, top: bool) -> Stage:
            upsample = Convolution(
                spatial_dims, c_in, c_out, strides=stride, kernel_size=up_kernel_size, is_transposed=True, **layer
            )
            if not top:
                return Stage(_Concatenate(upsample), couplings(c_out, 1), self.form)
            head = ResidualUnit(
                spatial_dims, c_out, c_out, strides=1, kernel_size=kernel_size, subunits=1, last_conv_only=True,
                **layer,
            )
            return Stage(_Concatenate(nn.Sequential(upsample, head)), [], self.form)

        widths_in = [in_channels, *channels[:-2]]
        self.down = nn.ModuleList(residual_unit(c_in, c, s) for c_in, c, s in zip(widths_in, channels, strides))
        self.bottom = residual_unit(channels[-2], channels[-1], 1)
        # decoder level l takes cat(skip l, output of level l + 1) and returns the width of encoder level l - 1
        widths_up = [2 * c for c in channels[:-2]] + [channels[-2] + channels[-1]]
        widths_out = [out_channels, *channels[:-2]]
        self.up = nn.ModuleList(
            up_layer(c_in, c_out, s, level == 0)
            for level, (c_in, c_out, s) in enumerate(zip(widths_up, widths_out, strides))
        )
        slab_convolutions(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, *S) -> (B, out_channels, *S)`` logits."""
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.bottom(x)
        for up, skip in zip(reversed(self.up), reversed(skips)):
            x = up(skip, x)
        return x
