"""The reversible part of a twin: a run of same-shape convolutions of a MONAI block as additive couplings.

MONAI's blocks carry runs of convolutions that keep channels and size (SegResNet's ``ResBlock``, the second
convolution of DynUNet's blocks, the extra subunits of UNet's ``ResidualUnit``). A twin replaces such a run
of ``n`` convolutions (``C -> C``, kernel ``k``) by ``ceil(n / 2)`` :class:`~revnets.core.AdditiveCoupling`
blocks on the two halves of the ``C`` channels:

- a pair of convolutions becomes one coupling whose ``f`` and ``g`` each hold one ``k`` convolution, so
  ``y2`` sees ``x`` through two ``k`` kernels, like the pair;
- a convolution left over becomes a coupling whose ``f`` holds the ``k`` convolution and whose ``g`` is
  pointwise (kernel 1), so the receptive field again grows by one ``k`` kernel.

Each branch (:class:`CouplingBranch`) is ``conv 1 (C/2 -> H)``, norm / activation / dropout, ``conv k
(H -> C/2)``; the hidden width ``H`` is chosen so that the couplings hold as many convolution weights as the
convolutions they replace (a half-width ``k`` convolution alone would hold a quarter of them), rounded to a
multiple of 8. The pointwise convolution comes first so that the ``k`` convolution reads the wide tensor: on
CPU, PyTorch runs a 3D convolution over few input channels (``C * D * H <= 20480`` for a batch of one) through
im2col, whose column buffer of ``k**3 * C`` values per voxel would otherwise set the peak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from monai.networks.blocks import ADN
from monai.networks.layers.factories import Conv, split_args
from torch import nn

from revnets.core import AdditiveCoupling

Kernel = Sequence[int] | int

FINEST_BRANCH_WIDTH = 0.5
"""Default hidden width (times the level's width) of the branches at a twin's finest level, never below
:data:`FINEST_MIN_HIDDEN` nor above MONAI's parameter count. A coupling's backward holds several tensors of
the hidden width at once; at the finest level they are the largest tensors of the step, while the level holds
under 0.5% of the weights (docs/monai_twins.md)."""

FINEST_MIN_HIDDEN = 16
"""Thinner finest-level branches learned measurably worse: SegResNet's 8-channel top level with 8-wide
branches lost 0.022 held-out Dice over three seeds and trained to a higher loss (docs/monai_twins.md)."""


def kernel_volume(kernel_size: Kernel, spatial_dims: int) -> int:
    """Weights per input-output channel pair of a convolution with ``kernel_size`` (int or one per axis)."""
    if isinstance(kernel_size, int):
        return kernel_size**spatial_dims
    return math.prod(kernel_size)


def same_padding(kernel_size: Kernel) -> int | tuple[int, ...]:
    """Padding that keeps the size of a stride-1 convolution with odd ``kernel_size``."""
    if isinstance(kernel_size, int):
        return kernel_size // 2
    return tuple(k // 2 for k in kernel_size)


def fitted_norm(norm: tuple | str, channels: int) -> tuple | str:
    """``norm`` for a layer of ``channels``; group norm gets the largest group count that divides ``channels``
    and does not exceed the one asked for (a coupling's halves have half the channels of MONAI's layer)."""
    if not norm:
        return norm
    name, args = split_args(norm)
    if str(name).lower() != "group":
        return norm
    groups = math.gcd(int(args.get("num_groups", 8)), channels)
    return (name, {**args, "num_groups": groups})


class CouplingBranch(nn.Sequential):
    """One residual function ``f`` or ``g`` of a twin's coupling.

    ``(B, channels, *S) -> (B, channels, *S)``: [``preactivation``: norm -> act] -> conv 1
    (``channels -> hidden_channels``) -> norm / act / dropout in ``adn_ordering`` -> conv ``kernel_size``
    (``hidden_channels -> channels``).

    Args:
        spatial_dims: 2 or 3.
        channels: half the width of the coupling.
        hidden_channels: width between the two convolutions.
        kernel_size: odd kernel (int or one per axis) of the second convolution; 1 makes the branch pointwise.
        norm: MONAI norm type and arguments (group counts fitted to the width).
        act: MONAI activation type and arguments.
        dropout: MONAI dropout ratio or type and arguments (None: no dropout).
        bias: bias of the convolutions.
        adn_ordering: order of norm (N), dropout (D) and activation (A) after the first convolution.
        preactivation: norm and activation before the first convolution too (SegResNet's ``ResBlock`` style).
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        hidden_channels: int,
        kernel_size: Kernel,
        norm: tuple | str,
        act: tuple | str,
        dropout: tuple | str | float | None = None,
        bias: bool = False,
        adn_ordering: str = "NDA",
        preactivation: bool = False,
    ) -> None:
        conv = Conv[Conv.CONV, spatial_dims]
        layers: list[nn.Module] = []
        if preactivation:
            layers.append(ADN("NA", channels, act=act, norm=fitted_norm(norm, channels), norm_dim=spatial_dims))
        layers += [
            conv(channels, hidden_channels, 1, bias=bias),
            ADN(
                adn_ordering,
                hidden_channels,
                act=act,
                norm=fitted_norm(norm, hidden_channels),
                norm_dim=spatial_dims,
                dropout=dropout,
                dropout_dim=1,
            ),
            conv(hidden_channels, channels, kernel_size, padding=same_padding(kernel_size), bias=bias),
        ]
        super().__init__(*layers)


def same_shape_couplings(
    spatial_dims: int,
    channels: int,
    convolutions: int,
    kernel_size: Kernel,
    norm: tuple | str,
    act: tuple | str,
    dropout: tuple | str | float | None = None,
    bias: bool = False,
    adn_ordering: str = "NDA",
    preactivation: bool = False,
    owner: str = "network",
    argument: str = "channels",
    branch_width: float | None = None,
    finest: bool = False,
) -> list[AdditiveCoupling]:
    """The couplings that replace ``convolutions`` same-shape convolutions (``channels -> channels``,
    ``kernel_size``) of a MONAI block: one per pair, one more for a convolution left over.

    Raises a ValueError naming ``argument`` of ``owner`` when ``channels`` is odd (couplings split channels
    in halves). ``branch_width``: the branches' hidden width as a multiple of ``channels`` (None: as many
    weights as the replaced convolutions, about 2, narrower at the ``finest`` level: see
    :data:`FINEST_BRANCH_WIDTH`). The other arguments are those of :class:`CouplingBranch`.
    """
    if convolutions < 1:
        return []
    if channels % 2:
        raise ValueError(
            f"{owner}: {argument} must give even widths where blocks are reversible (couplings split channels in "
            f"halves), got a width of {channels}."
        )
    half = channels // 2
    volume = kernel_volume(kernel_size, spatial_dims)
    pointwise: Kernel = 1 if isinstance(kernel_size, int) else (1,) * len(kernel_size)

    def coupling(g_kernel: Kernel, replaced: int) -> AdditiveCoupling:
        # conv weights of f and g: half * hidden * (volume + 1) + half * hidden * (g_volume + 1)
        g_volume = kernel_volume(g_kernel, spatial_dims)
        hidden = replaced * volume * channels**2 / (half * (volume + g_volume + 2))  # MONAI's weights
        if branch_width is not None:
            hidden = branch_width * channels
        elif finest:
            hidden = min(hidden, max(FINEST_BRANCH_WIDTH * channels, FINEST_MIN_HIDDEN))
        hidden = max(8, 8 * round(hidden / 8))  # a multiple of 8, so group norms keep their group count

        def branch(kernel: Kernel) -> CouplingBranch:
            return CouplingBranch(
                spatial_dims, half, hidden, kernel, norm, act, dropout, bias, adn_ordering, preactivation
            )

        return AdditiveCoupling(branch(kernel_size), branch(g_kernel))

    couplings = [coupling(kernel_size, 2) for _ in range(convolutions // 2)]
    if convolutions % 2:
        couplings.append(coupling(pointwise, 1))
    return couplings
