"""The U-Net skeleton shared by InvResUNet and RevMBConvUNet: reversible levels joined by cheap transitions.

Every level of the encoder and of the decoder is a :class:`~revnets.core.ReversibleSequence` of additive
couplings, so the memory-saving form keeps one tensor per level and sequence for backward (its output).
The layers outside the sequences are deliberately few and cheap, because in the memory-saving form they,
not the blocks, decide the peak:

- a stem convolution ``in_channels -> channels[0]`` and a 1x1 head ``channels[0] -> out_channels``;
- one transition between neighbouring levels, whose ``down`` reads the encoder output (already kept by
  its sequence) and whose ``up`` merges the decoder state into the skip *without* a concatenation plus
  convolution at full resolution: either a transposed convolution added to the skip
  (:class:`StridedConvTransition`, as in Brügger et al.'s partially reversible U-Net) or an invertible
  pixel shuffle concatenated with the part of the skip that was not squeezed
  (:class:`InvertibleTransition`, as in iUNets).

The forms (:class:`~revnets.core.Form`) differ only in how the sequences run: reversible (memory-saving
backward), plain (the same couplings under ordinary autograd) or checkpointed (each coupling under
``torch.utils.checkpoint``); the modules, their names and hence the state dicts are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
from monai.networks.layers.factories import Conv
from torch import Tensor, nn

from revnets.core import AdditiveCoupling, Form, InvertibleDownsample, InvertibleUpsample, ReversibleSequence
from revnets.models.deterministic import DeterministicSegmentation
from revnets.models.sampling import check_output_activation


class StridedConvTransition(nn.Module):
    """Ordinary resampling between level ``l`` (``channels``) and level ``l + 1`` (``next_channels``).

    ``down``: ``(B, channels, *S) -> (B, next_channels, *S / 2)``, a 3x3(x3) convolution with stride 2.
    ``up``: ``(B, next_channels, *S / 2)`` and the skip ``(B, channels, *S) -> (B, channels, *S)``, a 2x2(x2)
    transposed convolution added to the skip.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the finer level.
        next_channels: channels of the coarser level.
    """

    def __init__(self, spatial_dims: int, channels: int, next_channels: int) -> None:
        super().__init__()
        self.down_conv = Conv[Conv.CONV, spatial_dims](channels, next_channels, 3, stride=2, padding=1)
        self.up_conv = Conv[Conv.CONVTRANS, spatial_dims](next_channels, channels, 2, stride=2)

    def down(self, skip: Tensor) -> Tensor:
        return self.down_conv(skip)

    def up(self, x: Tensor, skip: Tensor) -> Tensor:
        return skip + self.up_conv(x)


class InvertibleTransition(nn.Module):
    """Invertible resampling between level ``l`` (``channels``) and level ``l + 1`` (``next_channels``).

    The last ``next_channels / 2**spatial_dims`` channels of the encoder output are squeezed to the coarser
    level (``C -> 2**spatial_dims * C`` channels at half the size); the first ``kept = channels -
    next_channels / 2**spatial_dims`` stay behind as the skip. ``up`` pixel-shuffles the decoder state back
    and concatenates it behind the kept channels. Both directions are bijections, so the encoder and
    decoder are invertible end to end between stem and head; doubling the width per level keeps a quarter
    (3D) or half (2D) of the channels going down.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the finer level.
        next_channels: channels of the coarser level, a multiple of ``2**spatial_dims`` and at most
            ``channels * 2**spatial_dims``.
        learnable: learnable orthogonal resampling (iUNets) instead of the fixed squeeze.
    """

    def __init__(self, spatial_dims: int, channels: int, next_channels: int, learnable: bool = False) -> None:
        super().__init__()
        factor = 2**spatial_dims
        if next_channels % factor or next_channels > channels * factor:
            raise ValueError(
                f"channels: with invertible resampling the width {next_channels} after {channels} must be a "
                f"multiple of {factor} and at most {channels * factor}."
            )
        self.kept = channels - next_channels // factor
        self.downsample = InvertibleDownsample(next_channels // factor, spatial_dims, learnable)
        self.upsample = InvertibleUpsample(next_channels, spatial_dims, learnable)

    def down(self, skip: Tensor) -> Tensor:
        return self.downsample(skip[:, self.kept :])

    def up(self, x: Tensor, skip: Tensor) -> Tensor:
        return torch.cat((skip[:, : self.kept], self.upsample(x)), dim=1)


Transition = Callable[[int, int], nn.Module]
"""Builds the transition between a level of ``channels`` and the next of ``next_channels``."""


class ReversibleUNet(DeterministicSegmentation):
    """U-Net with a reversible sequence of additive couplings at every encoder and decoder level.

    Satisfies :class:`~revnets.models.SegmentationModel`; samples are drawn by MC dropout and test-time flips.

    ``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits; every spatial size must be a
    multiple of :attr:`size_divisor` ``= 2**(levels - 1)``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (classes, or labels for a sigmoid output).
        channels: width of each level, finest first; all even (couplings split channels in halves).
        blocks: couplings per level (one int for all levels, or one per level), in the encoder and again in
            the decoder (the coarsest level has no decoder).
        residual_function: builds ``f`` or ``g`` for a coupling of ``2 * c`` channels from ``c``.
        transition: builds the transition between two levels from their widths.
        form: :class:`~revnets.core.Form`: reversible (memory-saving backward), plain (the same couplings
            under ordinary autograd) or checkpointed (each coupling under ``torch.utils.checkpoint``).
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample`.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        blocks: int | Sequence[int],
        residual_function: Callable[[int], nn.Module],
        transition: Transition,
        form: Form | str = Form.REVERSIBLE,
        output_activation: str = "softmax",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        channels = tuple(channels)
        if len(channels) < 2 or any(c < 2 or c % 2 for c in channels):
            raise ValueError(f"channels must list at least two even widths, got {channels}.")
        blocks = (blocks,) * len(channels) if isinstance(blocks, int) else tuple(blocks)
        if len(blocks) != len(channels) or any(n < 1 for n in blocks):
            raise ValueError(f"blocks must be a positive int or one per level ({len(channels)}), got {blocks}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.blocks = blocks
        self.output_activation = check_output_activation(output_activation)
        self.form = Form.of(form)

        def level(width: int, depth: int) -> ReversibleSequence:
            couplings = (
                AdditiveCoupling(residual_function(width // 2), residual_function(width // 2)) for _ in range(depth)
            )
            return ReversibleSequence(*couplings, form=self.form)

        self.stem = Conv[Conv.CONV, spatial_dims](in_channels, channels[0], 3, padding=1)
        self.encoder = nn.ModuleList(level(c, n) for c, n in zip(channels, blocks))
        self.transitions = nn.ModuleList(transition(c, c_next) for c, c_next in zip(channels, channels[1:]))
        self.decoder = nn.ModuleList(level(c, n) for c, n in zip(channels[:-1], blocks))
        self.head = Conv[Conv.CONV, spatial_dims](channels[0], out_channels, 1)

    @property
    def _transitions(self) -> list[StridedConvTransition | InvertibleTransition]:
        return cast(list[StridedConvTransition | InvertibleTransition], list(self.transitions))

    @property
    def size_divisor(self) -> int:
        """Every spatial size of the input must be a multiple of this (``2**(levels - 1)``)."""
        return 2 ** (len(self.channels) - 1)

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError naming the shape if ``x`` is not ``(B, in_channels, *spatial)`` of valid size."""
        name = type(self).__name__
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} expects input (B, {self.in_channels}, *spatial) with {self.spatial_dims} spatial "
                f"dims, got shape {tuple(x.shape)}."
            )
        k = self.size_divisor
        if any(s % k for s in x.shape[2:]):
            raise ValueError(
                f"{name} with {len(self.channels)} levels needs every spatial size divisible by {k}, got input "
                f"shape {tuple(x.shape)}; pad it first, e.g. with monai.transforms.DivisiblePad(k={k})."
            )

    def encode(self, x: Tensor) -> list[Tensor]:
        """``(B, in_channels, *spatial)`` to the encoder output of each level, finest first:
        ``(B, channels[l], *spatial / 2**l)``."""
        self.check_input(x)
        skips = [self.encoder[0](self.stem(x))]
        for transition, encoder in zip(self._transitions, self.encoder[1:]):
            skips.append(encoder(transition.down(skips[-1])))
        return skips

    def decode(self, skips: list[Tensor]) -> Tensor:
        """The encoder outputs of :meth:`encode` to logits ``(B, out_channels, *spatial)``."""
        x = skips[-1]
        for transition, decoder, skip in zip(reversed(self._transitions), reversed(self.decoder), reversed(skips[:-1])):
            x = decoder(transition.up(x, skip))
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits."""
        return self.decode(self.encode(x))
