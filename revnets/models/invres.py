"""InvRes U-Net: Yamazaki, Rathour and Le, "Invertible Residual Network with Regularization for Effective
Medical Image Segmentation" (arXiv 2103.09042).

A 3D U-Net whose residual layers are additive couplings of pre-activation convolution pairs
(:class:`~revnets.blocks.ResidualFunction`), in three forms over the same blocks:

- ``mode="partial"`` (Partially-InvRes): reversible levels, ordinary strided / transposed convolutions
  between them, transposed convolution added to the skip;
- ``mode="full"`` (Fully-InvRes): invertible squeeze / pixel-shuffle resampling (optionally learnable), so
  everything between stem and head is a bijection. The squeeze turns ``C`` channels into ``2**d * C``; to
  keep the widths of ``channels`` (e.g. doubling per level) only the last ``channels[l+1] / 2**d`` channels
  of a level are squeezed and the rest stays behind as the skip, re-joined by concatenation in the decoder
  (the channel split of iUNets); no 1x1 convolution is needed;
- ``mode="plain"``: the partial network with ordinary residual wiring and autograd (the 3D U-Net baseline).
  Its state dict is interchangeable with ``mode="partial"``.

``vae=True`` adds the regularising VAE branch of Myronenko's SegResNetVAE (see :class:`VAEBranch`), used in
training only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import torch
from monai.networks.layers.factories import Conv
from torch import Tensor, nn

from revnets.blocks import ResidualFunction, norm_layer
from revnets.models.reversible_unet import InvertibleTransition, ReversibleUNet, StridedConvTransition

MODES = ("partial", "full", "plain")


class InvResOutput(NamedTuple):
    """What :class:`InvResUNet` with ``vae=True`` returns in training mode.

    Attributes:
        logits: segmentation logits ``(B, out_channels, *spatial)``.
        reconstruction: the VAE's reconstruction of the input ``(B, in_channels, *spatial)``.
        mu: latent mean ``(B, latent_channels, *spatial / 2**(levels - 1))``.
        logvar: latent log-variance, same shape as ``mu``.
    """

    logits: Tensor
    reconstruction: Tensor
    mu: Tensor
    logvar: Tensor


class VAEBranch(nn.Module):
    """From the bottleneck, a Gaussian latent, one sample of it, and a decoder back to the input.

    The latent is spatial (``latent_channels`` at the bottleneck's size) rather than SegResNetVAE's fully
    connected vector, so the branch works for any input size without knowing it at construction. The
    decoder mirrors the encoder widths with pre-activation transposed convolutions; its last layer writes
    the reconstruction directly, so it keeps no extra full-resolution features for backward.

    ``(B, channels[-1], *S) -> ((B, image_channels, *S * 2**(levels - 1)), mu, logvar)``.

    Args:
        spatial_dims: 2 or 3.
        channels: encoder widths, finest first.
        image_channels: channels of the reconstructed input.
        latent_channels: channels of the latent.
        norm: ``"instance"``, ``"group"`` or ``"batch"``.
    """

    def __init__(
        self, spatial_dims: int, channels: Sequence[int], image_channels: int, latent_channels: int, norm: str
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        up = Conv[Conv.CONVTRANS, spatial_dims]
        bottom = channels[-1]
        self.to_latent = nn.Sequential(
            norm_layer(norm, spatial_dims, bottom), nn.LeakyReLU(inplace=True), conv(bottom, 2 * latent_channels, 1)
        )
        layers: list[nn.Module] = [conv(latent_channels, bottom, 1)]
        widths = list(reversed(channels))  # coarsest first; the last upsampling writes the image channels
        for wide, narrow in zip(widths[:-1], [*widths[1:-1], image_channels]):
            layers += [norm_layer(norm, spatial_dims, wide), nn.LeakyReLU(inplace=True), up(wide, narrow, 2, stride=2)]
        self.decoder = nn.Sequential(*layers)

    def forward(self, bottleneck: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.to_latent(bottleneck).chunk(2, dim=1)
        logvar = logvar.clamp(-10.0, 10.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar


class InvResUNet(ReversibleUNet):
    """Partially / fully invertible residual U-Net (InvRes) with an optional VAE regulariser.

    ``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits; every spatial size must be a
    multiple of ``2**(len(channels) - 1)`` (:attr:`size_divisor`), else a ValueError names the shape; pad
    first (``monai.transforms.DivisiblePad``). In training mode with ``vae=True`` forward returns an
    :class:`InvResOutput` for :class:`~revnets.models.losses.InvResVAELoss`.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (4 for BraTS).
        out_channels: classes (softmax) or labels (sigmoid, e.g. BraTS TC/WT/ET).
        channels: width of each level, finest first, all even. With ``mode="full"`` each width must be a
            multiple of ``2**spatial_dims`` and at most ``2**spatial_dims`` times the previous one.
        blocks: couplings per level (int or one per level), in the encoder and again in the decoder.
        mode: ``"partial"``, ``"full"`` or ``"plain"`` (see the module docstring).
        norm: ``"instance"``, ``"group"`` or ``"batch"``.
        dropout: dropout probability inside every residual function (used by :meth:`sample`).
        checkpointing: checkpoint each coupling instead of the memory-saving backward (the third point of
            comparison); with it ``"partial"`` and ``"plain"`` build the same network.
        learnable_resampling: learnable orthogonal squeeze in ``mode="full"`` (iUNets).
        vae: add the VAE branch (training only).
        vae_latent_channels: channels of the VAE's spatial latent.
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample`.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        blocks: int | Sequence[int] = 3,
        mode: str = "partial",
        norm: str = "group",
        dropout: float = 0.0,
        checkpointing: bool = False,
        learnable_resampling: bool = False,
        vae: bool = False,
        vae_latent_channels: int = 8,
        output_activation: str = "softmax",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if mode == "full":
            transition = partial(InvertibleTransition, spatial_dims, learnable=learnable_resampling)
        else:
            transition = partial(StridedConvTransition, spatial_dims)
        super().__init__(
            spatial_dims,
            in_channels,
            out_channels,
            channels,
            blocks,
            residual_function=partial(ResidualFunction, spatial_dims, norm=norm, dropout=dropout),
            transition=transition,
            reversible=mode != "plain",
            checkpointing=checkpointing,
            output_activation=output_activation,
        )
        self.mode = mode
        self.vae_branch = (
            VAEBranch(spatial_dims, self.channels, in_channels, vae_latent_channels, norm) if vae else None
        )

    def forward(self, x: Tensor) -> Tensor | InvResOutput:
        """Logits ``(B, out_channels, *spatial)``, or an :class:`InvResOutput` when training with the VAE."""
        skips = self.encode(x)
        logits = self.decode(skips)
        if self.vae_branch is None or not self.training:
            return logits
        return InvResOutput(logits, *self.vae_branch(skips[-1]))
