"""Training losses that need more of a model's output than its logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from revnets.models.invres import InvResOutput


class InvResVAELoss(nn.Module):
    """Segmentation loss plus the VAE regularisers of :class:`~revnets.models.InvResUNet` (``vae=True``).

    ``loss = segmentation_loss(logits, target) + reconstruction_weight * mean((reconstruction - image)**2)
    + kl_weight * KL(N(mu, exp(logvar)) || N(0, 1))`` with the KL divergence averaged over latent elements,
    the weighting of Myronenko's SegResNetVAE (0.1 and 0.1). Given plain logits (evaluation mode, or a model
    without the VAE) it is the segmentation loss alone.

    Args:
        segmentation_loss: e.g. ``monai.losses.DiceCELoss(to_onehot_y=True, softmax=True)``.
        reconstruction_weight: weight of the L2 reconstruction term.
        kl_weight: weight of the KL term.
    """

    def __init__(
        self, segmentation_loss: nn.Module, reconstruction_weight: float = 0.1, kl_weight: float = 0.1
    ) -> None:
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.reconstruction_weight = reconstruction_weight
        self.kl_weight = kl_weight

    def forward(self, output: InvResOutput | Tensor, target: Tensor, image: Tensor) -> Tensor:
        """Scalar loss from the model's ``output``, the segmentation ``target`` and the input ``image``
        ``(B, in_channels, *spatial)``."""
        if not isinstance(output, InvResOutput):
            return self.segmentation_loss(output, target)
        reconstruction = F.mse_loss(output.reconstruction, image)
        kl = -0.5 * torch.mean(1 + output.logvar - output.mu.square() - output.logvar.exp())
        return (
            self.segmentation_loss(output.logits, target)
            + self.reconstruction_weight * reconstruction
            + self.kl_weight * kl
        )
