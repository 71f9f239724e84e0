"""The mobile inverted bottleneck (MBConv, MobileNetV2 / EfficientNet) as a residual function ``f`` / ``g``."""

from __future__ import annotations

from monai.networks.layers.factories import Conv, Dropout, Pool
from torch import Tensor, nn

from revnets.blocks.norm import norm_layer


class SqueezeExcitation(nn.Module):
    """Channel gating ``x * sigmoid(W2 silu(W1 mean(x)))`` (Hu et al.), spatial_dims-generic.

    ``(B, channels, *spatial) -> (B, channels, *spatial)``.

    Args:
        spatial_dims: 2 or 3.
        channels: channels gated.
        hidden_channels: width of the bottleneck between the two 1x1 convolutions.
    """

    def __init__(self, spatial_dims: int, channels: int, hidden_channels: int) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.gate = nn.Sequential(
            Pool[Pool.ADAPTIVEAVG, spatial_dims](1),
            conv(channels, hidden_channels, 1),
            nn.SiLU(),
            conv(hidden_channels, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class MBConv(nn.Sequential):
    """1x1 expansion -> norm -> SiLU -> depthwise conv -> norm -> SiLU (-> squeeze-excitation) (-> dropout)
    -> 1x1 projection -> norm.

    ``(B, in_channels, *spatial) -> (B, out_channels, *spatial)``, spatial size kept. The block carries no
    identity shortcut of its own: as ``f`` / ``g`` of an :class:`~revnets.core.AdditiveCoupling` the coupling
    adds it (reversible form), and the plain form is the same coupling under ordinary autograd.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (default ``in_channels``).
        expansion: width of the inverted bottleneck as a multiple of ``in_channels``; 1 drops the
            expansion convolution.
        kernel_size: odd kernel size of the depthwise convolution.
        norm: ``"instance"``, ``"group"`` or ``"batch"``.
        squeeze_excitation: gate the expanded channels, with a hidden width of ``in_channels / 4`` as in
            EfficientNet.
        dropout: dropout probability before the projection (0 disables it).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int | None = None,
        expansion: int = 4,
        kernel_size: int = 3,
        norm: str = "group",
        squeeze_excitation: bool = True,
        dropout: float = 0.0,
    ) -> None:
        if expansion < 1:
            raise ValueError(f"expansion must be a positive integer, got {expansion}.")
        out_channels = out_channels or in_channels
        expanded = in_channels * expansion
        conv = Conv[Conv.CONV, spatial_dims]
        layers: list[nn.Module] = []
        if expansion > 1:
            layers += [conv(in_channels, expanded, 1, bias=False), norm_layer(norm, spatial_dims, expanded), nn.SiLU()]
        layers += [
            conv(expanded, expanded, kernel_size, padding=kernel_size // 2, groups=expanded, bias=False),
            norm_layer(norm, spatial_dims, expanded),
            nn.SiLU(),
        ]
        if squeeze_excitation:
            layers.append(SqueezeExcitation(spatial_dims, expanded, max(1, in_channels // 4)))
        if dropout:
            layers.append(Dropout[Dropout.DROPOUT, spatial_dims](dropout))
        layers += [conv(expanded, out_channels, 1, bias=False), norm_layer(norm, spatial_dims, out_channels)]
        super().__init__(*layers)
