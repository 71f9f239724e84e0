"""The residual function used as ``f`` and ``g`` of a coupling: a pre-activation convolution pair."""

from __future__ import annotations

from monai.networks.layers.factories import Conv, Dropout
from torch import nn

from revnets.blocks.norm import norm_layer


class ResidualFunction(nn.Sequential):
    """norm -> LeakyReLU -> conv -> norm -> LeakyReLU (-> dropout) -> conv.

    ``(B, in_channels, *spatial) -> (B, out_channels, *spatial)``, spatial size kept. Used as ``f`` / ``g``
    of :class:`~revnets.core.AdditiveCoupling` (reversible form) and as the branch of an ordinary residual
    layer ``x + f(x)`` (plain form): the same module in both.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (default ``in_channels``; ``2 * in_channels`` for affine couplings).
        kernel_size: odd kernel size of both convolutions.
        norm: ``"instance"``, ``"group"`` or ``"batch"``.
        dropout: dropout probability before the second convolution (0 disables it).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int | None = None,
        kernel_size: int = 3,
        norm: str = "group",
        dropout: float = 0.0,
    ) -> None:
        out_channels = out_channels or in_channels
        conv = Conv[Conv.CONV, spatial_dims]
        padding = kernel_size // 2
        layers: list[nn.Module] = [
            norm_layer(norm, spatial_dims, in_channels),
            nn.LeakyReLU(inplace=True),
            conv(in_channels, in_channels, kernel_size, padding=padding, bias=False),
            norm_layer(norm, spatial_dims, in_channels),
            nn.LeakyReLU(inplace=True),
        ]
        if dropout:
            layers.append(Dropout[Dropout.DROPOUT, spatial_dims](dropout))
        layers.append(conv(in_channels, out_channels, kernel_size, padding=padding))
        super().__init__(*layers)
