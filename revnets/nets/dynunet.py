"""DynUNet (the nnU-Net architecture) with reversible blocks, behind MONAI's constructor.

Each block of MONAI's ``DynUNet`` (``UnetBasicBlock`` / ``UnetResBlock``, also inside ``UnetUpBlock``) is two
convolutions: the first may change channels and stride, the second keeps the shape. What is reversible: the
second convolution becomes one :class:`~revnets.core.AdditiveCoupling` (``f`` a ``kernel_size``
convolution branch, ``g`` a pointwise one: the receptive field grows by one kernel, as with the
convolution it replaces; see :mod:`revnets.nets.couplings`). What stays ordinary, as in MONAI: the first
convolution with its norm and activation, the transposed convolution and concatenation of each decoder
block, ``res_block``'s projection shortcut, the output block and the deep-supervision heads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.networks.blocks.dynunet_block import UnetOutBlock, get_conv_layer
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import Tensor, nn
from torch.nn.functional import interpolate

from revnets.blocks.slab_conv import slab_convolutions
from revnets.core import Form
from revnets.models.deterministic import DeterministicSegmentation
from revnets.models.sampling import check_output_activation
from revnets.nets.couplings import same_shape_couplings
from revnets.nets.stage import ShortcutStage, Stage

Kernel = Sequence[int] | int


class _ConvNormAct(nn.Module):
    """MONAI's first convolution of a DynUNet block: conv (stride, dropout) -> norm -> act; with ``skip``,
    the decoder's transposed convolution of the coarser input concatenated with the skip comes first."""

    def __init__(
        self, conv: nn.Module, norm: nn.Module, act: nn.Module, upsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.transp_conv = upsample
        self.conv = conv
        self.norm = norm
        self.act = act

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if self.transp_conv is None:
            return self.act(self.norm(self.conv(x)))
        if skip is None:
            raise ValueError("an upsampling decoder step needs the encoder's skip tensor.")
        return self.act(self.norm(_convolve_concatenation(self.conv, (self.transp_conv(x), skip))))


def _convolve_concatenation(convolution: nn.Module, parts: Sequence[Tensor]) -> Tensor:
    """``convolution(torch.cat(parts, dim=1))`` without the concatenation.

    ``convolution`` is MONAI's ``Convolution`` (its ``conv``, then the layers after it, e.g. dropout); its
    weight is split along the input channels, one convolution per part, and the results summed. In a decoder
    block's backward the concatenation and its gradient would be the largest tensors at full resolution.
    """
    conv: nn.Conv1d | nn.Conv2d | nn.Conv3d = convolution.get_submodule("conv")  # type: ignore[assignment]
    weights = conv.weight.split([part.shape[1] for part in parts], dim=1)
    out = conv._conv_forward(parts[0], weights[0], conv.bias)
    for part, weight in zip(parts[1:], weights[1:]):
        out = out.add_(conv._conv_forward(part, weight, None))
    for name, layer in convolution.named_children():
        if name != "conv":
            out = layer(out)
    return out


class DynUNet(DeterministicSegmentation):
    """Reversible twin of ``monai.networks.nets.DynUNet``: same arguments, same input/output contract.

    ``(B, in_channels, *S) -> (B, out_channels, *S / strides[0])`` logits; in training mode with
    ``deep_supervision`` the output is ``(B, 1 + deep_supr_num, out_channels, *S / strides[0])``, the
    deep-supervision heads interpolated to the output's size and stacked behind it, as in MONAI. Every
    spatial size must be a multiple of the product of the strides along its axis.

    Args:
        spatial_dims, in_channels, out_channels, kernel_size, strides, upsample_kernel_size, filters, dropout,
            norm_name, act_name, deep_supervision, deep_supr_num, res_block, trans_bias: as in MONAI's
            ``DynUNet`` (default ``filters`` as nnU-Net's: 32 doubling to 320 in 3D, 512 in 2D). ``filters``
            must be even; ``kernel_size`` odd.
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
        kernel_size: Sequence[Kernel],
        strides: Sequence[Kernel],
        upsample_kernel_size: Sequence[Kernel],
        filters: Sequence[int] | None = None,
        dropout: tuple | str | float | None = None,
        norm_name: tuple | str = ("INSTANCE", {"affine": True}),
        act_name: tuple | str = ("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision: bool = False,
        deep_supr_num: int = 1,
        res_block: bool = False,
        trans_bias: bool = False,
        form: Form | str = Form.REVERSIBLE,
        output_activation: str = "softmax",
        branch_width: float | None = None,
    ) -> None:
        super().__init__()
        levels = len(strides)
        if len(kernel_size) != levels or levels < 3:
            raise ValueError("DynUNet: kernel_size and strides must have the same length, at least 3.")
        for name, values in (("kernel_size", kernel_size), ("strides", strides)):
            for index, value in enumerate(values):
                if not isinstance(value, int) and len(value) != spatial_dims:
                    raise ValueError(f"DynUNet: {name}[{index}] must have {spatial_dims} values, got {value}.")
        if len(upsample_kernel_size) != levels - 1:
            raise ValueError(f"DynUNet: upsample_kernel_size needs {levels - 1} values (strides[1:]).")
        if filters is None:
            filters = [min(2 ** (5 + i), 320 if spatial_dims == 3 else 512) for i in range(levels)]
        elif len(filters) < levels:
            raise ValueError("DynUNet: filters must have at least as many values as strides.")
        filters = list(filters)[:levels]
        if deep_supervision and not 1 <= deep_supr_num < levels - 1:
            raise ValueError(f"DynUNet: deep_supr_num must be in [1, {levels - 2}], got {deep_supr_num}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filters = filters
        self.deep_supervision = deep_supervision
        self.deep_supr_num = deep_supr_num
        self.form = Form.of(form)
        self.output_activation = check_output_activation(output_activation)
        self.size_divisor = int(np.lcm.reduce(np.prod([np.broadcast_to(s, spatial_dims) for s in strides], axis=0)))

        def block(
            c_in: int, c_out: int, kernel: Kernel, stride: Kernel, up_kernel: Kernel | None = None, finest: bool = False
        ) -> nn.Module:
            def conv(i: int, o: int, k: Kernel, s: Kernel, **kw) -> nn.Module:
                return get_conv_layer(spatial_dims, i, o, k, s, dropout=dropout, act=None, norm=None,
                                      conv_only=False, **kw)

            upsample = None
            if up_kernel is not None:
                # MONAI's UnetUpBlock: the transposed convolution's stride is its kernel; the block's is 1
                upsample = conv(c_in, c_out, up_kernel, up_kernel, bias=trans_bias, is_transposed=True)
                c_in, stride = 2 * c_out, 1
            entry = _ConvNormAct(
                conv(c_in, c_out, kernel, stride),
                get_norm_layer(norm_name, spatial_dims, c_out),
                get_act_layer(act_name),
                upsample,
            )
            couplings = same_shape_couplings(
                spatial_dims, c_out, 1, kernel, norm_name, act_name, dropout, adn_ordering="DNA",
                owner="DynUNet", argument="filters", branch_width=branch_width, finest=finest,
            )
            stage = Stage(entry, couplings, self.form)
            if not res_block or up_kernel is not None:  # MONAI's decoder blocks are never residual
                return stage
            if c_in == c_out and np.all(np.asarray(stride) == 1):
                return ShortcutStage(stage, nn.Identity())
            projection = nn.Sequential(conv(c_in, c_out, 1, stride), get_norm_layer(norm_name, spatial_dims, c_out))
            return ShortcutStage(stage, Stage(projection, [], self.form))

        self.input_block = block(in_channels, filters[0], kernel_size[0], strides[0], finest=True)
        self.downsamples = nn.ModuleList(
            block(filters[i - 1], filters[i], kernel_size[i], strides[i]) for i in range(1, levels - 1)
        )
        self.bottleneck = block(filters[-2], filters[-1], kernel_size[-1], strides[-1])
        self.upsamples = nn.ModuleList(
            block(filters[i + 1], filters[i], kernel_size[i + 1], strides[i + 1], upsample_kernel_size[i], i == 0)
            for i in reversed(range(levels - 1))
        )
        self.output_block = UnetOutBlock(spatial_dims, filters[0], out_channels, dropout=dropout)
        if deep_supervision:
            self.deep_supervision_heads = nn.ModuleList(
                UnetOutBlock(spatial_dims, filters[i + 1], out_channels, dropout=dropout) for i in range(deep_supr_num)
            )
        self.apply(_kaiming)
        slab_convolutions(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, *S)`` to logits, stacked with the deep-supervision heads in training mode."""
        skips = [self.input_block(x)]
        for down in self.downsamples:
            skips.append(down(skips[-1]))
        x = self.bottleneck(skips[-1])
        decoded = []
        for up, skip in zip(self.upsamples, reversed(skips)):
            x = up(x, skip)
            decoded.append(x)
        out = self.output_block(x)
        if not (self.training and self.deep_supervision):
            return out
        # decoded[-1] feeds the output block; head i reads the decoder output one level coarser per i
        heads = [head(decoded[-2 - i]) for i, head in enumerate(self.deep_supervision_heads)]
        return torch.stack([out, *(interpolate(h, out.shape[2:]) for h in heads)], dim=1)


def _kaiming(module: nn.Module) -> None:
    """MONAI DynUNet's initialisation: Kaiming normal (a=0.01) convolution weights, zero biases."""
    if isinstance(module, (nn.Conv3d, nn.Conv2d, nn.ConvTranspose3d, nn.ConvTranspose2d)):
        nn.init.kaiming_normal_(module.weight, a=0.01)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
