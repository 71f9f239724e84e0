"""InvRes U-Net: Yamazaki, Rathour and Le, "Invertible Residual Network with Regularization for Effective
Medical Image Segmentation" (arXiv 2103.09042).

A 3D U-Net whose residual layers are additive couplings of pre-activation convolution pairs
(:class:`~revnets.blocks.ResidualFunction`), in two architectures:

- ``variant="partial"`` (Partially-InvRes): reversible levels, ordinary strided / transposed convolutions
  between them, transposed convolution added to the skip;
- ``variant="full"`` (Fully-InvRes): invertible squeeze / pixel-shuffle resampling (optionally learnable), so
  everything between stem and head is a bijection. The squeeze turns ``C`` channels into ``2**d * C``; to
  keep the widths of ``channels`` (e.g. doubling per level) only the last ``channels[l+1] / 2**d`` channels
  of a level are squeezed and the rest stays behind as the skip, re-joined by concatenation in the decoder
  (the channel split of iUNets); no 1x1 convolution is needed.

Each runs in the three forms of :class:`~revnets.core.Form` over the same modules: ``form="plain"`` is the
same couplings under ordinary autograd (every activation stored), not a different network, so its state
dict is interchangeable with the reversible one's.

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
from revnets.core.form import Form, resolve_form
from revnets.models.losses import gaussian_prior_kl, reconstruction_error
from revnets.models.protocol import SegmentationLoss, TrainingLoss
from revnets.models.reversible_unet import InvertibleTransition, ReversibleUNet, StridedConvTransition, Transition

VARIANTS = ("partial", "full")


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
    :class:`InvResOutput`; :meth:`training_loss` adds the VAE's regularisers to the segmentation loss.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (4 for BraTS).
        out_channels: classes (softmax) or labels (sigmoid, e.g. BraTS TC/WT/ET).
        channels: width of each level, finest first, all even. With ``variant="full"`` each width must be a
            multiple of ``2**spatial_dims`` and at most ``2**spatial_dims`` times the previous one.
        blocks: couplings per level (int or one per level), in the encoder and again in the decoder.
        variant: ``"partial"`` or ``"full"`` (see the module docstring).
        form: :class:`~revnets.core.Form` (default reversible).
        norm: ``"instance"``, ``"group"`` or ``"batch"``.
        dropout: dropout probability inside every residual function (used by :meth:`sample`).
        learnable_resampling: learnable orthogonal squeeze with ``variant="full"`` (iUNets).
        vae: add the VAE branch (training only).
        vae_latent_channels: channels of the VAE's spatial latent.
        vae_weights: weights of the L2 reconstruction and of the KL term in :meth:`training_loss`
            (SegResNetVAE's 0.1 and 0.1).
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample`.
        mode, checkpointing: the first release's keywords (``mode="plain"`` meant ``variant="partial",
            form="plain"``); deprecated.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        blocks: int | Sequence[int] = 3,
        variant: str = "partial",
        form: Form | str | None = None,
        norm: str = "group",
        dropout: float = 0.0,
        learnable_resampling: bool = False,
        vae: bool = False,
        vae_latent_channels: int = 8,
        vae_weights: tuple[float, float] = (0.1, 0.1),
        output_activation: str = "softmax",
        mode: str | None = None,
        checkpointing: bool | None = None,
    ) -> None:
        if mode is not None:
            if mode not in (*VARIANTS, "plain"):
                raise ValueError(f"mode must be one of {(*VARIANTS, 'plain')}, got {mode!r}.")
            variant = "partial" if mode == "plain" else mode
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
        form = resolve_form("InvResUNet", form, mode=mode, checkpointing=checkpointing)
        transition: Transition
        if variant == "full":
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
            form=form,
            output_activation=output_activation,
        )
        self.variant = variant
        self.vae_weights = tuple(vae_weights)
        self.vae_branch = (
            VAEBranch(spatial_dims, self.channels, in_channels, vae_latent_channels, norm) if vae else None
        )

    def forward(self, x: Tensor) -> Tensor | InvResOutput:  # type: ignore[override]
        """Logits ``(B, out_channels, *spatial)``, or an :class:`InvResOutput` when training with the VAE."""
        skips = self.encode(x)
        logits = self.decode(skips)
        if self.vae_branch is None or not self.training:
            return logits
        return InvResOutput(logits, *self.vae_branch(skips[-1]))

    def loss_of_output(
        self, output: Tensor | InvResOutput, x: Tensor, y: Tensor, segmentation_loss: SegmentationLoss | None = None
    ) -> TrainingLoss:
        """Segmentation loss (default Dice + CE) plus, when ``output`` is an :class:`InvResOutput` (training
        with the VAE), ``vae_weights`` times the L2 reconstruction of ``x`` and the KL divergence of the latent
        from N(0, 1): terms ``segmentation``, ``reconstruction`` and ``kl``."""
        if not isinstance(output, InvResOutput):
            return super().loss_of_output(output, x, y, segmentation_loss)
        segmentation = super().loss_of_output(output.logits, x, y, segmentation_loss).total
        terms = {
            "segmentation": segmentation,
            "reconstruction": reconstruction_error(output.reconstruction, x),
            "kl": gaussian_prior_kl(output.mu, output.logvar),
        }
        total = segmentation + self.vae_weights[0] * terms["reconstruction"] + self.vae_weights[1] * terms["kl"]
        return TrainingLoss(total, terms)
